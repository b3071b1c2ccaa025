// The Octopus resources the publisher reads and writes: api-client repositories where it has them,
// its generic `request`/`doCreate`/`doUpdate` for the routes it lacks (action templates, variables,
// triggers, one snapshot). Each call's failure is explained by describeOctopusError.
import {
  BasicRepository,
  EnvironmentRepository,
  LifecycleRepository,
  ProjectGroupRepository,
  ProjectRepository,
  RunbookProcessRepository,
  RunbookRepository,
  RunbookSnapshotRepository,
  SpaceRepository,
  resolveSpaceId,
  type NewProject,
  type NewRunbook,
  type Project,
  type Runbook,
  type RunbookProcess,
} from '@octopusdeploy/api-client';
import { describeOctopusError, octopusCall, OctopusApiError, type OctopusConnection } from '../../steps/shared/octopus/connection';

const TAKE_ALL = BasicRepository.TakeAll;

export interface Named {
  Id: string;
  Name: string;
}

export interface ServerTemplate extends Named {
  Version: number;
  SpaceId: string;
  ActionType: string;
  Description?: string;
  Properties: Record<string, unknown>;
  Parameters: Array<{ Id: string; Name: string; DefaultValue?: unknown; DisplaySettings?: Record<string, string> }>;
  Packages?: unknown[];
}

export interface Variable {
  Id?: string;
  Name: string;
  Value: string | null;
  Description?: string | null;
  Type: string;
  IsSensitive: boolean;
  Scope: Record<string, unknown>;
  [field: string]: unknown;
}

export interface VariableSet {
  Id: string;
  OwnerId: string;
  Version: number;
  Variables: Variable[];
  [field: string]: unknown;
}

export interface ProcessStep {
  Id?: string;
  Name: string;
  Condition?: string;
  StartTrigger?: string;
  PackageRequirement?: string;
  Properties?: Record<string, unknown>;
  Actions: ProcessAction[];
  [field: string]: unknown;
}

export interface ProcessAction {
  Id?: string;
  Name: string;
  ActionType: string;
  IsDisabled?: boolean;
  IsRequired?: boolean;
  Environments?: string[];
  ExcludedEnvironments?: string[];
  Channels?: string[];
  TenantTags?: string[];
  Packages?: unknown[];
  Properties: Record<string, unknown>;
  [field: string]: unknown;
}

export interface Snapshot extends Named {
  RunbookId: string;
  Notes?: string | null;
}

export interface Trigger extends Named {
  ProjectId: string;
  SpaceId?: string;
  Description?: string | null;
  IsDisabled?: boolean;
  Filter: Record<string, unknown>;
  Action: Record<string, unknown>;
  [field: string]: unknown;
}

interface Collection<T> {
  Items: T[];
  TotalResults: number;
}

/** One publisher session against one space. */
export class OctopusSpace {
  constructor(
    readonly connection: OctopusConnection,
    readonly spaceName: string,
    readonly spaceId: string,
    private readonly apiKeySource: string,
  ) {}

  private call<T>(doing: string, run: () => Promise<T>): Promise<T> {
    return octopusCall(this.connection, doing, run, this.apiKeySource);
  }

  private get client() {
    return this.connection.client;
  }

  /** Finds the space by exact name (as the api-client resolves it); fails listing the spaces the key can see. */
  static async open(connection: OctopusConnection, spaceName: string, apiKeySource: string): Promise<OctopusSpace> {
    let spaceId: string;
    try {
      spaceId = await resolveSpaceId(connection.client, spaceName);
    } catch (error) {
      // 401, 403 and network failures are explained as such; an unknown name lists the alternatives.
      if ((error as { StatusCode?: number }).StatusCode || !/space name|No spaces exist/i.test(String((error as Error)?.message))) {
        throw describeOctopusError(error, connection.serverUrl, `looking up the space "${spaceName}"`, apiKeySource);
      }
      const all = await octopusCall(connection, 'listing spaces', () => new SpaceRepository(connection.client).list({ take: TAKE_ALL }), apiKeySource);
      const names = all.Items.map((s) => `"${s.Name}"`).join(', ');
      throw new OctopusApiError(
        `There is no space named "${spaceName}" on ${connection.serverUrl} (names are case-sensitive). ` +
          (names ? `Spaces this API key can see: ${names}. Pass one of them with --space.` : "This API key can see no spaces: check the user's team memberships."),
      );
    }
    return new OctopusSpace(connection, spaceName, spaceId, apiKeySource);
  }

  environments(): Promise<Named[]> {
    const repository = new EnvironmentRepository(this.client, this.spaceName);
    return this.call('listing environments', async () => (await repository.list({ take: TAKE_ALL })).Items);
  }

  projectGroups(): Promise<Named[]> {
    const repository = new ProjectGroupRepository(this.client, this.spaceName);
    return this.call('listing project groups', async () => (await repository.list({ take: TAKE_ALL })).Items);
  }

  lifecycles(): Promise<Named[]> {
    const repository = new LifecycleRepository(this.client, this.spaceName);
    return this.call('listing lifecycles', async () => (await repository.list({ take: TAKE_ALL })).Items);
  }

  async findProject(name: string): Promise<Project | undefined> {
    const repository = new ProjectRepository(this.client, this.spaceName);
    const found = await this.call(`looking up the project "${name}"`, () => repository.list({ partialName: name, take: TAKE_ALL }));
    return found.Items.find((p) => p.Name.toLowerCase() === name.toLowerCase());
  }

