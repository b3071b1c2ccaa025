// Fault tests of where backups go (in-process) and of runs at the same time (built steps, one process each):
// a backup goes only where the user pointed, into a folder that already exists; a restore reads
// only from an absolute path of the platform that opens it; two runs never overwrite each other,
// a second waits for the first or fails naming it, and a lock left by a killed run is taken over.
// Every case checks the exit code, the last line, and that nothing that existed changed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lockFileName } from '../../steps/runtime/lock';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { Lab, octopusTables } from '../database/harness';
import { makeStore, pseudoRandomBytes, write } from '../file-store/helpers';
import { builtStep } from '../helpers/bundle';
import { runStepInProcess } from '../helpers/in-process';
import { asNobodyArgs, canRunAsNobody } from '../helpers/unprivileged';

jest.setTimeout(120_000);

const lab = new Lab();
const home = path.join(lab.root, 'home');
const bigHome = path.join(lab.root, 'big-home');

beforeAll(async () => {
  chmodSync(lab.root, 0o755);
  makeStore(home);
  // Big enough that a backup is still writing when the test kills it.
  write(path.join(bigHome, 'Packages', 'Acme.Huge.1.0.0.zip'), pseudoRandomBytes(96 * 1024 * 1024, 7));
  write(path.join(bigHome, 'TaskLogs', 'servertasks-1.log.txt'), 'log\n');
  await lab.start({}, [
    { name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'Twice', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'Held', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'Killed', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'Legacy', recoveryModel: 'FULL', tables: octopusTables() },
  ]);
});
afterAll(() => lab.stop());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last line the user sees. */
  lastLine: string;
  result?: string;
  outputs: Record<string, string>;
}

interface RunOptions {
  cwd?: string;
  database?: string;
  asNobody?: boolean;
  serviceMessages?: boolean;
  onStdout?: (stdout: string, child: ChildProcess) => void;
  onStart?: (child: ChildProcess) => void;
  /** Run the built bundle in its own process (runs at the same time, locks: each run its own pid). */
  separateProcess?: boolean;
}

/** On the command line an error is the last line of stderr; a success, the summary on stdout. */
function lastLineOf(stdout: string, stderr: string, code: number | null, serviceMessages?: boolean): string {
  const lines = (serviceMessages || code === 0 || !stderr.trim() ? stdout : stderr).split('\n').filter((l) => l.trim() && !l.startsWith('##octopus'));
  return lines.at(-1) ?? '';
}

/** Runs a step in this process, or as the built bundle where the run needs its own process, user or working directory. */
async function runStep(step: string, args: string[], options: RunOptions = {}): Promise<Run> {
  const all = [...(options.serviceMessages ? ['--service-messages'] : []), ...args];
  const env: NodeJS.ProcessEnv = {};
  if (options.database) env.OCTOPUSDR_SQL_CONNECTIONSTRING = lab.connectionString(options.database);
  if (step === 'test-restore') env.OCTOPUSDR_MASTERKEY = 'AAAAAAAAAAAAAAAAAAAAAA=='; // any well-formed key: the run stops before using it
  if (!(options.separateProcess || options.asNobody || options.cwd || options.onStdout || options.onStart)) {
    const { code, stdout, stderr } = await runStepInProcess(step, all, { env });
    return { code, stdout, stderr, lastLine: lastLineOf(stdout, stderr, code, options.serviceMessages), result: resultMessageIn(stdout), outputs: outputVariablesIn(stdout) };
  }
  const bundle = builtStep(step);
  const [command, commandArgs] = options.asNobody ? ['setpriv', asNobodyArgs(bundle, all)] : [process.execPath, [bundle, ...all]];
  env.PATH = process.env.PATH;
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { cwd: options.cwd ?? lab.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    options.onStart?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, lastLine: lastLineOf(stdout, stderr, code, options.serviceMessages), result: resultMessageIn(stdout), outputs: outputVariablesIn(stdout) }));
  });
}

/** Runs at the same time, and runs against locks, each in its own process, as on a worker. */
const runSeparately = (step: string, args: string[], options: RunOptions = {}) => runStep(step, args, { ...options, separateProcess: true });

