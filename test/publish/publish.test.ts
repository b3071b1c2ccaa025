// `npm run publish` against the Octopus API simulator, through the real api-client and the raw
// routes: what a first publish builds, that a second one writes nothing, what changes cause, and
// the errors a user meets. The API key must never appear in the output.
import * as net from 'node:net';
import { runPublishCli } from '../../scripts/publish/index';
import { OctopusSimulator, type ApiKeyGrant } from '../octopus-simulator/simulator';
import type { Json } from '../octopus-simulator/store';
import { writeFixtureTemplates } from './fixtures';

const API_KEY = 'API-PUBLISHTESTKEY1234567890ABC';
const LIMITED_KEY = 'API-LIMITED0000000000000000000';

let simulator: OctopusSimulator;
let templates: string;

async function startSimulator(options: { version?: string; limited?: ApiKeyGrant } = {}): Promise<void> {
  simulator = new OctopusSimulator({
    version: options.version,
    environments: ['Development', 'Production', 'Standby'],
    extraSpaces: ['Operations'],
    apiKeys: {
      [API_KEY]: { user: 'admin', permissions: 'all' },
      [LIMITED_KEY]: options.limited ?? { permissions: ['ProjectView', 'EnvironmentView', 'ActionTemplateView'] },
    },
  });
  await simulator.start();
}

beforeEach(async () => {
  templates = writeFixtureTemplates();
  await startSimulator();
});

afterEach(() => simulator.stop());

async function publish(extra: string[] = [], env: NodeJS.ProcessEnv = { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY }) {
  let stdout = '';
  let stderr = '';
  const { exitCode, result } = await runPublishCli(
    ['--server-url', simulator.url, '--space', 'Default', '--environment', 'Production', '--restore-environment', 'Standby', '--templates-dir', templates, ...extra],
    env,
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  );
  expect(stdout + stderr).not.toContain(API_KEY);
  return { exitCode, result, stdout, stderr };
}

const space = () => simulator.state.spaces[0];
const runbookNamed = (name: string): Json => space().runbooks.find((r) => r.Name === name)!;
const processOf = (name: string): Json => space().processes.get(runbookNamed(name).RunbookProcessId)!;

