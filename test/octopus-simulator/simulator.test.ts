// The Octopus API simulator driven by the real @octopusdeploy/api-client over a socket: routes,
// shapes, status codes and error bodies as the reference describes them, and what it refuses.
import {
  Client,
  ProjectRepository,
  RunbookProcessRepository,
  RunbookRepository,
  RunbookRunRepository,
  RunbookSnapshotRepository,
  SpaceServerTaskRepository,
  type NewProject,
  type NewRunbook,
  type Project,
  type Runbook,
} from '@octopusdeploy/api-client';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { OctopusSimulator } from './simulator';

const ADMIN_KEY = 'API-ADMIN0000000000000000000000';
const VIEWER_KEY = 'API-VIEWER000000000000000000000';
const SPACE = 'Default';

let simulator: OctopusSimulator;
let client: Client;

async function connect(apiKey: string): Promise<Client> {
  return Client.create({ instanceURL: simulator.url, apiKey, userAgentApp: 'octopus-dr-tests' });
}

/** Runs a call that must fail; returns the api-client's error. */
async function failure(call: () => Promise<unknown>): Promise<{ StatusCode?: number; message: string }> {
  try {
    await call();
  } catch (error) {
    return error as { StatusCode?: number; message: string };
  }
  throw new Error('expected the call to fail');
}

beforeEach(async () => {
  simulator = new OctopusSimulator({
    apiKeys: {
      [ADMIN_KEY]: { user: 'admin', permissions: 'all' },
      [VIEWER_KEY]: { user: 'viewer', permissions: ['ProjectView', 'EnvironmentView', 'TaskView', 'ActionTemplateView'] },
    },
    extraSpaces: ['Staging Space'],
  });
  await simulator.start();
  client = await connect(ADMIN_KEY);
});

afterEach(() => simulator.stop());

async function newProject(name = 'Octopus DR'): Promise<Project> {
  const space = simulator.state.spaces[0];
  return new ProjectRepository(client, SPACE).create({
    Name: name,
    ProjectGroupId: space.projectGroups[0].Id,
    LifecycleId: space.lifecycles[0].Id,
  } as unknown as NewProject);
}

/** A runbook create body: RunRetentionPolicy is required, as on a real server. */
function runbookBody(name: string, projectId: string): NewRunbook {
  return { Name: name, ProjectId: projectId, RunRetentionPolicy: { QuantityToKeep: 100, ShouldKeepForever: false, Unit: 'Items', Strategy: 'Default' } } as unknown as NewRunbook;
}

async function newTemplate(name = 'Octopus DR - Test'): Promise<{ Id: string; Version: number; Parameters: Array<{ Id: string; Name: string; DefaultValue: unknown }> }> {
  return client.doCreate(
    '~/api/{spaceId}/actiontemplates',
    {
      Name: name,
      ActionType: 'Octopus.Script',
      Description: 'test',
      Properties: { 'Octopus.Action.Script.ScriptBody': 'echo 1', 'Octopus.Action.Script.Syntax': 'Bash' },
      Parameters: [
        { Name: 'OctopusDr.Test.Value', Label: 'Value', DefaultValue: 'x', DisplaySettings: { 'Octopus.ControlType': 'SingleLineText' } },
        { Name: 'OctopusDr.Test.Secret', Label: 'Secret', DefaultValue: 's3cret', DisplaySettings: { 'Octopus.ControlType': 'Sensitive' } },
      ],
    },
    { spaceName: SPACE },
  );
}

test('the root document, space resolution and collections work with the real api-client', async () => {
  const info = await client.getServerInformation();
  expect(info.version).toBe('2025.3.12345');
  expect(info.installationId).toMatch(/^[0-9a-f-]{36}$/);
  const created = await newProject();
  expect(created).toMatchObject({ Id: 'Projects-1', SpaceId: 'Spaces-1', VariableSetId: 'variableset-Projects-1', DeploymentProcessId: 'deploymentprocess-Projects-1' });
  // partialName is a case-insensitive "contains" match; ids are comma-joined.
  const found = await new ProjectRepository(client, SPACE).list({ partialName: 'dr', take: 10 });
  expect(found).toMatchObject({ ItemType: 'Project', TotalResults: 1, ItemsPerPage: 10 });
  expect(simulator.requests.map((r) => r.url)).toEqual(
    expect.arrayContaining(['/api', `/api/spaces?partialName=${SPACE}&skip=0&take=2147483647`, '/api/Spaces-1/projects?take=10&partialName=dr']),
  );
  expect(simulator.countsByMethod()).toEqual({ GET: 3, POST: 1 });
});