/** Every file below a folder with its SHA-256 (dot-files included): what must not change. */
function hashes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      if (lstatSync(full).isDirectory()) walk(full, r);
      else out[r] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk(root, '');
  return out;
}

function expectUnchanged(before: Record<string, string>, after: Record<string, string>): void {
  for (const [file, sha] of Object.entries(before)) expect([file, after[file]]).toEqual([file, sha]);
}

function folder(name: string): string {
  const d = path.join(lab.root, name);
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o755);
  return d;
}

const logins = () => lab.sim.events.filter((e) => e.kind === 'login').length;
const backupRequests = () => lab.sim.events.filter((e) => e.kind === 'request' && /BACKUP (DATABASE|LOG)/.test(e.detail ?? '')).length;
const restoreRequests = () => lab.sim.events.filter((e) => e.kind === 'request' && /RESTORE (DATABASE|LOG|VERIFYONLY|HEADERONLY)/.test(e.detail ?? '')).length;
const fileStore = (directory: string, ...args: string[]) => ['--home-directory', home, '--file-store-backup-directory', directory, ...args];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A process that runs on this host until killed: a live lock holder. */
function liveProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
}

function fakeLock(directory: string, key: string, holder: { pid: number; host?: string; step?: string; since?: string }): string {
  const file = path.join(directory, lockFileName(key));
  writeFileSync(
    file,
    JSON.stringify({ tool: 'octopus-dr', host: holder.host ?? os.hostname(), pid: holder.pid, step: holder.step ?? 'backup-file-store', resource: 'x', since: holder.since ?? '2026-11-27T01:30:00.000Z', token: 'fake' }),
  );
  return file;
}

