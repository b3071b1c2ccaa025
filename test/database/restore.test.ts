// The built restore-database step against the SQL Server simulator: chains, point in time,
// refusals, replace with a safety backup, dry run, hostile names.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { planRestore, restoreWithRecovery, tryLockRestoreTarget } from '../../steps/engines/database-backup';
import { openSqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { backup, Lab, octopusTables, PASSWORD, restore } from './harness';

const lab = new Lab();
const HOSTILE = "Res]tore'd; DROP DATABASE master --ü";
const dir = (name: string) => {
  const d = path.join(lab.root, name);
  mkdirSync(d, { recursive: true });
  return d;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** ISO-8601 without offset: the simulator's "server local time" is UTC. */
const serverNow = () => new Date().toISOString().replace('Z', '');

async function take(database: string, directory: string, ...args: string[]): Promise<string> {
  const run = await backup(lab, database, '--backup-directory', directory, '--no-copy-only', ...args);
  expect(run.result).toMatch(/backup of/);
  expect(run.code).toBe(0);
  return run.outputs.ManifestPath;
}

let fullOnly: string;
let fullDiff: string;
let diffManifest: string;
let fullDiffLogs: string;

beforeAll(async () => {
  await lab.start({}, [
    { name: 'Octo', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'NotOcto', recoveryModel: 'FULL', tables: [{ name: 'Thing', columns: [{ name: 'Id', type: 'int' }], rows: [[1]] }] },
  ]);
  fullOnly = dir('full-only');
  await take('Octo', fullOnly);
  fullDiff = dir('full-diff');
  await take('Octo', fullDiff);
  lab.insertProject('Octo', 'Projects-2');
  diffManifest = await take('Octo', fullDiff, '--backup-type', 'Differential');
  fullDiffLogs = dir('full-diff-logs');
  await take('Octo', fullDiffLogs);
  lab.insertProject('Octo', 'Projects-3');
  await take('Octo', fullDiffLogs, '--backup-type', 'Differential');
  lab.insertProject('Octo', 'Projects-4');
  await take('Octo', fullDiffLogs, '--backup-type', 'Log');
  lab.insertProject('Octo', 'Projects-5');
  await take('Octo', fullDiffLogs, '--backup-type', 'Log');
}, 60_000);
afterAll(() => lab.stop());

test('full only: restored beside the original, files renamed after the target, multi-user, outputs', async () => {
  const run = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-full', '--check-db');
  expect(run.result).toMatch(/^Restored 'Octo-full' to \d{4}-\d\d-\d\dT/);
  expect(run.code).toBe(0);
  const db = lab.sim.model.database('Octo-full')!;
  expect(db.state).toBe('ONLINE');
  expect(db.userAccess).toBe('MULTI_USER');
  expect(db.files.map((f) => f.physicalName)).toEqual([path.join(lab.data, 'Octo-full.mdf'), path.join(lab.data, 'Octo-full_log.ldf')]);
  expect(lab.projectIds('Octo-full')).toEqual(['Projects-1']);
  expect(run.outputs).toMatchObject({ RestoredDatabase: 'Octo-full', CheckDb: 'passed' });
  expect(run.outputs.PointInTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$/);
  expect(run.progress[run.progress.length - 1]).toBe(100);
  expect(lab.projectIds('Octo')).toContain('Projects-5'); // the original is untouched
  for (const text of [run.stdout, run.stderr]) expect(text).not.toContain(PASSWORD);
});

test('full + differential, from the folder and from the differential\'s manifest', async () => {
  const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-diff');
  expect(run.code).toBe(0);
  expect(lab.projectIds('Octo-diff')).toEqual(['Projects-1', 'Projects-2']);
  const fromManifest = await restore(lab, '--source', diffManifest, '--target-database', 'Octo-diff-m', '--verbose');
  expect(fromManifest.code).toBe(0);
  expect(fromManifest.stdout).toMatch(/1\. Full[\s\S]*2\. Differential/);
  expect(lab.projectIds('Octo-diff-m')).toEqual(['Projects-1', 'Projects-2']);
});

test('the master key ID recorded at backup time is shown in the plan and output', async () => {
  const d = dir('with-key');
  await take('Octo', d, '--master-key-id', '41252bd34faf3857');
  const run = await restore(lab, '--source', d, '--target-database', 'Octo-key', '--dry-run');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('Master key needed: key ID 41252bd34faf3857');
  expect(run.outputs.MasterKeyId).toBe('41252bd34faf3857');
});

test('full + differential + logs in LSN order', async () => {
  const run = await restore(lab, '--source', fullDiffLogs, '--target-database', 'Octo-logs', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/1\. Full[\s\S]*2\. Differential[\s\S]*3\. Log[\s\S]*4\. Log/);
  expect(run.stdout).toMatch(/RESTORE LOG @database FROM DISK = @file1\n\s*WITH FILE = @position, CHECKSUM, RECOVERY, STATS = 5;/);
  expect(lab.projectIds('Octo-logs')).toEqual(['Projects-1', 'Projects-2', 'Projects-3', 'Projects-4', 'Projects-5']);
});

test('point in time: STOPAT on the last log; a time the chain cannot reach is refused', async () => {
  const d = dir('pit');
  lab.sim.model.database('Octo')!.recoveryModel = 'FULL';
  await take('Octo', d);
  lab.insertProject('Octo', 'PIT-before');
  await take('Octo', d, '--backup-type', 'Log');
  await sleep(1100);
  lab.insertProject('Octo', 'PIT-in-log-2-before');
  await sleep(1100);
  const stopAt = serverNow();
  await sleep(1100);
  lab.insertProject('Octo', 'PIT-after');
  await take('Octo', d, '--backup-type', 'Log');
  const run = await restore(lab, '--source', d, '--target-database', 'Octo-pit', '--point-in-time', stopAt, '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('DECLARE @stopAtTime datetime = CONVERT(datetime, @stopAt, 126);');
  expect(run.stdout).toContain('STOPAT = @stopAtTime, RECOVERY');
  const ids = lab.projectIds('Octo-pit');
  expect(ids).toContain('PIT-before');
  expect(ids).toContain('PIT-in-log-2-before');
  expect(ids).not.toContain('PIT-after');
  expect(run.outputs.PointInTime).toBe(`${stopAt.slice(0, 23)}`);

  const future = await restore(lab, '--source', d, '--target-database', 'Octo-pit-2', '--point-in-time', '2099-01-01T00:00:00');
  expect(future.code).toBe(1);
  expect(future.result).toMatch(/Nothing was changed\. Point in time 2099-01-01T00:00:00\.000 cannot be reached\. The backups reach only/);
  const offset = await restore(lab, '--source', d, '--target-database', 'Octo-pit-2', '--point-in-time', '2026-01-01T00:00:00Z');
  expect(offset.code).toBe(2);
  expect(offset.result).toMatch(/^"Point in time" must be an ISO-8601 date and time without offset.*\(OctopusDr\.Restore\.PointInTime\).*--point-in-time/);
  expect(lab.sim.model.database('Octo-pit-2')).toBeUndefined();
});

test('refuses a missing stripe, naming the file', async () => {
  const d = dir('striped');
  const manifest = await take('Octo', d, '--stripes', '2');
  const second = JSON.parse(readFileSync(manifest, 'utf8')).files[1].name;
  rmSync(path.join(d, second));
  const run = await restore(lab, '--source', d, '--target-database', 'Octo-striped');
  expect(run.code).toBe(1);
  expect(run.result).toContain(`${second} is missing. Every stripe is needed`);
  expect(lab.sim.model.database('Octo-striped')).toBeUndefined();
});

test('refuses an LSN gap, naming where it is', async () => {
  const d = dir('gap');
  cpSync(fullDiffLogs, d, { recursive: true });
  const logs = readdirSync(d).filter((f) => f.includes('_LOG_'));
  // The first log by its LSN, not its name: two logs taken in one second sort by their random part.
  const firstLsnOf = (manifest: string) => BigInt(JSON.parse(readFileSync(path.join(d, manifest), 'utf8')).header.firstLsn);
  const firstLog = logs.filter((f) => f.endsWith('.manifest.json')).sort((a, b) => (firstLsnOf(a) < firstLsnOf(b) ? -1 : 1))[0];
  for (const f of logs.filter((f) => f.startsWith(firstLog.replace('.manifest.json', '')))) rmSync(path.join(d, f));
  const run = await restore(lab, '--source', d, '--target-database', 'Octo-gap');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/LSN gap after Octo_DIFF_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json: the chain ends at LSN \d+, but the next log backup Octo_LOG_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json starts at LSN \d+/);
});

test('refuses a corrupt backup detected by RESTORE VERIFYONLY', async () => {
  const d = dir('corrupt');
  const manifest = await take('Octo', d);
  const file = path.join(d, JSON.parse(readFileSync(manifest, 'utf8')).files[0].name);
  const bytes = readFileSync(file);
  bytes[bytes.length - 20] ^= 0xff;
  writeFileSync(file, bytes);
  const run = await restore(lab, '--source', d, '--target-database', 'Octo-corrupt');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/Nothing was changed\. .*failed RESTORE VERIFYONLY/);
  expect(lab.sim.model.database('Octo-corrupt')).toBeUndefined();
});

test('refuses to touch an existing database without Replace existing, and says how to proceed', async () => {
  const before = lab.projectIds('Octo');
  const run = await restore(lab, '--source', fullOnly);
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/^Nothing was changed\. Database 'Octo' already exists on SQLSIM, and "Replace existing" is off\. To restore beside it, set "Target database"/);
  expect(lab.projectIds('Octo')).toEqual(before);
});