test('401 without a valid key, 403 naming the missing permission, 404 and 405 with Octopus error bodies', async () => {
  const anonymous = await failure(async () => (await connect('')).get('~/api/spaces'));
  expect(anonymous.StatusCode).toBe(401);
  expect(anonymous.message).toMatch(/Please provide a valid API key/);
  const wrongKey = await failure(async () => (await connect('API-WRONG')).get('~/api/maintenanceconfiguration'));
  expect(wrongKey.StatusCode).toBe(401);

  const viewer = await connect(VIEWER_KEY);
  const forbidden = await failure(() => viewer.doCreate('~/api/{spaceId}/actiontemplates', { Name: 'x', ActionType: 'Octopus.Script' }, { spaceName: SPACE }));
  expect(forbidden.StatusCode).toBe(403);
  expect(forbidden.message).toMatch(/Missing permission: ActionTemplateCreate/);

  const missing = await failure(() => new ProjectRepository(client, SPACE).get('Projects-99'));
  expect(missing.StatusCode).toBe(404);
  expect(missing.message).toMatch(/The resource 'Projects-99' was not found/);

  const wrongMethod = await failure(() => client.del('~/api/serverstatus'));
  expect(wrongMethod.StatusCode).toBe(405);
});

test('projects: names are required and unique (case-insensitive), group and lifecycle must exist', async () => {
  await newProject('Octopus DR');
  const duplicate = await failure(() => newProject('octopus dr'));
  expect(duplicate.StatusCode).toBe(400);
  expect(duplicate.message).toMatch(/There was a problem with your request\.\nA project with the name 'octopus dr' already exists/);
  const noName = await failure(() => newProject(''));
  expect(noName.message).toMatch(/Please provide a name for the project/);
  const badGroup = await failure(() => new ProjectRepository(client, SPACE).create({ Name: 'X', ProjectGroupId: 'ProjectGroups-99', LifecycleId: 'Lifecycles-1' } as unknown as NewProject));
  expect(badGroup.message).toMatch(/project group 'ProjectGroups-99' does not exist/);
});

test('action templates: 201 at version 0, every PUT is a new version with history, sensitive defaults are write-only', async () => {
  const created = await newTemplate();
  expect(created).toMatchObject({ Id: 'ActionTemplates-1', Version: 0 });
  expect(created.Parameters.every((p) => /^[0-9a-f-]{36}$/.test(p.Id))).toBe(true);
  expect(created.Parameters.find((p) => p.Name === 'OctopusDr.Test.Secret')!.DefaultValue).toEqual({ HasValue: true });
  expect(simulator.requests.at(-1)).toMatchObject({ method: 'POST', status: 201 });

  const args = { spaceName: SPACE, id: created.Id };
  const current = await client.request<Record<string, unknown>>('~/api/{spaceId}/actiontemplates/{id}', args);
  const v1 = await client.doUpdate<{ Version: number; ActionType: string }>('~/api/{spaceId}/actiontemplates/{id}', { ...current, Description: 'changed', ActionType: 'Octopus.Other' }, args);
  // ActionType is write-on-create; unchanged PUTs still make a version.
  expect(v1).toMatchObject({ Version: 1, ActionType: 'Octopus.Script' });
  const v2 = await client.doUpdate<{ Version: number }>('~/api/{spaceId}/actiontemplates/{id}', { ...current, Description: 'changed' }, args);
  expect(v2.Version).toBe(2);
  const old = await client.request<{ Description: string; Version: number }>('~/api/{spaceId}/actiontemplates/{id}/versions/{version}', { ...args, version: 0 });
  expect(old).toMatchObject({ Description: 'test', Version: 0 });
  // The sensitive default survived the round trip of `{HasValue:true}`.
  expect(simulator.state.spaces[0].actionTemplates[0].Parameters.find((p: { Name: string }) => p.Name === 'OctopusDr.Test.Secret').DefaultValue).toBe('s3cret');

  const duplicate = await failure(() => newTemplate('OCTOPUS DR - TEST'));
  expect(duplicate.StatusCode).toBe(400);
  expect(duplicate.message).toMatch(/already exists/);
  const noType = await failure(() => client.doCreate('~/api/{spaceId}/actiontemplates', { Name: 'Other' }, { spaceName: SPACE }));
  expect(noType.message).toMatch(/action type/);
  const unknown = await failure(() => client.request('~/api/{spaceId}/actiontemplates/{id}/versions/{version}', { ...args, version: 9 }));
  expect(unknown.StatusCode).toBe(404);
});

