// The worker threads of a restore and a verify (small entries inflated, hashed and written on one,
// large stored entries copied on the other): a thread that cannot start means the main thread does
// the work; one that dies fails the run clearly and changes nothing; none outlives the run.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import { backupFileStore, resolveBackupSource, restoreFileStore, verifyFileStoreBackup, type FileStoreFolderName, type ResolvedFolder } from '../../steps/engines/file-store';
import { startEntryThreads, ThreadStoppedError, type SmallEntryJob } from '../../steps/engines/file-store/restore-threads';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { expectThreadsEndedWhileBusyWithoutAbort, listAll, logText, makeStore, silentLog, snapshot, tempDir, write } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

const work = tempDir('threads');
const home = path.join(work, 'home');
const backups = path.join(work, 'backups');
beforeAll(async () => {
  makeStore(home);
  await backupFileStore({ folders: at(home), backupDirectory: backups, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Creates workers as the restore asks, keeping each, so a test can see that every one has ended. */
function trackedWorkers(make: (source: string) => Worker = (source) => new Worker(source, { eval: true })) {
  const workers: { worker: Worker; exited: boolean }[] = [];
  return {
    workers,
    createWorker(source: string): Worker {
      const record = { worker: make(source), exited: false };
      record.worker.on('exit', () => (record.exited = true));
      workers.push(record);
      return record.worker;
    },
  };
}

async function restoreInto(target: string, createWorker: (source: string) => Worker) {
  return restoreFileStore(
    { set: await resolveBackupSource(backups), destinations: at(target), replaceExisting: true, dryRun: false, createWorker },
    quietEngineContext({ log: silentLog }),
  );
}

/** A destination with content of its own, to show that a failed restore leaves it as it was. */
function occupiedTarget(name: string): { target: string; before: ReturnType<typeof snapshot> } {
  const target = path.join(work, name);
  write(path.join(target, 'TaskLogs', 'current.log.txt'), 'what the server wrote since\n');
  return { target, before: snapshot(target) };
}

const leftovers = () => listAll(work).filter((n) => /staging|before-restore/.test(n));

test('with the threads, restore reproduces every file, and every thread has ended when it returns', async () => {
  const tracked = trackedWorkers();
  const target = path.join(work, 'restored-threads');
  const result = await restoreInto(target, tracked.createWorker);
  expect(result.files).toBeGreaterThan(40);
  expect(snapshot(target)).toEqual(snapshot(home));
  expect(tracked.workers).toHaveLength(2);
  expect(tracked.workers.every((w) => w.exited)).toBe(true);

  const verifyTracked = trackedWorkers();
  const verified = await verifyFileStoreBackup(backups, { createWorker: verifyTracked.createWorker });
  expect(verified.ok).toBe(true);
  expect(verifyTracked.workers.every((w) => w.exited)).toBe(true);
});

test('threads that cannot be created: the main thread does the work, with the same result', async () => {
  const cannot = () => {
    throw new Error('no threads on this machine');
  };
  const target = path.join(work, 'restored-no-threads');
  await restoreInto(target, cannot);
  expect(snapshot(target)).toEqual(snapshot(home));
  const verified = await verifyFileStoreBackup(backups, { createWorker: cannot });
  expect(verified).toMatchObject({ ok: true, problems: [] });
});

test('a thread that fails as it starts: restore and verify fail saying so, nothing is changed, and no thread is left', async () => {
  const tracked = trackedWorkers(() => new Worker('throw new Error("broken thread")', { eval: true }));
  const { target, before } = occupiedTarget('target-broken-thread');
  const failure = restoreInto(target, tracked.createWorker);
  await expect(failure).rejects.toThrow(/^The restore stopped: a worker thread that inflates, hashes and writes files stopped \(broken thread\)\.\nNothing was changed: /);
  await expect(failure).rejects.toThrow(/Run the restore again/);
  expect(snapshot(target)).toEqual(before);
  expect(leftovers()).toEqual([]);
  expect(tracked.workers.every((w) => w.exited)).toBe(true);

  const verifyTracked = trackedWorkers(() => new Worker('throw new Error("broken thread")', { eval: true }));
  // Never "ok": a verification that could not hash every file is not a verified backup.
  await expect(verifyFileStoreBackup(backups, { createWorker: verifyTracked.createWorker })).rejects.toThrow(
    /^The verification stopped: a worker thread .* stopped \(broken thread\)\.\nThe backup was not verified/,
  );
});

test('a thread that dies part-way: the restore fails saying so, nothing is changed, and no staging folder is left', async () => {
  // The real thread, which exits after its third entry (as if killed).
  const dying = (source: string) => new Worker(`${source}\nlet seen = 0;\nparentPort.on('message', () => { if (++seen === 3) process.exit(7); });`, { eval: true });
  const tracked = trackedWorkers(dying);
  const { target, before } = occupiedTarget('target-dying-thread');
  await expect(restoreInto(target, tracked.createWorker)).rejects.toThrow(/^The restore stopped: a worker thread .* stopped \(it exited with code 7\)\.\nNothing was changed: /);
  expect(snapshot(target)).toEqual(before);
  expect(leftovers()).toEqual([]);
  expect(readdirSync(work).filter((n) => n.startsWith('target-dying-thread.'))).toEqual([]);
  expect(tracked.workers.every((w) => w.exited)).toBe(true);

  await expect(verifyFileStoreBackup(backups, { createWorker: trackedWorkers(dying).createWorker })).rejects.toThrow(/^The verification stopped: .* \(it exited with code 7\)/);
});

/** A small deflated entry for the threads, written to `target` (when its hash matches). */
function smallEntry(content: Buffer, target?: string): SmallEntryJob {
  const packed = deflateRawSync(content);
  return {
    fill: async (into) => into.set(packed),
    storedSize: packed.length,
    method: 8,
    size: content.length,
    expectedSha256: createHash('sha256').update(content).digest('hex'),
    target,
    mode: 0o640,
    mtimeMs: Date.parse('2026-10-01T12:00:00Z'),
  };
}

const settle = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));

test('close() while entries are queued: the one in hand is written whole, the queued ones fail and are never written, and nothing is written after close() returns', async () => {
  const folder = path.join(work, 'closed-while-queued');
  mkdirSync(folder);
  // 200 entries of 70 KiB, all queued at once: the thread is far from done when it is told to stop.
  const threads = startEntryThreads({ slots: 200, slotSize: 64 * 1024 });
  const contents = Array.from({ length: 200 }, (_, i) => Buffer.from(logText(1000, i)));
  const jobs = contents.map((content, i) => settle(threads.runSmall(smallEntry(content, path.join(folder, `entry-${i}.txt`)))));
  // The thread is under way once the first entry is done.
  await jobs[0];
  await threads.close();
  const afterClose = readdirSync(folder).sort();
  const outcomes = await Promise.all(jobs);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(readdirSync(folder).sort()).toEqual(afterClose);

  const done = outcomes.flatMap((o, i) => ('value' in o ? [i] : []));
  const failed = outcomes.flatMap((o, i) => ('error' in o ? [o.error] : []));
  // Queued entries were skipped, not done.
  expect(failed.length).toBeGreaterThan(0);
  for (const error of failed) expect(String(error)).toMatch(/^ThreadStoppedError: a worker thread that inflates, hashes and writes files stopped \(it was told to stop\)$/);
  // Exactly the entries that were answered as done are on disk, each whole.
  expect(afterClose).toEqual(done.map((i) => `entry-${i}.txt`).sort());
  for (const i of done) expect(readFileSync(path.join(folder, `entry-${i}.txt`)).equals(contents[i])).toBe(true);
  // Nothing runs on a closed set of threads.
  await expect(threads.runSmall(smallEntry(contents[0], path.join(folder, 'after-close.txt')))).rejects.toThrow(ThreadStoppedError);
  expect(existsSync(path.join(folder, 'after-close.txt'))).toBe(false);
});

test('close() during a large stored copy stops it between two chunks: the copy fails, and its file no longer grows', async () => {
  const folder = path.join(work, 'closed-while-copying');
  mkdirSync(folder);
  // A sparse 1 GiB "archive": read fast, so the copy is well under way when it is told to stop.
  const archivePath = path.join(folder, 'archive.bin');
  const size = 1024 * 1024 * 1024;
  closeSync(openSync(archivePath, 'w'));
  truncateSync(archivePath, size);
  const target = path.join(folder, 'copied.bin');
  const threads = startEntryThreads({ slots: 1, slotSize: 1024 });
  let reported = 0;
  let firstProgress!: () => void;
  const underWay = new Promise<void>((resolve) => (firstProgress = resolve));
  const copy = settle(threads.copyStored({ kind: 'stored', archivePath, start: 0, size, target, mode: 0o640, mtimeMs: 0 }, (bytes) => {
    reported += bytes;
    firstProgress();
  }));
  await Promise.race([underWay, copy]);
  await threads.close();
  const outcome = await copy;
  expect('error' in outcome && String(outcome.error)).toMatch(/ThreadStoppedError: .* stopped \(it was told to stop\)/);
  expect(reported).toBeGreaterThan(0);
  const copied = statSync(target).size;
  expect(copied).toBeLessThan(size);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(statSync(target).size).toBe(copied);
  rmSync(folder, { recursive: true, force: true });
});

test('ending threads over and over while they inflate never aborts the process (it did at times: SIGABRT in zlib, "close before init")', () => {
  // 10 rounds of 8 sets of threads at once: 80 small-entry threads ended while inflating. When
  // they were cut off with terminate(), 17 of 20 such runs aborted (docs/design.md, "Ending the
  // worker threads").
  expectThreadsEndedWhileBusyWithoutAbort('restore');
}, 60_000);