test('refuses a backup from a newer SQL Server version', async () => {
  const properties = lab.sim.model.properties;
  const saved = properties.productVersion;
  properties.productVersion = '15.0.4345.5';
  try {
    const run = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-old-server');
    expect(run.code).toBe(1);
    expect(run.result).toMatch(/was taken on SQL Server 16\.0\.4135, newer than the target server's 15\.0\.4345\.5/);
  } finally {
    properties.productVersion = saved;
  }
});

test('Replace existing: a copy-only safety backup first, then exclusive access and REPLACE in one batch', async () => {
  const target = 'Octo-full';
  lab.insertProject(target, 'Changed-after-restore');
  const seen = lab.sim.events.length;
  const run = await restore(lab, '--source', fullDiff, '--target-database', target, '--replace-existing', '--verbose');
  expect(run.code).toBe(0);
  const safety = run.outputs.SafetyBackupFile;
  expect(path.basename(safety)).toMatch(/^Octo-full_SAFETY_\d{8}T\d{6}Z_[0-9a-f]{6}\.bak$/);
  expect(readdirSync(lab.backups)).toContain(path.basename(safety));
  expect(lab.projectIds(target)).toEqual(['Projects-1', 'Projects-2']);
  const requests = lab.sim.events.slice(seen).filter((e) => e.kind === 'request').map((e) => e.detail ?? '');
  const batch = requests.find((r) => /SET SINGLE_USER/.test(r));
  expect(batch).toMatch(/SET SINGLE_USER WITH ROLLBACK IMMEDIATE[\s\S]*RESTORE DATABASE @database[\s\S]*REPLACE/);
  expect(requests.findIndex((r) => /COPY_ONLY/.test(r))).toBeLessThan(requests.indexOf(batch!));
});

test('dry run prints the plan and T-SQL (parameters by name) and changes nothing', async () => {
  const seen = lab.sim.events.length;
  const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-dry', '--dry-run');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('Restore plan: \'Octo\' -> \'Octo-dry\'');
  expect(run.stdout).toMatch(/RESTORE DATABASE @database FROM DISK = @file1\n\s*WITH FILE = @position, CHECKSUM, MOVE @logical1 TO @physical1, MOVE @logical2 TO @physical2, NORECOVERY, STATS = 5;/);
  expect(run.stdout).toContain(`@physical1 = N'${path.join(lab.data, 'Octo-dry.mdf')}'`);
  expect(run.result).toMatch(/^Dry run/);
  expect(lab.sim.model.database('Octo-dry')).toBeUndefined();
  const requests = lab.sim.events.slice(seen).filter((e) => e.kind === 'request').map((e) => e.detail ?? '');
  expect(requests.some((r) => /RESTORE (DATABASE|LOG)|ALTER DATABASE|BACKUP/.test(r))).toBe(false);
});