test('runbooks, process version checks, template versions, snapshots published by query or body, usage', async () => {
  const project = await newProject();
  const template = await newTemplate();
  const runbooks = new RunbookRepository(client, SPACE, project);
  const runbook = await runbooks.create(runbookBody('Back up Octopus', project.Id));
  expect(runbook).toMatchObject({ RunbookProcessId: `RunbookProcess-${runbook.Id}`, EnvironmentScope: 'All', DefaultGuidedFailureMode: 'EnvironmentDefault', PublishedRunbookSnapshotId: null });
  const duplicate = await failure(() => runbooks.create(runbookBody('back up octopus', project.Id)));
  expect(duplicate.message).toMatch(/already exists in this project/);

  const processes = new RunbookProcessRepository(client, SPACE, project);
  const process = await processes.get(runbook);
  expect(process).toMatchObject({ Version: 0, Steps: [], RunbookId: runbook.Id });
  const step = (version: string) => ({
    Name: 'Step 1',
    Actions: [{ Name: 'Step 1', ActionType: 'Octopus.Script', Properties: { 'Octopus.Action.Template.Id': template.Id, 'Octopus.Action.Template.Version': version } }],
  });
  const badVersion = await failure(() => processes.update({ ...process, Steps: [step('7')] } as never));
  expect(badVersion.StatusCode).toBe(400);
  expect(badVersion.message).toMatch(/has no version '7'/);
  const updated = await processes.update({ ...process, Steps: [step('0')] } as never);
  expect(updated.Version).toBe(1);
  expect(updated.Steps[0].Id).toMatch(/^[0-9a-f-]{36}$/);
  expect(updated.Steps[0].Actions[0]).toMatchObject({ Slug: 'step-1', IsDisabled: false });
  // A stale Version is a validation failure (400), not 409.
  const stale = await failure(() => processes.update({ ...process, Steps: [] } as never));
  expect(stale.StatusCode).toBe(400);
  expect(stale.message).toMatch(/There was a problem with your request.\nThe runbook process has been modified since you loaded it: you sent version 0, the current version is 1/);

  const usage = await client.request<Array<{ RunbookName: string; Version: string }>>('~/api/{spaceId}/actiontemplates/{id}/usage', { spaceName: SPACE, id: template.Id });
  expect(usage).toEqual([expect.objectContaining({ RunbookName: 'Back up Octopus', Version: '0', ProcessType: 'Runbook' })]);

  // api-client: ?publish=true
  const snapshot = await new RunbookSnapshotRepository(client, SPACE, project).create(runbook, 'Snapshot 1', true, 'notes');
  expect(simulator.requests.at(-1)!.url).toBe(`/api/Spaces-1/projects/${project.Id}/runbookSnapshots?publish=true`);
  expect((await runbooks.get(runbook.Id)).PublishedRunbookSnapshotId).toBe(snapshot.Id);
  // docs: Publish body field, on the space route; names are unique per runbook.
  const second = await client.doCreate<{ Id: string }>('~/api/{spaceId}/runbookSnapshots', { ProjectId: project.Id, RunbookId: runbook.Id, Name: 'Snapshot 2', Publish: 'yes' }, { spaceName: SPACE });
  expect((await runbooks.get(runbook.Id)).PublishedRunbookSnapshotId).toBe(second.Id);
  const sameName = await failure(() => new RunbookSnapshotRepository(client, SPACE, project).create(runbook, 'snapshot 1', false));
  expect(sameName.message).toMatch(/already exists/);
  const byName = await client.request<{ Id: string; FrozenRunbookProcessId: string }>('~/api/{spaceId}/projects/{projectId}/runbookSnapshots/{id}', { spaceName: SPACE, projectId: project.Id, id: 'Snapshot 1' });
  expect(byName).toMatchObject({ Id: snapshot.Id, FrozenRunbookProcessId: expect.stringContaining(process.Id) });
  // Publishing an existing snapshot by PUTting the runbook; another runbook's snapshot is refused.
  const other = await runbooks.create(runbookBody('Other', project.Id));
  const wrong = await failure(() => runbooks.modify({ ...other, PublishedRunbookSnapshotId: snapshot.Id }));
  expect(wrong.message).toMatch(/does not belong to the runbook 'Other'/);
});

