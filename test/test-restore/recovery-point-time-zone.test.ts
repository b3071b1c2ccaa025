// The recovery point (how old the newest backup is) when the drill's SQL Server is in another time
// zone than the server that took the backup: a test server in another region, a standby restored
// from an offsite copy. SQL Server records a backup's start and finish in its own local time, with
// no offset; the drill server's SYSDATETIME() is in its own. Compared as they are, a backup taken in
// Sydney (UTC+10) and tested in UTC reads 10 hours younger than it is: 30 hours old passed a
// 26-hour limit with exit 0. The manifest's takenAt is UTC; the age is measured in UTC from it.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { keyIdOf } from '../../steps/engines/master-key';
import { Lab, octopusTables } from '../database/harness';
import { tempDir } from '../file-store/helpers';
import { octopusDatabase } from '../master-key/octopus-database';

const KEY = randomBytes(32);
const HOUR = 3_600_000;
const lab = new Lab();
const directories: string[] = [];

beforeAll(async () => {
  const db = octopusDatabase({ name: 'Octopus', key: KEY, variableSets: 6, frozenVariableSets: 2, certificateTable: 'Configuration' });
  const have = new Set((db.seed.tables ?? []).map((t) => t.name.toLowerCase()));
  const tables = [...(db.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
  await lab.start({ operationMs: 50 }, [{ ...db.seed, name: 'Octopus', recoveryModel: 'FULL', tables }]);
}, 120_000);

afterAll(async () => {
  await lab.stop();
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

async function drill(): Promise<{ code: number | null; outputs: Record<string, string>; report: Record<string, any> }> {
  const reports = tempDir('octopus-dr-tr-tz-');
  directories.push(reports);
  const run = await lab.run('test-restore', 'master', ['--source', lab.backups, '--report-directory', reports, '--max-age-hours', '26'], {
    env: { OCTOPUSDR_MASTERKEY: KEY.toString('base64') },
  });
  const json = run.artifacts.find((a) => a.endsWith('.json'))!;
  return { code: run.code, outputs: run.outputs, report: JSON.parse(readFileSync(json, 'utf8')) };
}

test('a backup taken on a server in UTC+10 and tested 30 hours later on a server in UTC fails a 26-hour maximum age', async () => {
  // Taken in Sydney: the header's times are UTC+10.
  lab.sim.model.utcOffsetMs = 10 * HOUR;
  expect((await lab.run('backup-database', 'Octopus', ['--backup-type', 'Full', '--master-key-id', keyIdOf(KEY)])).code).toBe(0);
  try {
    // Tested 30 hours later on a server whose clock is in UTC.
    lab.sim.model.utcOffsetMs = 0;
    lab.sim.model.clockOffsetMs = 30 * HOUR;
    const late = await drill();
    expect(late.report.backup.ageHours).toBeGreaterThanOrEqual(29.9);
    expect(late.report.backup.ageHours).toBeLessThan(30.5);
    expect(late.report.backup.recoveryPoint).toBe('failed');
    expect(late.outputs.Result).toBe('FAIL');
    expect(late.code).toBe(1);
    expect(late.report.failures.join('\n')).toMatch(/older than the 26-hour limit/);

    // And the other way: tested 2 hours after it was taken, on a server in UTC-8, it is 2 hours old, not 20.
    lab.sim.model.utcOffsetMs = -8 * HOUR;
    lab.sim.model.clockOffsetMs = 2 * HOUR;
    const fresh = await drill();
    expect(fresh.report.backup.ageHours).toBeGreaterThanOrEqual(1.9);
    expect(fresh.report.backup.ageHours).toBeLessThan(2.5);
    expect(fresh.report.backup.recoveryPoint).toBe('passed');
    expect(fresh.code).toBe(0);
  } finally {
    lab.sim.model.utcOffsetMs = 0;
    lab.sim.model.clockOffsetMs = 0;
  }
}, 120_000);