test('hostile target name: restored under exactly that name, files with a safe name', async () => {
  const run = await restore(lab, '--source', fullOnly, '--target-database', HOSTILE);
  expect(run.code).toBe(0);
  const db = lab.sim.model.database(HOSTILE)!;
  expect(db.state).toBe('ONLINE');
  expect(path.basename(db.files[0].physicalName)).toBe("Res]tore'd; DROP DATABASE master --ü.mdf");
  expect(lab.sim.model.database('master')).toBeDefined();
});

test('a database without the Octopus tables is restored but reported as not an Octopus database', async () => {
  const d = dir('not-octopus');
  await take('NotOcto', d);
  const run = await restore(lab, '--source', d, '--target-database', 'NotOcto-copy');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/'NotOcto-copy' was restored, but it is not an Octopus database: tables dbo\.Project, dbo\.VariableSet, dbo\.OctopusServerNode, dbo\.ServerTask are missing/);
});

test('a backup file without a manifest (e.g. taken by a DBA) is read from its header', async () => {
  const d = dir('foreign');
  const source = readdirSync(fullOnly).find((f) => f.endsWith('.bak'))!;
  cpSync(path.join(fullOnly, source), path.join(d, 'nightly.bak'));
  const run = await restore(lab, '--source', path.join(d, 'nightly.bak'), '--target-database', 'Octo-foreign', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/1\. Full\s+nightly\.bak/);
  expect(lab.projectIds('Octo-foreign')).toEqual(['Projects-1']);
  writeFileSync(path.join(d, 'junk.trn'), 'not a backup');
  const junk = await restore(lab, '--source', path.join(d, 'junk.trn'), '--target-database', 'Octo-junk');
  expect(junk.code).toBe(1);
  expect(junk.stdout).toMatch(/junk\.trn is not a readable SQL Server backup/);
  expect(junk.result).toMatch(/junk\.trn is not a readable SQL Server backup/);
});

