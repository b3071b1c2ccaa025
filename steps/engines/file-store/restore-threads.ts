// Small entries of a restore or verify are inflated, hashed and written on worker threads, so the
// main thread only reads the archive: on a 2-core machine creating ~6,000 files costs seconds of
// kernel time in open(2) alone (measured: docs/design.md, "Where a file-store restore spends its
// time"), which then runs beside the reading instead of after it.
import { Worker } from 'node:worker_threads';
import { StoppableThread, THREAD_STOP_SOURCE } from '../../runtime/threads';
import { exposeGcToThreadsOnce } from './heap';

/** One small entry for a thread: how to read its stored bytes, and where (and whether) to write it. */
export interface SmallEntryJob {
  /** Reads the stored bytes (at most `slotSize`) into a slot of memory the thread shares: no copy, no garbage. */
  fill(into: Uint8Array): Promise<void>;
  /** How many stored bytes `fill` puts there. */
  storedSize: number;
  /** ZIP compression method: 0 stored, 8 deflated. */
  method: number;
  /** The size the central directory records; inflating to more is refused. */
  size: number;
  /** Written only when the data's SHA-256 is this one and its length is `size`. */
  expectedSha256: string;
  target?: string;
  mode: number;
  mtimeMs: number;
}

/** A large stored (not compressed) entry, copied by a thread from the archive to `target` (or only hashed). */
export interface StoredEntryJob {
  kind: 'stored';
  archivePath: string;
  /** Where its bytes start in the archive file, and how many. */
  start: number;
  size: number;
  target?: string;
  mode: number;
  mtimeMs: number;
}

export interface SmallEntryResult {
  sha256: string;
  length: number;
}

// Plain JavaScript run with `eval: true`: it survives the esbuild bundle (one file, run from a
// temporary folder) where a worker file beside it would not. Errors go back with the fields the
// main thread's messages use (code, path, syscall), never as bare strings. It stops when asked
// (THREAD_STOP_SOURCE): a queued entry is skipped, a copy stops between chunks.
const THREAD_SOURCE = `${THREAD_STOP_SOURCE}
const { parentPort } = require('node:worker_threads');
const { inflateRawSync } = require('node:zlib');
const { createHash } = require('node:crypto');
const { openSync, readSync, writeSync, fchmodSync, futimesSync, closeSync } = require('node:fs');
const windows = process.platform === 'win32';
// Buffers of a finished job are garbage, but V8 collects them only once ~64 MiB of them pile up,
// per thread: a young-generation collection every 4 MiB frees them (they die young) and keeps the
// process's peak memory down, at a fraction of a full collection's cost (measured: docs/design.md).
// gc is there because the main thread set --expose-gc before starting any thread (heap.ts):
// setting a flag here would change it for the whole process while other threads run.
const collect = gc;
let sinceCollect = 0;
function allocated(bytes) {
  sinceCollect += bytes;
  if (sinceCollect < 4 * 1024 * 1024) return;
  sinceCollect = 0;
  collect({ type: 'minor' });
}
function write(target, data, mode, mtimeMs) {
  const fd = openSync(target, 'wx', 0o600);
  try {
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    if (!windows) fchmodSync(fd, mode);
    futimesSync(fd, mtimeMs / 1000, mtimeMs / 1000);
  } finally {
    closeSync(fd);
  }
}
// One buffer, reused: a copy makes no garbage, so memory stays flat however large the file.
const COPY_CHUNK = 4 * 1024 * 1024;
let copyBuffer;
function copyStored(job) {
  copyBuffer ??= Buffer.allocUnsafe(COPY_CHUNK);
  const hash = createHash('sha256');
  const source = openSync(job.archivePath, 'r');
  let target;
  try {
    target = job.target ? openSync(job.target, 'wx', 0o600) : undefined;
    let done = 0;
    let reported = 0;
    while (done < job.size) {
      // Asked to stop: the copy is abandoned, unanswered (its file is in a staging folder the restore removes).
      if (stopRequested()) return undefined;
      const want = Math.min(COPY_CHUNK, job.size - done);
      const got = readSync(source, copyBuffer, 0, want, job.start + done);
      if (got === 0) throw new Error('unexpected end of the archive file');
      const chunk = copyBuffer.subarray(0, got);
      hash.update(chunk);
      if (target !== undefined) {
        let written = 0;
        while (written < got) written += writeSync(target, chunk, written, got - written);
      }
      done += got;
      if (done - reported >= 8 * COPY_CHUNK) {
        parentPort.postMessage({ id: job.id, progress: done - reported });
        reported = done;
      }
    }
    if (target !== undefined) {
      if (!windows) fchmodSync(target, job.mode);
      futimesSync(target, job.mtimeMs / 1000, job.mtimeMs / 1000);
    }
    return { sha256: hash.digest('hex'), length: done, progress: done - reported };
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(source);
  }
}
onJobs((job) => {
  try {
    if (job.kind === 'stored') {
      const copied = copyStored(job);
      if (copied) parentPort.postMessage({ id: job.id, ...copied });
      return;
    }
    const raw = Buffer.from(job.shared, job.offset, job.length);
    const data = job.method === 8
      ? inflateRawSync(raw, { maxOutputLength: Math.max(1, job.size + 1), chunkSize: Math.max(16 * 1024, job.size + 1024) })
      : raw;
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (job.target && sha256 === job.expectedSha256 && data.length === job.size) write(job.target, data, job.mode, job.mtimeMs);
    parentPort.postMessage({ id: job.id, sha256, length: data.length });
    if (data !== raw) allocated(data.length);
  } catch (error) {
    const e = error || {};
    parentPort.postMessage({ id: job.id, error: { message: String(e.message ?? e), name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
  }
});
`;

