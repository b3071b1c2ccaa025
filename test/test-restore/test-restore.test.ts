// Test Latest Backup end to end: the backup steps make real backup sets (SQL Server simulator,
// real temp directories), then test-restore restores, checks and reports on them, in-process
// through runStep() (the built bundle in the smoke test and where a run is cancelled by SIGTERM).
// After every run the scratch database must be gone.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { outputVariablesIn } from '../../steps/runtime/service-messages';
import { keyIdOf } from '../../steps/engines/master-key';
import { MemorySink } from '../../steps/runtime/console-output';
import { runStep } from '../../steps/runtime/run-step';
import { scratchDatabaseName } from '../../steps/test-restore/scratch';
import { testLatestBackup } from '../../steps/test-restore/test-restore';
import { testRestore } from '../../templates/test-restore';
import { tryLockRestoreTarget } from '../../steps/engines/database-backup';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import type { SeedDatabase } from '../sql-simulator/engine/model';
import { Lab, octopusTables, type StepRun } from '../database/harness';
import { corruptDeflatedEntry, makeStore, runInProcess, tempDir as makeTempDir } from '../file-store/helpers';
import { octopusDatabase } from '../master-key/octopus-database';
import { expectNoLeak } from '../master-key/octopus-crypto';

const KEY = randomBytes(32);
const KEY_B64 = KEY.toString('base64');
const PREFIX = 'octopus-dr-test-';

