// Leftover cleanup in Back Up SQL Database deletes only what a killed run of its own started
// (red team 38). A backup file named as octopus-dr names them, without a manifest, is deleted only
// when a record of the start (`.octopus-dr-started-<stem>.json`, written before BACKUP) names it
// and the run it names is gone; any other such file (a DBA copied an old backup back in, and the
// copy tool kept its 8-day-old time) is named in one warning and left, and a restore can use it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ABANDONED_AFTER_MS } from '../../steps/runtime/leftovers';
import { STARTED_MARKER_FORMAT, startedMarkerName } from '../../steps/engines/database-backup/started-marker';
import { backup, Lab, octopusTables, restore } from '../database/harness';
import { bundlePath } from '../file-store/helpers';

const lab = new Lab();
beforeAll(() => lab.start({}, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]));
afterAll(() => lab.stop());

const DAY = 24 * 3600 * 1000;
const ageBy = (file: string, ms: number) => {
  const then = new Date(Date.now() - ms);
  utimesSync(file, then, then);
};
/** A process id that no longer runs. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}
const markers = () => readdirSync(lab.backups).filter((n) => n.startsWith('.octopus-dr-started-'));

test('a restorable .bak copied in without its manifest (its old time kept) is named once and kept, and restores', async () => {
  const first = await backup(lab, 'Octopus');
  expect(first.code).toBe(0);
  const manifest = first.outputs.ManifestPath;
  const bak = path.join(lab.backups, path.basename(manifest).replace('.manifest.json', '.bak'));
  // As a copy tool leaves it: the manifest not copied, the file's time kept (8 days old).
  renameSync(manifest, path.join(lab.root, 'moved-away.manifest.json'));
  ageBy(bak, 8 * DAY);
  const bytes = readFileSync(bak);

  const second = await backup(lab, 'Octopus');
  expect(second.code).toBe(0);
  expect(existsSync(bak)).toBe(true);
  expect(readFileSync(bak).equals(bytes)).toBe(true);
  expect(second.stdout).not.toContain(`Deleted ${bak}`);
  expect(second.stdout).not.toContain('It was never a backup.');
  const warnings = second.stdout.split('\n').filter((l) => l.includes(bak));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('with no manifest and no record that an octopus-dr backup started it, so it is left alone');
  expect(warnings[0]).toContain('Move it out of this folder once no restore needs it');
  // No record of a start is left behind by the successful runs.
  expect(markers()).toEqual([]);

  // A third run (any number of runs, however old the file) still keeps it; and a restore uses it.
  ageBy(bak, 30 * DAY);
  expect((await backup(lab, 'Octopus')).code).toBe(0);
  expect(existsSync(bak)).toBe(true);
  const dry = await restore(lab, '--source', bak, '--target-database', 'Octopus_check', '--dry-run');
  expect(dry.code).toBe(0);
});

test("a killed run's files (named by its record of the start, its process gone) are named while young, deleted after the age guard with the record, and never read", async () => {
  const good = await backup(lab, 'Octopus');
  expect(good.code).toBe(0);
  const stem = `Octopus_FULL_20261101T000000Z_0badc0`;
  const killedBak = path.join(lab.backups, `${stem}.bak`);
  const marker = path.join(lab.backups, startedMarkerName(stem));
  const partialMarker = path.join(lab.backups, `.${startedMarkerName('Octopus_LOG_20261101T000000Z_0badc1')}.0badc0de.partial`);
  writeFileSync(killedBak, 'half a backup');
  writeFileSync(partialMarker, '{"format":');
  const holder = { tool: 'octopus-dr', host: os.hostname(), pid: deadPid(), step: 'backup-database', resource: "backups of database 'Octopus'", since: new Date().toISOString(), token: 'feedfacefeedface' };
  writeFileSync(marker, JSON.stringify({ format: STARTED_MARKER_FORMAT, stem, lockKey: 'database-octopus', holder, files: [`${stem}.bak`] }));

  // A restore of the folder never reads it (it would fail reading its header, or worse).
  const dry = await restore(lab, '--source', lab.backups, '--target-database', 'Octopus_check', '--dry-run');
  expect(dry.code).toBe(0);
  expect(dry.stdout + dry.stderr).not.toContain(`${stem}.bak`);

  const young = await backup(lab, 'Octopus');
  expect(young.code).toBe(0);
  expect(young.stdout).toContain(`${killedBak} was left by a database backup (its record of starting names it, and it has no manifest) that was stopped`);
  expect(existsSync(killedBak)).toBe(true);
  expect(existsSync(marker)).toBe(true);

  ageBy(killedBak, ABANDONED_AFTER_MS + 60_000);
  ageBy(partialMarker, ABANDONED_AFTER_MS + 60_000);
  const old = await backup(lab, 'Octopus');
  expect(old.code).toBe(0);
  expect(old.stdout).toContain(`Deleted ${killedBak}, left by a database backup (its record of starting names it, and it has no manifest) that was stopped before it finished`);
  expect(old.stdout).toContain(`Deleted ${marker}, the record of a backup that was stopped before it finished`);
  expect(old.stdout).toContain(`Deleted ${partialMarker}, left by a database backup`);
  for (const f of [killedBak, marker, partialMarker]) expect(existsSync(f)).toBe(false);
  expect(markers()).toEqual([]);
});

test("a record whose process still runs, or of another database's lock, keeps its files; a record beside a complete set is removed", async () => {
  const alive = `Octopus_FULL_20261102T000000Z_0a11fe`;
  const other = `Octopus_FULL_20261103T000000Z_07e7e7`;
  const holder = (pid: number, token: string) => ({ tool: 'octopus-dr', host: os.hostname(), pid, step: 'backup-database', resource: 'x', since: new Date().toISOString(), token });
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    writeFileSync(path.join(lab.backups, startedMarkerName(alive)), JSON.stringify({ format: STARTED_MARKER_FORMAT, stem: alive, lockKey: 'database-octopus', holder: holder(sleeper.pid!, 'aaaaaaaaaaaaaaaa'), files: [`${alive}.bak`] }));
    writeFileSync(path.join(lab.backups, startedMarkerName(other)), JSON.stringify({ format: STARTED_MARKER_FORMAT, stem: other, lockKey: 'database-someother', holder: holder(deadPid(), 'bbbbbbbbbbbbbbbb'), files: [`${other}.bak`] }));
    for (const stem of [alive, other]) {
      writeFileSync(path.join(lab.backups, `${stem}.bak`), 'being written');
      ageBy(path.join(lab.backups, `${stem}.bak`), ABANDONED_AFTER_MS + 60_000);
    }
    const run = await backup(lab, 'Octopus');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`records a backup by process ${sleeper.pid} on ${os.hostname()}, which still runs; its files are left alone`);
    for (const stem of [alive, other]) {
      expect(existsSync(path.join(lab.backups, `${stem}.bak`))).toBe(true);
      expect(existsSync(path.join(lab.backups, startedMarkerName(stem)))).toBe(true);
    }
  } finally {
    sleeper.kill();
  }

  // Killed after the manifest was renamed into place, before the record was removed: the set is kept, the record goes.
  const done = await backup(lab, 'Octopus');
  const doneStem = path.basename(done.outputs.ManifestPath, '.manifest.json');
  const doneMarker = path.join(lab.backups, startedMarkerName(doneStem));
  writeFileSync(doneMarker, '{}');
  expect((await backup(lab, 'Octopus')).code).toBe(0);
  expect(existsSync(doneMarker)).toBe(false);
  expect(existsSync(done.outputs.ManifestPath)).toBe(true);
  expect(existsSync(path.join(lab.backups, `${doneStem}.bak`))).toBe(true);
});

test('SIGKILL mid-BACKUP: the record names the files, the next run names them, deletes them after the age guard, and a restore never reads them', async () => {
  const dir = path.join(lab.root, 'killed');
  mkdirSync(dir);
  const child = spawn(process.execPath, [bundlePath('backup-database'), '--backup-directory', dir], {
    env: { PATH: process.env.PATH, OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('Octopus') },
    stdio: 'ignore',
  });
  const killed = await new Promise<NodeJS.Signals | null>((resolve) => {
    const poll = setInterval(() => {
      const names = readdirSync(dir);
      if (names.some((n) => n.startsWith('.octopus-dr-started-')) && names.some((n) => n.endsWith('.bak'))) {
        clearInterval(poll);
        child.kill('SIGKILL');
      }
    }, 2);
    child.on('close', (_code, signal) => {
      clearInterval(poll);
      resolve(signal);
    });
  });
  expect(killed).toBe('SIGKILL');
  await new Promise((r) => setTimeout(r, 500)); // the simulator notices the dropped connection
  const left = readdirSync(dir);
  const record = left.find((n) => n.startsWith('.octopus-dr-started-'))!;
  expect(record).toBeDefined();
  expect(left.filter((n) => n.endsWith('.manifest.json'))).toEqual([]);
  const files = JSON.parse(readFileSync(path.join(dir, record), 'utf8')).files as string[];
  expect(files).toHaveLength(1);
  expect(left).toContain(files[0]);

  // Young: named, left alone (SQL Server may still be writing it).
  const young = await backup(lab, 'Octopus', '--backup-directory', dir);
  expect(young.code).toBe(0);
  expect(young.stdout).toContain(`${path.join(dir, files[0])} was left by a database backup (its record of starting names it`);
  expect(existsSync(path.join(dir, files[0]))).toBe(true);

  ageBy(path.join(dir, files[0]), ABANDONED_AFTER_MS + 60_000);
  const next = await backup(lab, 'Octopus', '--backup-directory', dir);
  expect(next.code).toBe(0);
  expect(next.stdout).toContain(`Deleted ${path.join(dir, files[0])}, left by a database backup`);
  expect(existsSync(path.join(dir, files[0]))).toBe(false);
  expect(readdirSync(dir).filter((n) => n.startsWith('.octopus-dr-started-'))).toEqual([]);
  const dry = await restore(lab, '--source', dir, '--target-database', 'Octopus_check2', '--dry-run');
  expect(dry.code).toBe(0);
  for (const f of files) expect(dry.stdout + dry.stderr).not.toContain(f);
}, 60_000);
