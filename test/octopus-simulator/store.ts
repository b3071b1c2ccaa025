// The simulator's in-memory Octopus: the resources the publisher and the steps touch, seeded
// with what a fresh Octopus Server has (a Default space, project group, lifecycle), with the
// ID shapes Octopus uses (`Projects-1`, `RunbookProcess-Runbooks-1`, `variableset-Projects-1`).
import { randomUUID } from 'node:crypto';

export type Json = Record<string, any>;

export interface TemplateVersion {
  version: number;
  body: Json;
}

export interface SpaceState {
  space: Json;
  projectGroups: Json[];
  lifecycles: Json[];
  environments: Json[];
  projects: Json[];
  variableSets: Map<string, Json>;
  /** Values of sensitive variables, by variable Id: never returned by a GET. */
  sensitiveValues: Map<string, string>;
  actionTemplates: Json[];
  templateHistory: Map<string, TemplateVersion[]>;
  runbooks: Json[];
  processes: Map<string, Json>;
  snapshots: Json[];
  frozenProcesses: Map<string, Json>;
  triggers: Json[];
  runbookRuns: Json[];
}

export interface ServerState {
  version: string;
  installationId: string;
  spaces: SpaceState[];
  tasks: Json[];
  maintenance: { IsInMaintenanceMode: boolean; LastModifiedBy: string; LastModifiedOn: string };
  /** The users API keys belong to, by username (`GET /api/users/me`); unknown ones are people, not service accounts. */
  users: Map<string, { Id: string; IsService: boolean }>;
  counters: Map<string, number>;
}

export const SERVER_VERSION = '2025.3.12345';

export function nextId(state: ServerState, prefix: string): string {
  const n = (state.counters.get(prefix) ?? 0) + 1;
  state.counters.set(prefix, n);
  return `${prefix}-${n}`;
}

export function slugOf(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

export function now(): string {
  return new Date().toISOString();
}

export function newSpace(state: ServerState, name: string, isDefault: boolean): SpaceState {
  const id = nextId(state, 'Spaces');
  const space: SpaceState = {
    space: {
      Id: id,
      Name: name,
      Slug: slugOf(name),
      Description: null,
      IsDefault: isDefault,
      IsPrivate: false,
      TaskQueueStopped: false,
      SpaceManagersTeams: [],
      SpaceManagersTeamMembers: [],
      Links: { Self: `/api/spaces/${id}`, Web: `/app#/spaces/${id}` },
    },
    projectGroups: [],
    lifecycles: [],
    environments: [],
    projects: [],
    variableSets: new Map(),
    sensitiveValues: new Map(),
    actionTemplates: [],
    templateHistory: new Map(),
    runbooks: [],
    processes: new Map(),
    snapshots: [],
    frozenProcesses: new Map(),
    triggers: [],
    runbookRuns: [],
  };
  const groupId = nextId(state, 'ProjectGroups');
  space.projectGroups.push({
    Id: groupId,
    Name: 'Default Project Group',
    Slug: 'default-project-group',
    Description: null,
    EnvironmentIds: [],
    RetentionPolicyId: null,
    SpaceId: id,
    Links: { Self: `/api/${id}/projectgroups/${groupId}` },
  });
  const lifecycleId = nextId(state, 'Lifecycles');
  space.lifecycles.push({
    Id: lifecycleId,
    Name: 'Default Lifecycle',
    Slug: 'default-lifecycle',
    Description: null,
    SpaceId: id,
    Phases: [],
    ReleaseRetentionPolicy: { QuantityToKeep: 30, ShouldKeepForever: false, Unit: 'Days' },
    TentacleRetentionPolicy: { QuantityToKeep: 30, ShouldKeepForever: false, Unit: 'Days' },
    Links: { Self: `/api/${id}/lifecycles/${lifecycleId}` },
  });
  state.spaces.push(space);
  return space;
}

export function addEnvironment(state: ServerState, space: SpaceState, name: string): Json {
  const id = nextId(state, 'Environments');
  const environment = {
    Id: id,
    Name: name,
    Slug: slugOf(name),
    Description: '',
    SortOrder: space.environments.length,
    UseGuidedFailure: false,
    AllowDynamicInfrastructure: false,
    SpaceId: space.space.Id,
    ExtensionSettings: [],
    Links: { Self: `/api/${space.space.Id}/environments/${id}` },
  };
  space.environments.push(environment);
  return environment;
}

/** Where a Config-as-Code project keeps what (`PersistenceSettings.ConversionState`). */
export interface VersionControl {
  url?: string;
  runbooksInGit: boolean;
  variablesInGit?: boolean;
}

export function addProject(
  state: ServerState,
  space: SpaceState,
  fields: { Name: string; Description?: string; ProjectGroupId: string; LifecycleId: string },
  versionControl?: VersionControl,
): Json {
  const id = nextId(state, 'Projects');
  const variableSetId = `variableset-${id}`;
  space.variableSets.set(variableSetId, { Id: variableSetId, OwnerId: id, SpaceId: space.space.Id, Version: 0, Variables: [], Links: { Self: `/api/${space.space.Id}/variables/${variableSetId}` } });
  // A version-controlled project's settings in the shape of OctopusClients' GitPersistenceSettingsResource
  // (ConversionState.RunbooksAreInGit: OctopusClients#867).
  const persistence = versionControl
    ? {
        Type: 'VersionControlled',
        Url: versionControl.url ?? 'https://git.example.com/octopus/dr.git',
        DefaultBranch: 'main',
        ProtectedBranchNamePatterns: [],
        BasePath: '.octopus',
        Credentials: { Type: 'Anonymous' },
        ConversionState: { VariablesAreInGit: versionControl.variablesInGit ?? true, RunbooksAreInGit: versionControl.runbooksInGit },
      }
    : { Type: 'Database' };
  const project = {
    Id: id,
    Name: fields.Name,
    Slug: slugOf(fields.Name),
    SpaceId: space.space.Id,
    Description: fields.Description ?? '',
    ProjectGroupId: fields.ProjectGroupId,
    LifecycleId: fields.LifecycleId,
    IsDisabled: false,
    VariableSetId: variableSetId,
    DeploymentProcessId: `deploymentprocess-${id}`,
    TenantedDeploymentMode: 'Untenanted',
    IsVersionControlled: Boolean(versionControl),
    PersistenceSettings: persistence,
    IncludedLibraryVariableSetIds: [],
    DiscreteChannelRelease: false,
    AutoCreateRelease: false,
    Links: {
      Self: `/api/${space.space.Id}/projects/${id}`,
      Variables: `/api/${space.space.Id}/variables/${variableSetId}`,
      Runbooks: `/api/${space.space.Id}/projects/${id}/runbooks{?skip,take,partialName}`,
    },
  };
  space.projects.push(project);
  return project;
}

export interface SeedOptions {
  version?: string;
  /** Spaces to create besides Default (Spaces-1 is always "Default"). */
  extraSpaces?: string[];
  /** Environments in the Default space. */
  environments?: string[];
}

export function createState(options: SeedOptions = {}): ServerState {
  const state: ServerState = {
    version: options.version ?? SERVER_VERSION,
    installationId: randomUUID(),
    spaces: [],
    tasks: [],
    maintenance: { IsInMaintenanceMode: false, LastModifiedBy: 'system', LastModifiedOn: now() },
    users: new Map(),
    counters: new Map(),
  };
  const defaultSpace = newSpace(state, 'Default', true);
  for (const name of options.environments ?? ['Development', 'Production']) addEnvironment(state, defaultSpace, name);
  for (const name of options.extraSpaces ?? []) newSpace(state, name, false);
  return state;
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}
