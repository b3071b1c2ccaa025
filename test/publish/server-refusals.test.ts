// What a real Octopus Server refuses and the publisher must explain, against the simulator (which
// refuses it the same way): an unknown schedule time zone, a project whose runbooks are in Git, a
// request body over the server's cap, and templates linked to the Community Library. Each is found
// before the first write where it can be.
import { connectToOctopus, OctopusApiError } from '../../steps/engines/octopus/connection';
import { runPublishCli } from '../../scripts/publish/index';
import { OctopusSpace } from '../../scripts/publish/octopus';
import { closeTimezones } from '../../scripts/publish/publish';
import { OctopusSimulator, type SimulatorOptions } from '../octopus-simulator/simulator';
import { writeFixtureTemplates } from './fixtures';

const API_KEY = 'API-REFUSALS00000000000000000000';

let simulator: OctopusSimulator;
let templates: string;

async function startSimulator(options: SimulatorOptions = {}): Promise<void> {
  simulator = new OctopusSimulator({ environments: ['Production', 'Standby'], apiKeys: { [API_KEY]: { user: 'admin', permissions: 'all' } }, ...options });
  await simulator.start();
}

beforeEach(async () => {
  templates = writeFixtureTemplates();
  await startSimulator();
});

afterEach(() => simulator.stop());

async function publish(extra: string[] = []) {
  let stdout = '';
  let stderr = '';
  const { exitCode } = await runPublishCli(
    ['--server-url', simulator.url, '--environment', 'Production', '--restore-environment', 'Standby', '--templates-dir', templates, ...extra],
    { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY },
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  );
  expect(stdout + stderr).not.toContain(API_KEY);
  return { exitCode, stdout, stderr };
}

const space = () => simulator.state.spaces[0];