  createProject(project: { Name: string; Description: string; ProjectGroupId: string; LifecycleId: string }): Promise<Project> {
    const repository = new ProjectRepository(this.client, this.spaceName);
    return this.call(`creating the project "${project.Name}"`, () => repository.create(project as unknown as NewProject));
  }

  templates(namePrefix: string): Promise<ServerTemplate[]> {
    return this.call('listing step templates', async () => {
      const found = await this.client.request<Collection<ServerTemplate>>('~/api/{spaceId}/actiontemplates{?skip,take,partialName}', {
        spaceName: this.spaceName,
        partialName: namePrefix,
        take: TAKE_ALL,
      });
      return found.Items;
    });
  }

  createTemplate(body: Record<string, unknown>): Promise<ServerTemplate> {
    return this.call(`creating the step template "${String(body.Name)}"`, () =>
      this.client.doCreate<ServerTemplate>('~/api/{spaceId}/actiontemplates', { ...body, SpaceId: this.spaceId }, { spaceName: this.spaceName }),
    );
  }

  updateTemplate(existing: ServerTemplate, body: Record<string, unknown>): Promise<ServerTemplate> {
    // ActionType is write-on-create and Version server-assigned: neither is sent.
    const { ActionType: _actionType, ...fields } = body;
    return this.call(`updating the step template "${existing.Name}"`, () =>
      this.client.doUpdate<ServerTemplate>(
        '~/api/{spaceId}/actiontemplates/{id}',
        { ...fields, Id: existing.Id, SpaceId: this.spaceId },
        { spaceName: this.spaceName, id: existing.Id },
      ),
    );
  }

  variables(project: Project): Promise<VariableSet> {
    return this.call(`reading the variables of "${project.Name}"`, () =>
      this.client.request<VariableSet>('~/api/{spaceId}/variables/{id}', { spaceName: this.spaceName, id: project.VariableSetId }),
    );
  }

  updateVariables(project: Project, set: VariableSet): Promise<VariableSet> {
    return this.call(`adding variables to "${project.Name}"`, () =>
      this.client.doUpdate<VariableSet>('~/api/{spaceId}/variables/{id}', set, { spaceName: this.spaceName, id: set.Id }),
    );
  }

  runbooks(project: Project): Promise<Runbook[]> {
    const repository = new RunbookRepository(this.client, this.spaceName, project);
    return this.call(`listing the runbooks of "${project.Name}"`, async () => (await repository.list({ take: TAKE_ALL })).Items);
  }

  createRunbook(project: Project, runbook: Record<string, unknown>): Promise<Runbook> {
    const repository = new RunbookRepository(this.client, this.spaceName, project);
    return this.call(`creating the runbook "${String(runbook.Name)}"`, () => repository.create(runbook as unknown as NewRunbook));
  }

  updateRunbook(project: Project, runbook: Runbook): Promise<Runbook> {
    const repository = new RunbookRepository(this.client, this.spaceName, project);
    return this.call(`updating the runbook "${runbook.Name}"`, () => repository.modify(runbook));
  }

  process(project: Project, runbook: Runbook): Promise<RunbookProcess> {
    const repository = new RunbookProcessRepository(this.client, this.spaceName, project);
    return this.call(`reading the process of "${runbook.Name}"`, () => repository.get(runbook));
  }

  updateProcess(project: Project, runbook: Runbook, process: RunbookProcess): Promise<RunbookProcess> {
    const repository = new RunbookProcessRepository(this.client, this.spaceName, project);
    return this.call(`updating the process of "${runbook.Name}"`, () => repository.update(process));
  }

  snapshot(project: Project, id: string): Promise<Snapshot> {
    return this.call(`reading the published snapshot ${id}`, () =>
      this.client.request<Snapshot>('~/api/{spaceId}/projects/{projectId}/runbookSnapshots/{id}', { spaceName: this.spaceName, projectId: project.Id, id }),
    );
  }

  createAndPublishSnapshot(project: Project, runbook: Runbook, name: string, notes: string): Promise<Snapshot> {
    const repository = new RunbookSnapshotRepository(this.client, this.spaceName, project);
    return this.call(`creating and publishing a snapshot of "${runbook.Name}"`, async () => (await repository.create(runbook, name, true, notes)) as unknown as Snapshot);
  }

  triggers(project: Project): Promise<Trigger[]> {
    return this.call(`listing the triggers of "${project.Name}"`, async () => {
      const found = await this.client.request<Collection<Trigger>>('~/api/{spaceId}/projects/{projectId}/triggers{?skip,take}', {
        spaceName: this.spaceName,
        projectId: project.Id,
        take: TAKE_ALL,
      });
      return found.Items;
    });
  }

  createTrigger(trigger: Record<string, unknown>): Promise<Trigger> {
    return this.call(`creating the trigger "${String(trigger.Name)}"`, () =>
      this.client.doCreate<Trigger>('~/api/{spaceId}/projecttriggers', { ...trigger, SpaceId: this.spaceId }, { spaceName: this.spaceName }),
    );
  }

  updateTrigger(trigger: Trigger): Promise<Trigger> {
    return this.call(`updating the trigger "${trigger.Name}"`, () =>
      this.client.doUpdate<Trigger>('~/api/{spaceId}/projecttriggers/{id}', trigger, { spaceName: this.spaceName, id: trigger.Id }),
    );
  }
}
