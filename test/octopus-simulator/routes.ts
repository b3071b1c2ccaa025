// The simulator's route table. Every handler validates what the real server rejects and answers
// with the resource shapes the reference describes.
import { randomUUID } from 'node:crypto';
import { collection, HttpError, notFound, queryList, route, validationError, type Request, type Route } from './http';
import { addEnvironment, addProject, clone, newSpace, nextId, now, slugOf, type Json, type ServerState, type SpaceState } from './store';

const SPACE = '/api/{spaceId}';
const SCHEDULE_FILTERS = new Set([
  'OnceDailySchedule',
  'ContinuousDailySchedule',
  'DaysPerMonthSchedule',
  'CronExpressionSchedule',
  'DailySchedule',
  'DaysPerWeekSchedule',
]);
const STEP_CONDITIONS = new Set(['Success', 'Failure', 'Always', 'Variable']);

function isBlank(value: unknown): boolean {
  return typeof value !== 'string' || value.trim() === '';
}

function bodyOf(request: Request): Json {
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw validationError('A JSON object is required in the request body.');
  return body as Json;
}

function created(body: unknown): { status: number; body: unknown } {
  return { status: 201, body };
}

function truthyFlag(value: string | null): boolean {
  return value !== null && value !== '' && value.toLowerCase() !== 'false';
}

/**
 * A write against an old `Version` of a versioned document: refused as a validation failure (400), not
 * 409. The status is Octopus's (OctopusDeploy/Issues#716, the C# client's factory maps it to a
 * validation exception); the wording is ours [I], and the live suite records the server's own.
 */
export function staleVersion(what: string, sent: unknown, current: number): HttpError {
  return validationError(
    `The ${what} has been modified since you loaded it: you sent version ${String(sent)}, the current version is ${current}. Reload it and save your changes again.`,
  );
}

/** What Octopus answers a database route asked for a resource stored in Git (OctopusDeploy/Issues#9249). */
export const GIT_RESOURCE_ON_DATABASE_ROUTE =
  'Received a request for a version-controlled resource on a non-version control route. To access this resource, include a Git ref in the route.';

