// Reads, hashes and compresses a backup's small files on worker threads, so both cores work.
//
// On the main thread each small file cost a deflate stream and two thread-pool round trips
// (1.8-2.2 s of main-thread time for the 6,000 task logs of the bench store), while a worker
// does the whole job in one synchronous pass: open, read, SHA-256, CRC-32, deflate. Workers
// read the files themselves, so no file's bytes are copied to them; each batch comes back as
// one transferred ArrayBuffer (no copy either) that holds every file's output. The main thread
// only frames and writes them (see StreamingZipWriter.addPrepared).
import { constants as fsConstants } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { StoppableThread, THREAD_STOP_SOURCE } from '../../runtime/threads';
import { withErrorCode } from './errors';
import { exposeGcToThreadsOnce } from './heap';
import { NOW_THROUGH_A_LINK } from './opened-path';
import * as zlib from 'node:zlib';
import { DEFLATE_MEM_LEVEL } from './zip-writer';

/** Files up to this size are read whole (by a worker, or on the main thread); larger ones stream. */
export const BUFFERED_FILE_LIMIT = 4 * 1024 * 1024;

/** Small files sent to a worker in one message, and their bytes at most (one file may be BUFFERED_FILE_LIMIT). */
export const BATCH_FILES = 16;
export const BATCH_BYTES = Math.max(4 * 1024 * 1024, BUFFERED_FILE_LIMIT);

/** What a worker made of one file (or why it could not). */
export type PreparedFile =
  | {
      kind: 'read';
      /** Bytes read: the file's size when it was opened (a file that grew is cut there). */
      size: number;
      sha256: string;
      crc32: number;
      mtimeMs: number;
      mode: number;
      /** It changed while being read, twice: this is the copy read last. */
      changed: boolean;
      /** Raw deflate of the bytes at `level`, or the bytes themselves at level 0. */
      content: Buffer;
      level: number;
      /** Call once the archive file holds `content`: its memory is reused for a later batch. */
      release: () => void;
    }
  | { kind: 'vanished' }
  | { kind: 'unreadable'; message: string };

export interface SmallFileJob {
  localPath: string;
  /** Where the file must lead once opened (see opened-path.ts); undefined: not checked. */
  expectedPath?: string;
  /** Expected size (as scanned): what the worker will allocate for it, roughly. */
  size: number;
  /** Deflate level; 0 stores the bytes. */
  level: number;
}

type WireResult =
  | { kind: 'read'; offset: number; length: number; size: number; sha256: string; crc32: number; mtimeMs: number; mode: number; changed: boolean }
  | { kind: 'vanished' }
  | { kind: 'unreadable'; message: string };

/**
 * A batch's outputs go into one buffer of this size (its files are at most BATCH_BYTES, and raw
 * deflate adds at most ~0.1 % + 5 bytes per block), which goes back to a worker for reuse once
 * written: the main thread's heap is small and V8 would collect transferred buffers late (the
 * whole archive's small files stayed in memory, 300 MiB of RSS, measured).
 */
export const BATCH_BUFFER_BYTES = BATCH_BYTES + 64 * 1024;

/** Why a path the scan saw as a file (now a named pipe, socket or device) is not read. */
export const NOT_A_FILE = 'not a regular file any more (replaced since the scan)';
/** Why a path the scan saw as a file, now a symbolic link, is not read. */
export const NOW_A_LINK = 'a symbolic link now (replaced since the scan); links are not followed';

/**
 * How a backup opens a file it scanned. Non-blocking: a file replaced by a named pipe since the
 * scan must not block a thread until a writer comes (regular files ignore the flag). Not
 * following a final symbolic link: one swapped in since the scan could point outside the store,
 * at anything the worker's account can read, and the scan never follows links either.
 */
export const OPEN_SCANNED_FILE = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0) | (fsConstants.O_NOFOLLOW ?? 0);

/**
 * What a failed open of a scanned file means (the workers' copy of this is in WORKER_SOURCE). Any
 * other code is kept in the reason ("CODE: message", worded the same by the workers), which the
 * main thread classifies for both (backupFault: a store that stopped answering is no file's problem).
 */
