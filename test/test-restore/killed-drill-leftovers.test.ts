// A drill killed while it wrote its report (SIGKILL, a lost worker) leaves the report's, the HTML
// page's or the DR record's temporary file (`.<name>.<hex>.partial`), or the report folder's write
// probe, beside the backups or in the report directory. Nothing else removes them: the next drill
// names each one, deletes those nothing has written to for 6 hours, names and keeps younger ones
// (they may be a drill still running), never reads them, and leaves files that are not its own.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { keyIdOf } from '../../steps/engines/master-key';
import { ABANDONED_AFTER_MS } from '../../steps/runtime/leftovers';
import { Lab, octopusTables } from '../database/harness';
import { tempDir } from '../file-store/helpers';
import { octopusDatabase } from '../master-key/octopus-database';

const KEY = randomBytes(32);
const lab = new Lab();
const directories: string[] = [];

beforeAll(async () => {
  const db = octopusDatabase({ name: 'Octopus', key: KEY, variableSets: 6, frozenVariableSets: 2, certificateTable: 'Configuration' });
  const have = new Set((db.seed.tables ?? []).map((t) => t.name.toLowerCase()));
  const tables = [...(db.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
  await lab.start({ operationMs: 50 }, [{ ...db.seed, name: 'Octopus', recoveryModel: 'FULL', tables }]);
  expect((await lab.run('backup-database', 'Octopus', ['--backup-type', 'Full', '--master-key-id', keyIdOf(KEY)])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await lab.stop();
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

function leftover(directory: string, name: string, ageMs: number): string {
  const file = path.join(directory, name);
  writeFileSync(file, name.includes('.json') ? '{"format":"octopus-dr/test-restore-report/v1","result":"PA' : 'half');
  const then = new Date(Date.now() - ageMs);
  utimesSync(file, then, then);
  return file;
}

test('leftovers of a drill killed while writing its report are named and removed by the next drill; young ones and other files are kept', async () => {
  const reports = tempDir('octopus-dr-tr-leftovers-');
  directories.push(reports);
  const old = ABANDONED_AFTER_MS + 60_000;
  const killed = [
    leftover(reports, '.octopus-dr-test-restore-20261101T040000Z.json.0a1b2c3d.partial', old),
    leftover(reports, '.octopus-dr-test-restore-20261101T040000Z-2.html.4e5f6a7b.partial', old),
    leftover(reports, '.octopus-dr-write-probe-deadbeef', old),
    // The DR record lives beside the backups.
    leftover(lab.backups, '.octopus-dr-test-history.jsonl.1234abcd.partial', old),
    leftover(lab.backups, '.octopus-dr-test-restore-20261101T040000Z.html.89abcdef.partial', old),
  ];
  const young = leftover(reports, '.octopus-dr-test-restore-20261101T050000Z.json.00ff00ff.partial', 60_000);
  const notOurs = [leftover(reports, '.someone-elses.json.0a1b2c3d.partial', old), leftover(lab.backups, 'octopus-dr-test-restore-notes.txt', old)];

  const run = await lab.run('test-restore', 'master', ['--source', lab.backups, '--report-directory', reports], { env: { OCTOPUSDR_MASTERKEY: KEY.toString('base64') } });
  expect(run.code).toBe(0);
  expect(run.outputs.Result).toBe('PASS');
  for (const file of killed) {
    expect(existsSync(file)).toBe(false);
    expect(run.stdout).toContain(`Deleted ${file}, left by a test restore (Test Latest Backup) that was stopped before it finished`);
  }
  expect(existsSync(young)).toBe(true);
  expect(run.stdout).toContain(`${young} was left by a test restore (Test Latest Backup) that was stopped, or belongs to one still running`);
  for (const file of notOurs) {
    expect(existsSync(file)).toBe(true);
    expect(run.stdout).not.toContain(file);
  }
  // The drill's own report, page and DR record are in place, and no temporary file of its own is left.
  expect(readdirSync(reports).filter((n) => /^octopus-dr-test-restore-.*\.(json|html)$/.test(n))).toHaveLength(2);
  expect(readdirSync(reports).filter((n) => n.endsWith('.partial')).sort()).toEqual([path.basename(notOurs[0]), path.basename(young)].sort());
  expect(readdirSync(lab.backups).filter((n) => n.endsWith('.partial'))).toEqual([]);
}, 120_000);
