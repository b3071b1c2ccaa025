// Project triggers (schedules that run runbooks).
import { collection, queryList, route, validationError, type Request, type Route } from '../http';
import { clone, nextId, type Json, type SpaceState } from '../store';
import { SPACE, isBlank, bodyOf, created, type RouteContext } from './shared';

const SCHEDULE_FILTERS = new Set([
  'OnceDailySchedule',
  'ContinuousDailySchedule',
  'DaysPerMonthSchedule',
  'CronExpressionSchedule',
  'DailySchedule',
  'DaysPerWeekSchedule',
]);

export function triggerRoutes({ state, spaceOf, find, projectOf }: RouteContext): Route[] {
  const validateTrigger = (space: SpaceState, body: Json, existingId?: string): void => {
    const problems: string[] = [];
    if (isBlank(body.Name)) problems.push('Please provide a name for the trigger.');
    const project = space.projects.find((p) => p.Id === body.ProjectId);
    if (!project) problems.push(`The project '${body.ProjectId ?? ''}' does not exist.`);
    else if (!isBlank(body.Name) && space.triggers.some((t) => t.ProjectId === project.Id && t.Id !== existingId && t.Name.toLowerCase() === String(body.Name).trim().toLowerCase())) {
      problems.push(`A trigger with the name '${String(body.Name).trim()}' already exists in this project.`);
    }
    const filter = body.Filter;
    if (!filter || typeof filter !== 'object') problems.push('Please provide the trigger filter.');
    else if (!SCHEDULE_FILTERS.has(filter.FilterType) && !['MachineFilter', 'FeedFilter', 'GitFilter'].includes(filter.FilterType)) {
      problems.push(`'${filter.FilterType}' is not a valid trigger filter type.`);
    } else if (filter.FilterType === 'CronExpressionSchedule') {
      const fields = String(filter.CronExpression ?? '').trim().split(/\s+/).filter((f) => f !== '');
      if (fields.length < 6 || fields.length > 7) {
        problems.push(`The cron expression '${filter.CronExpression ?? ''}' must have 6 fields (second minute hour day-of-month month day-of-week) and an optional year; it has ${fields.length}.`);
      }
    }
    if (filter && SCHEDULE_FILTERS.has(filter.FilterType) && isBlank(filter.Timezone)) problems.push('Please provide the time zone of the schedule.');
    const action = body.Action;
    if (!action || typeof action !== 'object') problems.push('Please provide the trigger action.');
    else if (action.ActionType === 'RunRunbook') {
      const runbook = space.runbooks.find((r) => r.Id === action.RunbookId);
      if (isBlank(action.RunbookId)) problems.push('Please select the runbook to run.');
      else if (!runbook || runbook.ProjectId !== body.ProjectId) problems.push(`The runbook '${action.RunbookId}' does not exist in this project.`);
      else if (!runbook.PublishedRunbookSnapshotId) problems.push(`The runbook '${runbook.Name}' has no published snapshot. Publish the runbook before scheduling it.`);
      if (!Array.isArray(action.EnvironmentIds) || action.EnvironmentIds.length === 0) problems.push('Please select at least one environment to run the runbook in.');
      for (const environmentId of Array.isArray(action.EnvironmentIds) ? action.EnvironmentIds : []) {
        if (!space.environments.some((e) => e.Id === environmentId)) problems.push(`The environment '${environmentId}' does not exist.`);
      }
    } else if (!['AutoDeploy', 'DeployLatestRelease', 'DeployNewRelease', 'CreateRelease'].includes(action.ActionType)) {
      problems.push(`'${action.ActionType}' is not a valid trigger action type.`);
    }
    if (problems.length) throw validationError(...problems);
  };
  const storeTrigger = (space: SpaceState, body: Json, id: string): Json => ({
    Id: id,
    Name: String(body.Name).trim(),
    Description: body.Description ?? null,
    ProjectId: body.ProjectId,
    SpaceId: space.space.Id,
    IsDisabled: body.IsDisabled ?? false,
    Filter: clone(body.Filter),
    Action: clone(body.Action),
    Links: { Self: `/api/${space.space.Id}/projecttriggers/${id}`, Project: `/api/${space.space.Id}/projects/${body.ProjectId}` },
  });
  const createTrigger = (request: Request, projectId?: string): { status: number; body: unknown } => {
    const space = spaceOf(request);
    const body = bodyOf(request);
    if (projectId !== undefined && body.ProjectId !== undefined && body.ProjectId !== projectId) throw validationError('The trigger belongs to a different project.');
    const resolved = { ...body, ProjectId: body.ProjectId ?? projectId };
    validateTrigger(space, resolved);
    const trigger = storeTrigger(space, resolved, nextId(state, 'ProjectTriggers'));
    space.triggers.push(trigger);
    return created(trigger);
  };
  const listTriggers = (request: Request, projectId?: string): Json => {
    const space = spaceOf(request);
    if (projectId !== undefined) projectOf(space, projectId);
    const runbooks = queryList(request.query, 'runbooks');
    const items = space.triggers.filter(
      (t) => (projectId === undefined || t.ProjectId === projectId) && (!runbooks || runbooks.includes(t.Action?.RunbookId)),
    );
    return collection('ProjectTrigger', request.path, items, request.query);
  };
  return [
    route('GET', `${SPACE}/projecttriggers`, 'TriggerView', (r) => listTriggers(r)),
    route('POST', `${SPACE}/projecttriggers`, 'TriggerCreate', (r) => createTrigger(r)),
    route('GET', `${SPACE}/projecttriggers/{id}`, 'TriggerView', (r) => find(spaceOf(r).triggers, r.params.id)),
    route('PUT', `${SPACE}/projecttriggers/{id}`, 'TriggerEdit', (r) => {
      const space = spaceOf(r);
      const trigger = find(space.triggers, r.params.id);
      const body = { ...bodyOf(r), ProjectId: bodyOf(r).ProjectId ?? trigger.ProjectId };
      validateTrigger(space, body, trigger.Id);
      Object.assign(trigger, storeTrigger(space, body, trigger.Id));
      return trigger;
    }),
    route('DELETE', `${SPACE}/projecttriggers/{id}`, 'TriggerDelete', (r) => {
      const space = spaceOf(r);
      const trigger = find(space.triggers, r.params.id);
      space.triggers.splice(space.triggers.indexOf(trigger), 1);
      return { body: undefined };
    }),
    route('GET', `${SPACE}/projects/{projectId}/triggers`, 'TriggerView', (r) => listTriggers(r, r.params.projectId)),
    route('POST', `${SPACE}/projects/{projectId}/triggers`, 'TriggerCreate', (r) => createTrigger(r, r.params.projectId)),
  ];
}