test('Replace existing kicks other sessions off the database (SINGLE_USER WITH ROLLBACK IMMEDIATE)', async () => {
  // Another client (say an Octopus Server node) on tedious, whose pool reconnects after the kick.
  const other = await openSqlConnection(lab.connectionString('Octo-diff'), quietEngineContext(), { transport: 'tedious' });
  try {
    const spid = (await other.query<{ spid: number }>('SELECT @@SPID AS spid')).rows[0].spid;
    expect(lab.sim.model.sessions.has(spid)).toBe(true);
    const run = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-diff', '--replace-existing', '--no-safety-backup');
    expect(run.code).toBe(0);
    expect(run.outputs.SafetyBackupFile).toBeUndefined();
    expect(lab.projectIds('Octo-diff')).toEqual(['Projects-1']);
    // Its session was ended; the pool reconnects with a new one.
    expect(lab.sim.model.sessions.has(spid)).toBe(false);
    expect((await other.query<{ spid: number }>('SELECT @@SPID AS spid')).rows[0].spid).not.toBe(spid);
  } finally {
    await other.close();
  }
});

test('a failure after the safety backup rolls back from it and says where it is', async () => {
  lab.sim.faults.push({ match: /RESTORE DATABASE @database/, dropMidStream: true });
  const run = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-logs', '--replace-existing');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/^Restoring over the existing database 'Octo-logs' failed: .*Rolled back: 'Octo-logs' was restored from the safety backup .*Octo-logs_SAFETY_\d{8}T\d{6}Z_[0-9a-f]{6}\.bak/s);
  const safety = readdirSync(lab.backups).filter((f) => f.startsWith('Octo-logs_SAFETY_'));
  expect(safety).toHaveLength(1);
});

test('cancel during RESTORE: attention acknowledged, exit 143, nothing reported as restored', async () => {
  lab.sim.model.operationMs = 4000;
  const seen = lab.sim.events.length;
  try {
    const run = await lab.run('restore-database', 'master', ['--source', fullOnly, '--target-database', 'Octo-cancel'], {
      // Once the RESTORE runs (its first STATS progress), so the cancel finds it on the server.
      killAfter: (stdout) => /Restore the full backup[\s\S]*##octopus\[progress percentage='(?!MA==')/.test(stdout),
    });
    expect(run.code).toBe(143);
    expect(run.result).toMatch(/Cancelled/);
    const events = lab.sim.events.slice(seen).map((e) => e.kind);
    expect(events).toContain('attention');
    expect(events).toContain('attention-ack');
    expect(run.outputs.RestoredDatabase).toBeUndefined();
    // The database this restore created is not left RESTORING.
    expect(run.result).toBe("Cancelled (SIGTERM) while restoring the new database 'Octo-cancel'.\nIt did not exist before, so the partly restored copy was dropped: nothing else was changed.");
    expect(lab.sim.model.database('Octo-cancel')).toBeUndefined();
  } finally {
    lab.sim.model.operationMs = 200;
  }
});