test('triggers: unpublished runbooks, bad cron field counts, duplicate names and unknown environments are refused', async () => {
  const project = await newProject();
  const runbooks = new RunbookRepository(client, SPACE, project);
  const runbook: Runbook = await runbooks.create(runbookBody('Back up Octopus', project.Id));
  const trigger = (cron: string, name = 'Daily backup', environments = ['Environments-2']) => ({
    Name: name,
    ProjectId: project.Id,
    Filter: { FilterType: 'CronExpressionSchedule', CronExpression: cron, Timezone: 'UTC' },
    Action: { ActionType: 'RunRunbook', RunbookId: runbook.Id, EnvironmentIds: environments, TenantIds: [], TenantTags: [] },
  });
  const create = (body: object) => client.doCreate<{ Id: string }>('~/api/{spaceId}/projecttriggers', body, { spaceName: SPACE });
  const unpublished = await failure(() => create(trigger('0 30 1 * * *')));
  expect(unpublished.message).toMatch(/has no published snapshot/);
  await new RunbookSnapshotRepository(client, SPACE, project).create(runbook, 'S1', true);
  const fiveFields = await failure(() => create(trigger('30 1 * * *')));
  expect(fiveFields.message).toMatch(/must have 6 fields .* it has 5/);
  const badEnvironment = await failure(() => create(trigger('0 30 1 * * *', 'X', ['Environments-99'])));
  expect(badEnvironment.message).toMatch(/environment 'Environments-99' does not exist/);
  const created = await create(trigger('0 30 1 * * * 2030'));
  expect(simulator.requests.at(-1)).toMatchObject({ method: 'POST', status: 201 });
  const duplicate = await failure(() => create(trigger('0 0 2 * * *', 'daily BACKUP')));
  expect(duplicate.message).toMatch(/already exists in this project/);
  const listed = await client.request<{ Items: Array<{ Id: string; Filter: object }> }>('~/api/{spaceId}/projects/{projectId}/triggers', { spaceName: SPACE, projectId: project.Id });
  expect(listed.Items).toEqual([expect.objectContaining({ Id: created.Id, Filter: { FilterType: 'CronExpressionSchedule', CronExpression: '0 30 1 * * * 2030', Timezone: 'UTC' } })]);
  const updated = await client.doUpdate<{ Filter: { CronExpression: string } }>('~/api/{spaceId}/projecttriggers/{id}', { ...trigger('0 0 3 * * *'), Id: created.Id }, { spaceName: SPACE, id: created.Id });
  expect(updated.Filter.CronExpression).toBe('0 0 3 * * *');
});

test('variables: sensitive values are write-only and kept when sent back as null; stale versions are refused', async () => {
  const project = await newProject();
  const args = { spaceName: SPACE, id: project.VariableSetId };
  const set = await client.request<{ Version: number; Variables: Array<Record<string, unknown>> }>('~/api/{spaceId}/variables/{id}', args);
  expect(set).toMatchObject({ Version: 0, Variables: [], OwnerId: project.Id });
  const saved = await client.doUpdate<typeof set>('~/api/{spaceId}/variables/{id}', { ...set, Variables: [{ Name: 'OctopusDr.MasterKey', Value: 'c2VjcmV0', Type: 'Sensitive' }, { Name: 'Plain', Value: 'v', Type: 'string' }] }, args);
  expect(saved.Version).toBe(1);
  expect(saved.Variables).toEqual([expect.objectContaining({ Name: 'OctopusDr.MasterKey', Value: null, IsSensitive: true }), expect.objectContaining({ Name: 'Plain', Value: 'v', Type: 'String' })]);
  const again = await client.doUpdate<typeof set>('~/api/{spaceId}/variables/{id}', saved, args);
  const id = again.Variables[0].Id as string;
  expect(simulator.state.spaces[0].sensitiveValues.get(id)).toBe('c2VjcmV0');
  const stale = await failure(() => client.doUpdate('~/api/{spaceId}/variables/{id}', saved, args));
  expect(stale.StatusCode).toBe(400);
  expect(stale.message).toMatch(/The variable set has been modified since you loaded it: you sent version 1, the current version is 2/);
});