type Pending = { resolve: (r: SmallEntryResult) => void; reject: (e: unknown) => void; onBytes?: (bytes: number) => void };
type ThreadMessage = { id: number; sha256?: string; length?: number; progress?: number; error?: Parameters<typeof rebuiltError>[0] };

/** A thread's error, rebuilt with the fields that say what it was (zlib's code, the file's path). */
function rebuiltError(fields: { message: string; name?: string; code?: string; errno?: number; syscall?: string; path?: string }): Error {
  const error = new Error(fields.message) as NodeJS.ErrnoException;
  if (fields.name && fields.name !== 'Error') error.name = fields.name;
  for (const key of ['code', 'errno', 'syscall', 'path'] as const) {
    if (fields[key] !== undefined) (error as unknown as Record<string, unknown>)[key] = fields[key];
  }
  return error;
}

class EntryThread {
  private readonly thread: StoppableThread;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Why the thread stopped, once it has: every job then fails with it. */
  private stopped: Error | undefined;

  constructor(createWorker: (source: string) => Worker) {
    this.worker = createWorker(THREAD_SOURCE);
    this.thread = new StoppableThread(this.worker);
    // An idle thread never keeps the process alive (the restore ends it, and so does an exit);
    // one with jobs does: the main thread may have nothing else to wait for, and Node would then
    // exit, with code 0, in the middle of a restore.
    this.worker.unref();
    this.worker.on('message', (message: ThreadMessage) => {
      const job = this.pending.get(message.id);
      if (!job) return;
      if (message.progress) job.onBytes?.(message.progress);
      if (message.sha256 === undefined && !message.error) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) this.worker.unref();
      if (message.error) job.reject(rebuiltError(message.error));
      else job.resolve({ sha256: message.sha256!, length: message.length! });
    });
    this.worker.on('error', (error) => this.stop(error));
    // Asked to stop, the thread answers the job in hand and skips the rest: they fail here.
    this.worker.on('exit', (code) => this.stop(new Error(this.thread.stopping ? 'it was told to stop' : `it exited with code ${code}`)));
  }

  run(job: object, onBytes?: (bytes: number) => void): Promise<SmallEntryResult> {
    if (this.stopped) return Promise.reject(threadFailure(this.stopped));
    if (this.thread.stopping) return Promise.reject(threadFailure(new Error('it was told to stop')));
    const id = this.nextId++;
    return new Promise<SmallEntryResult>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject, onBytes });
      this.worker.postMessage({ id, ...job });
    });
  }

  private stop(reason: Error): void {
    if (this.stopped) return;
    this.stopped = reason;
    const failure = threadFailure(reason);
    for (const job of this.pending.values()) job.reject(failure);
    this.pending.clear();
    this.worker.unref();
  }

  /** Stops the thread and waits for its exit: the job in hand finishes, the queued ones fail. */
  async close(): Promise<void> {
    await this.thread.end();
    // One blocked in a system call through every wait: what it still holds is not done either.
    this.stop(new Error('it did not stop in time'));
  }
}