export function runbooksAreInGit(project: Json | undefined): boolean {
  return Boolean(project?.IsVersionControlled && project?.PersistenceSettings?.ConversionState?.RunbooksAreInGit);
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

/** Variable types Octopus knows; matched case-insensitively since 2021.3 (OctopusDeploy/Issues#6970). */
const VARIABLE_TYPES = [
  'String',
  'Sensitive',
  'Certificate',
  'AmazonWebServicesAccount',
  'AzureAccount',
  'GoogleCloudAccount',
  'UsernamePasswordAccount',
  'GenericOidcAccount',
  'WorkerPool',
];

export function buildRoutes(state: ServerState): Route[] {
  const spaceOf = (request: Request): SpaceState => {
    const id = request.params.spaceId;
    const space = state.spaces.find((s) => s.space.Id.toLowerCase() === id.toLowerCase());
    if (!space) throw notFound(id);
    return space;
  };
  const find = <T extends Json>(items: T[], id: string): T => {
    const item = items.find((i) => i.Id === id);
    if (!item) throw notFound(id);
    return item;
  };
  const projectOf = (space: SpaceState, id: string): Json => {
    const project = space.projects.find((p) => p.Id === id || p.Slug === id);
    if (!project) throw notFound(id);
    return project;
  };
  /** Runbooks of a project that keeps them in Git are written through Git-ref routes only. */
  const refuseGitRunbooks = (space: SpaceState, projectId: string): void => {
    if (runbooksAreInGit(space.projects.find((p) => p.Id === projectId))) throw validationError(GIT_RESOURCE_ON_DATABASE_ROUTE);
  };

  // ---- action templates ---------------------------------------------------------------------
  const presentTemplate = (template: Json): Json => {
    const copy = clone(template);
    // Sensitive defaults are write-only, like every sensitive value.
    for (const parameter of copy.Parameters ?? []) {
      if (parameter.DisplaySettings?.['Octopus.ControlType'] === 'Sensitive' && parameter.DefaultValue !== null) {
        const hasValue = typeof parameter.DefaultValue === 'string' ? parameter.DefaultValue !== '' : Boolean(parameter.DefaultValue?.HasValue || parameter.DefaultValue?.NewValue);
        parameter.DefaultValue = { HasValue: hasValue };
      }
    }
    return copy;
  };
  const templateFields = (space: SpaceState, body: Json, existing?: Json): Json => {
    const problems: string[] = [];
    if (isBlank(body.Name)) problems.push('Please provide a name for the step template.');
    if (!existing && isBlank(body.ActionType)) problems.push('Please provide an action type for the step template.');
    const name = String(body.Name ?? '').trim();
    if (name && space.actionTemplates.some((t) => t.Id !== existing?.Id && t.Name.toLowerCase() === name.toLowerCase())) {
      problems.push(`A step template with the name '${name}' already exists. Please choose a different name.`);
    }
    if (existing?.CommunityActionTemplateId) problems.push('Only custom templates can be directly updated.');
    const parameters = Array.isArray(body.Parameters) ? body.Parameters : [];
    const seen = new Set<string>();
    for (const parameter of parameters) {
      if (isBlank(parameter?.Name)) problems.push('Every parameter needs a name.');
      else if (seen.has(parameter.Name.toLowerCase())) problems.push(`The parameter name '${parameter.Name}' is used more than once.`);
      else seen.add(parameter.Name.toLowerCase());
    }
    if (body.Properties !== undefined && (typeof body.Properties !== 'object' || Array.isArray(body.Properties))) problems.push('Properties must be an object.');
    if (problems.length) throw validationError(...problems);
    return {
      Name: name,
      Description: body.Description ?? null,
      ActionType: existing ? existing.ActionType : body.ActionType,
      Properties: body.Properties ?? {},
      Parameters: parameters.map((p: Json) => ({
        Id: isBlank(p.Id) ? randomUUID() : p.Id,
        Name: p.Name,
        Label: p.Label ?? '',
        HelpText: p.HelpText ?? '',
        // Keep a sensitive default when the client sends back `{HasValue:true}` without a new value.
        DefaultValue:
          p.DefaultValue && typeof p.DefaultValue === 'object' && p.DefaultValue.NewValue === undefined
            ? (existing?.Parameters.find((e: Json) => e.Name === p.Name)?.DefaultValue ?? null)
            : p.DefaultValue && typeof p.DefaultValue === 'object'
              ? p.DefaultValue.NewValue
              : (p.DefaultValue ?? null),
        DisplaySettings: p.DisplaySettings ?? {},
        Links: {},
      })),
      Packages: Array.isArray(body.Packages) ? body.Packages : [],
      GitDependencies: Array.isArray(body.GitDependencies) ? body.GitDependencies : [],
      StepPackageVersion: body.StepPackageVersion ?? null,
      CommunityActionTemplateId: existing ? existing.CommunityActionTemplateId : (body.CommunityActionTemplateId ?? null),
    };
  };
  const templateLinks = (spaceId: string, id: string): Json => ({
    Self: `/api/${spaceId}/actiontemplates/${id}`,
    Usage: `/api/${spaceId}/actiontemplates/${id}/usage`,
    Logo: `/api/${spaceId}/actiontemplates/${id}/logo`,
    ActionsUpdate: `/api/${spaceId}/actiontemplates/${id}/actionsUpdate`,
    Versions: `/api/${spaceId}/actiontemplates/${id}/versions/{version}`,
  });
  const usagesOf = (space: SpaceState, templateId: string): Json[] => {
    const usages: Json[] = [];
    for (const runbook of space.runbooks) {
      const process = space.processes.get(runbook.RunbookProcessId);
      if (!process) continue;
      const project = space.projects.find((p) => p.Id === runbook.ProjectId);
      for (const step of process.Steps) {
        for (const action of step.Actions) {
          if (action.Properties?.['Octopus.Action.Template.Id'] !== templateId) continue;
          usages.push({
            ActionTemplateId: templateId,
            ActionId: action.Id,
            ActionName: action.Name,
            StepId: step.Id,
            StepName: step.Name,
            ProcessId: process.Id,
            ProcessType: 'Runbook',
            ProjectId: runbook.ProjectId,
            ProjectName: project?.Name,
            ProjectSlug: project?.Slug,
            RunbookId: runbook.Id,
            RunbookName: runbook.Name,
            Version: String(action.Properties['Octopus.Action.Template.Version']),
            Branch: null,
            Release: null,
          });
        }
      }
    }
    return usages;
  };

  // ---- runbooks, processes, snapshots -------------------------------------------------------
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

  // ---- triggers -----------------------------------------------------------------------------
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

  // ---- variables ----------------------------------------------------------------------------
  /** Every action of the project's processes (its runbooks' steps included): what a variable can be scoped to. */
  const projectActions = (space: SpaceState, projectId: string): Json[] =>
    space.runbooks
      .filter((r) => r.ProjectId === projectId)
      .flatMap((r) => (space.processes.get(r.RunbookProcessId)?.Steps ?? []).flatMap((step: Json) => step.Actions ?? []))
      .map((action: Json) => ({ Id: action.Id, Name: action.Name }));
  const presentVariables = (space: SpaceState, set: Json): Json => {
    const copy = clone(set);
    for (const variable of copy.Variables) if (variable.IsSensitive || variable.Type === 'Sensitive') variable.Value = null;
    copy.ScopeValues = {
      Environments: space.environments.map((e) => ({ Id: e.Id, Name: e.Name })),
      Machines: [],
      Actions: projectActions(space, set.OwnerId),
      Roles: [],
      Channels: [],
      TenantTags: [],
      Processes: space.runbooks.filter((r) => r.ProjectId === set.OwnerId).map((r) => ({ ProcessType: 'Runbook', Id: r.Id, Name: r.Name })),
    };
    return copy;
  };

  // ---- tasks --------------------------------------------------------------------------------
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

  const serverStatus = (): Json => ({
    IsDatabaseEncrypted: true,
    IsUpgradeAvailable: false,
    MaximumAvailableVersion: state.version,
    MaximumAvailableVersionCoveredByLicense: state.version,
    MaintenanceExpires: '9999-12-31T23:59:59.999+00:00',
    IsInMaintenanceMode: state.maintenance.IsInMaintenanceMode,
    IsMajorMinorUpgrade: false,
    IsPotentialClone: false,
    Links: { Self: '/api/serverstatus', Health: '/api/serverstatus/health', Timezones: '/api/serverstatus/timezones' },
  });
  const maintenanceConfiguration = (): Json => ({
    Id: 'maintenance',
    ...state.maintenance,
    Links: { Self: '/api/maintenanceconfiguration' },
  });
  const setMaintenance = (request: Request): Json => {
    const body = bodyOf(request);
    if (typeof body.IsInMaintenanceMode !== 'boolean') throw validationError('IsInMaintenanceMode must be true or false.');
    state.maintenance = { IsInMaintenanceMode: body.IsInMaintenanceMode, LastModifiedBy: request.user, LastModifiedOn: now() };
    return maintenanceConfiguration();
  };

  // ---- runs ---------------------------------------------------------------------------------
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

  const routes: Route[] = [
    // root, spaces
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

    // administration
    route('GET', '/api/maintenanceconfiguration', undefined, maintenanceConfiguration),
    route('PUT', '/api/maintenanceconfiguration', 'AdministerSystem', setMaintenance),
    route('PUT', '/api/maintenanceconfiguration/v1', 'AdministerSystem', (r) => ({ Resource: setMaintenance(r) })),
    route('GET', '/api/serverstatus', undefined, serverStatus),
    route('GET', '/api/serverstatus/health', undefined, () => ({
      IsOperatingNormally: true,
      Description: state.maintenance.IsInMaintenanceMode ? 'The server is in maintenance mode.' : 'All good.',
      IsEntireClusterReadOnly: false,
      IsEntireClusterDrainingTasks: false,
      IsCompliantWithLicense: true,
    })),
    route('GET', '/api/serverstatus/timezones', undefined, () => [
      { Id: 'UTC', Name: '(UTC) Coordinated Universal Time' },
      { Id: 'GMT Standard Time', Name: '(UTC+00:00) Dublin, Edinburgh, Lisbon, London' },
      { Id: 'W. Europe Standard Time', Name: '(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna' },
      { Id: 'Eastern Standard Time', Name: '(UTC-05:00) Eastern Time (US & Canada)' },
      { Id: 'AUS Eastern Standard Time', Name: '(UTC+10:00) Canberra, Melbourne, Sydney' },
    ]),

    // tasks
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

    // lookups
    route('GET', `${SPACE}/projectgroups`, 'ProjectGroupView', (r) => collection('ProjectGroup', r.path, spaceOf(r).projectGroups, r.query)),
    route('GET', `${SPACE}/projectgroups/{id}`, 'ProjectGroupView', (r) => find(spaceOf(r).projectGroups, r.params.id)),
    route('GET', `${SPACE}/lifecycles`, 'LifecycleView', (r) => collection('Lifecycle', r.path, spaceOf(r).lifecycles, r.query)),
    route('GET', `${SPACE}/lifecycles/{id}`, 'LifecycleView', (r) => find(spaceOf(r).lifecycles, r.params.id)),
    route('GET', `${SPACE}/environments`, 'EnvironmentView', (r) => collection('Environment', r.path, spaceOf(r).environments, r.query)),
    route('GET', `${SPACE}/environments/{id}`, 'EnvironmentView', (r) => find(spaceOf(r).environments, r.params.id)),
    route('POST', `${SPACE}/environments`, 'EnvironmentCreate', (r) => {
      const space = spaceOf(r);
      const name = String(bodyOf(r).Name ?? '').trim();
      if (!name) throw validationError('Please provide a name for the environment.');
      if (space.environments.some((e) => e.Name.toLowerCase() === name.toLowerCase())) throw validationError(`An environment with the name '${name}' already exists.`);
      return created(addEnvironment(state, space, name));
    }),

    // projects
    route('GET', `${SPACE}/projects`, 'ProjectView', (r) => collection('Project', r.path, spaceOf(r).projects, r.query)),
    route('GET', `${SPACE}/projects/{id}`, 'ProjectView', (r) => projectOf(spaceOf(r), r.params.id)),
    route('POST', `${SPACE}/projects`, 'ProjectCreate', (r) => {
      const space = spaceOf(r);
      const body = bodyOf(r);
      const problems: string[] = [];
      const name = String(body.Name ?? '').trim();
      if (!name) problems.push('Please provide a name for the project.');
      else if (space.projects.some((p) => p.Name.toLowerCase() === name.toLowerCase())) problems.push(`A project with the name '${name}' already exists. Please choose a different name.`);
      if (!space.projectGroups.some((g) => g.Id === body.ProjectGroupId)) problems.push(`The project group '${body.ProjectGroupId ?? ''}' does not exist.`);
      if (!space.lifecycles.some((l) => l.Id === body.LifecycleId)) problems.push(`The lifecycle '${body.LifecycleId ?? ''}' does not exist.`);
      if (problems.length) throw validationError(...problems);
      const project = addProject(state, space, { Name: name, Description: body.Description ?? '', ProjectGroupId: body.ProjectGroupId, LifecycleId: body.LifecycleId });
      return created(project);
    }),
    route('PUT', `${SPACE}/projects/{id}`, 'ProjectEdit', (r) => {
      const space = spaceOf(r);
      const project = projectOf(space, r.params.id);
      const body = bodyOf(r);
      const name = String(body.Name ?? '').trim();
      if (!name) throw validationError('Please provide a name for the project.');
      if (space.projects.some((p) => p.Id !== project.Id && p.Name.toLowerCase() === name.toLowerCase())) throw validationError(`A project with the name '${name}' already exists. Please choose a different name.`);
      Object.assign(project, { Name: name, Description: body.Description ?? project.Description, IsDisabled: body.IsDisabled ?? project.IsDisabled });
      return project;
    }),

    // variables
    route('GET', `${SPACE}/variables/{id}`, 'VariableView', (r) => {
      const space = spaceOf(r);
      const set = space.variableSets.get(r.params.id);
      if (!set) throw notFound(r.params.id);
      return presentVariables(space, set);
    }),
    route('PUT', `${SPACE}/variables/{id}`, 'VariableEdit', (r) => {
      const space = spaceOf(r);
      const set = space.variableSets.get(r.params.id);
      if (!set) throw notFound(r.params.id);
      const body = bodyOf(r);
      if (body.Version !== set.Version) throw staleVersion('variable set', body.Version, set.Version);
      const problems: string[] = [];
      const variables: Json[] = Array.isArray(body.Variables) ? clone(body.Variables) : [];
      const keys = new Set<string>();
      const actions = new Set(projectActions(space, set.OwnerId).map((a) => a.Id));
      for (const variable of variables) {
        // No Type: Octopus fails with a NullReferenceException, a 500 (OctopusDeploy/Issues#8817).
        if (variable.Type === undefined || variable.Type === null) throw new HttpError(500, 'Object reference not set to an instance of an object.');
        const type = VARIABLE_TYPES.find((t) => t.toLowerCase() === String(variable.Type).toLowerCase());
        if (!type) problems.push(`Invalid Variable Type ${String(variable.Type)}.`);
        else variable.Type = type;
        if (isBlank(variable.Name)) problems.push('Every variable needs a name.');
        const key = `${String(variable.Name).toLowerCase()}|${JSON.stringify(variable.Scope ?? {})}`;
        if (keys.has(key)) problems.push(`The variable '${variable.Name}' is defined more than once with the same scope.`);
        keys.add(key);
        for (const environmentId of variable.Scope?.Environment ?? []) {
          if (!space.environments.some((e) => e.Id === environmentId)) problems.push(`The environment '${environmentId}' in the scope of '${variable.Name}' does not exist.`);
        }
        for (const actionId of variable.Scope?.Action ?? []) {
          if (!actions.has(actionId)) problems.push(`The step '${actionId}' in the scope of '${variable.Name}' does not exist in this project.`);
        }
      }
      if (problems.length) throw validationError(...problems);
      const existingIds = new Set<string>(set.Variables.map((v: Json) => String(v.Id)));
      for (const variable of variables) {
        const known = !isBlank(variable.Id) && existingIds.has(variable.Id);
        variable.Id = isBlank(variable.Id) ? randomUUID() : variable.Id;
        variable.IsSensitive = variable.Type === 'Sensitive';
        variable.Scope = variable.Scope ?? {};
        variable.IsEditable = variable.IsEditable ?? true;
        variable.Prompt = variable.Prompt ?? null;
        variable.Description = variable.Description ?? null;
        if (variable.IsSensitive) {
          // The Id decides, as on a real server (measured on 2026.x, go-octopusdeploy#449/#450): an existing
          // variable's Id with a null or empty Value keeps the secret; without the Id the secret is replaced
          // by what was sent, so an empty or null Value wipes it.
          const sent = variable.Value === null || variable.Value === undefined ? '' : String(variable.Value);
          if (!(known && sent === '' && space.sensitiveValues.has(variable.Id))) space.sensitiveValues.set(variable.Id, sent);
          variable.Value = null;
        }
      }
      for (const id of existingIds) if (!variables.some((v) => v.Id === id)) space.sensitiveValues.delete(id);
      set.Variables = variables;
      set.Version += 1;
      return presentVariables(space, set);
    }),

    // action templates
    route('GET', `${SPACE}/actiontemplates`, 'ActionTemplateView', (r) => collection('ActionTemplate', r.path, spaceOf(r).actionTemplates.map(presentTemplate), r.query)),
    route('GET', `${SPACE}/actiontemplates/all`, 'ActionTemplateView', (r) => spaceOf(r).actionTemplates.map(presentTemplate)),
    route('GET', `${SPACE}/actiontemplates/categories`, 'ActionTemplateView', () => []),
    route('POST', `${SPACE}/actiontemplates`, 'ActionTemplateCreate', (r) => {
      const space = spaceOf(r);
      const fields = templateFields(space, bodyOf(r));
      const id = nextId(state, 'ActionTemplates');
      const template = { Id: id, SpaceId: space.space.Id, Version: 0, ...fields, LastModifiedBy: r.user, LastModifiedOn: now(), Links: templateLinks(space.space.Id, id) };
      space.actionTemplates.push(template);
      space.templateHistory.set(id, [{ version: 0, body: clone(template) }]);
      return created(presentTemplate(template));
    }),
    route('GET', `${SPACE}/actiontemplates/{id}`, 'ActionTemplateView', (r) => presentTemplate(find(spaceOf(r).actionTemplates, r.params.id))),
    route('PUT', `${SPACE}/actiontemplates/{id}`, 'ActionTemplateEdit', (r) => {
      const space = spaceOf(r);
      const template = find(space.actionTemplates, r.params.id);
      const fields = templateFields(space, bodyOf(r), template);
      // Every save is a new version, changed or not (assumed, see the reference): clients must diff first.
      Object.assign(template, fields, { Version: template.Version + 1, LastModifiedBy: r.user, LastModifiedOn: now() });
      space.templateHistory.get(template.Id)!.push({ version: template.Version, body: clone(template) });
      return presentTemplate(template);
    }),
    route('DELETE', `${SPACE}/actiontemplates/{id}`, 'ActionTemplateDelete', (r) => {
      const space = spaceOf(r);
      const template = find(space.actionTemplates, r.params.id);
      const usages = usagesOf(space, template.Id);
      if (usages.length > 0) throw validationError(`The step template '${template.Name}' is in use by ${usages.length} step(s) and cannot be deleted.`);
      space.actionTemplates.splice(space.actionTemplates.indexOf(template), 1);
      space.templateHistory.delete(template.Id);
      return { body: undefined };
    }),
    route('GET', `${SPACE}/actiontemplates/{id}/versions`, 'ActionTemplateView', (r) => {
      const space = spaceOf(r);
      find(space.actionTemplates, r.params.id);
      return space.templateHistory.get(r.params.id)!.map((v) => presentTemplate(v.body));
    }),
    route('GET', `${SPACE}/actiontemplates/{id}/versions/{version}`, 'ActionTemplateView', (r) => {
      const space = spaceOf(r);
      find(space.actionTemplates, r.params.id);
      const version = space.templateHistory.get(r.params.id)!.find((v) => String(v.version) === r.params.version);
      if (!version) throw notFound(`${r.params.id} version ${r.params.version}`);
      return presentTemplate(version.body);
    }),
    route('GET', `${SPACE}/actiontemplates/{id}/usage`, 'ActionTemplateView', (r) => {
      const space = spaceOf(r);
      find(space.actionTemplates, r.params.id);
      return usagesOf(space, r.params.id);
    }),
    route('POST', `${SPACE}/actiontemplates/{id}/actionsUpdate`, 'ProcessEdit', (r) => {
      const space = spaceOf(r);
      const template = find(space.actionTemplates, r.params.id);
      const body = bodyOf(r);
      const target = space.templateHistory.get(template.Id)!.find((v) => v.version === Number(body.Version));
      if (!target) throw validationError(`The step template '${template.Name}' has no version '${body.Version}'.`);
      const results: Json[] = [];
      for (const entry of Array.isArray(body.ActionsToUpdate) ? body.ActionsToUpdate : []) {
        const process = space.processes.get(entry.ProcessId);
        if (!process) throw validationError(`The process '${entry.ProcessId}' does not exist.`);
        for (const actionId of entry.ActionIds ?? []) {
          const action = process.Steps.flatMap((s: Json) => s.Actions).find((a: Json) => a.Id === actionId);
          if (!action) throw validationError(`The action '${actionId}' does not exist in '${entry.ProcessId}'.`);
          const missing: string[] = [];
          for (const parameter of target.body.Parameters) {
            if (action.Properties[parameter.Name] !== undefined) continue;
            const fallback = body.DefaultPropertyValues?.[parameter.Name] ?? parameter.DefaultValue;
            if (fallback === null || fallback === undefined) missing.push(parameter.Name);
            else action.Properties[parameter.Name] = fallback;
          }
          Object.assign(action.Properties, target.body.Properties, { 'Octopus.Action.Template.Version': String(target.version) });
          results.push({
            Id: actionId,
            Outcome: missing.length ? 'DefaultParamterValueMissing' : 'Success',
            ManualMergeRequiredReasonsByPropertyName: {},
            NamesOfNewParametersMissingDefaultValue: missing,
            RemovedPackageUsages: [],
          });
        }
        process.Version += 1;
      }
      return results;
    }),

    // runbooks
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

    // triggers
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

    // runs
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
  return routes;
}
