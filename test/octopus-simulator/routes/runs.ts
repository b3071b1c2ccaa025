// Runbook runs, which queue a server task.
import { collection, route, validationError, type Route } from '../http';
import { nextId, now, type Json, type SpaceState } from '../store';
import { SPACE, bodyOf, created, type RouteContext } from './shared';

export function runRoutes({ state, spaceOf, find }: RouteContext): Route[] {
  const startRun = (space: SpaceState, runbook: Json, snapshotId: string, environmentId: string): Json => {
    const runId = nextId(state, 'RunbookRuns');
    const taskId = nextId(state, 'ServerTasks');
    state.tasks.push({
      Id: taskId,
      SpaceId: space.space.Id,
      Name: 'RunbookRun',
      Description: `Run runbook: ${runbook.Name}`,
      Arguments: { RunbookRunId: runId },
      State: 'Queued',
      Completed: null,
      QueueTime: now(),
      StartTime: null,
      CompletedTime: null,
      ErrorMessage: '',
      IsCompleted: false,
      FinishedSuccessfully: false,
      HasPendingInterruptions: false,
      HasWarningsOrErrors: false,
      Links: { Self: `/api/tasks/${taskId}` },
    });
    const run = {
      Id: runId,
      SpaceId: space.space.Id,
      ProjectId: runbook.ProjectId,
      RunbookId: runbook.Id,
      RunbookSnapshotId: snapshotId,
      EnvironmentId: environmentId,
      TaskId: taskId,
      Name: runbook.Name,
      Created: now(),
      Links: { Self: `/api/${space.space.Id}/runbookRuns/${runId}`, Task: `/api/tasks/${taskId}` },
    };
    space.runbookRuns.push(run);
    return run;
  };
  return [
    route('POST', `${SPACE}/runbook-runs/create/v1`, 'RunbookRunCreate', (r) => {
      const space = spaceOf(r);
      const body = bodyOf(r);
      const project = space.projects.find((p) => p.Name === body.ProjectName || p.Id === body.ProjectName);
      if (!project) throw validationError(`The project '${body.ProjectName ?? ''}' was not found.`);
      const runbook = space.runbooks.find((b) => b.ProjectId === project.Id && (b.Name === body.RunbookName || b.Id === body.RunbookName));
      if (!runbook) throw validationError(`The runbook '${body.RunbookName ?? ''}' was not found in project '${project.Name}'.`);
      const snapshot = body.Snapshot
        ? space.snapshots.find((s) => s.RunbookId === runbook.Id && (s.Id === body.Snapshot || s.Name === body.Snapshot))
        : space.snapshots.find((s) => s.Id === runbook.PublishedRunbookSnapshotId);
      if (!snapshot) throw validationError('Please specify the Runbook Snapshot to run.');
      const names: string[] = Array.isArray(body.EnvironmentNames) ? body.EnvironmentNames : [];
      if (names.length === 0) throw validationError('Please specify at least one environment.');
      const results = names.map((name) => {
        const environment = space.environments.find((e) => e.Name === name || e.Id === name);
        if (!environment) throw validationError(`The environment '${name}' was not found.`);
        const run = startRun(space, runbook, snapshot.Id, environment.Id);
        return { RunbookRunId: run.Id, ServerTaskId: run.TaskId };
      });
      return { RunbookRunServerTasks: results };
    }),
    route('POST', `${SPACE}/runbookRuns`, 'RunbookRunCreate', (r) => {
      const space = spaceOf(r);
      const body = bodyOf(r);
      const runbook = space.runbooks.find((b) => b.Id === body.RunbookId);
      if (!runbook) throw validationError(`The runbook '${body.RunbookId ?? ''}' does not exist.`);
      const snapshotId = body.RunbookSnapshotId ?? runbook.PublishedRunbookSnapshotId;
      if (!snapshotId) throw validationError('Please specify the Runbook Snapshot to run.');
      if (!space.environments.some((e) => e.Id === body.EnvironmentId)) throw validationError(`The environment '${body.EnvironmentId ?? ''}' does not exist.`);
      return created(startRun(space, runbook, snapshotId, body.EnvironmentId));
    }),
    route('GET', `${SPACE}/runbookRuns`, 'RunbookRunView', (r) => collection('RunbookRun', r.path, spaceOf(r).runbookRuns, r.query)),
    route('GET', `${SPACE}/runbookRuns/{id}`, 'RunbookRunView', (r) => find(spaceOf(r).runbookRuns, r.params.id)),
  ];
}