test('worker and server see the folder under different paths: the server gets its own paths', async () => {
  // The worker's view is a symlink; SQL Server (the simulator) must be sent the real folder's paths.
  const serverView = dir('server-view');
  const workerView = path.join(lab.root, 'worker-view');
  symlinkSync(serverView, workerView);
  const seen = lab.sim.events.length;
  const made = await backup(lab, 'Octo', '--backup-directory', serverView, '--backup-directory-on-worker', workerView);
  expect(made.code).toBe(0);
  expect(made.outputs.ManifestPath.startsWith(workerView)).toBe(true);
  expect(made.outputs.BackupFiles.startsWith(serverView)).toBe(true);
  const run = await restore(lab, '--source', workerView, '--source-on-server', serverView, '--target-database', 'Octo-paths');
  expect(run.code).toBe(0);
  const devices = lab.sim.events
    .slice(seen)
    .flatMap((e) => e.params ?? [])
    .filter((p) => /^@file\d+$/.test(p.name))
    .map((p) => String(p.value));
  expect(devices.length).toBeGreaterThan(0);
  for (const d of devices) expect(d.startsWith(serverView)).toBe(true);
});

test('a database left RESTORING by a killed replace is replaced (no safety backup possible), and the warning names the earlier safety backup', async () => {
  const first = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-stuck');
  expect(first.code).toBe(0);
  // A replace that takes a safety backup, then is killed part-way (left RESTORING).
  const replaced = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-stuck', '--replace-existing');
  expect(replaced.code).toBe(0);
  const earlier = replaced.outputs.SafetyBackupFile!;
  expect(existsSync(earlier)).toBe(true);
  lab.sim.model.database('Octo-stuck')!.state = 'RESTORING';
  const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-stuck', '--replace-existing');
  expect(run.code).toBe(0);
  const said = run.stdout + run.stderr;
  expect(said).toMatch(/'Octo-stuck' is RESTORING \(not usable\), so it cannot be backed up first; it is replaced without a safety backup\./);
  expect(said).toContain(`may be in the safety backup ${earlier} (finished `);
  expect(run.outputs.SafetyBackupFile).toBeUndefined();
  expect(lab.sim.model.database('Octo-stuck')!.state).toBe('ONLINE');
  expect(lab.projectIds('Octo-stuck')).toEqual(['Projects-1', 'Projects-2']);
});

test.each(['OFFLINE', 'RECOVERY_PENDING', 'SUSPECT'] as const)(
  'a %s database is not replaced without a safety backup unless "Safety backup" is turned off',
  async (state) => {
    const name = `Octo-${state.toLowerCase()}`;
    expect((await restore(lab, '--source', fullOnly, '--target-database', name)).code).toBe(0);
    lab.insertProject(name, 'Only-here');
    lab.sim.model.database(name)!.state = state;
    const refused = await restore(lab, '--source', fullDiff, '--target-database', name, '--replace-existing');
    expect(refused.code).toBe(1);
    const last = refused.result;
    expect(last).toContain(`Nothing was changed. '${name}' is ${state}, not ONLINE, so no safety backup of it can be taken, and "Safety backup" is on.`);
    expect(last).toContain(`ALTER DATABASE [${name}] SET ONLINE`);
    expect(last).toContain('turn "Safety backup" off');
    expect(lab.sim.model.database(name)!.state).toBe(state);
    lab.sim.model.database(name)!.state = 'ONLINE';
    expect(lab.projectIds(name)).toContain('Only-here');

    lab.sim.model.database(name)!.state = state;
    const optedOut = await restore(lab, '--source', fullDiff, '--target-database', name, '--replace-existing', '--no-safety-backup');
    expect(optedOut.code).toBe(0);
    expect(lab.sim.model.database(name)!.state).toBe('ONLINE');
    expect(lab.projectIds(name)).toEqual(['Projects-1', 'Projects-2']);
  },
);

test('two replace restores of one database at once: the second is refused before it changes anything, the first finishes', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-race')).code).toBe(0);
  const operationMs = lab.sim.model.operationMs;
  lab.sim.model.operationMs = 1500;
  try {
    let replacing!: () => void;
    const firstIsReplacing = new Promise<void>((resolve) => (replacing = resolve));
    // The first restore's output is watched (never killed): the second starts once the first holds the target.
    const first = lab.run('restore-database', 'master', ['--source', fullDiff, '--target-database', 'Octo-race', '--replace-existing'], {
      bundle: true,
      killAfter: (out) => {
        // The step's own line (the plan printed before names the statement too, indented).
        if (/^Safety backup \(copy-only\) of the existing 'Octo-race'/m.test(out)) replacing();
        return false;
      },
    });
    await firstIsReplacing;
    const second = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-race', '--replace-existing');
    expect(second.code).toBe(1);
    expect(second.result).toBe(
      "Another octopus-dr restore of 'Octo-race' is running on SQLSIM (it holds the application lock 'octopus-dr restore octo-race'), so nothing was changed. Wait for it to finish, then run this restore again if it is still needed.",
    );
    expect(second.outputs.SafetyBackupFile).toBeUndefined();
    const done = await first;
    expect(done.code).toBe(0);
    expect(lab.projectIds('Octo-race')).toEqual(['Projects-1', 'Projects-2']);
    expect(lab.sim.model.database('Octo-race')!.state).toBe('ONLINE');
  } finally {
    lab.sim.model.operationMs = operationMs;
  }
  // The lock went with the first restore: a third runs.
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-race', '--replace-existing')).code).toBe(0);
});

