// Runbooks, their processes and snapshots (project-scoped and space-scoped routes).
import { randomUUID } from 'node:crypto';
import { collection, notFound, queryList, route, validationError, type Request, type Route } from '../http';
import { clone, nextId, now, slugOf, type Json, type SpaceState } from '../store';
import { SPACE, isBlank, bodyOf, created, staleVersion, type RouteContext } from './shared';

const STEP_CONDITIONS = new Set(['Success', 'Failure', 'Always', 'Variable']);
function truthyFlag(value: string | null): boolean {
  return value !== null && value !== '' && value.toLowerCase() !== 'false';
}
/**
 * RunRetentionPolicy as the server model carries it: `Strategy` (Default, Count, Forever) with the
 * older `ShouldKeepForever` derived from it; a client that sends no Strategy gets it inferred as
 * go-octopusdeploy infers it (pkg/runbooks/runbook_retention_policy.go).
 */
function retentionPolicy(body: Json): Json {
  const policy = body.RunRetentionPolicy;
  if (!policy || typeof policy !== 'object') throw validationError('Please provide a run retention policy (RunRetentionPolicy) for the runbook.');
  const quantity = Number(policy.QuantityToKeep ?? 0);
  const unit = policy.Unit ?? 'Items';
  if (!['Items', 'Days'].includes(unit)) throw validationError(`'${unit}' is not a valid unit for the run retention policy.`);
  let strategy: string = policy.Strategy ?? '';
  if (!strategy) strategy = policy.ShouldKeepForever || quantity === 0 ? 'Forever' : quantity === 100 && unit === 'Items' ? 'Default' : 'Count';
  if (!['Default', 'Count', 'Forever'].includes(strategy)) throw validationError(`'${strategy}' is not a valid run retention strategy (Default, Count or Forever).`);
  if (strategy === 'Count' && !(Number.isInteger(quantity) && quantity > 0)) throw validationError('A run retention policy that keeps a count needs a QuantityToKeep of at least 1.');
  return { Strategy: strategy, QuantityToKeep: strategy === 'Forever' ? 0 : quantity, Unit: unit, ShouldKeepForever: strategy === 'Forever' };
}