export function openFailure(code: string, message: string): { kind: 'vanished' } | { kind: 'unreadable'; message: string } {
  // ENOTDIR: a folder on its path is not one any more (replaced by a file): gone, as when deleted.
  if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'vanished' };
  if (code === 'ELOOP') return { kind: 'unreadable', message: NOW_A_LINK };
  // A socket cannot be opened as a file: ENXIO on Linux, EOPNOTSUPP on macOS (as POSIX says).
  if (code === 'ENXIO' || code === 'EOPNOTSUPP') return { kind: 'unreadable', message: NOT_A_FILE };
  return { kind: 'unreadable', message: withErrorCode(code, message) };
}

/** The reason says the path is no longer a regular file (a pipe, a socket, a link, or reached through one). */
export function noLongerAFile(reason: string): boolean {
  return reason === NOT_A_FILE || reason === NOW_A_LINK || reason === NOW_THROUGH_A_LINK;
}

/** What to do about a file that cannot be read, besides skipping it. */
export function unreadableAdvice(reason: string): string {
  if (reason === NOW_THROUGH_A_LINK) return 'Put the folder back in place of the link';
  if (noLongerAFile(reason)) return 'Make it a regular file again';
  // Not a permission: more access would not help (an I/O error is the disk's). A share that
  // stopped answering (ENOTCONN, EHOSTDOWN, ...) never gets here: it fails the backup (backupFault).
  if (/^(EIO|ESTALE|EREMOTEIO)\b/.test(reason)) return 'Check the disk or share that holds it (an I/O error), then run the backup again';
  return "Give the worker's account read access";
}