test('a restore whose lock session is lost stops before its next statement and says so; it never claims a restore another may have overrun', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-lost')).code).toBe(0);
  const operationMs = lab.sim.model.operationMs;
  lab.sim.model.operationMs = 1500;
  try {
    let killed = false;
    const run = await lab.run('restore-database', 'master', ['--source', fullDiff, '--target-database', 'Octo-lost', '--replace-existing'], {
      bundle: true,
      killAfter: (out) => {
        if (!killed && /^Safety backup \(copy-only\) of the existing 'Octo-lost'/m.test(out)) {
          killed = true;
          // Half-way through the safety backup (1.5 s), the lock's session ends (a DBA kills the
          // sleeping session, one TCP flow drops); the work session lives on.
          setTimeout(() => {
            const holder = [...lab.sim.model.applicationLocks.values()][0];
            lab.sim.model.sessions.get(holder.sessionId)!.kill();
          }, 500);
        }
        return false;
      },
    });
    expect(killed).toBe(true);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain(
      `Restoring over the existing database 'Octo-lost' failed: the connection holding octopus-dr's restore lock on 'Octo-lost' was lost, so another restore of it may have started; "Take exclusive access and restore the full backup WITH NORECOVERY" was not started.`,
    );
    expect(run.stdout + run.stderr).toContain("Not rolled back: the connection holding octopus-dr's restore lock on 'Octo-lost' was lost");
    expect(run.result).toMatch(/^  npx octopus-dr restore-database --source \S+_SAFETY_\S+\.bak --target-database Octo-lost --replace-existing$/m);
    // The safety backup was taken; not one RESTORE was sent after the lock was lost.
    expect(lab.projectIds('Octo-lost')).toEqual(['Projects-1']);
  } finally {
    lab.sim.model.operationMs = operationMs;
  }
});

test('a replace over a RESTORING database that fails names, last, the safety backup the earlier unfinished restore took, and how to put it back', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-stuck2')).code).toBe(0);
  const replaced = await restore(lab, '--source', fullOnly, '--target-database', 'Octo-stuck2', '--replace-existing');
  expect(replaced.code).toBe(0);
  const earlier = replaced.outputs.SafetyBackupFile!;
  lab.sim.model.database('Octo-stuck2')!.state = 'RESTORING';
  lab.sim.faults.push({ match: /RESTORE DATABASE/, dropMidStream: true });
  try {
    const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-stuck2', '--replace-existing');
    expect(run.code).toBe(1);
    expect(run.result).toContain('It was RESTORING before this restore, so no safety backup of it was taken: run the restore again to finish it.');
    expect(run.result).toContain(`Its content before the earlier, unfinished restore may be in the safety backup that restore took, ${earlier} (a path on the SQL Server).`);
    expect(run.result!.trimEnd().split('\n').at(-1)).toBe(`  npx octopus-dr restore-database --source ${earlier} --target-database Octo-stuck2 --replace-existing`);
  } finally {
    lab.sim.faults.length = 0;
  }
});