test('a first publish builds the templates, project, variables, runbooks, snapshots and schedules; a second writes nothing', async () => {
  const first = await publish();
  expect(first.stderr).toBe('');
  expect(first.exitCode).toBe(0);
  const firstCounts = simulator.countsByMethod();

  // Templates: every built one, by name, version 0.
  expect(space().actionTemplates.map((t) => t.Name).sort()).toEqual([
    'Octopus DR - Set Maintenance Mode',
    ...['backup-database', 'backup-file-store', 'check-worker', 'copy-offsite', 'restore-database', 'restore-file-store', 'test-restore', 'verify-master-key'].map((id) => `Octopus DR - Stand-in ${id}`),
  ].sort());
  // The project and its placeholder variables, sensitive ones as sensitive.
  expect(space().projects.map((p) => p.Name)).toEqual(['Octopus DR']);
  const variables = space().variableSets.get('variableset-Projects-1')!.Variables as Json[];
  expect(variables.map((v) => [v.Name, v.Type, v.Scope])).toEqual([
    ['OctopusDr.Octopus.ApiKey', 'Sensitive', {}],
    ['OctopusDr.Sql.ConnectionString', 'Sensitive', {}],
    ['OctopusDr.MasterKey', 'Sensitive', {}],
    ['OctopusDr.Sql.BackupDirectory', 'String', {}],
    ['OctopusDr.Sql.BackupDirectoryOnWorker', 'String', {}],
    ['OctopusDr.FileStore.HomeDirectory', 'String', {}],
    ['OctopusDr.FileStore.BackupDirectory', 'String', {}],
    ['OctopusDr.Offsite.Url', 'String', {}],
    ['OctopusDr.Offsite.Region', 'String', {}],
    ['OctopusDr.Offsite.AccessKeyId', 'Sensitive', {}],
    ['OctopusDr.Offsite.SecretAccessKey', 'Sensitive', {}],
    ['OctopusDr.Offsite.AzureConnectionString', 'Sensitive', {}],
    ['OctopusDr.Offsite.AzureSasToken', 'Sensitive', {}],
    ['OctopusDr.Offsite.ImmutabilityDays', 'String', {}],
    ['OctopusDr.Offsite.ImmutabilityMode', 'String', {}],
    ['OctopusDr.Offsite.EncryptionPassphrase', 'Sensitive', {}],
    ['OctopusDr.Offsite.EncryptionRecipient', 'String', {}],
    ['OctopusDr.MasterKey.ExpectedKeyId', 'String', {}],
    // The backup's key check is against the database, not the key ID a restore expects: empty for that step.
    ['OctopusDr.MasterKey.ExpectedKeyId', 'String', { Action: [processOf('Back up Octopus').Steps[1].Actions[0].Id] }],
    // The restore's key check must not use a database: an empty connection string scoped to that step.
    ['OctopusDr.Sql.ConnectionString', 'String', { Action: [processOf('Restore Octopus').Steps[0].Actions[0].Id] }],
  ]);
  expect(variables.every((v) => v.Value === '' || v.Value === null)).toBe(true);

  // Runbooks and their processes.
  expect(space().runbooks.map((r) => [r.Name, r.EnvironmentScope, r.Environments, r.DefaultGuidedFailureMode])).toEqual([
    ['Back up Octopus', 'Specified', ['Environments-2'], 'Off'],
    ['Test Octopus backups', 'Specified', ['Environments-2'], 'Off'],
    ['Restore Octopus', 'Specified', ['Environments-3'], 'Off'],
  ]);
  const backup = processOf('Back up Octopus');
  expect(backup.Steps.map((s: Json) => [s.Name, s.Condition])).toEqual([
    ['Enter maintenance mode', 'Success'],
    ['Verify the master key', 'Success'],
    // The backups run even when the key check failed (a backup beats none); the run still fails.
    ['Back up the database', 'Always'],
    ['Back up the file store', 'Always'],
    ['Leave maintenance mode', 'Always'],
    // Only when an offsite URL is set (a run condition), and after a failed step too: it sends only complete, verified sets.
    ['Copy backups offsite', 'Variable'],
  ]);
  expect(backup.Steps[5].Properties['Octopus.Step.ConditionVariableExpression']).toBe('#{if OctopusDr.Offsite.Url}True#{else}False#{/if}');
  expect(backup.Steps[5].Actions[0].Properties).not.toHaveProperty('OctopusDr.Offsite.SecretAccessKey');
  // Encryption is the project's choice too: its passphrase variable, never a value on the step.
  expect(backup.Steps[5].Actions[0].Properties).not.toHaveProperty('OctopusDr.Offsite.EncryptionPassphrase');
  // The database backup records the key ID the verification just proved (set only on PASS).
  expect(backup.Steps[2].Actions[0].Properties['OctopusDr.MasterKey.KeyId']).toBe('#{Octopus.Action[Verify the master key].Output.VerifiedKeyId}');
  const maintenanceTemplate = space().actionTemplates.find((t) => t.Name === 'Octopus DR - Set Maintenance Mode')!;
  const enter = backup.Steps[0].Actions[0].Properties;
  expect(enter).toMatchObject({
    'Octopus.Action.Template.Id': maintenanceTemplate.Id,
    'Octopus.Action.Template.Version': '0',
    'Octopus.Action.Script.ScriptBody': 'Write-Host "maintenance-mode runner"',
    'Octopus.Action.Script.Syntax': 'PowerShell',
    'OctopusDr.Octopus.MaintenanceMode': 'On',
    // Non-empty defaults are copied onto the step, as the Octopus UI does.
    'OctopusDr.Octopus.ServerUrl': '#{Octopus.Web.ServerUri}',
    'OctopusDr.Octopus.DrainTimeoutMinutes': '30',
  });
  // The API key comes from the project variable of the same name: not set on the step.
  expect(enter).not.toHaveProperty('OctopusDr.Octopus.ApiKey');
  const leave = backup.Steps[4].Actions[0];
  expect(leave.IsRequired).toBe(true);
  // Off, and only when the entering step says this run set it; "Unknown" (changes nothing) when it never said.
  expect(leave.Properties['OctopusDr.Octopus.MaintenanceMode']).toBe('Off');
  expect(leave.Properties['OctopusDr.Octopus.OnlyIfSetByThisRun']).toBe(
    '#{if Octopus.Action[Enter maintenance mode].Output.SetByThisRun}#{Octopus.Action[Enter maintenance mode].Output.SetByThisRun}#{else}Unknown#{/if}',
  );
  expect(processOf('Test Octopus backups').Steps[0].Actions[0].Properties).toMatchObject({
    'OctopusDr.Restore.Source': '#{if OctopusDr.Sql.BackupDirectoryOnWorker}#{OctopusDr.Sql.BackupDirectoryOnWorker}#{else}#{OctopusDr.Sql.BackupDirectory}#{/if}',
    'OctopusDr.Restore.SourceOnServer': '#{OctopusDr.Sql.BackupDirectory}',
  });
  expect(processOf('Restore Octopus').Steps.map((s: Json) => s.Name)).toEqual([
    'Check the master key matches the backup',
    'Restore the database',
    'Restore the file store',
    'Verify the master key on the restored database',
  ]);

  // Each runbook published once; the schedules point at them.
  for (const runbook of space().runbooks) {
    expect(space().snapshots.filter((s) => s.RunbookId === runbook.Id)).toHaveLength(1);
    expect(runbook.PublishedRunbookSnapshotId).toBe(space().snapshots.find((s) => s.RunbookId === runbook.Id)!.Id);
  }
  expect(space().triggers.map((t) => [t.Name, t.Filter, t.Action.RunbookId, t.Action.EnvironmentIds])).toEqual([
    ['Daily backup', { FilterType: 'CronExpressionSchedule', CronExpression: '0 30 1 * * *', Timezone: 'UTC' }, runbookNamed('Back up Octopus').Id, ['Environments-2']],
    ['Weekly backup test', { FilterType: 'CronExpressionSchedule', CronExpression: '0 0 5 * * Sun', Timezone: 'UTC' }, runbookNamed('Test Octopus backups').Id, ['Environments-2']],
  ]);
  expect(first.result!.entries.filter((e) => e.outcome === 'created').map((e) => e.kind)).toEqual(expect.arrayContaining(['template', 'project', 'variable', 'runbook', 'snapshot', 'trigger']));

  // Second run against the unchanged space: reads only.
  simulator.resetRequestLog();
  const second = await publish();
  expect(second.exitCode).toBe(0);
  expect(simulator.writes()).toEqual([]);
  expect(second.result!.entries.every((e) => e.outcome === 'unchanged')).toBe(true);
  const secondCounts = simulator.countsByMethod();
  // Recorded for the report (`npx jest test/publish --verbose` prints them).
  console.log(`Request counts: first publish ${JSON.stringify(firstCounts)}, second publish ${JSON.stringify(secondCounts)}`);
  expect(Object.keys(secondCounts)).toEqual(['GET']);
  expect(firstCounts.POST).toBe(9 + 1 + 3 + 3 + 2); // templates, project, runbooks, snapshots, triggers
  expect(firstCounts.PUT).toBe(1 + 3); // variables once, each process once
});