describe('--timezone is checked against the server (GET /api/serverstatus/timezones)', () => {
  test('an unknown id is refused with exit 2 before any write, listing close matches', async () => {
    const { exitCode, stderr } = await publish(['--timezone', 'GMT Standrad Time']);
    expect(exitCode).toBe(2);
    expect(stderr).toMatch(/--timezone "GMT Standrad Time" is not a time zone this Octopus Server knows\. Close matches: "GMT Standard Time" \(\(UTC\+00:00\) Dublin, Edinburgh, Lisbon, London\)/);
    expect(stderr).toMatch(/api\/serverstatus\/timezones \(5 listed/);
    expect(simulator.requests.some((r) => r.url === '/api/serverstatus/timezones')).toBe(true);
    expect(simulator.writes()).toEqual([]);
  });

  test('a city finds its zone by display name; nothing close says so', async () => {
    const city = await publish(['--timezone', 'London']);
    expect(city.exitCode).toBe(2);
    expect(city.stderr).toMatch(/Close matches: "GMT Standard Time"/);
    const nothing = await publish(['--timezone', 'Mars/Olympus_Mons']);
    expect(nothing.exitCode).toBe(2);
    expect(nothing.stderr).not.toMatch(/Close matches/);
    expect(simulator.writes()).toEqual([]);
  });

  test("a known id in another case is accepted and the triggers get the server's spelling", async () => {
    const { exitCode } = await publish(['--timezone', 'w. europe standard time']);
    expect(exitCode).toBe(0);
    expect(space().triggers.map((t) => t.Filter.Timezone)).toEqual(['W. Europe Standard Time', 'W. Europe Standard Time']);
  });

  test('close matches: near misses of the id, then words of the display name', () => {
    const zones = [
      { Id: 'UTC', Name: '(UTC) Coordinated Universal Time' },
      { Id: 'Eastern Standard Time', Name: '(UTC-05:00) Eastern Time (US & Canada)' },
      { Id: 'Europe/London', Name: 'Europe/London' },
    ];
    expect(closeTimezones('Eastern Time', zones).map((z) => z.Id)).toEqual(['Eastern Standard Time']);
    expect(closeTimezones('europe/londen', zones).map((z) => z.Id)).toEqual(['Europe/London']);
    expect(closeTimezones('Z', zones)).toEqual([]);
  });
});

describe('a project whose runbooks are stored in Git', () => {
  test('is refused before any write, with the way out', async () => {
    simulator.addVersionControlledProject('Octopus DR', { runbooksInGit: true });
    for (const extra of [[], ['--dry-run']]) {
      const { exitCode, stderr } = await publish(extra);
      expect(exitCode).toBe(2);
      expect(stderr).toMatch(/The project "Octopus DR" is version-controlled and keeps its runbooks in Git.*nothing was changed\. Publish into another project \(e\.g\. --project "Octopus DR \(database\)"/);
      expect(stderr).toMatch(/or use a project whose runbooks are stored in the database/);
    }
    expect(simulator.writes()).toEqual([]);
    expect(space().actionTemplates).toEqual([]);
  });

  test('a version-controlled project that keeps its runbooks in the database is published into', async () => {
    simulator.addVersionControlledProject('Octopus DR', { runbooksInGit: false, variablesInGit: false });
    const { exitCode, stderr } = await publish();
    expect(stderr).toBe('');
    expect(exitCode).toBe(0);
    expect(space().runbooks.map((r) => r.Name)).toEqual(['Back up Octopus', 'Test Octopus backups', 'Restore Octopus']);
  });

  test('another --project name is created with its runbooks in the database', async () => {
    simulator.addVersionControlledProject('Octopus DR', { runbooksInGit: true });
    const { exitCode } = await publish(['--project', 'Octopus DR (database)']);
    expect(exitCode).toBe(0);
    expect(space().projects.find((p) => p.Name === 'Octopus DR (database)')).toMatchObject({ IsVersionControlled: false, PersistenceSettings: { Type: 'Database' } });
  });
});

test('a request body over the server cap (413) names webMaxRequestBodySizeInBytes and the size needed', async () => {
  // Measure what a publish sends, then cap the server between the largest template and the largest process.
  await publish();
  const sizes = (pattern: RegExp) => simulator.writes().filter((w) => pattern.test(w.url)).map((w) => w.bytes);
  const largestTemplate = Math.max(...sizes(/actiontemplates/));
  const largestProcess = Math.max(...sizes(/runbookProcesses/));
  expect(largestProcess).toBeGreaterThan(largestTemplate);
  await simulator.stop();
  await startSimulator({ maxRequestBodyBytes: largestTemplate + 1 });
  const { exitCode, stderr } = await publish();
  expect(exitCode).toBe(1);
  const refused = simulator.requests.find((r) => r.status === 413)!;
  expect(refused.url).toMatch(/runbookProcesses/);
  expect(stderr).toContain(`refused the request while updating the process of "Back up Octopus" as too large (413 Payload Too Large): its body is ${refused.bytes} bytes`);
  expect(stderr).toMatch(/webMaxRequestBodySizeInBytes \(Octopus 2026\.1 and later.*Raise the cap to at least \d+ bytes/);
  expect(stderr).not.toMatch(/Unexpected error/);
});

describe('a template linked to the Community Library', () => {
  const changeMaintenanceTemplate = () =>
    writeFixtureTemplates({
      directory: templates,
      omit: ['backup-database', 'backup-file-store', 'verify-master-key', 'test-restore', 'restore-database', 'restore-file-store', 'check-worker'],
      scriptSuffix: '; Write-Host changed',
    });

  test('that needs an update stops the publish before any write, saying what to do', async () => {
    await publish();
    space().actionTemplates.find((t) => t.Name === 'Octopus DR - Set Maintenance Mode')!.CommunityActionTemplateId = 'CommunityActionTemplates-1001';
    templates = changeMaintenanceTemplate();
    simulator.resetRequestLog();
    const { exitCode, stderr } = await publish();
    expect(exitCode).toBe(1);
    expect(stderr).toMatch(/"Octopus DR - Set Maintenance Mode" in this space is linked to the Octopus Community Library.*Only custom templates can be directly updated.*Usage/);
    expect(simulator.writes()).toEqual([]);
  });

  test("Octopus's refusal of a direct update is recognised and explained", async () => {
    await publish();
    const template = space().actionTemplates.find((t) => t.Name === 'Octopus DR - Set Maintenance Mode')!;
    template.CommunityActionTemplateId = 'CommunityActionTemplates-1001';
    const connection = await connectToOctopus({ serverUrl: simulator.url, apiKey: API_KEY, userAgentApp: 'test', apiKeySource: 'test' });
    const octopus = await OctopusSpace.open(connection, 'Default', 'test');
    const error = await octopus.updateTemplate({ ...template, CommunityActionTemplateId: null } as never, { Name: template.Name, Description: 'new' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OctopusApiError);
    expect((error as Error).message).toMatch(/is linked to the Octopus Community Library.*take the Library's version.*or, to publish this build's own version, delete the linked template/);
    expect(simulator.requests.at(-1)).toMatchObject({ method: 'PUT', status: 400 });
  });
});