test('a target that changed between planning and restoring is not restored over: the plan is refused, nothing changed', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-moved')).code).toBe(0);
  lab.insertProject('Octo-moved', 'Only-here');
  const context = quietEngineContext();
  const connection = await openSqlConnection(lab.connectionString('master'), context, { database: 'master' });
  try {
    const plan = await planRestore(connection, { source: fullDiff, targetDatabase: 'Octo-moved', replaceExisting: true, safetyBackup: true, checkDb: false }, context);
    expect(plan.targetState).toBe('ONLINE');
    // Taken offline while the backups were verified (another tool, an operator).
    lab.sim.model.database('Octo-moved')!.state = 'OFFLINE';
    const run = restoreWithRecovery(connection, plan, { connectionString: lab.connectionString('master'), rollBackOnFailure: true }, context);
    await expect(run).rejects.toThrow(
      "Nothing was changed. 'Octo-moved' changed while the backups were read and verified: it existed (ONLINE) then and exists (OFFLINE) now. Run the restore again, so that it is planned against the database as it is.",
    );
  } finally {
    await connection.close();
  }
  lab.sim.model.database('Octo-moved')!.state = 'ONLINE';
  expect(lab.projectIds('Octo-moved')).toContain('Only-here');
  // Its restore lock was not kept: a restore of it runs.
  expect((await restore(lab, '--source', fullDiff, '--target-database', 'Octo-moved', '--replace-existing')).code).toBe(0);
});

/** What another session does by hand (SSMS, a job): octopus-dr's lock does not stop it. */
function replaceByHand(name: string, seed: { state?: 'ONLINE' | 'RESTORING'; projectId: string }): void {
  const model = lab.sim.model;
  const key = [...model.databases.entries()].find(([, d]) => d.name === name)?.[0];
  if (key) model.databases.delete(key);
  model.addDatabase({ name, state: seed.state, tables: octopusTables([[seed.projectId, 'Made by hand']]) });
}
const lastLine = (text: string | undefined) => (text ?? '').trimEnd().split('\n').at(-1);

test('a target dropped and created again by another session right before the RESTORE batch: the batch checks it first, and nothing is restored over it', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-dba')).code).toBe(0);
  // Between the safety backup and the RESTORE: DROP DATABASE and CREATE DATABASE in SSMS, and new rows.
  lab.sim.faults.push({ match: /RESTORE DATABASE @database/, onTaken: () => replaceByHand('Octo-dba', { projectId: 'DBA-1' }) });
  const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-dba', '--replace-existing');
  expect(run.code).toBe(1);
  expect(lab.projectIds('Octo-dba')).toEqual(['DBA-1', 'Projects-1']);
  expect(run.result).toMatch(
    /^Restoring over the existing database 'Octo-dba' failed: another session changed 'Octo-dba' since this restore last checked it \(it is ONLINE, MULTI_USER \(database_id (\d+), created [\d:.T-]+\) now, not ONLINE, MULTI_USER \(database_id (?!\1)\d+, created [\d:.T-]+\) as this restore last saw it\); "Take exclusive access and restore the full backup WITH NORECOVERY" was not started\.$/m,
  );
  expect(lastLine(run.result)).toBe(
    "Nothing was restored over it: 'Octo-dba' is now ONLINE, MULTI_USER (as SQL Server reports it). octopus-dr's lock does not stop a RESTORE, ALTER DATABASE or DROP run outside octopus-dr (in SSMS, a job, another tool). Find out what changed it and let that finish, then run the restore again: it is planned against the database as it is then.",
  );
});

test('a target taken OFFLINE by another session right before the RESTORE batch is not restored over', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-off')).code).toBe(0);
  lab.insertProject('Octo-off', 'Only-here');
  lab.sim.faults.push({ match: /RESTORE DATABASE @database/, onTaken: () => void (lab.sim.model.database('Octo-off')!.state = 'OFFLINE') });
  const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-off', '--replace-existing');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/\(it is OFFLINE, MULTI_USER \(database_id \d+, created [\d:.T-]+\) now, not ONLINE, MULTI_USER/);
  expect(lastLine(run.result)).toMatch(/^Nothing was restored over it: 'Octo-off' is now OFFLINE, MULTI_USER \(as SQL Server reports it\): not usable by Octopus\./);
  const db = lab.sim.model.database('Octo-off')!;
  expect(db.state).toBe('OFFLINE');
  expect(lab.projectIds('Octo-off')).toContain('Only-here');
});