test('--dry-run prints the plan and changes nothing', async () => {
  const { exitCode, stdout } = await publish(['--dry-run']);
  expect(exitCode).toBe(0);
  expect(simulator.writes()).toEqual([]);
  expect(stdout).toMatch(/Dry run: planning 9 powershell template\(s\)/);
  expect(stdout).toMatch(/would create\s+template Octopus DR - Set Maintenance Mode/);
  expect(stdout).toMatch(/would create\s+project Octopus DR/);
  expect(stdout).toMatch(/would create\s+trigger Daily backup \("0 30 1 \* \* \*" UTC/);
  expect(stdout).toMatch(/Dry run, nothing changed/);

  await publish();
  simulator.resetRequestLog();
  const again = await publish(['--dry-run', '--backup-schedule', '0 0 3 * * *']);
  expect(simulator.writes()).toEqual([]);
  expect(again.stdout).toMatch(/would update\s+trigger Daily backup \("0 0 3 \* \* \*" UTC/);
  expect(again.stdout).toMatch(/unchanged\s+trigger Weekly backup test/);
});

test('a changed template is updated once; the runbooks using it move to the new version and are republished', async () => {
  await publish();
  // A worker pool chosen on a step by the user is not a difference, and survives the update.
  processOf('Back up Octopus').Steps[0].Actions[0].WorkerPoolId = 'WorkerPools-7';
  const stepIds = processOf('Back up Octopus').Steps.map((s: Json) => s.Id);
  simulator.resetRequestLog();
  await publish();
  expect(simulator.writes()).toEqual([]);
  simulator.resetRequestLog();
  templates = writeFixtureTemplates({ directory: templates, omit: ['backup-database', 'backup-file-store', 'verify-master-key', 'test-restore', 'restore-database', 'restore-file-store', 'check-worker', 'copy-offsite'], scriptSuffix: '; Write-Host changed' });
  const { exitCode, stdout } = await publish();
  expect(exitCode).toBe(0);
  expect(stdout).toMatch(/updated\s+template Octopus DR - Set Maintenance Mode \(version 0 -> 1\)/);
  expect(stdout).toMatch(/updated\s+process Back up Octopus process \("Enter maintenance mode" to template version 1, "Leave maintenance mode" to template version 1\)/);
  const puts = simulator.writes().map((w) => `${w.method} ${w.url}`);
  // One template PUT (only the changed one), one process PUT, one new published snapshot.
  expect(puts.filter((p) => p.startsWith('PUT /api/Spaces-1/actiontemplates/'))).toHaveLength(1);
  expect(puts.filter((p) => p.includes('runbookProcesses'))).toEqual([`PUT /api/Spaces-1/projects/Projects-1/runbookProcesses/${runbookNamed('Back up Octopus').RunbookProcessId}`]);
  expect(puts.filter((p) => p.includes('runbookSnapshots'))).toEqual(['POST /api/Spaces-1/projects/Projects-1/runbookSnapshots?publish=true']);
  expect(processOf('Back up Octopus').Steps[0].Actions[0].Properties).toMatchObject({
    'Octopus.Action.Template.Version': '1',
    'Octopus.Action.Script.ScriptBody': 'Write-Host "maintenance-mode runner"; Write-Host changed',
  });
  expect(processOf('Back up Octopus').Steps[0].Actions[0].WorkerPoolId).toBe('WorkerPools-7');
  expect(processOf('Back up Octopus').Steps.map((s: Json) => s.Id)).toEqual(stepIds);
  expect(processOf('Back up Octopus').Version).toBe(2);
});

test('values a user set are never overwritten; the runbooks are republished so the snapshot carries them', async () => {
  await publish();
  const set = space().variableSets.get('variableset-Projects-1')!;
  const directory = set.Variables.find((v: Json) => v.Name === 'OctopusDr.Sql.BackupDirectory');
  directory.Value = '\\\\backup01\\octopus\\sql';
  set.Variables.push({ Id: 'user-variable', Name: 'OctopusDr.Sql.ConnectionString', Value: null, Type: 'Sensitive', IsSensitive: true, Scope: { Environment: ['Environments-3'] } });
  set.Version += 1;
  simulator.resetRequestLog();
  const { stdout } = await publish();
  expect(simulator.writes().some((w) => w.url.includes('/variables/'))).toBe(false);
  expect(set.Variables.find((v: Json) => v.Name === 'OctopusDr.Sql.BackupDirectory').Value).toBe('\\\\backup01\\octopus\\sql');
  expect(stdout).toMatch(/created\s+snapshot Back up Octopus snapshot \(published, because the project variables changed since the published snapshot\)/);
  expect(simulator.writes().map((w) => w.method)).toEqual(['POST', 'POST', 'POST']);
  simulator.resetRequestLog();
  await publish();
  expect(simulator.writes()).toEqual([]);
});

test('runbooks whose templates are not built yet are skipped with a warning, and composed once they land', async () => {
  templates = writeFixtureTemplates({ omit: ['test-restore', 'restore-file-store'] });
  const partial = await publish();
  expect(partial.exitCode).toBe(0);
  expect(partial.stdout).toMatch(/WARNING: runbook "Test Octopus backups" not composed yet: template test-restore is not built yet/);
  expect(partial.stdout).toMatch(/WARNING: runbook "Restore Octopus" not composed yet: template restore-file-store is not built yet/);
  expect(partial.stdout).toMatch(/skipped\s+trigger Weekly backup test \(runbook "Test Octopus backups" not composed\)/);
  expect(space().runbooks.map((r) => r.Name)).toEqual(['Back up Octopus']);

  templates = writeFixtureTemplates({ directory: templates });
  const full = await publish();
  expect(full.stdout).not.toMatch(/WARNING/);
  expect(space().runbooks.map((r) => r.Name)).toEqual(['Back up Octopus', 'Test Octopus backups', 'Restore Octopus']);
  expect(space().triggers.map((t) => t.Name)).toEqual(['Daily backup', 'Weekly backup test']);
});

test('schedules are configurable, can be turned off, and bad cron expressions are refused before any request', async () => {
  const bad = await publish(['--backup-schedule', '30 1 * * *']);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toMatch(/--backup-schedule "30 1 \* \* \*" has 5 field\(s\); Octopus cron expressions have 6/);
  expect(simulator.requests).toEqual([]);

  const testOff = await publish(['--test-schedule', 'off', '--timezone', 'GMT Standard Time']);
  expect(testOff.stdout).toContain('trigger Weekly backup test (--test-schedule off: not created)');
  expect(space().triggers.map((t) => [t.Name, t.Filter.Timezone])).toEqual([['Daily backup', 'GMT Standard Time']]);
  // Off does not stop a trigger that exists, and says so.
  const backupOff = await publish(['--test-schedule', 'off', '--backup-schedule', 'off', '--timezone', 'GMT Standard Time', '--dry-run']);
  expect(backupOff.stdout).toContain(
    'trigger Daily backup (--backup-schedule off: the existing trigger is left as it is, still enabled: disable or delete it in Octopus to stop it)',
  );
  simulator.resetRequestLog();
  await publish(['--test-schedule', 'off', '--timezone', 'GMT Standard Time', '--backup-schedule', '0 0 23 * * *']);
  expect(simulator.writes().map((w) => `${w.method} ${w.url}`)).toEqual([`PUT /api/Spaces-1/projecttriggers/${space().triggers[0].Id}`]);
  expect(space().triggers[0].Filter.CronExpression).toBe('0 0 23 * * *');
});

test('bash templates are published with --syntax bash', async () => {
  const { exitCode, stdout } = await publish(['--syntax', 'bash', '--dry-run']);
  expect(exitCode).toBe(0);
  expect(stdout).toMatch(/9 bash template\(s\)/);
});

test('a project published before the expected key ID had one name: its OctopusDr.Restore.ExpectedKeyId values move to the verify step\'s name', async () => {
  expect((await publish()).exitCode).toBe(0);
  const set = space().variableSets.get('variableset-Projects-1')!;
  // As an earlier publisher left it, with the user's value.
  set.Variables = (set.Variables as Json[])
    .filter((v) => v.Name !== 'OctopusDr.MasterKey.ExpectedKeyId')
    .concat([{ Id: 'old-1', Name: 'OctopusDr.Restore.ExpectedKeyId', Value: '41252bd34faf3857', Type: 'String', IsSensitive: false, Scope: {} }]);
  const again = await publish();
  expect(again.exitCode).toBe(0);
  expect(again.stdout).toMatch(/created +variable OctopusDr\.MasterKey\.ExpectedKeyId \(copied from OctopusDr\.Restore\.ExpectedKeyId, its earlier name\)/);
  expect(again.stdout).toContain('WARNING: OctopusDr.Restore.ExpectedKeyId is now OctopusDr.MasterKey.ExpectedKeyId: its value was copied.');
  const values = (space().variableSets.get('variableset-Projects-1')!.Variables as Json[]).filter((v) => /ExpectedKeyId$/.test(v.Name) && !v.Scope?.Action);
  expect(values.map((v) => [v.Name, v.Value])).toEqual([
    ['OctopusDr.Restore.ExpectedKeyId', '41252bd34faf3857'],
    ['OctopusDr.MasterKey.ExpectedKeyId', '41252bd34faf3857'],
  ]);
  // The restore's key check now reads it under the one name.
  const check = processOf('Restore Octopus').Steps[0].Actions[0].Properties;
  expect(check).not.toHaveProperty('OctopusDr.MasterKey.ExpectedKeyId');
});

test('the earlier --server and OCTOPUS_API_KEY still publish, each with a warning naming the new spelling', async () => {
  let stdout = '';
  let stderr = '';
  const { exitCode } = await runPublishCli(
    ['--server', simulator.url, '--environment', 'Production', '--restore-environment', 'Standby', '--templates-dir', templates, '--dry-run'],
    { OCTOPUS_API_KEY: API_KEY },
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  );
  expect(exitCode).toBe(0);
  expect(stderr).toBe(
    'WARNING: --server is deprecated and will be removed: use --server-url instead.\n' +
      'WARNING: OCTOPUS_API_KEY is deprecated and will be removed: use OCTOPUSDR_OCTOPUS_APIKEY instead.\n',
  );
  expect(stdout + stderr).not.toContain(API_KEY);
});

describe('actionable errors', () => {
  test('the API key is never taken from a flag, and a missing key says where to put it', async () => {
    const flag = await publish(['--api-key', API_KEY]);
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toMatch(/not accepted on the command line.*OCTOPUSDR_OCTOPUS_APIKEY.*--api-key-file/);
    const none = await publish([], {});
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/No API key: set OCTOPUSDR_OCTOPUS_APIKEY, or pass --api-key-file/);
    expect(simulator.requests).toEqual([]);
  });

  test('unreachable server', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    let stderr = '';
    const { exitCode } = await runPublishCli(['--server-url', `http://127.0.0.1:${port}`, '--templates-dir', templates], { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY }, { stdout: () => undefined, stderr: (t) => (stderr += t) });
    expect(exitCode).toBe(1);
    expect(stderr).toMatch(new RegExp(`Cannot reach the Octopus Server at http://127.0.0.1:${port} while connecting: the connection was refused.*ECONNREFUSED`));
    expect(stderr).not.toContain(API_KEY);
  });

  test('a server that quotes the API key in another letter case does not get it printed (red team 38)', async () => {
    const http = require('node:http') as typeof import('node:http');
    const server = http.createServer((request, response) => {
      const key = String(request.headers['x-octopus-apikey'] ?? '').toLowerCase();
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ ErrorMessage: `The API key ${key} is not valid here`, Errors: [`key ${key}`] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    let output = '';
    try {
      const { exitCode } = await runPublishCli(['--server-url', `http://127.0.0.1:${port}`, '--templates-dir', templates], { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY }, { stdout: (t) => (output += t), stderr: (t) => (output += t) });
      expect(exitCode).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(output).toContain('********');
    expect(output.toLowerCase()).not.toContain(API_KEY.toLowerCase());
  });

  test('401: the key is rejected, and the message says where the key came from', async () => {
    const { exitCode, stderr } = await publish([], { OCTOPUSDR_OCTOPUS_APIKEY: 'API-NOTAVALIDKEY' });
    expect(exitCode).toBe(1);
    // Earlier tests in this file leave the space id in the api-client's process-wide cache.
    expect(stderr).toMatch(/rejected the API key \(401 Unauthorized\) while (looking up the space "Default"|listing environments).*OCTOPUSDR_OCTOPUS_APIKEY environment variable/);
    expect(stderr).not.toContain('API-NOTAVALIDKEY');
  });

  test('403: names the missing permission', async () => {
    const { exitCode, stderr } = await publish([], { OCTOPUSDR_OCTOPUS_APIKEY: LIMITED_KEY });
    expect(exitCode).toBe(1);
    expect(stderr).toMatch(/lacks the Octopus permission ActionTemplateCreate \(403 Forbidden\) while creating the step template/);
    expect(stderr).not.toContain(LIMITED_KEY);
  });

  test('unknown space and unknown environment list what exists', async () => {
    const space = await publish(['--space', 'default']);
    expect(space.exitCode).toBe(1);
    expect(space.stderr).toMatch(/There is no space named "default" .*case-sensitive.*Spaces this API key can see: "Default", "Operations"/);
    const environment = await publish(['--environment', 'Prod']);
    expect(environment.stderr).toMatch(/Unknown environment "Prod" \(--environment\)\. Environments in this space: "Development", "Production", "Standby"/);
    expect(simulator.writes()).toEqual([]);
  });

  test('server too old', async () => {
    await simulator.stop();
    await startSimulator({ version: '2021.1.7500' });
    const { exitCode, stderr } = await publish();
    expect(exitCode).toBe(1);
    expect(stderr).toMatch(/is version 2021\.1\.7500; octopus-dr needs 2022\.3\.0 or newer/);
  });

  test('no built templates: says how to build them', async () => {
    const { exitCode, stderr } = await publish(['--templates-dir', '/nonexistent/octopus-dr']);
    expect(exitCode).toBe(1);
    expect(stderr).toMatch(/No built templates in \/nonexistent\/octopus-dr\. Run `npm run build` first/);
  });

  test('an API key given to --api-key-file instead of a file name is never repeated (red team 38)', async () => {
    const { exitCode, stdout, stderr } = await publish(['--api-key-file', API_KEY], {});
    expect(exitCode).toBe(2);
    expect(stderr).toMatch(/Cannot read the file given to --api-key-file \(ENOENT: no such file\)\. The value is not shown: it may be the secret itself/);
    expect(stdout + stderr).not.toContain(API_KEY);
    expect(simulator.requests).toEqual([]);
  });

  test('--api-key-file is read, and a key from a file is never printed', async () => {
    const file = `${writeFixtureTemplates()}/../key.txt`;
    require('node:fs').writeFileSync(file, `${API_KEY}\n`, { mode: 0o600 });
    const { exitCode } = await publish(['--api-key-file', file, '--dry-run'], {});
    expect(exitCode).toBe(0);
  });
});
