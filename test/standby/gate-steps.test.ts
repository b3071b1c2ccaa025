// The version gate in the built restore steps (Restore SQL Database, Test Latest Backup, Restore File
// Store) against the SQL Server simulator, with the standby's version given or read from the Octopus
// simulator's GET /api. A refusal must come before any RESTORE reaches SQL Server.
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Lab, octopusTables, restore, backup, type StepRun } from '../database/harness';
import { makeStore, runBundle, tempDir } from '../file-store/helpers';
import { OctopusSimulator } from '../octopus-simulator/simulator';

const lab = new Lab();
let backups: string;
/** What the seeded OctopusServerInstallationHistory makes the backup record (its newest row). */
const BACKUP_VERSION = '2026.1.5021';

beforeAll(async () => {
  await lab.start({}, [{ name: 'Octo', recoveryModel: 'FULL', tables: octopusTables() }]);
  backups = path.join(lab.root, 'gate');
  mkdirSync(backups);
  const run = await backup(lab, 'Octo', '--backup-directory', backups);
  expect(run.code).toBe(0);
  expect(lab.readManifest(path.basename(run.outputs.ManifestPath), backups).octopusVersion).toBe(BACKUP_VERSION);
}, 60_000);
afterAll(() => lab.stop());

/** The statements SQL Server received while `action` ran. */
async function requestsDuring(action: () => Promise<StepRun>): Promise<{ run: StepRun; requests: string[] }> {
  const seen = lab.sim.events.length;
  const run = await action();
  const requests = lab.sim.events.slice(seen).filter((e) => e.kind === 'request').map((e) => e.detail ?? '');
  return { run, requests };
}

const restores = (requests: string[]) => requests.filter((r) => /RESTORE\s+(DATABASE|LOG)\b/i.test(r));

describe('Restore SQL Database', () => {
  test('a backup from a newer Octopus than the standby is refused before any RESTORE', async () => {
    const { run, requests } = await requestsDuring(() => restore(lab, '--source', backups, '--target-database', 'Octo-newer', '--standby-octopus-version', '2025.4.100'));
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`is from Octopus ${BACKUP_VERSION.replace(/\./g, '\\.')}, newer than the standby's Octopus 2025\\.4\\.100.*nothing was restored`));
    expect(restores(requests)).toEqual([]);
    expect(lab.sim.model.database('Octo-newer')).toBeUndefined();
  });

  test('a backup from an older Octopus is restored, with a warning that the standby upgrades the schema', async () => {
    const run = await restore(lab, '--source', backups, '--target-database', 'Octo-older', '--standby-octopus-version', '2026.2.100');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/##octopus\[stdout-warning\]\nThe backup \(.*\) is from Octopus 2026\.1\.5021, older than the standby's Octopus 2026\.2\.100/);
    expect(lab.sim.model.database('Octo-older')).toBeDefined();
  });

  test('no standby parameters: no check, no word about it', async () => {
    const run = await restore(lab, '--source', backups, '--target-database', 'Octo-unchecked', '--dry-run');
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/standby/i);
  });

  test('a standby version that is not a version is a parameter error (exit 2) before connecting', async () => {
    const { run, requests } = await requestsDuring(() => restore(lab, '--source', backups, '--standby-octopus-version', 'latest'));
    expect(run.code).toBe(2);
    expect(run.stdout + run.stderr).toContain('"Standby Octopus version" must be an Octopus version as shown in Octopus under Configuration > About, e.g. 2025.4.100, not "latest"');
    expect(requests).toEqual([]);
  });

  describe('with the standby read through its API (Octopus simulator)', () => {
    let octopus: OctopusSimulator;
    afterEach(() => octopus?.stop());

    test('an older standby is read from GET /api and refused; the API key given for it is never printed', async () => {
      octopus = new OctopusSimulator({ version: '2025.3.12345' });
      const url = await octopus.start();
      const { run, requests } = await requestsDuring(() =>
        lab.run('restore-database', 'master', ['--source', backups, '--target-database', 'Octo-api', '--standby-server-url', url], {
          env: { OCTOPUSDR_OCTOPUS_APIKEY: 'API-STANDBYKEY0000000000000000' },
        }),
      );
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`newer than the standby's Octopus 2025.3.12345 (read from ${url}/api)`);
      expect(octopus.requests.map((r) => `${r.method} ${r.url}`)).toContain('GET /api');
      expect(restores(requests)).toEqual([]);
      expect(run.stdout + run.stderr).not.toContain('API-STANDBYKEY');
    });

    test('the same version read from GET /api passes and says so', async () => {
      octopus = new OctopusSimulator({ version: BACKUP_VERSION });
      const url = await octopus.start();
      const run = await restore(lab, '--source', backups, '--target-database', 'Octo-same', '--standby-server-url', url, '--dry-run');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`and the standby both run Octopus ${BACKUP_VERSION} (read from ${url}/api)`);
    });
  });
});

describe('Test Latest Backup', () => {
  test('a backup from a newer Octopus fails the test before any RESTORE; the report says restore not run', async () => {
    const reportDirectory = tempDir('octopus-dr-gate-report-');
    const { run, requests } = await requestsDuring(() =>
      lab.run('test-restore', 'master', ['--source', backups, '--report-directory', reportDirectory, '--standby-octopus-version', '2025.4.100'], {
        env: { OCTOPUSDR_MASTERKEY: Buffer.alloc(32, 7).toString('base64') },
      }),
    );
    expect(run.code).toBe(1);
    expect(restores(requests)).toEqual([]);
    const json = run.artifacts.find((a) => a.endsWith('.json'))!;
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.restore.status).toBe('not run');
    expect(report.failures).toEqual([expect.stringMatching(/^Database backup: The backup \(.*\) is from Octopus 2026\.1\.5021, newer than the standby's Octopus 2025\.4\.100/)]);
  });
});

describe('Restore File Store', () => {
  test('a file-store set records no Octopus version: the gate says so and leaves it to the database restore', async () => {
    const home = tempDir('octopus-dr-gate-home-');
    makeStore(home);
    const fileStoreBackups = tempDir('octopus-dr-gate-fs-');
    expect((await runBundle('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', fileStoreBackups])).code).toBe(0);
    const target = tempDir('octopus-dr-gate-target-');
    const run = await runBundle('restore-file-store', ['--source', fileStoreBackups, '--home-directory', target, '--standby-octopus-version', '2025.4.100', '--dry-run']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/WARNING: octopus-file-store-.*\.zip records no Octopus version .*Restore SQL Database with the same standby parameters/);
    const bad = await runBundle('restore-file-store', ['--source', fileStoreBackups, '--home-directory', target, '--standby-server-url', 'ftp://standby']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"Standby Octopus Server URL"');
  });
});
