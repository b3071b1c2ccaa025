// A backup's threads ended while they work (a failure or a cancel mid-run): each stops on its
// own (steps/runtime/threads.ts), the batch or read in hand is never taken for a finished one
// unless it was answered whole, and nothing arrives after close() returns. The restore's threads:
// restore-threads.test.ts.
import { closeSync, openSync, rmSync, truncateSync } from 'node:fs';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { LargeFileThread, LargeFileThreadStopped } from '../../steps/engines/file-store/large-file-thread';
import { SmallFileWorkers, WorkerUnavailable, type PreparedFile } from '../../steps/engines/file-store/small-file-workers';
import { expectThreadsEndedWhileBusyWithoutAbort, logText, tempDir, write } from './helpers';

const work = tempDir('thread-ending');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const settle = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('small-file workers closed while batches are queued: a batch answered is whole, the others fail as WorkerUnavailable', async () => {
  const files = Array.from({ length: 320 }, (_, i) => {
    const localPath = path.join(work, 'small', `t-${i}.log.txt`);
    write(localPath, logText(300, i));
    return { localPath, size: logText(300, i).length, level: 6 };
  });
  const pool = new SmallFileWorkers(1);
  const batches = Array.from({ length: 20 }, (_, b) => settle(pool.prepare(files.slice(b * 16, b * 16 + 16))));
  await batches[0];
  await pool.close();
  const outcomes = await Promise.all(batches);
  const failed = outcomes.flatMap((o) => ('error' in o ? [o.error] : []));
  expect(failed.length).toBeGreaterThan(0);
  for (const error of failed) expect(error).toBeInstanceOf(WorkerUnavailable);
  outcomes.forEach((o, b) => {
    if (!('value' in o)) return;
    const prepared: PreparedFile[] = o.value;
    expect(prepared.map((p) => p.kind === 'read' && p.size)).toEqual(files.slice(b * 16, b * 16 + 16).map((f) => f.size));
  });
  await expect(pool.prepare(files.slice(0, 1))).rejects.toThrow(WorkerUnavailable);
});

test('the large-file thread closed in the middle of a file: the read fails, is not handed to the main thread, no chunk comes after close(), and both its threads (reading and hashing) have exited', async () => {
  // Sparse: read fast, and far longer than the test lets it run.
  const big = path.join(work, 'big.nupkg');
  const size = 1024 * 1024 * 1024;
  closeSync(openSync(big, 'w'));
  truncateSync(big, size);
  const fd = openSync(big, 'r');
  const thread = new LargeFileThread();
  // Both of its threads: the one that reads and the one that hashes what was read.
  const { worker, hasher } = thread as unknown as { worker: Worker; hasher: Worker };
  const exited = new Set<string>();
  worker.once('exit', () => exited.add('reading'));
  hasher.once('exit', () => exited.add('hashing'));
  let fellBack = false;
  let chunks = 0;
  try {
    const reader = thread.read(fd, size, () => {
      fellBack = true;
      throw new Error('read on the main thread');
    });
    reader.on('error', () => undefined);
    // Every chunk is given back at once, as if written: the thread keeps reading.
    reader.on('data', (chunk: Buffer) => {
      chunks += 1;
      thread.giveBack(chunk);
    });
    while (chunks < 3) await pause(5);
    await thread.close();
    expect([...exited].sort()).toEqual(['hashing', 'reading']);
    const atClose = chunks;
    await expect(reader.result).rejects.toThrow(LargeFileThreadStopped);
    await reader.released;
    await pause(300);
    expect(chunks).toBe(atClose);
    expect(chunks * 1024 * 1024).toBeLessThan(size);
    expect(fellBack).toBe(false);
    expect(() => thread.read(fd, size, () => undefined as never)).toThrow(LargeFileThreadStopped);
  } finally {
    closeSync(fd);
  }
});

test('ending small-file workers over and over while they read and deflate never aborts the process (it did at times: SIGABRT in zlib)', () => {
  // 10 rounds of 8 workers at once. When they were cut off with terminate(), 8 of 20 such runs
  // aborted (docs/design.md, "Ending the worker threads").
  expectThreadsEndedWhileBusyWithoutAbort('backup');
}, 60_000);