test('a new database another session restores over between two RESTOREs of the chain is neither restored onto nor dropped', async () => {
  // The differential's batch (the full's came first): by then a DBA's own RESTORE ... WITH NORECOVERY holds the name.
  lab.sim.faults.push({ match: /RESTORE DATABASE @database/, skip: 1, onTaken: () => replaceByHand('Octo-mid', { state: 'RESTORING', projectId: 'DBA-2' }) });
  const run = await restore(lab, '--source', fullDiff, '--target-database', 'Octo-mid');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/^Restoring the new database 'Octo-mid' stopped: another session changed 'Octo-mid' since this restore last checked it \(it is RESTORING, MULTI_USER \(database_id \d+, created [\d:.T-]+\) now, not RESTORING, MULTI_USER/);
  expect(lastLine(run.result)).toBe(
    "'Octo-mid' is now RESTORING, MULTI_USER (as SQL Server reports it): not usable by Octopus. Not dropped: it is another session's now (a restore, CREATE or DROP run outside octopus-dr takes no lock). If nothing else is restoring 'Octo-mid', drop it (DROP DATABASE [Octo-mid]) and run the restore again.",
  );
  const db = lab.sim.model.database('Octo-mid')!;
  expect(db.state).toBe('RESTORING');
  expect(lab.projectIds('Octo-mid')).toEqual(['DBA-2', 'Projects-1']);
});

test('the restore lock is named as the server names the database: spellings SQL Server takes as one (ß and ss) take one lock', async () => {
  expect((await restore(lab, '--source', fullOnly, '--target-database', 'Octo-Straße')).code).toBe(0);
  const context = quietEngineContext();
  const first = await tryLockRestoreTarget(lab.connectionString('master'), 'OCTO-STRASSE', context);
  try {
    expect(first?.resource).toBe('octopus-dr restore octo-straße');
    expect(await tryLockRestoreTarget(lab.connectionString('master'), 'octo-straße ', context)).toBeUndefined();
  } finally {
    await first?.release();
  }
  // A database not created yet: the name as given, lower-cased by the server, without trailing spaces.
  const fresh = await tryLockRestoreTarget(lab.connectionString('master'), 'Octo-Nowhere  ', context);
  expect(fresh?.resource).toBe('octopus-dr restore octo-nowhere');
  await fresh?.release();
});

test('a file holding several backup sets (appended WITH NOINIT): the newest is restored, by position', async () => {
  const d = dir('appended');
  const file = path.join(d, 'appended.bak');
  const sql = await openSqlConnection(lab.connectionString('master'), quietEngineContext());
  try {
    await sql.runLong('BACKUP DATABASE @db TO DISK = @file WITH NOINIT, CHECKSUM', { db: 'Octo', file });
    lab.insertProject('Octo', 'Appended-2');
    await sql.runLong('BACKUP DATABASE @db TO DISK = @file WITH NOINIT, CHECKSUM', { db: 'Octo', file });
  } finally {
    await sql.close();
  }
  const run = await restore(lab, '--source', file, '--target-database', 'Octo-appended', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/appended\.bak #2/);
  expect(run.stdout).toContain('--   @position = 2');
  expect(lab.projectIds('Octo-appended')).toContain('Appended-2');
});

test('a folder with several databases: refused with their names, unless the target names one of them', async () => {
  const d = dir('shared-folder');
  await take('Octo', d);
  await take('NotOcto', d);
  const ambiguous = await restore(lab, '--source', d, '--target-database', 'Somewhere-new');
  expect(ambiguous.code).toBe(1);
  expect(ambiguous.result).toMatch(/The backups are of 2 databases \((Octo, NotOcto|NotOcto, Octo)\)/);
  const named = await restore(lab, '--source', d, '--target-database', 'NotOcto', '--replace-existing', '--dry-run');
  expect(named.code).toBe(0);
  expect(named.stdout).toContain("Restore plan: 'NotOcto' -> 'NotOcto'");
  expect(named.stdout).toMatch(/Target database: exists, will be REPLACED; safety backup first to .*NotOcto_SAFETY_/);
});

test('striped files without a manifest are grouped by their _<n>of<N> names; a missing stripe is reported', async () => {
  const d = dir('striped-no-manifest');
  const source = dir('striped-source');
  const manifest = await take('Octo', source, '--stripes', '3');
  const names: string[] = JSON.parse(readFileSync(manifest, 'utf8')).files.map((f: { name: string }) => f.name);
  for (const n of names) cpSync(path.join(source, n), path.join(d, n));
  const run = await restore(lab, '--source', d, '--target-database', 'Octo-striped-loose', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/1\. Full\s+Octo_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}\.bak \(3 files\)/);
  rmSync(path.join(d, names[1]));
  const missing = await restore(lab, '--source', d, '--target-database', 'Octo-striped-loose-2');
  expect(missing.code).toBe(1);
  expect(missing.stdout).toContain(`${names[1]} missing, so its header cannot be read`);
  expect(missing.result).toMatch(/No usable backups were found in .*see any warnings above/);
});
