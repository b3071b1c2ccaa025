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
import { describeOctopusError, octopusCall, OctopusApiError, type OctopusConnection } from '../../steps/engines/octopus';

const TAKE_ALL = BasicRepository.TakeAll;

export interface Named {
  Id: string;
  Name: string;
}

export interface ServerTemplate extends Named {
  Version: number;
  /** Set when the template is linked to the Community Library; Octopus then refuses direct updates. */
  CommunityActionTemplateId?: string | null;
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

/** A time zone the server's schedules accept (`GET /api/serverstatus/timezones`). */
export interface ServerTimezone {
  Id: string;
  Name: string;
}

/** Octopus's answer to a direct update of a template linked to the Community Library (2020.5 swagger, 400). */
export const LINKED_TEMPLATE_ANSWER = /Only custom templates can be directly updated/i;

/** What to do about a template linked to the Community Library. */
export function linkedTemplateMessage(name: string): string {
  return (
    `The step template "${name}" in this space is linked to the Octopus Community Library, and Octopus refuses direct updates ` +
    `of linked templates ("Only custom templates can be directly updated"). Either take the Library's version in Octopus ` +
    `(Deploy > Step Templates > "${name}" offers its update) if that is the octopus-dr version you want, and publish again; or, to ` +
    `publish this build's own version, delete the linked template in Octopus (it refuses while steps use it: the template's Usage ` +
    `tab lists them; remove those steps, or the DR runbooks, which the next publish recreates) and publish again.`
  );
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { StatusCode?: unknown })?.StatusCode;
  return typeof status === 'number' ? status : undefined;
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A write the server refused as too large (413): an administrator capped request bodies with
 * webMaxRequestBodySizeInBytes (Octopus 2026.1+). Says which setting and what size it needs.
 */
export function requestTooLargeMessage(doing: string, bodyBytes: number, serverUrl: string): string {
  return (
    `The Octopus Server at ${serverUrl} refused the request while ${doing} as too large (413 Payload Too Large): its body is ` +
    `${bodyBytes} bytes (${mebibytes(bodyBytes)}). An administrator has capped request bodies with the server setting ` +
    `webMaxRequestBodySizeInBytes (Octopus 2026.1 and later; a reverse proxy in front of Octopus can impose its own cap, e.g. IIS ` +
    `maxAllowedContentLength or nginx client_max_body_size). Raise the cap to at least ${bodyBytes} bytes (octopus-dr's largest ` +
    `request, a runbook process embedding its step programs, is about 2 MiB; 4194304 leaves room), then publish again.`
  );
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

  /** A write with a body: a 413 is explained with the body's size and the setting that capped it. */
  private write<T>(doing: string, body: unknown, run: () => Promise<T>): Promise<T> {
    return this.call(doing, () =>
      run().catch((error: unknown) => {
        if (statusOf(error) === 413) {
          throw new OctopusApiError(requestTooLargeMessage(doing, Buffer.byteLength(JSON.stringify(body)), this.connection.serverUrl), 413);
        }
        throw error;
      }),
    );
  }

  /** The time zones the server accepts for schedules; undefined when the server does not list them. */
  async timezones(): Promise<ServerTimezone[] | undefined> {
    try {
      return await this.call('listing the time zones', () => this.client.get<ServerTimezone[]>('~/api/serverstatus/timezones'));
    } catch (error) {
      if (error instanceof OctopusApiError && (error.statusCode === 404 || error.statusCode === 405)) return undefined;
      throw error;
    }
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
    const sent = { ...body, SpaceId: this.spaceId };
    return this.write(`creating the step template "${String(body.Name)}"`, sent, () =>
      this.client.doCreate<ServerTemplate>('~/api/{spaceId}/actiontemplates', sent, { spaceName: this.spaceName }),
    );
  }

  async updateTemplate(existing: ServerTemplate, body: Record<string, unknown>): Promise<ServerTemplate> {
    // ActionType is write-on-create and Version server-assigned: neither is sent.
    const { ActionType: _actionType, ...fields } = body;
    const sent = { ...fields, Id: existing.Id, SpaceId: this.spaceId };
    try {
      return await this.write(`updating the step template "${existing.Name}"`, sent, () =>
        this.client.doUpdate<ServerTemplate>('~/api/{spaceId}/actiontemplates/{id}', sent, { spaceName: this.spaceName, id: existing.Id }),
      );
    } catch (error) {
      if (error instanceof OctopusApiError && error.statusCode === 400 && LINKED_TEMPLATE_ANSWER.test(error.message)) {
        throw new OctopusApiError(linkedTemplateMessage(existing.Name), 400);
      }
      throw error;
    }
  }

  variables(project: Project): Promise<VariableSet> {
    return this.call(`reading the variables of "${project.Name}"`, () =>
      this.client.request<VariableSet>('~/api/{spaceId}/variables/{id}', { spaceName: this.spaceName, id: project.VariableSetId }),
    );
  }

  updateVariables(project: Project, set: VariableSet): Promise<VariableSet> {
    return this.write(`adding variables to "${project.Name}"`, set, () =>
      this.client.doUpdate<VariableSet>('~/api/{spaceId}/variables/{id}', set, { spaceName: this.spaceName, id: set.Id }),
    );
  }

  runbooks(project: Project): Promise<Runbook[]> {
    const repository = new RunbookRepository(this.client, this.spaceName, project);
    return this.call(`listing the runbooks of "${project.Name}"`, async () => (await repository.list({ take: TAKE_ALL })).Items);
  }

  createRunbook(project: Project, runbook: Record<string, unknown>): Promise<Runbook> {
    const repository = new RunbookRepository(this.client, this.spaceName, project);
    return this.write(`creating the runbook "${String(runbook.Name)}"`, runbook, () => repository.create(runbook as unknown as NewRunbook));
  }

  updateRunbook(project: Project, runbook: Runbook): Promise<Runbook> {
    const repository = new RunbookRepository(this.client, this.spaceName, project);
    return this.write(`updating the runbook "${runbook.Name}"`, runbook, () => repository.modify(runbook));
  }

  process(project: Project, runbook: Runbook): Promise<RunbookProcess> {
    const repository = new RunbookProcessRepository(this.client, this.spaceName, project);
    return this.call(`reading the process of "${runbook.Name}"`, () => repository.get(runbook));
  }

  updateProcess(project: Project, runbook: Runbook, process: RunbookProcess): Promise<RunbookProcess> {
    const repository = new RunbookProcessRepository(this.client, this.spaceName, project);
    return this.write(`updating the process of "${runbook.Name}"`, process, () => repository.update(process));
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