export function runbookRoutes({ state, spaceOf, find, projectOf, refuseGitRunbooks }: RouteContext): Route[] {
  const runbookDefaults = (space: SpaceState, project: Json, body: Json, id: string): Json => ({
    Id: id,
    SpaceId: space.space.Id,
    ProjectId: project.Id,
    Name: String(body.Name).trim(),
    Slug: slugOf(String(body.Name)),
    Description: body.Description ?? '',
    RunbookProcessId: `RunbookProcess-${id}`,
    PublishedRunbookSnapshotId: null,
    MultiTenancyMode: body.MultiTenancyMode ?? 'Untenanted',
    EnvironmentScope: body.EnvironmentScope ?? 'All',
    Environments: Array.isArray(body.Environments) ? body.Environments : [],
    DefaultGuidedFailureMode: body.DefaultGuidedFailureMode ?? 'EnvironmentDefault',
    RunRetentionPolicy: retentionPolicy(body),
    ConnectivityPolicy: body.ConnectivityPolicy ?? {
      AllowDeploymentsToNoTargets: true,
      ExcludeUnhealthyTargets: false,
      SkipMachineBehavior: 'None',
      TargetRoles: [],
    },
    ForcePackageDownload: body.ForcePackageDownload ?? false,
    RunbookTags: Array.isArray(body.RunbookTags) ? body.RunbookTags : [],
    FailTargetDiscovery: false,
    CancelQueuedTasks: false,
    CancelRunningTasks: false,
    Links: {
      Self: `/api/${space.space.Id}/projects/${project.Id}/runbooks/${id}`,
      RunbookProcess: `/api/${space.space.Id}/projects/${project.Id}/runbookProcesses/RunbookProcess-${id}`,
      RunbookSnapshotTemplate: `/api/${space.space.Id}/projects/${project.Id}/runbookProcesses/RunbookProcess-${id}/runbookSnapshotTemplate`,
    },
  });
  const validateRunbookFields = (space: SpaceState, project: Json, body: Json, existingId?: string): void => {
    const problems: string[] = [];
    if (isBlank(body.Name)) problems.push('Please provide a name for the runbook.');
    else if (space.runbooks.some((r) => r.ProjectId === project.Id && r.Id !== existingId && r.Name.toLowerCase() === String(body.Name).trim().toLowerCase())) {
      problems.push(`A runbook with the name '${String(body.Name).trim()}' already exists in this project. Please choose a different name.`);
    }
    if (body.EnvironmentScope !== undefined && !['All', 'Specified', 'FromProjectLifecycles'].includes(body.EnvironmentScope)) problems.push(`'${body.EnvironmentScope}' is not a valid environment scope.`);
    for (const environmentId of Array.isArray(body.Environments) ? body.Environments : []) {
      if (!space.environments.some((e) => e.Id === environmentId)) problems.push(`The environment '${environmentId}' does not exist.`);
    }
    if (body.EnvironmentScope === 'Specified' && (!Array.isArray(body.Environments) || body.Environments.length === 0)) problems.push('Please select at least one environment, or allow the runbook to run in all environments.');
    if (problems.length) throw validationError(...problems);
  };
  const createRunbook = (request: Request, projectId: string): { status: number; body: unknown } => {
    const space = spaceOf(request);
    const body = bodyOf(request);
    const project = space.projects.find((p) => p.Id === projectId);
    if (!project) throw validationError(`The project '${projectId}' does not exist.`);
    refuseGitRunbooks(space, project.Id);
    validateRunbookFields(space, project, body);
    const id = nextId(state, 'Runbooks');
    const runbook = runbookDefaults(space, project, body, id);
    space.runbooks.push(runbook);
    space.processes.set(runbook.RunbookProcessId, {
      Id: runbook.RunbookProcessId,
      SpaceId: space.space.Id,
      ProjectId: project.Id,
      RunbookId: id,
      Version: 0,
      LastSnapshotId: null,
      Steps: [],
      Links: { Self: `/api/${space.space.Id}/projects/${project.Id}/runbookProcesses/${runbook.RunbookProcessId}` },
    });
    return created(runbook);
  };
  const updateRunbook = (request: Request, runbook: Json): Json => {
    const space = spaceOf(request);
    const body = bodyOf(request);
    const project = find(space.projects, runbook.ProjectId);
    refuseGitRunbooks(space, project.Id);
    validateRunbookFields(space, project, body, runbook.Id);
    const snapshotId = body.PublishedRunbookSnapshotId ?? null;
    if (snapshotId !== null) {
      const snapshot = space.snapshots.find((s) => s.Id === snapshotId);
      if (!snapshot || snapshot.RunbookId !== runbook.Id) throw validationError(`The snapshot '${snapshotId}' does not belong to the runbook '${runbook.Name}'.`);
    }
    const updated = runbookDefaults(space, project, { ...runbook, ...body }, runbook.Id);
    updated.PublishedRunbookSnapshotId = snapshotId;
    Object.assign(runbook, updated);
    return runbook;
  };
  const processOf = (space: SpaceState, id: string, projectId?: string): Json => {
    const process = space.processes.get(id);
    if (!process || (projectId !== undefined && process.ProjectId !== projectId)) throw notFound(id);
    return process;
  };
  const updateProcess = (request: Request, process: Json): Json => {
    const space = spaceOf(request);
    const body = bodyOf(request);
    refuseGitRunbooks(space, process.ProjectId);
    if (typeof body.Version !== 'number') throw validationError('The Version of the runbook process is required.');
    // A stale Version is a validation failure (400), as for every versioned document (OctopusDeploy/Issues#716).
    if (body.Version !== process.Version) throw staleVersion('runbook process', body.Version, process.Version);
    const steps: Json[] = Array.isArray(body.Steps) ? clone(body.Steps) : [];
    const problems: string[] = [];
    const stepNames = new Set<string>();
    const actionNames = new Set<string>();
    for (const step of steps) {
      if (isBlank(step.Name)) problems.push('Every step needs a name.');
      else if (stepNames.has(step.Name.toLowerCase())) problems.push(`The step name '${step.Name}' is used more than once.`);
      else stepNames.add(step.Name.toLowerCase());
      if (step.Condition !== undefined && !STEP_CONDITIONS.has(step.Condition)) problems.push(`'${step.Condition}' is not a valid condition for step '${step.Name}'.`);
      if (!Array.isArray(step.Actions) || step.Actions.length === 0) problems.push(`The step '${step.Name}' has no actions.`);
      for (const action of Array.isArray(step.Actions) ? step.Actions : []) {
        if (isBlank(action.Name)) problems.push(`An action of step '${step.Name}' has no name.`);
        else if (actionNames.has(action.Name.toLowerCase())) problems.push(`The action name '${action.Name}' is used more than once.`);
        else actionNames.add(action.Name.toLowerCase());
        if (isBlank(action.ActionType)) problems.push(`The action '${action.Name}' has no action type.`);
        const templateId = action.Properties?.['Octopus.Action.Template.Id'];
        if (templateId !== undefined) {
          const template = space.actionTemplates.find((t) => t.Id === templateId);
          const version = Number(action.Properties['Octopus.Action.Template.Version']);
          if (!template) problems.push(`The step template '${templateId}' used by action '${action.Name}' does not exist.`);
          else if (!Number.isInteger(version) || !(space.templateHistory.get(template.Id) ?? []).some((v) => v.version === version)) {
            problems.push(`The step template '${template.Name}' has no version '${action.Properties['Octopus.Action.Template.Version']}' (action '${action.Name}'); its current version is ${template.Version}.`);
          } else if (template.ActionType !== action.ActionType) {
            problems.push(`The action '${action.Name}' must have the action type '${template.ActionType}' of its step template.`);
          }
        }
      }
    }
    if (problems.length) throw validationError(...problems);
    for (const step of steps) {
      step.Id = isBlank(step.Id) ? randomUUID() : step.Id;
      step.Slug = slugOf(step.Name);
      step.Type = step.Type ?? 'Step';
      step.Condition = step.Condition ?? 'Success';
      step.StartTrigger = step.StartTrigger ?? 'StartAfterPrevious';
      step.PackageRequirement = step.PackageRequirement ?? 'LetOctopusDecide';
      step.Properties = step.Properties ?? {};
      for (const action of step.Actions) {
        action.Id = isBlank(action.Id) ? randomUUID() : action.Id;
        action.Slug = slugOf(action.Name);
        for (const key of ['Environments', 'ExcludedEnvironments', 'Channels', 'TenantTags', 'Packages', 'GitDependencies']) action[key] = action[key] ?? [];
        action.IsDisabled = action.IsDisabled ?? false;
        action.IsRequired = action.IsRequired ?? false;
        action.Properties = action.Properties ?? {};
      }
    }
    process.Steps = steps;
    process.Version += 1;
    return process;
  };
  const createSnapshot = (request: Request, projectId?: string): { status: number; body: unknown } => {
    const space = spaceOf(request);
    const body = bodyOf(request);
    const problems: string[] = [];
    if (isBlank(body.Name)) problems.push('Please provide a name for the snapshot.');
    if (isBlank(body.ProjectId)) problems.push('Please provide the project of the snapshot.');
    if (isBlank(body.RunbookId)) problems.push('Please provide the runbook of the snapshot.');
    if (body.SelectedPackages !== undefined && !Array.isArray(body.SelectedPackages)) problems.push('SelectedPackages must be an array.');
    if (problems.length) throw validationError(...problems);
    refuseGitRunbooks(space, String(body.ProjectId));
    const runbook = space.runbooks.find((r) => r.Id === body.RunbookId);
    if (!runbook) throw validationError(`The runbook '${body.RunbookId}' does not exist.`);
    if (runbook.ProjectId !== body.ProjectId || (projectId !== undefined && projectId !== body.ProjectId)) {
      throw validationError(`The runbook '${runbook.Name}' does not belong to the project '${body.ProjectId}'.`);
    }
    const name = String(body.Name).trim();
    if (space.snapshots.some((s) => s.RunbookId === runbook.Id && s.Name.toLowerCase() === name.toLowerCase())) {
      throw validationError(`A snapshot with the name '${name}' already exists for this runbook.`);
    }
    const project = find(space.projects, runbook.ProjectId);
    const process = space.processes.get(runbook.RunbookProcessId)!;
    const variableSet = space.variableSets.get(project.VariableSetId)!;
    const id = nextId(state, 'RunbookSnapshots');
    const frozenProcessId = `${process.Id}-s-${id.split('-')[1]}`;
    space.frozenProcesses.set(frozenProcessId, { ...clone(process), Id: frozenProcessId });
    process.LastSnapshotId = id;
    const snapshot = {
      Id: id,
      SpaceId: space.space.Id,
      ProjectId: project.Id,
      RunbookId: runbook.Id,
      Name: name,
      Notes: body.Notes ?? null,
      Assembled: now(),
      FrozenRunbookProcessId: frozenProcessId,
      FrozenProjectVariableSetId: `${variableSet.Id}-s-${variableSet.Version}-${id.split('-')[1]}`,
      ProjectVariableSetSnapshotId: `${variableSet.Id}-s-${variableSet.Version}-${id.split('-')[1]}`,
      LibraryVariableSetSnapshotIds: [],
      SelectedPackages: body.SelectedPackages ?? [],
      SelectedGitResources: body.SelectedGitResources ?? [],
      GitReference: null,
      Links: { Self: `/api/${space.space.Id}/projects/${project.Id}/runbookSnapshots/${id}` },
    };
    space.snapshots.push(snapshot);
    // api-client sends `?publish=true`; the current docs describe a `Publish` body field. Both publish.
    if (truthyFlag(request.query.get('publish')) || !isBlank(body.Publish) || body.Publish === true) runbook.PublishedRunbookSnapshotId = id;
    return created(snapshot);
  };
  const snapshotsOf = (request: Request, projectId: string, runbookId?: string): Json => {
    const space = spaceOf(request);
    projectOf(space, projectId);
    let items = space.snapshots.filter((s) => s.ProjectId === projectId && (runbookId === undefined || s.RunbookId === runbookId)).reverse();
    const search = request.query.get('searchByName');
    if (search) items = items.filter((s) => s.Name.toLowerCase().includes(search.toLowerCase()));
    return collection('RunbookSnapshot', request.path, items, request.query);
  };
  return [
    route('GET', `${SPACE}/projects/{projectId}/runbooks`, 'RunbookView', (r) => {
      const space = spaceOf(r);
      const project = projectOf(space, r.params.projectId);
      return collection('Runbook', r.path, space.runbooks.filter((b) => b.ProjectId === project.Id), r.query);
    }),
    route('POST', `${SPACE}/projects/{projectId}/runbooks`, 'RunbookEdit', (r) => createRunbook(r, r.params.projectId)),
    route('GET', `${SPACE}/projects/{projectId}/runbooks/{id}`, 'RunbookView', (r) => {
      const runbook = find(spaceOf(r).runbooks, r.params.id);
      if (runbook.ProjectId !== r.params.projectId) throw notFound(r.params.id);
      return runbook;
    }),
    route('PUT', `${SPACE}/projects/{projectId}/runbooks/{id}`, 'RunbookEdit', (r) => {
      const runbook = find(spaceOf(r).runbooks, r.params.id);
      if (runbook.ProjectId !== r.params.projectId) throw notFound(r.params.id);
      return updateRunbook(r, runbook);
    }),
    route('DELETE', `${SPACE}/projects/{projectId}/runbooks/{id}`, 'RunbookEdit', (r) => {
      const space = spaceOf(r);
      const runbook = find(space.runbooks, r.params.id);
      if (space.triggers.some((t) => t.Action?.RunbookId === runbook.Id)) throw validationError(`The runbook '${runbook.Name}' is used by a trigger. Delete the trigger first.`);
      space.runbooks.splice(space.runbooks.indexOf(runbook), 1);
      space.processes.delete(runbook.RunbookProcessId);
      return { body: undefined };
    }),
    route('GET', `${SPACE}/runbooks`, 'RunbookView', (r) => {
      const projectIds = queryList(r.query, 'projectIds');
      return collection('Runbook', r.path, spaceOf(r).runbooks.filter((b) => !projectIds || projectIds.includes(b.ProjectId)), r.query);
    }),
    route('POST', `${SPACE}/runbooks`, 'RunbookEdit', (r) => createRunbook(r, String(bodyOf(r).ProjectId ?? ''))),
    route('GET', `${SPACE}/runbooks/{id}`, 'RunbookView', (r) => find(spaceOf(r).runbooks, r.params.id)),
    route('PUT', `${SPACE}/runbooks/{id}`, 'RunbookEdit', (r) => updateRunbook(r, find(spaceOf(r).runbooks, r.params.id))),

    // runbook processes
    route('GET', `${SPACE}/projects/{projectId}/runbookProcesses/{id}`, 'ProcessView', (r) => processOf(spaceOf(r), r.params.id, r.params.projectId)),
    route('PUT', `${SPACE}/projects/{projectId}/runbookProcesses/{id}`, 'ProcessEdit', (r) => updateProcess(r, processOf(spaceOf(r), r.params.id, r.params.projectId))),
    route('GET', `${SPACE}/projects/{projectId}/runbookProcesses/{id}/runbookSnapshotTemplate`, 'ProcessView', (r) => {
      const space = spaceOf(r);
      const process = processOf(space, r.params.id, r.params.projectId);
      return {
        RunbookProcessId: process.Id,
        RunbookId: process.RunbookId,
        NextNameIncrement: `Snapshot ${randomUUID().replace(/-/g, '').slice(0, 7).toUpperCase()}`,
        Packages: [],
        GitResources: [],
      };
    }),
    route('GET', `${SPACE}/runbookProcesses/{id}`, 'ProcessView', (r) => {
      const space = spaceOf(r);
      return space.processes.get(r.params.id) ?? space.frozenProcesses.get(r.params.id) ?? (() => { throw notFound(r.params.id); })();
    }),
    route('PUT', `${SPACE}/runbookProcesses/{id}`, 'ProcessEdit', (r) => updateProcess(r, processOf(spaceOf(r), r.params.id))),

    // snapshots
    route('POST', `${SPACE}/projects/{projectId}/runbookSnapshots`, 'RunbookEdit', (r) => createSnapshot(r, r.params.projectId)),
    route('POST', `${SPACE}/runbookSnapshots`, 'RunbookEdit', (r) => createSnapshot(r)),
    route('GET', `${SPACE}/projects/{projectId}/runbookSnapshots`, 'RunbookView', (r) => snapshotsOf(r, r.params.projectId)),
    route('GET', `${SPACE}/projects/{projectId}/runbooks/{runbookId}/runbookSnapshots`, 'RunbookView', (r) => snapshotsOf(r, r.params.projectId, r.params.runbookId)),
    route('GET', `${SPACE}/projects/{projectId}/runbookSnapshots/{idOrName}`, 'RunbookView', (r) => {
      const wanted = r.params.idOrName;
      const snapshot = spaceOf(r).snapshots.find((s) => s.ProjectId === r.params.projectId && (s.Id === wanted || s.Name.toLowerCase() === wanted.toLowerCase()));
      if (!snapshot) throw notFound(wanted);
      return snapshot;
    }),
    route('GET', `${SPACE}/runbookSnapshots/{id}`, 'RunbookView', (r) => find(spaceOf(r).snapshots, r.params.id)),
  ];
}