/** Run with `eval`: the step is one bundled file, so a worker cannot be given a module path. It stops when asked (THREAD_STOP_SOURCE). */
const WORKER_SOURCE = `${THREAD_STOP_SOURCE}
const NOT_A_FILE = ${JSON.stringify(NOT_A_FILE)};
const NOW_A_LINK = ${JSON.stringify(NOW_A_LINK)};
const NOW_THROUGH_A_LINK = ${JSON.stringify(NOW_THROUGH_A_LINK)};
const BATCH_BUFFER_BYTES = ${BATCH_BUFFER_BYTES};
const freeBatchBuffers = [];
// zlib's output chunk: below glibc's 128 KiB mmap threshold, so chunks come from (and go back to) the thread's arena.
const DEFLATE_CHUNK = 64 * 1024;
const DEFLATE_MEM_LEVEL = ${DEFLATE_MEM_LEVEL};
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const { createHash } = require('node:crypto');
// One read buffer for the largest small file, allocated once (pages are only touched as used):
// a fresh one per file is garbage, and freeing a large one makes glibc raise its mmap threshold
// to that size, after which every buffer below it comes from the thread's arena, which keeps
// its pages (peak RSS +60-100 MiB, measured).
let scratch = Buffer.allocUnsafeSlow(${BUFFERED_FILE_LIMIT} + 1);
// This heap is tiny, so V8 would collect zlib's output buffers (outside it) only after tens of
// MiB of them per worker. A young-generation collection every 4 MiB of files frees them (peak RSS
// of the bench's small files 165-167 MiB, against 197-211 without and 176-178 with a full
// collection every 8 MiB, which also cost ~1 s more CPU).
// (gc: the main thread set --expose-gc before starting any thread, heap.ts.)
const collect = gc;
let allocatedSinceCollect = 0;

function readOnce(localPath, expectedPath) {
  let fd;
  try {
    // See OPEN_SCANNED_FILE (terminate() cannot stop a thread blocked in open() on a pipe).
    fd = fs.openSync(localPath, ${OPEN_SCANNED_FILE});
  } catch (error) {
    // As openFailure() does.
    const code = error.code || 'ERROR';
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'vanished' };
    if (code === 'ELOOP') return { kind: 'unreadable', message: NOW_A_LINK };
    if (code === 'ENXIO' || code === 'EOPNOTSUPP') return { kind: 'unreadable', message: NOT_A_FILE };
    return { kind: 'unreadable', message: error.message.startsWith(code) ? error.message : code + ': ' + error.message };
  }
  try {
    // As opened-path.ts's leadsElsewhere() does.
    if (expectedPath !== undefined) {
      let actual;
      try {
        actual = fs.readlinkSync('/proc/self/fd/' + fd);
      } catch {}
      if (actual !== undefined && actual !== expectedPath && actual !== expectedPath + ' (deleted)') return { kind: 'unreadable', message: NOW_THROUGH_A_LINK };
    }
    const before = fs.fstatSync(fd);
    // A folder too (as readWholeFile does).
    if (!before.isFile()) return { kind: 'unreadable', message: NOT_A_FILE };
    // One byte more than expected tells us the file grew while we read it.
    if (scratch.length < before.size + 1) scratch = Buffer.allocUnsafeSlow(before.size + 1);
    const wanted = before.size + 1;
    let length = 0;
    for (;;) {
      const bytesRead = fs.readSync(fd, scratch, length, wanted - length, length);
      length += bytesRead;
      if (bytesRead === 0 || length === wanted || length >= before.size) break;
    }
    const after = fs.fstatSync(fd);
    const changed = length !== before.size || after.size !== before.size || after.mtimeMs !== before.mtimeMs;
    return { kind: 'read', length: Math.min(length, before.size), mtimeMs: before.mtimeMs, mode: before.mode & 0o7777, changed };
  } catch (error) {
    const code = error.code || 'ERROR';
    return { kind: 'unreadable', message: error.message.startsWith(code) ? error.message : code + ': ' + error.message };
  } finally {
    fs.closeSync(fd);
  }
}

function prepare(job) {
  let read = readOnce(job.localPath, job.expectedPath);
  // A file that changes while read is read once more (as the main thread's reader does).
  if (read.kind === 'read' && read.changed) read = readOnce(job.localPath, job.expectedPath);
  if (read.kind !== 'read') return { result: read };
  const data = scratch.subarray(0, read.length);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const crc32 = zlib.crc32(data);
  // One output chunk: zlib's default 16 KiB chunks are joined again at the end.
  const content = job.level > 0
    ? zlib.deflateRawSync(data, { level: job.level, memLevel: DEFLATE_MEM_LEVEL, chunkSize: DEFLATE_CHUNK })
    : Buffer.from(data);
  return {
    result: { kind: 'read', offset: 0, length: content.length, size: read.length, sha256, crc32, mtimeMs: read.mtimeMs, mode: read.mode, changed: read.changed },
    content,
  };
}

onJobs(({ id, jobs, recycle }) => {
  if (recycle) {
    // All are kept: as many circulate as the main thread lets be ahead (a few), and freeing one
    // would raise glibc's mmap threshold (see scratch).
    if (recycle.byteLength === BATCH_BUFFER_BYTES) freeBatchBuffers.push(recycle);
    return;
  }
  try {
    const prepared = [];
    for (const job of jobs) {
      // Asked to stop: the batch is abandoned, unanswered (the main thread fails it).
      if (stopRequested()) return;
      prepared.push(prepare(job));
    }
    let total = 0;
    for (const p of prepared) if (p.content) total += p.content.length;
    // Every output in one buffer that is transferred, not copied, to the main thread.
    const batch = Buffer.from(total <= BATCH_BUFFER_BYTES ? freeBatchBuffers.pop() || new ArrayBuffer(BATCH_BUFFER_BYTES) : new ArrayBuffer(total));
    let offset = 0;
    for (const p of prepared) {
      if (!p.content) continue;
      p.content.copy(batch, offset);
      p.result.offset = offset;
      offset += p.content.length;
    }
    parentPort.postMessage({ id, results: prepared.map((p) => p.result), buffer: batch.buffer }, [batch.buffer]);
    for (const job of jobs) allocatedSinceCollect += job.size;
    if (allocatedSinceCollect >= 4 * 1024 * 1024 && typeof collect === 'function') {
      allocatedSinceCollect = 0;
      collect({ type: 'minor' });
    }
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.stack) || error) });
  }
});
`;

interface PendingBatch {
  resolve: (results: PreparedFile[]) => void;
  reject: (error: Error) => void;
  jobs: readonly SmallFileJob[];
  worker: PooledWorker;
}

interface PooledWorker {
  worker: Worker;
  thread: StoppableThread;
  pending: number;
}

/** A worker that stopped or failed: the batches it held are prepared again on the main thread. */
export class WorkerUnavailable extends Error {}

/** Workers need zlib.crc32 (Node 20.15+, 22.2+); on Node 18 the main thread reads the small files. */
export function workersCanRun(): boolean {
  return typeof (zlib as unknown as { crc32?: unknown }).crc32 === 'function';
}

/** Workers for the small files: one per core, at most four (the main thread mostly waits on them). */
export function smallFileWorkerCount(env: NodeJS.ProcessEnv = process.env): number {
  const configured = env.OCTOPUSDR_FILE_STORE_WORKERS;
  if (configured !== undefined && configured !== '' && Number.isInteger(Number(configured))) return Math.max(0, Math.min(16, Number(configured)));
  const cores = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
  return Math.min(4, Math.max(1, cores));
}

