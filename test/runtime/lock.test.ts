// The backup lock: one holder per directory and key; a second waits a bounded time and fails
// naming the holder; a lock left by a dead process, or one whose heartbeat stopped, is taken over.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireLock, lockFileName, processIsAlive, processSpace, waitForWriters, type LockOptions } from '../../steps/runtime/lock';

const work = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-lock-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function options(directory: string, overrides: Partial<LockOptions> = {}) {
  const infos: string[] = [];
  const warnings: string[] = [];
  const o: LockOptions = {
    directory,
    key: 'database-octopus',
    resource: "backups of database 'Octopus'",
    step: 'backup-database',
    waitMs: 0,
    pollMs: 20,
    log: { info: (m) => infos.push(m), warn: (m) => warnings.push(m) },
    ...overrides,
  };
  return { o, infos, warnings };
}

function dir(name: string): string {
  const d = path.join(work, name);
  require('node:fs').mkdirSync(d);
  return d;
}

/** A pid that certainly does not run: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(child.stdout);
  expect(processIsAlive(pid)).toBe(false);
  return pid;
}

test('the holder record names host, pid, step and time; release removes the file', async () => {
  const d = dir('record');
  const { o } = options(d);
  const lock = await acquireLock(o);
  expect(lock.path).toBe(path.join(d, lockFileName('database-octopus')));
  const record = JSON.parse(readFileSync(lock.path, 'utf8'));
  expect(record).toMatchObject({ tool: 'octopus-dr', host: os.hostname(), pid: process.pid, step: 'backup-database', resource: "backups of database 'Octopus'" });
  expect(Date.parse(record.since)).toBeGreaterThan(Date.now() - 10_000);
  await lock.release();
  expect(readdirSync(d)).toEqual([]);
});

test('a second holder fails at once with wait 0, naming the first; other keys are independent', async () => {
  const d = dir('second');
  const first = await acquireLock(options(d).o);
  const { o } = options(d, { step: 'backup-database (second)' });
  await expect(acquireLock(o)).rejects.toThrow(
    new RegExp(
      `^Another run is writing backups of database 'Octopus' in ${d}: backup-database \\(process ${process.pid} on ${os.hostname()}, since \\d{4}-\\d\\d-\\d\\dT[^)]+\\)\\. Nothing was changed\\. ` +
        'Let it finish and run this step again, or raise "Lock wait \\(minutes\\)"\\.',
    ),
  );
  const other = await acquireLock(options(d, { key: 'file-store' }).o);
  await other.release();
  await first.release();
});

test('a waiter gets the lock when the holder releases it within the wait', async () => {
  const d = dir('wait');
  const first = await acquireLock(options(d).o);
  setTimeout(() => void first.release(), 150);
  const { o, infos } = options(d, { waitMs: 5000 });
  const started = Date.now();
  const second = await acquireLock(o);
  expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  expect(infos.join('\n')).toMatch(/Waiting up to .* for backup-database \(process \d+ on .*\), which is writing backups of database 'Octopus'/);
  await second.release();
});

test('a waiter gives up after the bounded wait, saying how long it waited', async () => {
  const d = dir('timeout');
  const first = await acquireLock(options(d).o);
  const started = Date.now();
  await expect(acquireLock(options(d, { waitMs: 300 }).o)).rejects.toThrow(/Another run is writing .*; waited 0 s/);
  expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  expect(Date.now() - started).toBeLessThan(3000);
  await first.release();
});

test('a cancel stops the wait', async () => {
  const d = dir('cancel');
  const first = await acquireLock(options(d).o);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('cancelled by test')), 100);
  await expect(acquireLock(options(d, { waitMs: 60_000, signal: controller.signal }).o)).rejects.toThrow('cancelled by test');
  await first.release();
});

test('a lock of a process that no longer runs on this host is taken over at once, with a warning naming it', async () => {
  const d = dir('dead');
  const pid = deadPid();
  const file = path.join(d, lockFileName('database-octopus'));
  writeFileSync(file, JSON.stringify({ tool: 'octopus-dr', host: os.hostname(), pid, step: 'backup-database', resource: 'x', since: '2026-11-27T01:30:00.000Z', token: 'dead' }));
  const { o, warnings } = options(d);
  const lock = await acquireLock(o);
  expect(warnings).toEqual([
    `Took over the lock on backups of database 'Octopus' in ${d} held by backup-database (process ${pid} on ${os.hostname()}, since 2026-11-27T01:30:00.000Z): process ${pid} no longer runs on ${os.hostname()}.`,
  ]);
  expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
  await lock.release();
  expect(existsSync(`${file}.takeover`)).toBe(false);
});

test('another host: a live heartbeat is respected, a stopped one is taken over after the age guard', async () => {
  const d = dir('other-host');
  const file = path.join(d, lockFileName('database-octopus'));
  writeFileSync(file, JSON.stringify({ tool: 'octopus-dr', host: 'worker-02', pid: 4242, step: 'backup-database', resource: 'x', since: '2026-11-27T01:30:00.000Z', token: 'remote' }));
  await expect(acquireLock(options(d, { staleAfterMs: 60_000 }).o)).rejects.toThrow(/backup-database \(process 4242 on worker-02, since 2026-11-27T01:30:00.000Z\)/);
  const old = new Date(Date.now() - 120_000);
  utimesSync(file, old, old);
  const { o, warnings } = options(d, { staleAfterMs: 60_000 });
  const lock = await acquireLock(o);
  expect(warnings[0]).toMatch(/held by backup-database \(process 4242 on worker-02.*\): its holder has not refreshed it for 2 minutes\./);
  await lock.release();
});

(processSpace() ? test : test.skip)('same host name but another pid namespace (another container): judged by the heartbeat, not by the pid', async () => {
  const d = dir('other-container');
  const file = path.join(d, lockFileName('database-octopus'));
  writeFileSync(file, JSON.stringify({ tool: 'octopus-dr', host: os.hostname(), pid: deadPid(), step: 'backup-database', resource: 'x', since: 'then', token: 'c', processSpace: 'pid:[1]' }));
  await expect(acquireLock(options(d).o)).rejects.toThrow(/Another run is writing/);
  const old = new Date(Date.now() - 120_000);
  utimesSync(file, old, old);
  const lock = await acquireLock(options(d, { staleAfterMs: 60_000 }).o);
  await lock.release();
});

test('the holder refreshes its heartbeat while it runs', async () => {
  const d = dir('heartbeat');
  const lock = await acquireLock(options(d, { heartbeatMs: 50 }).o);
  const old = new Date(Date.now() - 3_600_000);
  utimesSync(lock.path, old, old);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(Date.now() - require('node:fs').statSync(lock.path).mtimeMs).toBeLessThan(5000);
  await lock.release();
});

test('an empty lock file (creator killed before writing) is respected for a minute, then taken over', async () => {
  const d = dir('empty');
  const file = path.join(d, lockFileName('database-octopus'));
  writeFileSync(file, '');
  await expect(acquireLock(options(d).o)).rejects.toThrow(/a process that is just starting/);
  const old = new Date(Date.now() - 120_000);
  utimesSync(file, old, old);
  const lock = await acquireLock(options(d).o);
  await lock.release();
});

test('a lock taken over from a holder that was in fact alive is not removed by that holder', async () => {
  const d = dir('taken');
  const { o, warnings } = options(d);
  const lock = await acquireLock(o);
  writeFileSync(lock.path, JSON.stringify({ tool: 'octopus-dr', host: 'worker-02', pid: 1, step: 'backup-database', resource: 'x', since: 'now', token: 'other' }));
  await lock.release();
  expect(existsSync(lock.path)).toBe(true);
  expect(warnings[0]).toMatch(/was taken over by another run while this one held it/);
});

test('many concurrent takers of a stale lock: exactly one holds it at a time', async () => {
  const d = dir('race');
  const file = path.join(d, lockFileName('database-octopus'));
  writeFileSync(file, JSON.stringify({ tool: 'octopus-dr', host: os.hostname(), pid: deadPid(), step: 'backup-database', resource: 'x', since: 'then', token: 'dead' }));
  let holding = 0;
  let maxHolding = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const lock = await acquireLock(options(d, { waitMs: 20_000, pollMs: 5 }).o);
      holding += 1;
      maxHolding = Math.max(maxHolding, holding);
      await new Promise((resolve) => setTimeout(resolve, 20));
      holding -= 1;
      await lock.release();
    }),
  );
  expect(maxHolding).toBe(1);
  expect(readdirSync(d)).toEqual([]);
});

test('a folder the account cannot write to fails clearly', async () => {
  await expect(acquireLock(options(path.join(work, 'no', 'such')).o)).rejects.toThrow(/ does not exist \(ENOENT\) while creating the lock file \.octopus-dr-.*\.lock there \(nothing was written\): create it, or correct the path\.$/);
});

describe('restores wait for a backup being written, without taking a lock', () => {
  const wait = (directory: string, keys: RegExp, waitMs: number) => {
    const infos: string[] = [];
    return { infos, done: waitForWriters({ directory, keys, purpose: 'choosing the newest set', waitMs, pollMs: 20, log: { info: (m) => infos.push(m) } }) };
  };

  test('no lock, a stale lock, or a lock of another key: no wait, and nothing is written or removed', async () => {
    const d = dir('writers-none');
    await wait(d, /^file-store$/, 0).done;
    writeFileSync(path.join(d, lockFileName('file-store')), JSON.stringify({ tool: 'octopus-dr', host: os.hostname(), pid: deadPid(), step: 'backup-file-store', resource: 'x', since: 'then', token: 'dead' }));
    const live = await acquireLock(options(d).o); // database-octopus
    await wait(d, /^file-store$/, 0).done;
    expect(readdirSync(d).sort()).toEqual([lockFileName('database-octopus'), lockFileName('file-store')].sort());
    await live.release();
  });

  test('a live backup is waited for; at the limit the restore fails naming it', async () => {
    const d = dir('writers-live');
    const backup = await acquireLock(options(d).o);
    await expect(wait(d, /^database-/, 200).done).rejects.toThrow(
      new RegExp(`^A backup is being written to ${d}: backup-database \\(process ${process.pid} on .*\\); waited 0 s\\. Nothing was changed\\. Run this step again when it has finished`),
    );
    const waiting = wait(d, /^database-/, 5000);
    setTimeout(() => void backup.release(), 100);
    await waiting.done;
    expect(waiting.infos[0]).toMatch(/^Waiting up to 5 s for backup-database \(process \d+ on .*\), which is writing a backup to .*, before choosing the newest set\.\.\.$/);
  });
});