test('sensitive variables: the Id keeps the secret (null or empty Value); without the Id an empty Value wipes it', async () => {
  const project = await newProject();
  const args = { spaceName: SPACE, id: project.VariableSetId };
  type VariableSet = { Version: number; Variables: Array<Record<string, unknown>> };
  const put = (set: VariableSet, variables: Array<Record<string, unknown>>) => client.doUpdate<VariableSet>('~/api/{spaceId}/variables/{id}', { ...set, Variables: variables }, args);
  const secrets = () => simulator.state.spaces[0].sensitiveValues;
  let set = await client.request<VariableSet>('~/api/{spaceId}/variables/{id}', args);
  set = await put(set, [{ Name: 'A', Value: 'secret-a', Type: 'Sensitive' }, { Name: 'B', Value: 'secret-b', Type: 'Sensitive' }, { Name: 'C', Value: 'secret-c', Type: 'Sensitive' }]);
  const [a, b, c] = set.Variables;
  // Sent back with its Id: kept, whether the Value is null (as read) or empty.
  set = await put(set, [a, { ...b, Value: '' }, { ...c, Value: 'changed-c' }]);
  expect([secrets().get(a.Id as string), secrets().get(b.Id as string), secrets().get(c.Id as string)]).toEqual(['secret-a', 'secret-b', 'changed-c']);
  // Rebuilt without the Id (a new variable as far as the server knows): the secret is gone.
  const { Id: _dropped, ...withoutId } = a;
  set = await put(set, [withoutId, b, c]);
  const rebuilt = set.Variables.find((v) => v.Name === 'A')!;
  expect(rebuilt.Id).not.toBe(a.Id);
  expect(secrets().get(rebuilt.Id as string)).toBe('');
  expect(secrets().has(a.Id as string)).toBe(false);
  expect(secrets().get(b.Id as string)).toBe('secret-b');
});

test('variables: a missing Type fails as on Octopus (500), an unknown one is refused, and the case of a known one does not matter', async () => {
  const project = await newProject();
  const args = { spaceName: SPACE, id: project.VariableSetId };
  const set = await client.request<{ Version: number }>('~/api/{spaceId}/variables/{id}', args);
  const noType = await failure(() => client.doUpdate('~/api/{spaceId}/variables/{id}', { ...set, Variables: [{ Name: 'Plain', Value: 'v' }] }, args));
  expect(noType).toMatchObject({ StatusCode: 500, message: expect.stringMatching(/Object reference not set to an instance of an object/) });
  const unknown = await failure(() => client.doUpdate('~/api/{spaceId}/variables/{id}', { ...set, Variables: [{ Name: 'Plain', Value: 'v', Type: 'Text' }] }, args));
  expect(unknown).toMatchObject({ StatusCode: 400, message: expect.stringMatching(/Invalid Variable Type Text/) });
  const saved = await client.doUpdate<{ Version: number; Variables: Array<{ Type: string }> }>('~/api/{spaceId}/variables/{id}', { ...set, Variables: [{ Name: 'Plain', Value: 'v', Type: 'sensitive' }] }, args);
  expect(saved).toMatchObject({ Version: 1, Variables: [expect.objectContaining({ Type: 'Sensitive', IsSensitive: true, Value: null })] });
});

test('runbooks: RunRetentionPolicy is required on create and carries Strategy (inferred when an older client sends none)', async () => {
  const project = await newProject();
  const runbooks = new RunbookRepository(client, SPACE, project);
  const missing = await failure(() => runbooks.create({ Name: 'No policy', ProjectId: project.Id } as unknown as NewRunbook));
  expect(missing).toMatchObject({ StatusCode: 400, message: expect.stringMatching(/run retention policy/) });
  const created = await runbooks.create(runbookBody('Default policy', project.Id));
  expect(created.RunRetentionPolicy).toEqual({ Strategy: 'Default', QuantityToKeep: 100, Unit: 'Items', ShouldKeepForever: false });
  const old = await runbooks.create({ Name: 'Old client', ProjectId: project.Id, RunRetentionPolicy: { QuantityToKeep: 5, ShouldKeepForever: false, Unit: 'Days' } } as unknown as NewRunbook);
  expect(old.RunRetentionPolicy).toMatchObject({ Strategy: 'Count', QuantityToKeep: 5, Unit: 'Days' });
  const forever = await runbooks.create({ Name: 'Forever', ProjectId: project.Id, RunRetentionPolicy: { QuantityToKeep: 0, ShouldKeepForever: true, Unit: 'Items' } } as unknown as NewRunbook);
  expect(forever.RunRetentionPolicy).toMatchObject({ Strategy: 'Forever', ShouldKeepForever: true });
});