export class SmallFileWorkers {
  private readonly workers: PooledWorker[] = [];
  private readonly batches = new Map<number, PendingBatch>();
  private nextId = 0;
  private recycled = 0;
  private broken: Error | undefined;

  /** `source` is the workers' code (tests give one that fails). */
  constructor(count: number, source = WORKER_SOURCE) {
    exposeGcToThreadsOnce();
    for (let i = 0; i < count; i++) {
      const worker = new Worker(source, { eval: true });
      const pooled: PooledWorker = { worker, thread: new StoppableThread(worker), pending: 0 };
      pooled.worker.on('message', (reply: { id: number; results?: WireResult[]; buffer?: ArrayBuffer; error?: string }) => this.settle(reply));
      pooled.worker.on('error', (error) => this.retire(pooled, error));
      pooled.worker.on('exit', (code) => this.retire(pooled, new Error(`a worker thread exited (code ${code})`)));
      // Alive only while it has batches: an idle pool never keeps the process from exiting.
      pooled.worker.unref();
      this.workers.push(pooled);
    }
  }

  /** The files' outcomes, in the order given; rejects with WorkerUnavailable if no worker can do it. */
  prepare(jobs: readonly SmallFileJob[]): Promise<PreparedFile[]> {
    let chosen: PooledWorker | undefined;
    for (const w of this.workers) if (!chosen || w.pending < chosen.pending) chosen = w;
    if (!chosen || this.broken) return Promise.reject(new WorkerUnavailable(this.broken?.message ?? 'no worker thread is running'));
    const worker = chosen;
    const id = this.nextId++;
    return new Promise<PreparedFile[]>((resolve, reject) => {
      this.batches.set(id, { resolve, reject, jobs, worker });
      if (worker.pending++ === 0) worker.worker.ref();
      worker.worker.postMessage({ id, jobs });
    });
  }

  private settle(reply: { id: number; results?: WireResult[]; buffer?: ArrayBuffer; error?: string }): void {
    const batch = this.batches.get(reply.id);
    if (!batch) return;
    this.batches.delete(reply.id);
    if (--batch.worker.pending === 0) batch.worker.worker.unref();
    if (!reply.results || !reply.buffer) {
      batch.reject(new WorkerUnavailable(`a worker thread failed: ${reply.error ?? 'no result'}`));
      return;
    }
    const buffer = reply.buffer;
    // Back to a worker once every output in it is written.
    let unwritten = reply.results.filter((r) => r.kind === 'read' && r.length > 0).length;
    const release = () => {
      if (--unwritten === 0) this.recycle(buffer);
    };
    if (unwritten === 0) this.recycle(buffer);
    batch.resolve(
      reply.results.map((r, i): PreparedFile => {
        if (r.kind !== 'read') return r;
        return {
          release: r.length > 0 ? release : () => undefined,
          kind: 'read',
          size: r.size,
          sha256: r.sha256,
          crc32: r.crc32,
          mtimeMs: r.mtimeMs,
          mode: r.mode,
          changed: r.changed,
          content: Buffer.from(buffer, r.offset, r.length),
          level: batch.jobs[i].level,
        };
      }),
    );
  }

  private recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength !== BATCH_BUFFER_BYTES || this.workers.length === 0) return;
    const worker = this.workers[this.recycled++ % this.workers.length];
    worker.worker.postMessage({ recycle: buffer }, [buffer]);
  }

  /** A failed worker takes the pool down: its batches (and every later one) go back to the caller. */
  private retire(pooled: PooledWorker, error: Error): void {
    this.broken ??= error;
    for (const [id, batch] of this.batches) {
      if (batch.worker !== pooled && this.workers.includes(batch.worker)) continue;
      this.batches.delete(id);
      batch.reject(new WorkerUnavailable(error.message));
    }
    const index = this.workers.indexOf(pooled);
    if (index >= 0) this.workers.splice(index, 1);
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    this.broken ??= new Error('the worker threads were stopped');
    // Each finishes the batch in hand and skips the rest; what it did not answer fails below.
    await Promise.all(workers.map((w) => w.thread.end()));
    for (const [id, batch] of this.batches) {
      this.batches.delete(id);
      batch.reject(new WorkerUnavailable('the worker threads were stopped'));
    }
  }
}
