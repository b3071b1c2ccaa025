// The simulator's route table, one file per resource under routes/ (as the SQL simulator's
// statements/). Every handler validates what the real server rejects and answers with the resource
// shapes the reference describes. The order is the table's: among routes equally specific, the
// first wins (http.ts match()).
import type { Route } from '../http';
import type { ServerState } from '../store';
import { actionTemplateRoutes } from './action-templates';
import { administrationRoutes } from './administration';
import { lookupRoutes } from './lookups';
import { projectRoutes } from './projects';
import { runRoutes } from './runs';
import { runbookRoutes } from './runbooks';
import { routeContext } from './shared';
import { spaceRoutes } from './spaces';
import { taskRoutes } from './tasks';
import { triggerRoutes } from './triggers';
import { variableRoutes } from './variables';

export { GIT_RESOURCE_ON_DATABASE_ROUTE, runbooksAreInGit, staleVersion } from './shared';

export function buildRoutes(state: ServerState): Route[] {
  const context = routeContext(state);
  return [
    ...spaceRoutes(context),
    ...administrationRoutes(context),
    ...taskRoutes(context),
    ...lookupRoutes(context),
    ...projectRoutes(context),
    ...variableRoutes(context),
    ...actionTemplateRoutes(context),
    ...runbookRoutes(context),
    ...triggerRoutes(context),
    ...runRoutes(context),
  ];
}
