// The API root and spaces (`/api`, `/api/spaces`, `/api/{spaceId}`).
import { collection, notFound, route, validationError, type Route } from '../http';
import { newSpace } from '../store';
import { SPACE, bodyOf, created, type RouteContext } from './shared';

export function spaceRoutes({ state, spaceOf, find }: RouteContext): Route[] {
  return [
    route('GET', '/api', 'anonymous', () => ({
      Application: 'Octopus Deploy',
      Version: state.version,
      ApiVersion: '3.0.0',
      InstallationId: state.installationId,
      IsEarlyAccessProgram: false,
      HasLongTermSupport: true,
      Links: {
        Self: '/api',
        Spaces: '/api/spaces{/id}{?skip,ids,take,partialName}',
        ServerStatus: '/api/serverstatus',
        MaintenanceConfiguration: '/api/maintenanceconfiguration',
        Tasks: '/api/tasks{/id}{?skip,active,environment,project,runbook,name,node,running,states,take,ids,partialName,spaces}',
      },
    })),
    route('GET', '/api/spaces', undefined, (r) => collection('Space', r.path, state.spaces.map((s) => s.space), r.query)),
    route('GET', '/api/spaces/{id}', undefined, (r) => find(state.spaces.map((s) => s.space), r.params.id)),
    route('POST', '/api/spaces', 'SpaceCreate', (r) => {
      const body = bodyOf(r);
      const name = String(body.Name ?? '').trim();
      if (!name) throw validationError('Please provide a name for the space.');
      if (state.spaces.some((s) => s.space.Name.toLowerCase() === name.toLowerCase())) throw validationError(`A space with the name '${name}' already exists.`);
      if (!Array.isArray(body.SpaceManagersTeams) || (body.SpaceManagersTeams.length === 0 && (body.SpaceManagersTeamMembers ?? []).length === 0)) {
        throw validationError('Please select at least one space manager team or team member.');
      }
      const space = newSpace(state, name, false);
      Object.assign(space.space, { Description: body.Description ?? null, SpaceManagersTeams: body.SpaceManagersTeams, SpaceManagersTeamMembers: body.SpaceManagersTeamMembers ?? [] });
      space.environments.length = 0;
      return created(space.space);
    }),
    route('PUT', '/api/spaces/{id}', 'SpaceEdit', (r) => {
      const space = find(state.spaces.map((s) => s.space), r.params.id);
      const body = bodyOf(r);
      Object.assign(space, { Name: body.Name ?? space.Name, Description: body.Description ?? space.Description, TaskQueueStopped: Boolean(body.TaskQueueStopped) });
      return space;
    }),
    route('DELETE', '/api/spaces/{id}', 'SpaceDelete', (r) => {
      const index = state.spaces.findIndex((s) => s.space.Id === r.params.id);
      if (index < 0) throw notFound(r.params.id);
      const space = state.spaces[index].space;
      if (space.IsDefault) throw validationError('The default space cannot be deleted.');
      if (!space.TaskQueueStopped) throw validationError('Stop the task queue of the space before deleting it.');
      state.spaces.splice(index, 1);
      return { body: undefined };
    }),
    route('GET', `${SPACE}`, undefined, (r) => ({ ...spaceOf(r).space, Links: { Self: `/api/${spaceOf(r).space.Id}` } })),
  ];
}