/** A thread that stopped while it held entries: no entry it held can be taken as restored or verified. */
export class ThreadStoppedError extends Error {
  constructor(readonly reason: Error) {
    super(`a worker thread that inflates, hashes and writes files stopped (${reason.message})`);
    this.name = 'ThreadStoppedError';
  }
}

function threadFailure(reason: Error): ThreadStoppedError {
  return reason instanceof ThreadStoppedError ? reason : new ThreadStoppedError(reason);
}

/** Slots of a shared buffer, by offset, handed out first come, first served. */
function slotPool(free: number[]) {
  const waiting: ((offset: number) => void)[] = [];
  return {
    acquire: () => (free.length > 0 ? Promise.resolve(free.pop()!) : new Promise<number>((resolve) => waiting.push(resolve))),
    release(offset: number): void {
      const next = waiting.shift();
      if (next) next(offset);
      else free.push(offset);
    },
  };
}

/** Creates a worker thread from its JavaScript source. */
export type CreateWorker = (source: string) => Worker;

export interface EntryThreads {
  /** Inflates, hashes and (when the hash matches) writes one small entry. */
  runSmall(job: SmallEntryJob): Promise<SmallEntryResult>;
  /** Copies and hashes one large stored entry; `onBytes` hears of progress. */
  copyStored(job: StoredEntryJob, onBytes: (bytes: number) => void): Promise<SmallEntryResult>;
  /** Ends every thread; after this returns, no thread writes anything more. */
  close(): Promise<void>;
}

/**
 * Starts one thread for small entries and one for large stored ones, so that the two kinds go
 * side by side (the main thread only reads the small entries' bytes). A thread that cannot be
 * created at all throws here (the caller then does the work itself); one that stops later fails
 * the jobs it held, and every later job.
 */
export function startEntryThreads(
  options: { slots: number; slotSize: number; largeSlots?: number; largeSlotSize?: number },
  createWorker: CreateWorker = (source) => new Worker(source, { eval: true }),
): EntryThreads {
  const threads: EntryThread[] = [];
  exposeGcToThreadsOnce();
  try {
    for (let i = 0; i < 2; i++) threads.push(new EntryThread(createWorker));
  } catch (error) {
    for (const t of threads) void t.close();
    throw error;
  }
  const [small, stored] = threads;
  // The small entries' stored bytes are read straight into slots of this buffer, which the thread
  // reads. Most entries (task logs) fit the small slots; the few larger ones share the large
  // slots, so that the pages a large entry touches (they stay resident) are those of few slots.
  const largeSlots = options.largeSlotSize ? (options.largeSlots ?? 1) : 0;
  const largeSlotSize = options.largeSlotSize ?? 0;
  const shared = new SharedArrayBuffer(options.slots * options.slotSize + largeSlots * largeSlotSize);
  const pools = [
    slotPool(Array.from({ length: options.slots }, (_, i) => i * options.slotSize)),
    slotPool(Array.from({ length: largeSlots }, (_, i) => options.slots * options.slotSize + i * largeSlotSize)),
  ];
  return {
    async runSmall(job) {
      const pool = job.storedSize <= options.slotSize ? pools[0] : job.storedSize <= largeSlotSize ? pools[1] : undefined;
      if (!pool) throw new Error(`an entry of ${job.storedSize} stored bytes does not fit a ${Math.max(options.slotSize, largeSlotSize)}-byte slot`);
      const offset = await pool.acquire();
      try {
        await job.fill(new Uint8Array(shared, offset, job.storedSize));
        const { fill: _fill, storedSize: _stored, ...rest } = job;
        return await small.run({ ...rest, shared, offset, length: job.storedSize });
      } finally {
        pool.release(offset);
      }
    },
    copyStored: (job, onBytes) => stored.run(job, onBytes),
    async close() {
      await Promise.all(threads.map((t) => t.close()));
    },
  };
}