test("ScopeValues.Actions lists the project's actions, runbook steps included; a scope naming another project's action is refused", async () => {
  const project = await newProject();
  const other = await newProject('Other');
  const addStep = async (owner: Project, runbookName: string, stepName: string) => {
    const runbook = await new RunbookRepository(client, SPACE, owner).create(runbookBody(runbookName, owner.Id));
    const processes = new RunbookProcessRepository(client, SPACE, owner);
    const process = await processes.get(runbook);
    const saved = await processes.update({ ...process, Steps: [{ Name: stepName, Actions: [{ Name: stepName, ActionType: 'Octopus.Script', Properties: {} }] }] } as never);
    return saved.Steps[0].Actions[0].Id;
  };
  const mine = await addStep(project, 'Back up Octopus', 'Back up the database');
  const theirs = await addStep(other, 'Elsewhere', 'Other step');
  const args = { spaceName: SPACE, id: project.VariableSetId };
  const set = await client.request<{ Version: number; ScopeValues: { Actions: unknown[]; Processes: unknown[] } }>('~/api/{spaceId}/variables/{id}', args);
  expect(set.ScopeValues.Actions).toEqual([{ Id: mine, Name: 'Back up the database' }]);
  expect(set.ScopeValues.Processes).toEqual([expect.objectContaining({ ProcessType: 'Runbook', Name: 'Back up Octopus' })]);
  const wrong = await failure(() => client.doUpdate('~/api/{spaceId}/variables/{id}', { ...set, Variables: [{ Name: 'X', Value: '', Type: 'String', Scope: { Action: [theirs] } }] }, args));
  expect(wrong.message).toMatch(/does not exist in this project/);
});

test('a version-controlled project with runbooks in Git refuses runbook writes on the database routes; one with runbooks in the database does not', async () => {
  const git = simulator.addVersionControlledProject('Git runbooks', { runbooksInGit: true });
  const listed = await new ProjectRepository(client, SPACE).list({ partialName: 'Git runbooks' });
  expect(listed.Items[0]).toMatchObject({ IsVersionControlled: true, PersistenceSettings: { Type: 'VersionControlled', ConversionState: { RunbooksAreInGit: true } } });
  const refused = await failure(() => new RunbookRepository(client, SPACE, git as unknown as Project).create(runbookBody('Back up Octopus', git.Id)));
  expect(refused).toMatchObject({ StatusCode: 400, message: expect.stringMatching(/version-controlled resource on a non-version control route/) });
  expect(simulator.state.spaces[0].runbooks).toEqual([]);
  const database = simulator.addVersionControlledProject('Database runbooks', { runbooksInGit: false });
  const runbook = await new RunbookRepository(client, SPACE, database as unknown as Project).create(runbookBody('Back up Octopus', database.Id));
  expect(runbook.ProjectId).toBe(database.Id);
});

test('a body over the configured limit is answered 413 with no body, as Kestrel answers it', async () => {
  await simulator.stop();
  simulator = new OctopusSimulator({ maxRequestBodyBytes: 1024, apiKeys: { [ADMIN_KEY]: { user: 'admin', permissions: 'all' } } });
  await simulator.start();
  client = await connect(ADMIN_KEY);
  const tooLarge = await failure(() => client.doCreate('~/api/{spaceId}/actiontemplates', { Name: 'Big', ActionType: 'Octopus.Script', Description: 'x'.repeat(2000) }, { spaceName: SPACE }));
  expect(tooLarge.StatusCode).toBe(413);
  expect(simulator.requests.at(-1)).toMatchObject({ method: 'POST', status: 413 });
});

