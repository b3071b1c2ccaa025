// Stored large files read on a thread (CRC-32 computed there, SHA-256 on a second thread, the main
// thread only writing): the archive must hold what the main thread writes, in every entry; a thread
// that cannot start leaves the files to the main thread; either thread stopping in the middle of a
// file fails the archive with what to do, and a cancel leaves nothing; they end after the last
// large file; a slot is read into again only once its chunk is both written and hashed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { backupFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { LargeFileThread, LargeFileThreadStopped, SLOT_BYTES, SLOTS } from '../../steps/engines/file-store/large-file-thread';
import { THREAD_STOP_SOURCE } from '../../steps/runtime/threads';
import { BUFFERED_FILE_LIMIT } from '../../steps/engines/file-store/small-file-workers';
import { StreamingZipWriter } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { expectSigtermMidBackup, logText, makeStore, pseudoRandomBytes, silentLog, tempDir, oneSlotThen, write, writeOneStored, zipEntries as entries } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

const work = tempDir('large-thread');
const home = path.join(work, 'home');
const feed = path.join(home, 'Packages', 'feeds-builtin');
const t = new Date('2026-11-20T08:00:00.000Z');

/** Stored files around the slot and read-ahead sizes, and a large log (deflated: not the thread's). */
const LARGE: Record<string, number> = {
  'Acme.JustOver.1.0.0.nupkg': BUFFERED_FILE_LIMIT + 1,
  'Acme.OneSlotRun.1.0.0.nupkg': SLOTS * SLOT_BYTES,
  'Acme.OneMore.1.0.0.nupkg': SLOTS * SLOT_BYTES + 1,
  'Acme.Many.2.1.0.zip': 3 * SLOTS * SLOT_BYTES + 12_345,
};

function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function backup(out: string, smallFileWorkers: number) {
  return backupFileStore({ folders: at(home), backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers }, quietEngineContext({ log: silentLog }));
}