describe('invariant 3: a backup goes only where the user pointed, and the place must already exist', () => {
  describe('backup-file-store', () => {
    test('a missing directory is refused (exit 2), not created with its parents', async () => {
      const before = hashes(lab.root);
      const missing = path.join(lab.root, 'not-mounted', 'octopus', 'file-store');
      const run = await runStep('backup-file-store', fileStore(missing));
      expect(run.code).toBe(2);
      expect(run.lastLine).toBe(
        `ERROR: "File store backup directory" ${missing} does not exist on this worker. Create it (or mount the share) first: octopus-dr never creates it, ` +
          'so that an unmounted share cannot silently become a local folder: set "File store backup directory" (OctopusDr.FileStore.BackupDirectory) in the step, or --file-store-backup-directory on the command line.',
      );
      expect(existsSync(path.join(lab.root, 'not-mounted'))).toBe(false);
      expect(hashes(lab.root)).toEqual(before);
    });

    test('a relative directory is refused (exit 2); nothing appears in the working directory', async () => {
      const cwd = folder('cwd-relative');
      const run = await runStep('backup-file-store', fileStore('backups'), { cwd });
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(/^ERROR: "File store backup directory" must be an absolute path as this worker \(Linux\) sees it \(e\.g\. \/var\/backups\/octopus\), not "backups": a relative path would depend on the folder the step starts in/);
      expect(readdirSync(cwd)).toEqual([]);
    });

    test("the README's UNC path on Linux is refused (exit 2), instead of becoming a folder of that literal name", async () => {
      const cwd = folder('cwd-unc');
      const run = await runStep('backup-file-store', fileStore('\\\\backup01\\octopus\\file-store'), { cwd });
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(/^ERROR: "File store backup directory" is a Windows path \("\\\\backup01\\octopus\\file-store"\), but this worker runs Linux, where it would be a folder of that literal name: mount the folder on this worker/);
      expect(readdirSync(cwd)).toEqual([]);
    });

    test('mixed separators are refused (exit 2)', async () => {
      const out = folder('fs-mixed');
      const run = await runStep('backup-file-store', fileStore(`${out}\\octopus`));
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(/^ERROR: "File store backup directory" mixes \/ and \\ in ".*fs-mixed\\octopus"; write it with \/ only/);
      expect(readdirSync(out)).toEqual([]);
    });

    const nobody = canRunAsNobody() ? test : test.skip;
    nobody('a read-only directory fails before writing (exit 1), naming the folder and the fix', async () => {
      const out = folder('fs-read-only');
      writeFileSync(path.join(out, 'existing.txt'), 'keep me');
      const before = hashes(out);
      const run = await runStep('backup-file-store', fileStore(out), { asNobody: true });
      expect(run.code).toBe(1);
      expect(run.lastLine).toBe(
        `ERROR: ${out} cannot be accessed by the account nobody (EACCES: permission denied) while creating the lock file ${lockFileName('file-store')} there (nothing was written): ` +
          `give that account read and write access to ${out}, or choose another directory.`,
      );
      expect(hashes(out)).toEqual(before);
    });
  });

  describe('backup-database', () => {
    test('a missing backup directory is refused (exit 2) before connecting, and not created', async () => {
      const existing = hashes(lab.root);
      const seen = logins();
      const missing = path.join(lab.root, 'no-such-share', 'sql');
      const run = await runStep('backup-database', ['--backup-directory', missing], { database: 'Octopus' });
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(new RegExp(`^ERROR: "Backup directory" ${missing} does not exist on this worker\\. Create it \\(or mount the share\\) first: octopus-dr never creates it`));
      expect(logins()).toBe(seen);
      expect(existsSync(path.join(lab.root, 'no-such-share'))).toBe(false);
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('a relative backup directory, and a relative worker directory, are refused (exit 2) before connecting', async () => {
      const existing = hashes(lab.root);
      const seen = logins();
      const cwd = folder('cwd-sql');
      const run = await runStep('backup-database', ['--backup-directory', 'backups', '--backup-directory-on-worker', 'mnt/backups'], { database: 'Octopus', cwd });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/"Backup directory" must be an absolute path as the SQL Server service sees it/);
      expect(run.lastLine).toMatch(/^ {2}- "Backup directory on this worker" must be an absolute path as this worker \(Linux\) sees it .* not "mnt\/backups"/);
      expect(logins()).toBe(seen);
      expect(readdirSync(cwd)).toEqual([]);
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('a Windows server path with no worker path, on a Linux worker, asks for "Backup directory on this worker" (exit 2) before connecting', async () => {
      const existing = hashes(lab.root);
      const seen = logins();
      const run = await runStep('backup-database', ['--backup-directory', '\\\\backup01\\sql\\octopus'], { database: 'Octopus' });
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(/^ERROR: This worker runs Linux and cannot open the backup folder \\\\backup01\\sql\\octopus as SQL Server names it: set "Backup directory on this worker"/);
      expect(logins()).toBe(seen);
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('a Windows path for a SQL Server on Linux is refused (exit 2) before any BACKUP, not left to error 3201', async () => {
      const existing = hashes(lab.root);
      const sent = backupRequests();
      const run = await runStep('backup-database', ['--backup-directory', 'D:\\Backups\\Octopus', '--backup-directory-on-worker', lab.backups], { database: 'Octopus' });
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(/^ERROR: "Backup directory" is a Windows path \("D:\\Backups\\Octopus"\), but the SQL Server runs on Linux: give the folder as the SQL Server service sees it/);
      expect(run.stderr + run.stdout).not.toMatch(/3201/);
      expect(backupRequests()).toBe(sent);
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('mixed separators in the worker path are refused (exit 2)', async () => {
      const existing = hashes(lab.root);
      const run = await runStep('backup-database', ['--backup-directory-on-worker', `${lab.backups}\\sql`], { database: 'Octopus' });
      expect(run.code).toBe(2);
      expect(run.lastLine).toMatch(/^ERROR: "Backup directory on this worker" mixes \/ and \\ in /);
      expect(hashes(lab.root)).toEqual(existing);
    });

    const nobody = canRunAsNobody() ? test : test.skip;
    nobody('a read-only worker directory fails before any BACKUP (exit 1), naming it', async () => {
      const out = folder('sql-read-only');
      writeFileSync(path.join(out, 'existing.bak'), 'keep me');
      const before = hashes(out);
      const sent = backupRequests();
      const run = await runStep('backup-database', ['--backup-directory', out], { database: 'Octopus', asNobody: true });
      expect(run.code).toBe(1);
      expect(run.lastLine).toMatch(/^ERROR: \S*sql-read-only cannot be accessed by the account nobody \(EACCES: permission denied\) while creating the lock file \.octopus-dr-database-octopus\.lock there \(nothing was written\): give that account read and write access to /);
      expect(backupRequests()).toBe(sent);
      expect(hashes(out)).toEqual(before);
    });
  });

  describe('restore sources', () => {
    test('restore-database: a relative source and a UNC source are refused (exit 2) before connecting', async () => {
      const existing = hashes(lab.root);
      const seen = logins();
      const relative = await runStep('restore-database', ['--source', 'backups'], { database: 'master' });
      expect(relative.code).toBe(2);
      expect(relative.lastLine).toMatch(/^ERROR: "Backup to restore" must be an absolute path as this worker \(Linux\) sees it/);
      const unc = await runStep('restore-database', ['--source', '\\\\backup01\\sql\\Octopus_FULL.bak'], { database: 'master' });
      expect(unc.code).toBe(2);
      expect(unc.lastLine).toMatch(/^ERROR: "Backup to restore" is a Windows path .* but this worker runs Linux/);
      const server = await runStep('restore-database', ['--source', lab.backups, '--source-on-server', 'Restore'], { database: 'master' });
      expect(server.code).toBe(2);
      expect(server.lastLine).toMatch(/^ERROR: "Backup folder as SQL Server sees it" must be an absolute path as the SQL Server service sees it/);
      expect(logins()).toBe(seen);
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('restore-database: a SQL Server on Windows without "Backup folder as SQL Server sees it" gets an up-front error, not 3201', async () => {
      const existing = hashes(lab.root);
      const properties = lab.sim.model.properties;
      const saved = properties.pathSeparator;
      properties.pathSeparator = '\\';
      try {
        const sent = restoreRequests();
        const run = await runStep('restore-database', ['--source', lab.backups, '--target-database', 'Elsewhere'], { database: 'master' });
        expect(run.code).toBe(2);
        expect(run.lastLine).toBe(
          `ERROR: The SQL Server runs on Windows and cannot open ${lab.backups} as this Linux worker names it: set "Backup folder as SQL Server sees it" to the folder as the SQL Server service sees it ` +
            '(e.g. D:\\Backups\\Octopus or \\\\backup01\\octopus): set "Backup folder as SQL Server sees it" (OctopusDr.Restore.SourceOnServer) in the step, or --source-on-server on the command line.',
        );
        expect(restoreRequests()).toBe(sent);
      } finally {
        properties.pathSeparator = saved;
      }
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('test-restore: a relative source and a missing file-store directory are refused (exit 2) before connecting', async () => {
      const existing = hashes(lab.root);
      const seen = logins();
      const run = await runStep('test-restore', ['--source', 'backups', '--file-store-backup-directory', path.join(lab.root, 'gone')], {
        database: 'master',
        cwd: folder('cwd-test-restore'),
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/"Backup to restore" must be an absolute path/);
      expect(run.lastLine).toMatch(/"File store backup directory" .*gone does not exist on this worker/);
      expect(readdirSync(path.join(lab.root, 'cwd-test-restore'))).toEqual([]); // no report for a parameter error
      expect(logins()).toBe(seen);
      expect(hashes(lab.root)).toEqual(existing);
    });

    test('restore-file-store: a relative or UNC source is refused (exit 2)', async () => {
      const existing = hashes(lab.root);
      const relative = await runStep('restore-file-store', ['--source', 'fs', '--verify-only'], { cwd: folder('cwd-fs-restore') });
      expect(relative.code).toBe(2);
      expect(relative.lastLine).toMatch(/^ERROR: "Backup to restore" must be an absolute path as this worker \(Linux\) sees it/);
      const unc = await runStep('restore-file-store', ['--source', '\\\\backup01\\octopus\\file-store', '--verify-only']);
      expect(unc.code).toBe(2);
      expect(unc.lastLine).toMatch(/^ERROR: "Backup to restore" is a Windows path/);
      expect(hashes(lab.root)).toEqual(existing);
    });
  });
});

describe('invariant 4: two runs never overwrite each other', () => {
  test('backup-file-store: three backups at once all complete with distinct, verifiable sets; nothing that existed changed', async () => {
    const out = folder('fs-concurrent');
    const first = await runSeparately('backup-file-store', fileStore(out), { serviceMessages: true });
    expect(first.code).toBe(0);
    const before = hashes(out);
    const runs = await Promise.all([1, 2, 3].map(() => runSeparately('backup-file-store', fileStore(out), { serviceMessages: true })));
    for (const run of runs) {
      expect(run.code).toBe(0);
      expect(run.result).toMatch(/^Full backup of \d+ files .* written to .*octopus-file-store-\d{8}T\d{6}Z-[0-9a-f]{6}-full\.zip/);
    }
    const archives = runs.map((r) => r.outputs.ArchivePath);
    expect(new Set(archives).size).toBe(3);
    expectUnchanged(before, hashes(out));
    for (const archive of archives) {
      const verify = await runSeparately('restore-file-store', ['--source', archive, '--verify-only']);
      expect(verify.code).toBe(0);
    }
    expect(readdirSync(out).filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  test('backup-file-store: a second run waits for a live holder, then fails naming it (host, pid, step, since); nothing changed', async () => {
    const out = folder('fs-held');
    const holder = liveProcess();
    try {
      fakeLock(out, 'file-store', { pid: holder.pid!, since: '2026-11-27T01:30:00.000Z' });
      const before = hashes(out);
      const started = Date.now();
      const run = await runSeparately('backup-file-store', fileStore(out, '--lock-wait-minutes', '0'));
      expect(run.code).toBe(1);
      expect(run.lastLine).toBe(
        `ERROR: Another run is writing file-store backups in ${out}: backup-file-store (process ${holder.pid} on ${os.hostname()}, since 2026-11-27T01:30:00.000Z). Nothing was changed. ` +
          'Let it finish and run this step again, or raise "Lock wait (minutes)". A lock whose process no longer runs is taken over by the next run (at once on the same host; from another host 15 min after its last heartbeat).',
      );
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(hashes(out)).toEqual(before);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('backup-file-store: a waiting run takes over when the holder dies within the wait', async () => {
    const out = folder('fs-holder-dies');
    const holder = liveProcess();
    fakeLock(out, 'file-store', { pid: holder.pid! });
    setTimeout(() => holder.kill('SIGKILL'), 1500);
    const run = await runSeparately('backup-file-store', fileStore(out, '--lock-wait-minutes', '1'));
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`Waiting up to 60 s for backup-file-store \\(process ${holder.pid} on `));
    expect(run.stderr).toMatch(new RegExp(`WARNING: Took over the lock on file-store backups in .* process ${holder.pid} no longer runs on `));
    expect(readdirSync(out).filter((f) => f.endsWith('.zip'))).toHaveLength(1);
  });

  test('backup-file-store: SIGKILL mid-write, then a rerun takes the stale lock over; the killed run\'s leftovers are not touched', async () => {
    const out = folder('fs-killed');
    let killedPid: number | undefined;
    const killed = await runSeparately('backup-file-store', ['--home-directory', bigHome, '--file-store-backup-directory', out, '--include', 'Packages,TaskLogs'], {
      onStdout: (stdout, child) => {
        if (killedPid === undefined && /Backed up/.test(stdout) && readdirSync(out).some((f) => f.endsWith('.partial'))) {
          killedPid = child.pid;
          child.kill('SIGKILL');
        }
      },
    });
    expect(killed.code).toBeNull(); // killed by the signal
    expect(killedPid).toBeDefined();
    const lockPath = path.join(out, lockFileName('file-store'));
    expect(JSON.parse(readFileSync(lockPath, 'utf8')).pid).toBe(killedPid);
    const before = hashes(out);
    const rerun = await runSeparately('backup-file-store', ['--home-directory', bigHome, '--file-store-backup-directory', out, '--include', 'Packages,TaskLogs', '--lock-wait-minutes', '0']);
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toContain(`WARNING: Took over the lock on file-store backups in ${out} held by backup-file-store (process ${killedPid} on ${os.hostname()}`);
    expect(rerun.lastLine).toMatch(/^Full backup of 2 files .* written to .*-full\.zip/);
    expectUnchanged(Object.fromEntries(Object.entries(before).filter(([f]) => !f.endsWith('.lock'))), hashes(out));
    expect(existsSync(lockPath)).toBe(false);
  });

  test('backup-database: two full backups at once both complete with distinct, verified sets; nothing that existed changed', async () => {
    const out = folder('sql-concurrent');
    const first = await runSeparately('backup-database', ['--backup-directory', out], { database: 'Twice', serviceMessages: true });
    expect(first.code).toBe(0);
    const before = hashes(out);
    // Slow enough that the second starts while the first is writing: it waits for the lock.
    lab.sim.model.operationMs = 1500;
    let runs: Run[];
    try {
      runs = await Promise.all([1, 2].map(() => runSeparately('backup-database', ['--backup-directory', out], { database: 'Twice', serviceMessages: true })));
    } finally {
      lab.sim.model.operationMs = 200;
    }
    expect(runs.filter((r) => /Waiting up to 30 min for backup-database \(process \d+ on /.test(r.stdout))).toHaveLength(1);
    for (const run of runs) {
      expect(run.code).toBe(0);
      expect(run.result).toMatch(/^Full backup of 'Twice' .*verified\): .*Twice_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json$/);
    }
    const manifests = runs.map((r) => JSON.parse(readFileSync(r.outputs.ManifestPath, 'utf8')));
    expect(new Set(manifests.map((m) => m.files[0].name)).size).toBe(2);
    for (const m of manifests) {
      expect(m.verification.passed).toBe(true);
      expect(lstatSync(path.join(out, m.files[0].name)).size).toBe(m.files[0].sizeBytes);
    }
    expectUnchanged(before, hashes(out));
    // Every set restores on its own (the LSNs in each manifest match its file).
    for (const r of runs) {
      const restored = await runSeparately('restore-database', ['--source', r.outputs.ManifestPath, '--target-database', `Twice-${path.basename(r.outputs.ManifestPath).slice(-20, -14)}`], { database: 'master' });
      expect(restored.code).toBe(0);
    }
  });

  test('backup-database: a second run fails at once naming the holder; no BACKUP is sent and nothing changes', async () => {
    const out = folder('sql-held');
    const holder = liveProcess();
    try {
      fakeLock(out, 'database-held', { pid: holder.pid!, step: 'backup-database', since: '2026-11-27T01:30:00.000Z' });
      const before = hashes(out);
      const sent = backupRequests();
      const run = await runSeparately('backup-database', ['--backup-directory', out, '--lock-wait-minutes', '0'], { database: 'Held' });
      expect(run.code).toBe(1);
      expect(run.lastLine).toMatch(
        new RegExp(`^ERROR: Another run is writing backups of database 'Held' in ${out}: backup-database \\(process ${holder.pid} on ${os.hostname()}, since 2026-11-27T01:30:00\\.000Z\\)\\. Nothing was changed\\.`),
      );
      expect(backupRequests()).toBe(sent);
      expect(hashes(out)).toEqual(before);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('backup-database: SIGKILL mid-BACKUP, then a rerun takes the stale lock over and writes a new set beside what was left', async () => {
    const out = folder('sql-killed');
    lab.sim.model.operationMs = 3000;
    let killedPid: number | undefined;
    try {
      const killed = await runSeparately('backup-database', ['--backup-directory', out], {
        database: 'Killed',
        serviceMessages: true,
        onStdout: (stdout, child) => {
          if (killedPid === undefined && /percentage='(MT|Mj|[1-9])/.test(stdout)) {
            killedPid = child.pid;
            child.kill('SIGKILL');
          }
        },
      });
      expect(killed.code).toBeNull();
    } finally {
      lab.sim.model.operationMs = 200;
    }
    expect(killedPid).toBeDefined();
    await sleep(3500); // the server finishes the orphaned BACKUP on its own
    const before = hashes(out);
    expect(Object.keys(before)).toContain('.octopus-dr-database-killed.lock');
    const rerun = await runSeparately('backup-database', ['--backup-directory', out, '--lock-wait-minutes', '0'], { database: 'Killed' });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toContain(`WARNING: Took over the lock on backups of database 'Killed' in ${out} held by backup-database (process ${killedPid} on ${os.hostname()}`);
    expect(rerun.lastLine).toMatch(/^Full backup of 'Killed' .*verified\): /);
    expectUnchanged(Object.fromEntries(Object.entries(before).filter(([f]) => !f.endsWith('.lock'))), hashes(out));
    expect(existsSync(path.join(out, '.octopus-dr-database-killed.lock'))).toBe(false);
  });

  test('a restore from a folder waits for a backup being written there, then fails naming it; a named set does not wait', async () => {
    const fsOut = folder('fs-restore-during-backup');
    expect((await runSeparately('backup-file-store', fileStore(fsOut))).code).toBe(0);
    const archive = readdirSync(fsOut).find((f) => f.endsWith('.zip'))!;
    const holder = liveProcess();
    try {
      fakeLock(fsOut, 'file-store', { pid: holder.pid!, since: '2026-11-27T01:30:00.000Z' });
      const before = hashes(fsOut);
      const fromFolder = await runSeparately('restore-file-store', ['--source', fsOut, '--verify-only', '--lock-wait-minutes', '0']);
      expect(fromFolder.code).toBe(1);
      expect(fromFolder.lastLine).toBe(
        `ERROR: A backup is being written to ${fsOut}: backup-file-store (process ${holder.pid} on ${os.hostname()}, since 2026-11-27T01:30:00.000Z). Nothing was changed. ` +
          'Run this step again when it has finished (the newest set is not complete yet), raise "Lock wait (minutes)", or name a manifest or archive as "Backup to restore" to use an earlier set now.',
      );
      const named = await runSeparately('restore-file-store', ['--source', path.join(fsOut, archive), '--verify-only', '--lock-wait-minutes', '0']);
      expect(named.code).toBe(0);
      expect(hashes(fsOut)).toEqual(before);

      const sqlOut = folder('sql-restore-during-backup');
      fakeLock(sqlOut, 'database-octopus', { pid: holder.pid!, step: 'backup-database' });
      const seen = logins();
      const restore = await runSeparately('restore-database', ['--source', sqlOut, '--lock-wait-minutes', '0'], { database: 'master' });
      expect(restore.code).toBe(1);
      expect(restore.lastLine).toMatch(new RegExp(`^ERROR: A backup is being written to ${sqlOut}: backup-database \\(process ${holder.pid} on `));
      expect(logins()).toBe(seen);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('sets named before the random part existed are still found, chained and restored', async () => {
    const out = folder('sql-legacy');
    const full = await runSeparately('backup-database', ['--backup-directory', out, '--no-copy-only'], { database: 'Legacy' });
    expect(full.code).toBe(0);
    // Give the set the old name, as a backup from an earlier octopus-dr wrote it.
    const manifestName = readdirSync(out).find((f) => f.endsWith('.manifest.json'))!;
    const manifest = JSON.parse(readFileSync(path.join(out, manifestName), 'utf8'));
    const oldStem = manifestName.replace(/_[0-9a-f]{6}\.manifest\.json$/, '');
    renameSync(path.join(out, manifest.files[0].name), path.join(out, `${oldStem}.bak`));
    manifest.files[0].name = `${oldStem}.bak`;
    manifest.files[0].serverPath = path.join(out, `${oldStem}.bak`);
    writeFileSync(path.join(out, `${oldStem}.manifest.json`), JSON.stringify(manifest));
    spawnSync('rm', [path.join(out, manifestName)]);
    lab.insertProject('Legacy', 'Projects-legacy');
    const log = await runSeparately('backup-database', ['--backup-directory', out, '--backup-type', 'Log', '--no-copy-only'], { database: 'Legacy' });
    expect(log.code).toBe(0);
    const before = hashes(out);
    const restored = await runSeparately('restore-database', ['--source', out, '--target-database', 'Legacy-restored'], { database: 'master' });
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(new RegExp(`1\\. Full\\s+${oldStem}\\.manifest\\.json`));
    expect(restored.stdout).toMatch(/2\. Log\s+Legacy_LOG_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json/);
    expect(lab.projectIds('Legacy-restored')).toContain('Projects-legacy');
    expectUnchanged(before, hashes(out));
  });
});