test('maintenance mode, server status, runbook runs and tasks', async () => {
  const configuration = await client.get<{ IsInMaintenanceMode: boolean }>('~/api/maintenanceconfiguration');
  expect(configuration).toMatchObject({ Id: 'maintenance', IsInMaintenanceMode: false });
  const on = await client.doUpdate<{ IsInMaintenanceMode: boolean; LastModifiedBy: string }>('~/api/maintenanceconfiguration', { ...configuration, IsInMaintenanceMode: true });
  expect(on).toMatchObject({ IsInMaintenanceMode: true, LastModifiedBy: 'admin' });
  expect(await client.get('~/api/serverstatus')).toMatchObject({ IsInMaintenanceMode: true });
  expect(await client.get('~/api/serverstatus/health')).toMatchObject({ IsOperatingNormally: true });
  const viewer = await connect(VIEWER_KEY);
  const forbidden = await failure(() => viewer.doUpdate('~/api/maintenanceconfiguration', { IsInMaintenanceMode: false }));
  expect(forbidden.message).toMatch(/Missing permission: AdministerSystem/);

  const project = await newProject();
  const runbook = await new RunbookRepository(client, SPACE, project).create(runbookBody('Back up Octopus', project.Id));
  const runs = new RunbookRunRepository(client, SPACE);
  const command = { spaceName: SPACE, ProjectName: project.Name, RunbookName: runbook.Name, EnvironmentNames: ['Production'] };
  const unpublished = await failure(() => runs.create(command));
  expect(unpublished.message).toMatch(/Please specify the Runbook Snapshot to run/);
  await new RunbookSnapshotRepository(client, SPACE, project).create(runbook, 'S1', true);
  const started = await runs.create(command);
  const taskId = started.RunbookRunServerTasks[0].ServerTaskId;
  const tasks = new SpaceServerTaskRepository(client, SPACE);
  expect(await tasks.getById(taskId)).toMatchObject({ State: 'Queued', IsCompleted: false });
  simulator.completeTask(taskId, 'Success');
  expect((await tasks.getByIds([taskId]))[0]).toMatchObject({ State: 'Success', IsCompleted: true, FinishedSuccessfully: true });
  const executing = simulator.addTask({ Name: 'Deploy', State: 'Executing' });
  const running = await client.get<{ Items: Array<{ Id: string }> }>('~/api/tasks{?states}', { states: ['Executing', 'Cancelling'] });
  expect(running.Items.map((t) => t.Id)).toEqual([executing.Id]);
});

test('the request log counts requests by method', async () => {
  simulator.resetRequestLog();
  await client.get('~/api/serverstatus');
  await newProject();
  // The api-client caches the space id for the whole process, so no spaces lookup here.
  expect(simulator.countsByMethod()).toEqual({ GET: 1, POST: 1 });
  expect(simulator.writes()).toEqual([{ method: 'POST', url: '/api/Spaces-1/projects', status: 201, bytes: expect.any(Number) }]);
});

test('spaces and environments can be created; a space is deleted only after its task queue is stopped', async () => {
  const space = await client.post<{ Id: string; Name: string }>('~/api/spaces', { Name: 'Throwaway', SpaceManagersTeams: ['teams-administrators'], SpaceManagersTeamMembers: [] });
  expect(space).toMatchObject({ Id: 'Spaces-3', Name: 'Throwaway' });
  const environment = await client.doCreate<{ Id: string }>('~/api/{spaceId}/environments', { Name: 'Production' }, { spaceName: 'Throwaway' });
  expect(environment.Id).toMatch(/^Environments-\d+$/);
  const running = await failure(() => client.del(`~/api/spaces/${space.Id}`));
  expect(running.message).toMatch(/Stop the task queue/);
  await client.doUpdate(`~/api/spaces/${space.Id}`, { ...space, TaskQueueStopped: true });
  await client.del(`~/api/spaces/${space.Id}`);
  expect(simulator.state.spaces.map((s) => s.space.Name)).toEqual(['Default', 'Staging Space']);
});

test('runs standalone (npm run octopus-simulator) and logs each request', async () => {
  const root = path.resolve(__dirname, '../..');
  const child = spawn(process.execPath, ['-r', './scripts/register-ts.cjs', 'test/octopus-simulator/main.ts', '--port', '0', '--environment', 'Staging'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${output}`)), 20_000);
      child.stdout.on('data', () => {
        const found = /listening on (http:\/\/\S+) \(space "Default"; environments: Staging\)/.exec(output);
        if (found) {
          clearTimeout(timer);
          resolve(found[1]);
        }
      });
    });
    const standalone = await Client.create({ instanceURL: url, apiKey: 'API-ANYTHING', userAgentApp: 'tests' });
    expect(await standalone.get('~/api/maintenanceconfiguration')).toMatchObject({ IsInMaintenanceMode: false });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(output).toContain('200 GET /api/maintenanceconfiguration');
  } finally {
    child.kill('SIGTERM');
  }
});