beforeAll(() => {
  makeStore(home);
  let seed = 40;
  for (const [name, size] of Object.entries(LARGE)) write(path.join(feed, name), pseudoRandomBytes(size, seed++), undefined, t);
  write(path.join(home, 'TaskLogs', 'long-task.log.txt'), logText(60_000, 9), undefined, t);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('stored large files read on a thread', () => {
  let onMain: Awaited<ReturnType<typeof backup>>;
  let onThread: Awaited<ReturnType<typeof backup>>;
  beforeAll(async () => {
    onMain = await backup(path.join(work, 'main'), 0);
    onThread = await backup(path.join(work, 'thread'), 2);
  });

  test('give the entries the main thread gives: CRC, method, sizes, mode and time of every one', () => {
    const expected = entries(onMain.archivePath);
    for (const name of Object.keys(LARGE)) expect(expected[`Packages/feeds-builtin/${name}`]).toEqual(expect.arrayContaining([0, LARGE[name], LARGE[name]]));
    expect(expected['TaskLogs/long-task.log.txt'][1]).toBe(8);
    expect(entries(onThread.archivePath)).toEqual(expected);
  });

  test('record the SHA-256 of every file as read, and verify', async () => {
    for (const name of Object.keys(LARGE)) {
      const recorded = onThread.manifest.files.find((f) => f.path === `feeds-builtin/${name}`);
      expect(recorded?.sha256).toBe(sha256Of(path.join(feed, name)));
      expect(recorded?.size).toBe(LARGE[name]);
    }
    const verified = await verifyFileStoreBackup(onThread.archivePath, {}, quietEngineContext({ log: silentLog }));
    expect(verified.problems).toEqual([]);
    expect(verified.ok).toBe(true);
    expect(verified.files).toBe(onThread.manifest.files.length);
  });
});

describe('the large-file thread failing', () => {
  const big = path.join(feed, 'Acme.Many.2.1.0.zip');

  test('a thread that cannot start leaves the file to the main thread: same CRC and SHA-256', async () => {
    const archive = path.join(work, 'no-thread.zip');
    const result = await writeOneStored(archive, big, LARGE['Acme.Many.2.1.0.zip'], 'throw new Error("no thread here")');
    expect(result).toEqual({ sha256: sha256Of(big), size: LARGE['Acme.Many.2.1.0.zip'] });
    expect(entries(archive)['Packages/one.nupkg']).toEqual(expect.arrayContaining([0, LARGE['Acme.Many.2.1.0.zip']]));
  });

  test('a thread that stops in the middle of a file fails the archive, says what to do, and leaves nothing', async () => {
    const archive = path.join(work, 'thread-died.zip');
    // Reads one slot properly, hands it over, then exits.
    const dies = oneSlotThen('setTimeout(() => process.exit(3), 50);');
    const failure = writeOneStored(archive, big, LARGE['Acme.Many.2.1.0.zip'], dies);
    await expect(failure).rejects.toThrow(/Packages\/one\.nupkg could not be read to its end: the large-file thread stopped .*exited \(code 3\).*Nothing was kept; run the backup again \(OCTOPUSDR_FILE_STORE_WORKERS=0/);
    await expect(failure).rejects.toHaveProperty('name', 'FileStoreError');
    expect(existsSync(archive)).toBe(false);
  });

  test('the hashing thread stopping in the middle of a file fails the archive the same way', async () => {
    const archive = path.join(work, 'hasher-died.zip');
    // Takes the first chunk, never answers it, and exits.
    const dies = `${THREAD_STOP_SOURCE}\nonJobs((m) => { if (m.kind === 'chunk') setTimeout(() => process.exit(4), 50); });`;
    const failure = writeOneStored(archive, big, LARGE['Acme.Many.2.1.0.zip'], undefined, dies);
    await expect(failure).rejects.toThrow(/Packages\/one\.nupkg could not be read to its end: the large-file thread stopped \(the large-file hashing thread exited \(code 4\)\).*Nothing was kept; run the backup again \(OCTOPUSDR_FILE_STORE_WORKERS=0/);
    await expect(failure).rejects.toHaveProperty('name', 'FileStoreError');
    expect(existsSync(archive)).toBe(false);
  });

  test('the hashing thread stopping after the last chunk, before the digest, fails the archive the same way', async () => {
    const archive = path.join(work, 'hasher-died-at-digest.zip');
    // Answers every chunk, then exits when asked for the file's digest.
    const dies = `${THREAD_STOP_SOURCE}
const { parentPort } = require('node:worker_threads');
onJobs((m) => {
  if (m.kind === 'chunk') parentPort.postMessage({ kind: 'hashed', slot: m.slot });
  if (m.kind === 'digest') process.exit(5);
});`;
    const failure = writeOneStored(archive, big, LARGE['Acme.Many.2.1.0.zip'], undefined, dies);
    await expect(failure).rejects.toThrow(/Packages\/one\.nupkg could not be read to its end: the large-file thread stopped \(the large-file hashing thread exited \(code 5\)\).*Nothing was kept; run the backup again/);
    await expect(failure).rejects.toHaveProperty('name', 'FileStoreError');
    expect(existsSync(archive)).toBe(false);
  });

  test('a hashing thread that cannot start: the file is read on the main thread, or fails with what to do; never a hang', async () => {
    const archive = path.join(work, 'no-hasher.zip');
    const outcome = await writeOneStored(archive, big, LARGE['Acme.Many.2.1.0.zip'], undefined, 'throw new Error("no hashing here")').then(
      (result) => ({ result }),
      (error: Error) => ({ error }),
    );
    // Which one depends on whether the reading thread handed over a chunk before the failure arrived.
    if ('result' in outcome) expect(outcome.result).toEqual({ sha256: sha256Of(big), size: LARGE['Acme.Many.2.1.0.zip'] });
    else {
      expect(outcome.error.message).toMatch(/Packages\/one\.nupkg could not be read to its end: the large-file thread stopped \(no hashing here\).*Nothing was kept/);
      expect(existsSync(archive)).toBe(false);
    }
  });

  test('the hashing thread stopping: the file fails only once the reading thread has exited (it no longer reads the descriptor)', async () => {
    const dies = `${THREAD_STOP_SOURCE}\nconst { parentPort } = require('node:worker_threads');\nonJobs((m) => { if (m.kind === 'chunk') { parentPort.postMessage({ kind: 'hashed', slot: m.slot }); setTimeout(() => process.exit(6), 30); } });`;
    const thread = new LargeFileThread(undefined, dies);
    const handle = await fs.open(big, 'r');
    try {
      const reader = thread.read(handle.fd, LARGE['Acme.Many.2.1.0.zip'], () => {
        throw new Error('read on the main thread');
      });
      const state = thread as unknown as { readingThreadExited: boolean };
      let exitedWhenReleased: boolean | undefined;
      void reader.released.then(() => (exitedWhenReleased = state.readingThreadExited));
      // Chunks are held, never written: the reading thread waits for a slot when the hasher dies.
      reader.on('data', () => undefined);
      reader.on('error', () => undefined);
      await expect(reader.result).rejects.toThrow(/large-file hashing thread exited \(code 6\)/);
      await reader.released;
      expect(exitedWhenReleased).toBe(true);
    } finally {
      await thread.close();
      await handle.close();
    }
  });

  test('a slot is read into again only once its chunk is both written and hashed', async () => {
    // Hashes nothing until told to by the test: chunks written at once must not free their slots.
    const held = `${THREAD_STOP_SOURCE}
const { parentPort } = require('node:worker_threads');
const slots = [];
onJobs((m) => {
  if (m.kind === 'chunk') slots.push(m.slot);
  if (m.kind === 'release') for (const slot of slots.splice(0)) parentPort.postMessage({ kind: 'hashed', slot });
  if (m.kind === 'digest') parentPort.postMessage({ kind: 'digest', id: m.id, sha256: 'stand-in' });
});`;
    const thread = new LargeFileThread(undefined, held);
    const handle = await fs.open(big, 'r');
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    let chunks = 0;
    try {
      const reader = thread.read(handle.fd, LARGE['Acme.Many.2.1.0.zip'], () => {
        throw new Error('read on the main thread');
      });
      reader.on('data', (chunk: Buffer) => {
        chunks += 1;
        thread.giveBack(chunk);
      });
      await pause(300);
      // Every chunk was written at once, none hashed: the thread read one slot-full and waits.
      expect(chunks).toBe(SLOTS);
      const hasher = (thread as unknown as { hasher: { postMessage: (m: unknown) => void } }).hasher;
      while (!reader.readableEnded && chunks < 3 * SLOTS + 1) {
        hasher.postMessage({ kind: 'release' });
        await pause(20);
      }
      await expect(reader.result).resolves.toEqual({ sha256: 'stand-in', size: LARGE['Acme.Many.2.1.0.zip'] });
      expect(chunks).toBe(Math.ceil(LARGE['Acme.Many.2.1.0.zip'] / SLOT_BYTES));
    } finally {
      await thread.close();
      await handle.close();
    }
    await expect(Promise.resolve().then(() => thread.read(0, 1, () => undefined as never))).rejects.toThrow(LargeFileThreadStopped);
  });

  test('SIGTERM while the thread reads: exit 143 and nothing left', async () => {
    const out = path.join(work, 'sigterm');
    mkdirSync(out);
    await expectSigtermMidBackup(['--home-directory', home, '--include', 'Packages'], out, { OCTOPUSDR_FILE_STORE_WORKERS: '2' });
  });
});

test('the thread ends once the last large file is read: its slots and heap are not held through the small files after it', async () => {
  const ends = path.join(work, 'ends-early');
  write(path.join(ends, 'Packages', 'A.1.0.0.nupkg'), pseudoRandomBytes(BUFFERED_FILE_LIMIT + 5, 71), undefined, t);
  write(path.join(ends, 'Packages', 'B.1.0.0.nupkg'), pseudoRandomBytes(2 * SLOTS * SLOT_BYTES, 72), undefined, t);
  for (let i = 0; i < 1000; i++) write(path.join(ends, 'TaskLogs', `servertasks-${i}.log.txt`), `line ${i}\n`, undefined, t);
  const events: string[] = [];
  const { read, close } = LargeFileThread.prototype;
  const { addPrepared } = StreamingZipWriter.prototype;
  const spies = [
    jest.spyOn(LargeFileThread.prototype, 'read').mockImplementation(function (this: LargeFileThread, ...args) {
      events.push('large file read');
      return read.apply(this, args);
    }),
    jest.spyOn(LargeFileThread.prototype, 'close').mockImplementation(function (this: LargeFileThread) {
      events.push('thread ended');
      return close.apply(this);
    }),
    jest.spyOn(StreamingZipWriter.prototype, 'addPrepared').mockImplementation(function (this: StreamingZipWriter, ...args) {
      events.push('small file');
      return addPrepared.apply(this, args);
    }),
  ];
  try {
    const folders: ResolvedFolder[] = (['Packages', 'TaskLogs'] as const).map((name) => ({ name, path: path.join(ends, name), origin: 'home' }));
    const out = path.join(work, 'ends-early-out');
    const result = await backupFileStore({ folders, backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers: 2 }, quietEngineContext({ log: silentLog }));
    expect(result.manifest.totals.storedFiles).toBe(1002);
    // Both large files were read by the thread, which then ended, once, while small files were still to come.
    expect(events.filter((e) => e === 'large file read')).toHaveLength(2);
    expect(events.filter((e) => e === 'thread ended')).toHaveLength(1);
    expect(events.indexOf('thread ended')).toBeGreaterThan(events.lastIndexOf('large file read'));
    expect(events.indexOf('thread ended')).toBeLessThan(events.lastIndexOf('small file'));
    const verified = await verifyFileStoreBackup(result.archivePath, {}, quietEngineContext({ log: silentLog }));
    expect(verified.problems).toEqual([]);
    expect(verified.files).toBe(1002);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
});

test('a hashing thread behind by more than one file keeps the process alive until every digest is in (a backup of two large files once ended with exit 0 and nothing done)', () => {
  // In a process of its own: Node ends a process whose event loop is empty even while a promise
  // is pending, which only a fresh process shows. Digests come late (A's after 100 ms, B's after
  // 400 ms), as from a hashing thread still busy with earlier chunks: A's digest arrives when no
  // file is being read, but B's is still awaited then.
  const file = path.join(work, 'two-files.nupkg');
  write(file, pseudoRandomBytes(100_000, 81), undefined, t);
  const script = path.join(work, 'late-digests.js');
  const late = `${THREAD_STOP_SOURCE}
const { parentPort } = require('node:worker_threads');
onJobs((m) => {
  if (m.kind === 'chunk') parentPort.postMessage({ kind: 'hashed', slot: m.slot });
  if (m.kind === 'digest') setTimeout(() => parentPort.postMessage({ kind: 'digest', id: m.id, sha256: 'digest-' + m.id }), m.id === 0 ? 100 : 400);
});`;
  buildSync({
    stdin: {
      contents: `
const fs = require('node:fs');
const { LargeFileThread } = require(${JSON.stringify(path.join(__dirname, '../../steps/engines/file-store/large-file-thread'))});
let done = false;
process.on('beforeExit', () => { if (!done) { console.log('event loop empty, digests still awaited'); process.exitCode = 9; } });
(async () => {
  const thread = new LargeFileThread(undefined, ${JSON.stringify(late)});
  const fd = fs.openSync(${JSON.stringify(file)}, 'r');
  const readOne = async () => {
    const reader = thread.read(fd, ${100_000}, () => { throw new Error('read on the main thread'); });
    reader.on('data', (chunk) => thread.giveBack(chunk));
    await new Promise((resolve) => reader.on('end', resolve));
    // Read to its end; its digest is still to come.
    return { result: reader.result };
  };
  const a = await readOne();
  const b = await readOne();
  const results = [await b.result, await a.result];
  done = true;
  console.log(JSON.stringify(results.map((r) => r.sha256)));
  await thread.close();
})().catch((error) => { done = true; console.log('failed: ' + error.message); process.exitCode = 1; });
`,
      resolveDir: __dirname,
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: script,
  });
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
  expect({ status: run.status, stdout: run.stdout.trim() }).toEqual({ status: 0, stdout: JSON.stringify(['digest-1', 'digest-0']) });
});
