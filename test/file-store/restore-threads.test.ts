// The worker threads of a restore and a verify (small entries inflated, hashed and written on one,
// large stored entries copied on the other): a thread that cannot start means the main thread does
// the work; one that dies fails the run clearly and changes nothing; none outlives the run.
import { readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { backupFileStore, resolveBackupSource, restoreFileStore, verifyFileStoreBackup, type FileStoreFolderName, type ResolvedFolder } from '../../steps/engines/file-store';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { listAll, makeStore, silentLog, snapshot, tempDir, write } from './helpers';

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