/** An Octopus database: encrypted documents plus the core tables a restore checks for. */
function octopusSeed(name: string): { seed: SeedDatabase; plaintexts: string[] } {
  const db = octopusDatabase({ name, key: KEY, variableSets: 12, frozenVariableSets: 4, certificateTable: 'Configuration' });
  const have = new Set((db.seed.tables ?? []).map((t) => t.name.toLowerCase()));
  const tables = [...(db.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
  return { seed: { ...db.seed, name, recoveryModel: 'FULL', tables }, plaintexts: db.plaintexts };
}

const temporaryDirectories: string[] = [];
function tempDir(prefix: string): string {
  const dir = makeTempDir(prefix);
  temporaryDirectories.push(dir);
  return dir;
}

let lab: Lab;
let plaintexts: string[];
let fileStoreBackups: string;

beforeAll(async () => {
  lab = new Lab();
  const octopus = octopusSeed('Octopus');
  plaintexts = octopus.plaintexts;
  await lab.start({ operationMs: 100 }, [octopus.seed]);
  const full = await lab.run('backup-database', 'Octopus', ['--backup-type', 'Full', '--master-key-id', keyIdOf(KEY)]);
  expect(full.code).toBe(0);

  // A small file store and its backup, made by the real backup step.
  const home = tempDir('octopus-dr-tr-home-');
  makeStore(home);
  fileStoreBackups = tempDir('octopus-dr-tr-fs-');
  const fileStore = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', fileStoreBackups]);
  expect(fileStore.code).toBe(0);
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  for (const dir of temporaryDirectories) rmSync(dir, { recursive: true, force: true });
});

function scratchDatabases(): string[] {
  return [...lab.sim.model.databases.values()].map((d) => d.name).filter((n) => n.startsWith(PREFIX));
}

async function runTestRestore(args: string[], options: { key?: string; killAfter?: (stdout: string) => boolean; bundle?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<StepRun & { reportDirectory: string }> {
  const reportDirectory = tempDir('octopus-dr-tr-report-');
  const run = await lab.run('test-restore', 'master', ['--source', lab.backups, '--report-directory', reportDirectory, ...args], {
    env: { OCTOPUSDR_MASTERKEY: options.key ?? KEY_B64, ...options.env },
    killAfter: options.killAfter,
    bundle: options.bundle,
  });
  return { ...run, reportDirectory };
}

/** Runs the step in process at `now`, its scratch names' random parts taken from `suffixes`. */
async function runAt(now: Date, suffixes: string[]): Promise<{ code: number; sink: MemorySink }> {
  const sink = new MemorySink();
  const code = await runStep(testRestore, (params, context) => testLatestBackup(params, context, { now: () => now, randomSuffix: () => suffixes.shift()!, reportDirectory: tempDir('octopus-dr-tr-report-') }), {
    argv: ['--service-messages', '--source', lab.backups],
    env: { OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('master'), OCTOPUSDR_MASTERKEY: KEY_B64 },
    sink,
    handleSignals: false,
  });
  return { code, sink };
}

function reportOf(run: StepRun): Record<string, any> {
  // The JSON report and the HTML page beside it.
  const json = run.artifacts.filter((a) => a.endsWith('.json'));
  expect(json).toHaveLength(1);
  expect(run.artifacts.filter((a) => a.endsWith('.html'))).toEqual([json[0].replace(/\.json$/, '.html')]);
  return JSON.parse(readFileSync(json[0], 'utf8'));
}

function copyOf(directory: string, prefix: string): string {
  const copy = tempDir(prefix);
  // Backups only: not the DR record or reports earlier tests left there.
  for (const name of readdirSync(directory)) if (!name.startsWith('.') && !name.startsWith('octopus-dr-test-')) writeFileSync(path.join(copy, name), readFileSync(path.join(directory, name)));
  return copy;
}

function expectNoSecrets(run: StepRun): void {
  // Mask messages carry the secret (base64) by design: Octopus needs it to mask the task log.
  const stdout = run.stdout.split('\n').filter((line) => !line.startsWith('##octopus[mask ')).join('\n');
  const everything = stdout + run.stderr + run.artifacts.map((a) => readFileSync(a, 'utf8')).join('');
  expectNoLeak(everything, [KEY, ...plaintexts, 'Sim-Passw0rd!']);
}

test('a good backup set passes: restored, checked, key proven, archive verified, scratch database dropped', async () => {
  const run = await runTestRestore(['--file-store-backup-directory', fileStoreBackups]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const report = reportOf(run);
  expect(report).toMatchObject({
    format: 'octopus-dr/test-restore-report/v1',
    result: 'PASS',
    backup: { database: 'Octopus', recoveryPoint: 'passed', manifestKeyId: keyIdOf(KEY), maxAgeHours: 26 },
    restore: { status: 'passed', kept: false, dropped: true },
    checkDb: { status: 'passed' },
    masterKey: { status: 'passed', verdict: 'PASS', keyId: keyIdOf(KEY), matchesManifest: true },
    fileStore: { status: 'passed' },
    failures: [],
  });
  expect(report.backup.sets).toHaveLength(1);
  expect(report.backup.ageHours).toBeLessThan(1);
  expect(report.restore.scratchDatabase).toMatch(/^octopus-dr-test-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
  expect(report.restore.durationSeconds).toBeGreaterThan(0);
  expect(report.fileStore.files).toBeGreaterThan(40);
  expect(run.outputs).toMatchObject({ Result: 'PASS', Passed: 'True', CheckDb: 'passed', MasterKey: 'passed', FileStore: 'passed', KeyId: keyIdOf(KEY) });
  expect(Number(run.outputs.RestoreSeconds)).toBeGreaterThan(0);
  expect(run.stdout).toContain('Test restore: PASS');
  expect(run.result).toMatch(/^Backup of 'Octopus' restored and checked in [\d.]+ s; recovery point /);
  expect(run.progress.at(-1)).toBe(100);
  // Progress only moves forward (the master-key check's own 0-100 % is a stretch of the step's).
  expect(run.progress).toEqual([...run.progress].sort((a, b) => a - b));
  expect(run.progress.indexOf(100)).toBe(run.progress.length - 1);
  expect(scratchDatabases()).toEqual([]);
  // The original database is untouched and its files were never reused.
  expect(lab.sim.model.database('Octopus')).toBeDefined();
  expectNoSecrets(run);
});

test('smoke: the built bundle passes the same good backup set, with no secret in its output, and DEBUG=* prints nothing', async () => {
  // mssql logs through `debug` to stderr, past the redactor; the bundles carry a silent one (scripts/build/unused-modules.ts).
  const run = await runTestRestore(['--file-store-backup-directory', fileStoreBackups], { bundle: true, env: { DEBUG: '*' } });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(reportOf(run)).toMatchObject({ result: 'PASS', restore: { status: 'passed', dropped: true }, fileStore: { status: 'passed' } });
  expect(run.outputs).toMatchObject({ Result: 'PASS', Passed: 'True', MasterKey: 'passed' });
  expect(scratchDatabases()).toEqual([]);
  expectNoSecrets(run);
});

test('in-process runs reach SQL Server over this Jest project\'s transport (tedious; .NET SqlClient in the sqlclient project)', async () => {
  const run = await lab.run('restore-database', 'master', ['--source', lab.backups, '--target-database', 'Octopus-transport', '--dry-run', '--verbose']);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`over ${process.env.OCTOPUSDR_SQL_TRANSPORT === 'sqlclient' ? '.NET SqlClient' : 'tedious'}.`);
});

test('each drill joins the DR record beside the backups, and the HTML page shows the verdict and the trend', async () => {
  const backups = copyOf(lab.backups, 'octopus-dr-tr-record-');
  const first = await runTestRestore(['--source', backups]);
  expect(first.code).toBe(0);
  lab.sim.model.clockOffsetMs = 30 * 3_600_000;
  const second = await runTestRestore(['--source', backups]).finally(() => (lab.sim.model.clockOffsetMs = 0));
  expect(second.code).toBe(1);
  const third = await runTestRestore(['--source', backups]);
  expect(third.code).toBe(0);
  const lines = readFileSync(path.join(backups, 'octopus-dr-test-history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(lines.map((l) => l.result)).toEqual(['PASS', 'FAIL', 'PASS']);
  const report = reportOf(third);
  expect(report.backup.bytes).toBeGreaterThan(0);
  expect(lines[2]).toMatchObject({ database: 'Octopus', databaseBytes: report.backup.bytes, failures: 0 });
  const html = readFileSync(third.artifacts.find((a) => a.endsWith('.html'))!, 'utf8');
  expect(path.dirname(third.artifacts.find((a) => a.endsWith('.html'))!)).toBe(third.reportDirectory);
  expect(html).toContain('<div class="word">PASS</div>');
  expect(html).toContain('id="recovery-point-chart"');
  expect(html).toContain('id="recovery-time-chart"');
  expect(html).toContain('Over time (3 drills)');
  expect(third.stdout).toMatch(/Report: .*octopus-dr-test-restore-\d{8}T\d{6}Z\.html/);
  expect(readFileSync(second.artifacts.find((a) => a.endsWith('.html'))!, 'utf8')).toContain('<div class="word">FAIL</div>');
  expectNoSecrets(third);
});

test('a backup folder that cannot be written keeps the DR record in the report directory, and the result stands', async () => {
  const backups = copyOf(lab.backups, 'octopus-dr-tr-unwritable-');
  // (Tests run as root, which ignores a read-only mode: a folder in the history file's place fails it.)
  mkdirSync(path.join(backups, 'octopus-dr-test-history.jsonl'));
  const run = await runTestRestore(['--source', backups]);
  expect(run.code).toBe(0);
  expect(run.stdout + run.stderr).toContain('The DR record cannot be written beside the backups');
  expect(readFileSync(path.join(run.reportDirectory, 'octopus-dr-test-history.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  expect(reportOf(run).result).toBe('PASS');
});

test('database and file store agree: task logs the restored database names but the file-store set lacks warn, and fail above the limit', async () => {
  // An Octopus database whose recent server tasks have (501, 502) and lack (503) a task log in the file store.
  const octopus = octopusSeed('OctopusAgree');
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
  const serverTask = {
    name: 'ServerTask',
    columns: [
      { name: 'Id', type: 'nvarchar(50)', nullable: false },
      { name: 'StartTime', type: 'datetime2(7)' },
    ],
    rows: [
      ['ServerTasks-501', hoursAgo(30)], // one file per task (before 2025.2)
      ['ServerTasks-502', hoursAgo(20)], // one folder per task (2025.2+)
      ['ServerTasks-503', hoursAgo(10)], // its log is missing
      ['ServerTasks-400', hoursAgo(24 * 30)], // before the window
    ],
  };
  const tables = (octopus.seed.tables ?? []).filter((t) => t.name.toLowerCase() !== 'servertask');
  lab.sim.model.addDatabase({ ...octopus.seed, tables: [...tables, serverTask] });
  const backups = tempDir('octopus-dr-tr-agree-db-');
  expect((await lab.run('backup-database', 'OctopusAgree', ['--backup-type', 'Full', '--backup-directory', backups])).code).toBe(0);
  const home = tempDir('octopus-dr-tr-agree-home-');
  makeStore(home);
  writeFileSync(path.join(home, 'TaskLogs', 'servertasks-501_AbCdEf.txt'), 'log\n');
  mkdirSync(path.join(home, 'TaskLogs', 'servertasks-502_XyZ'));
  writeFileSync(path.join(home, 'TaskLogs', 'servertasks-502_XyZ', '3b1f0c2a.tl.txt'), 'log\n');
  const fileStore = tempDir('octopus-dr-tr-agree-fs-');
  expect((await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', fileStore])).code).toBe(0);

  const failing = await runTestRestore(['--source', backups, '--file-store-backup-directory', fileStore]);
  expect(failing.code).toBe(1);
  const failed = reportOf(failing);
  expect(failed.agreement).toMatchObject({ status: 'failed', outcome: 'fail', taskLogs: { checked: 3, missing: 1 } });
  expect(failed.agreement.fileStoreSet).toMatch(/^octopus-file-store-.*-full\.zip$/);
  expect(failed.failures).toEqual([expect.stringMatching(/^Database and file store disagree .*1 of 3 recent server tasks have no task log \(33\.3%\), e\.g\. ServerTasks-503/)]);
  expect(failed.restore.status).toBe('passed');
  const html = readFileSync(failing.artifacts.find((a) => a.endsWith('.html'))!, 'utf8');
  expect(html).toMatch(/<th scope="row">Database and file store<\/th><td class="status failed">failed<\/td><td>task logs: 1 of 3 missing/);

  const warning = await runTestRestore(['--source', backups, '--file-store-backup-directory', fileStore, '--missing-files-fail-percent', '50']);
  expect(warning.code).toBe(0);
  expect(reportOf(warning).agreement).toMatchObject({ status: 'passed', outcome: 'warn', taskLogs: { checked: 3, missing: 1 } });
  expect(warning.stdout).toMatch(/##octopus\[stdout-warning\]\nDatabase and file store disagree/);
  expect(scratchDatabases()).toEqual([]);
  lab.sim.model.databases.delete('octopusagree');
});

test('a master key whose key ID the manifest contradicts fails fast with the rotation hint: no RESTORE is sent', async () => {
  const seen = lab.sim.events.length;
  const run = await runTestRestore([], { key: randomBytes(32).toString('base64') });
  expect(run.code).toBe(1);
  const report = reportOf(run);
  expect(report.result).toBe('FAIL');
  expect(report.masterKey.matchesManifest).toBe(false);
  expect(report.masterKey.status).toBe('failed');
  expect(report.failures).toEqual([expect.stringMatching(/backup manifest records [0-9a-f]{16}: this backup needs another key .*Nothing was restored/)]);
  expect(report.restore).toMatchObject({ status: 'not run', dropped: false });
  expect(report.checkDb.status).toBe('not run');
  const requests = lab.sim.events.slice(seen).filter((e) => e.kind === 'request').map((e) => e.detail ?? '');
  expect(requests.some((r) => /RESTORE VERIFYONLY/i.test(r))).toBe(true);
  expect(requests.filter((r) => /RESTORE\s+(DATABASE|LOG)/i.test(r))).toEqual([]);
  expect(requests.filter((r) => /DBCC\s+CHECKDB/i.test(r))).toEqual([]);
  expect(scratchDatabases()).toEqual([]);
});

test('a backup older than the maximum age fails the recovery-point check (the rest is still tested)', async () => {
  // The newest backup finished "now"; move the server's clock 30 hours on.
  lab.sim.model.clockOffsetMs = 30 * 3_600_000;
  try {
    const run = await runTestRestore([]);
    expect(run.code).toBe(1);
    const report = reportOf(run);
    expect(report.backup.recoveryPoint).toBe('failed');
    expect(report.backup.ageHours).toBeGreaterThanOrEqual(30);
    expect(report.backup.ageHours).toBeLessThan(31);
    expect(report.failures).toEqual([expect.stringMatching(/^The newest backup is 30(\.\d)? hours old, older than the 26-hour limit \("Maximum backup age \(hours\)"\)/)]);
    expect(report.restore.status).toBe('passed');
    expect(report.masterKey.status).toBe('passed');
    expect(run.outputs.BackupAgeHours).toMatch(/^30/);
    expect(scratchDatabases()).toEqual([]);
    const lenient = await runTestRestore(['--max-age-hours', '48']);
    expect(lenient.code).toBe(0);
  } finally {
    lab.sim.model.clockOffsetMs = 0;
  }
});

test('a tampered file-store archive fails the file-store check', async () => {
  const copy = tempDir('octopus-dr-tr-fs-tampered-');
  for (const name of readdirSync(fileStoreBackups)) writeFileSync(path.join(copy, name), readFileSync(path.join(fileStoreBackups, name)));
  const manifestName = readdirSync(copy).find((n) => n.endsWith('.manifest.json'))!;
  const manifest = JSON.parse(readFileSync(path.join(copy, manifestName), 'utf8'));
  const victim = manifest.files.find((f: { size: number }) => f.size > 100);
  victim.sha256 = '0'.repeat(64);
  writeFileSync(path.join(copy, manifestName), JSON.stringify(manifest, null, 2));
  const run = await runTestRestore(['--file-store-backup-directory', copy]);
  expect(run.code).toBe(1);
  const report = reportOf(run);
  expect(report.fileStore.status).toBe('failed');
  expect(report.restore.status).toBe('passed');
  expect(report.failures.join('\n')).toMatch(/^File store: /m);
  expect(scratchDatabases()).toEqual([]);
});

test('a file-store archive with corrupt deflate data fails the file-store check, naming the entry, not as an internal error', async () => {
  const copy = tempDir('octopus-dr-tr-fs-corrupt-');
  for (const name of readdirSync(fileStoreBackups)) writeFileSync(path.join(copy, name), readFileSync(path.join(fileStoreBackups, name)));
  const archive = readdirSync(copy).find((n) => n.endsWith('.zip'))!;
  corruptDeflatedEntry(path.join(copy, archive), 'TaskLogs/servertasks-39.log.txt');
  const run = await runTestRestore(['--file-store-backup-directory', copy]);
  expect(run.code).toBe(1);
  expect(run.stderr).not.toMatch(/internal error/i);
  const report = reportOf(run);
  expect(report.fileStore.status).toBe('failed');
  expect(report.restore.status).toBe('passed');
  expect(report.failures.join('\n')).toMatch(new RegExp(`^File store: ${archive.replace(/\./g, '\\.')}: TaskLogs/servertasks-39\\.log\\.txt cannot be read: its compressed data`, 'm'));
  expect(scratchDatabases()).toEqual([]);
});

test('a corrupted database backup fails the restore, and nothing is left behind', async () => {
  const corrupt = tempDir('octopus-dr-tr-corrupt-');
  for (const name of readdirSync(lab.backups)) writeFileSync(path.join(corrupt, name), readFileSync(path.join(lab.backups, name)));
  const bak = readdirSync(corrupt).find((n) => n.endsWith('.bak'))!;
  const bytes = readFileSync(path.join(corrupt, bak));
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  writeFileSync(path.join(corrupt, bak), bytes);
  const run = await runTestRestore(['--source', corrupt]);
  expect(run.code).toBe(1);
  const report = reportOf(run);
  expect(report.result).toBe('FAIL');
  // The report and the message name the set and the file that failed, not "none found".
  const set = bak.replace(/\.bak$/, '.manifest.json');
  expect(report.failures).toEqual([expect.stringContaining(`${set} (${bak}) failed RESTORE VERIFYONLY`)]);
  expect(report.backup).toMatchObject({ database: 'Octopus', sets: [set], failedSet: { label: set, files: [bak] } });
  expect(run.stdout + run.stderr).toContain(`Backup          Octopus: ${set}`);
  expect(report.restore.status).toBe('not run');
  expect(report.checkDb.status).toBe('not run');
  expect(scratchDatabases()).toEqual([]);
});

test('a scratch name that already exists is avoided; the existing database is not touched', async () => {
  const now = new Date('2026-11-27T05:00:00.000Z');
  const suffixes = ['aaaaaa', 'bbbbbb'];
  const taken = scratchDatabaseName(PREFIX, now, () => 'aaaaaa');
  lab.sim.model.addDatabase(octopusSeed(taken).seed);
  const { code, sink } = await runAt(now, suffixes);
  expect(sink.err).toBe('');
  expect(code).toBe(0);
  expect(sink.out).toContain(`A database named '${taken}' already exists; choosing another scratch name.`);
  // In process too: the HTML page beside the JSON report, and this drill in the DR record beside the backups.
  expect(sink.out).toMatch(/Report: \S+octopus-dr-test-restore-20261127T050000Z\.html/);
  expect(sink.out).toContain(`DR record: ${path.join(lab.backups, 'octopus-dr-test-history.jsonl')}`);
  const outputs = outputVariablesIn(sink.out);
  expect(outputs.ScratchDatabase).toBe(scratchDatabaseName(PREFIX, now, () => 'bbbbbb'));
  expect(scratchDatabases()).toEqual([taken]);
  lab.sim.model.databases.delete(taken.toLowerCase());
});

test('a scratch name another session takes outside octopus-dr right before the RESTORE: nothing is restored into it, and it is not dropped', async () => {
  const now = new Date('2026-11-27T05:30:00.000Z');
  const name = scratchDatabaseName(PREFIX, now, () => 'eeeeee');
  // A CREATE DATABASE (or a RESTORE) run by hand takes no lock: only the RESTORE batch's own check sees it.
  lab.sim.faults.push({ match: /RESTORE DATABASE @database/, onTaken: () => void lab.sim.model.addDatabase(octopusSeed(name).seed) });
  const { code, sink } = await runAt(now, ['eeeeee']);
  expect(code).toBe(1);
  expect(sink.out).toContain(`another session changed '${name}' since this restore last checked it (it is ONLINE, MULTI_USER`);
  expect(sink.out).toContain(`'${name}' was not dropped: another session created, restored over or dropped it during this test restore, so it is not this run's.`);
  expect(scratchDatabases()).toEqual([name]);
  lab.sim.model.databases.delete(name.toLowerCase());
});

test('a scratch name another restore holds (its restore lock) is avoided, and that lock is left to it', async () => {
  const now = new Date('2026-11-27T06:00:00.000Z');
  const suffixes = ['cccccc', 'dddddd'];
  const held = scratchDatabaseName(PREFIX, now, () => 'cccccc');
  // Another restore of that name, not yet past its RESTORE: it holds the lock, and the database is RESTORING.
  const other = await tryLockRestoreTarget(lab.connectionString('master'), held, quietEngineContext());
  expect(other).toBeDefined();
  try {
    const { code, sink } = await runAt(now, suffixes);
    expect(code).toBe(0);
    expect(sink.out).toContain(`Another restore holds the name '${held}'; choosing another scratch name.`);
    expect(outputVariablesIn(sink.out).ScratchDatabase).toBe(scratchDatabaseName(PREFIX, now, () => 'dddddd'));
    // The lock is still the other restore's: this run took and released only its own.
    expect(await other!.isHeld()).toBe(true);
  } finally {
    await other!.release();
  }
  expect(await tryLockRestoreTarget(lab.connectionString('master'), held, quietEngineContext()).then((l) => l?.release().then(() => true))).toBe(true);
});

test('scratch databases killed runs left: a RESTORING one no restore holds is dropped, an ONLINE one is named, one in use is left alone', async () => {
  const killed = `${PREFIX}20261101T010000Z-0a0a0a`;
  const kept = `${PREFIX}20261101T020000Z-0b0b0b`;
  const inUse = `${PREFIX}20261101T030000Z-0c0c0c`;
  const notOurs = `${PREFIX}production`;
  for (const name of [killed, kept, inUse, notOurs]) lab.sim.model.addDatabase(octopusSeed(name).seed);
  lab.sim.model.database(killed)!.state = 'RESTORING';
  lab.sim.model.database(inUse)!.state = 'RESTORING';
  lab.sim.model.database(notOurs)!.state = 'RESTORING';
  const other = await tryLockRestoreTarget(lab.connectionString('master'), inUse, quietEngineContext());
  try {
    const run = await runTestRestore([]);
    expect(run.code).toBe(0);
    const said = run.stdout + run.stderr;
    expect(said).toContain(`Dropped '${killed}', a half-restored scratch database an earlier test restore left when it was stopped before it could drop it.`);
    expect(said).toContain(`'${kept}' (ONLINE) is a scratch database an earlier test restore left (stopped before it could drop it, or kept with "Keep scratch database"): drop it when it is no longer needed.`);
    expect(said).toContain(`'${inUse}' is another test restore's scratch database, in use.`);
    expect(said).not.toMatch(new RegExp(`Dropped '${inUse}'`));
    expect(said).not.toContain(notOurs);
    expect(lab.sim.model.database(killed)).toBeUndefined();
    expect(lab.sim.model.database(kept)!.state).toBe('ONLINE');
    expect(lab.sim.model.database(inUse)!.state).toBe('RESTORING');
    expect(lab.sim.model.database(notOurs)!.state).toBe('RESTORING');
    expect(await other!.isHeld()).toBe(true);
  } finally {
    await other!.release();
    for (const name of [killed, kept, inUse, notOurs]) lab.sim.model.databases.delete(name.toLowerCase());
  }
});

test('a leftover scratch database that cannot be dropped is named with the command to drop it; the drill of a good backup still passes', async () => {
  const leftover = `${PREFIX}20261101T040000Z-0d0d0d`;
  lab.sim.model.addDatabase(octopusSeed(leftover).seed);
  lab.sim.model.database(leftover)!.state = 'RESTORING';
  // Another session is in it (a restore by hand, monitoring): DROP fails with error 3702.
  lab.sim.model.sessions.set(99_999, { id: 99_999, login: 'dba', database: leftover, kill: () => undefined });
  try {
    const run = await runTestRestore([]);
    expect(run.code).toBe(0);
    expect(run.stdout + run.stderr).toMatch(
      new RegExp(`'${leftover}' \\(RESTORING\\), a scratch database an earlier test restore left, could not be dropped \\(.*in use.*\\): drop it \\(DROP DATABASE \\[${leftover}\\]\\)\\.`),
    );
    expect(reportOf(run).restore.status).toBe('passed');
    expect(lab.sim.model.database(leftover)!.state).toBe('RESTORING');
  } finally {
    lab.sim.model.sessions.delete(99_999);
    lab.sim.model.databases.delete(leftover.toLowerCase());
  }
});

test('a scratch prefix too long for the name it starts is refused before anything connects (exit 2)', async () => {
  const requestsBefore = lab.sim.events.filter((e) => e.kind === 'request').length;
  const run = await runTestRestore(['--scratch-prefix', 'p'.repeat(106)]);
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/^"Scratch database prefix" must be at most 105 characters without control characters .*, not 106 characters long: /);
  expect(lab.sim.events.filter((e) => e.kind === 'request').length).toBe(requestsBefore);
  // 105 is the most that leaves the random part whole.
  expect(scratchDatabaseName('p'.repeat(105), new Date('2026-12-04T05:00:00Z'), () => 'abcdef')).toMatch(/^p{105}20261204T050000Z-abcdef$/);
});

test('keep database leaves the scratch copy for inspection and says so', async () => {
  const run = await runTestRestore(['--keep-database']);
  expect(run.code).toBe(0);
  const report = reportOf(run);
  expect(report.restore).toMatchObject({ kept: true, dropped: false });
  expect(scratchDatabases()).toContain(report.restore.scratchDatabase);
  expect(run.stderr + run.stdout).toContain('is kept');
  lab.sim.model.databases.delete(String(report.restore.scratchDatabase).toLowerCase());
});

test('cancel during the restore drops the scratch database and still writes the report', async () => {
  const run = await runTestRestore([], { killAfter: (out) => out.includes('Restoring under the scratch name') });
  expect(run.code).toBe(143);
  expect(scratchDatabases()).toEqual([]);
  const reports = readdirSync(run.reportDirectory).filter((f) => f.endsWith('.json'));
  expect(reports).toHaveLength(1);
  const report = JSON.parse(readFileSync(path.join(run.reportDirectory, reports[0]), 'utf8'));
  expect(report.result).toBe('FAIL');
  expect(report.failures).toContain('Cancelled before the test finished.');
  expect(readdirSync(run.reportDirectory).filter((f) => f.endsWith('.partial'))).toEqual([]);
});

test('an empty backup directory fails clearly', async () => {
  const empty = tempDir('octopus-dr-tr-empty-');
  mkdirSync(empty, { recursive: true });
  const run = await runTestRestore(['--source', empty]);
  expect(run.code).toBe(1);
  expect(reportOf(run).failures.join('\n')).toMatch(/^Database backup: /m);
});
