// Server tasks, server-wide and space-scoped.
import { collection, notFound, queryList, route, type Request, type Route } from '../http';
import { now, type Json } from '../store';
import { SPACE, type RouteContext } from './shared';

export function taskRoutes({ state, spaceOf, find }: RouteContext): Route[] {
  const listTasks = (request: Request, spaceId?: string): Json => {
    const states = queryList(request.query, 'states');
    const spaces = queryList(request.query, 'spaces');
    const items = state.tasks.filter(
      (t) =>
        (spaceId === undefined || t.SpaceId === spaceId) &&
        (!spaces || spaces.includes('all') || spaces.includes(t.SpaceId)) &&
        (!states || states.includes(t.State)) &&
        (request.query.get('running') !== 'true' || ['Executing', 'Cancelling'].includes(t.State)),
    );
    return collection('Task', request.path, items, request.query);
  };
  const taskOf = (id: string): Json => find(state.tasks, id);
  return [
    route('GET', '/api/tasks', 'TaskView', (r) => listTasks(r)),
    route('GET', '/api/tasks/{id}', 'TaskView', (r) => taskOf(r.params.id)),
    route('GET', '/api/tasks/{id}/details', 'TaskView', (r) => ({ Task: taskOf(r.params.id), ActivityLogs: [], PhysicalLogSize: 0, Progress: { ProgressPercentage: 0, EstimatedTimeRemaining: '' } })),
    route('POST', '/api/tasks/{id}/cancel', 'TaskCancel', (r) => {
      const task = taskOf(r.params.id);
      if (!task.IsCompleted) Object.assign(task, { State: 'Canceled', IsCompleted: true, FinishedSuccessfully: false, CompletedTime: now() });
      return task;
    }),
    route('GET', `${SPACE}/tasks`, 'TaskView', (r) => listTasks(r, spaceOf(r).space.Id)),
    route('GET', `${SPACE}/tasks/{id}`, 'TaskView', (r) => {
      const task = taskOf(r.params.id);
      if (task.SpaceId !== spaceOf(r).space.Id) throw notFound(r.params.id);
      return task;
    }),
    route('GET', `${SPACE}/tasks/{id}/details`, 'TaskView', (r) => ({ Task: taskOf(r.params.id), ActivityLogs: [] })),
    route('GET', `${SPACE}/tasks/{id}/raw`, 'TaskView', (r) => `Task ${taskOf(r.params.id).Id}\n`),
  ];
}
