// Reads a backup's large stored files on a worker thread, with their CRC-32, while the main
// thread writes them and computes their SHA-256.
//
// On the main thread alone a stored large file cost a thread-pool read, SHA-256 and CRC-32 per
// MiB (3.3 s of main-thread time for the bench store's 2 GB of packages, with another ~1.6 s spent
// waiting for a core), and the read, the hashing and the write took turns rather than
// overlapping. The thread reads with synchronous calls into slots of one SharedArrayBuffer
// (nothing is copied between threads), computes each chunk's CRC-32 as it lands, and hands the
// slot to the main thread, which writes it, hashes it while the write is under way, and gives
// the slot back once the archive file holds it. SHA-256 (~0.7 ms a MiB here) is the larger half
// of the hashing and the main thread is otherwise idle in this phase, so splitting it this way
// keeps both cores busy; with both hashes on the thread, the thread was the bottleneck (its reads
// slow down to ~1.3 ms a MiB while the disk writes back the archive).
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { StoppableThread, THREAD_STOP_SOURCE } from '../../runtime/threads';

/** Bytes per read, and per slot. */
export const SLOT_BYTES = 1 << 20;
/** Slots: the bytes read ahead of the archive's writes (one shared allocation, reused). */
export const SLOTS = 8;

/** What yazl's CRC-32 calls are answered with for a chunk the thread read (see zip-writer.ts). */
export interface ChunkCrc {
  /** The file's CRC-32 before this chunk, and after it. */
  before: number;
  after: number;
}
export const chunkCrcs = new WeakMap<Buffer, ChunkCrc>();

/** A large file as the thread read it. */
export interface ThreadReadResult {
  sha256: string;
  size: number;
}

/** The thread could not start, or stopped: the caller reads on the main thread instead, or fails. */
export class LargeFileThreadStopped extends Error {}

type Reply =
  | { kind: 'chunk'; id: number; slot: number; length: number; crc: number; before: number }
  | { kind: 'end'; id: number; size: number }
  | { kind: 'failed'; id: number; code: string; message: string }
  | { kind: 'stopped'; id: number };

/** Run with `eval`: the step is one bundled file, so a worker cannot be given a module path. It stops when asked (THREAD_STOP_SOURCE). */
const THREAD_SOURCE = `${THREAD_STOP_SOURCE}
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
const SLOT_BYTES = ${SLOT_BYTES};
const shared = workerData.shared;
const free = [];
for (let i = 0; i < ${SLOTS}; i++) free.push(i);
let job;

// Reads while a slot is free; the main thread's 'free' messages resume it. Asked to stop, it
// reads no more and answers nothing (the main thread fails the read, and owns the descriptor).
function pump() {
  while (job && free.length > 0 && !stopRequested()) {
    if (job.cancelled) return finish({ kind: 'stopped', id: job.id });
    if (job.position >= job.size) return finish({ kind: 'end', id: job.id, size: job.position });
    const slot = free.pop();
    const view = Buffer.from(shared, slot * SLOT_BYTES, Math.min(SLOT_BYTES, job.size - job.position));
    let length;
    try {
      length = fs.readSync(job.fd, view, 0, view.length, job.position);
    } catch (error) {
      free.push(slot);
      return finish({ kind: 'failed', id: job.id, code: error.code || 'EIO', message: error.message });
    }
    if (length === 0) {
      // The file shrank: it ends here (the caller compares sizes and warns).
      free.push(slot);
      return finish({ kind: 'end', id: job.id, size: job.position });
    }
    const chunk = view.subarray(0, length);
    const before = job.crc;
    job.crc = zlib.crc32(chunk, before);
    job.position += length;
    parentPort.postMessage({ kind: 'chunk', id: job.id, slot, length, crc: job.crc, before });
  }
}

function finish(reply) {
  job = undefined;
  parentPort.postMessage(reply);
}

onJobs((message) => {
  if (message.kind === 'read') {
    job = { id: message.id, fd: message.fd, size: message.size, position: 0, crc: 0 };
    pump();
  } else if (message.kind === 'free') {
    free.push(message.slot);
    pump();
  } else if (message.kind === 'cancel') {
    if (job && job.id === message.id) job.cancelled = true;
    pump();
    // No slot free: the job ends here; the main thread frees nothing more for it.
    if (job && job.cancelled) finish({ kind: 'stopped', id: job.id });
  }
});
`;

/** The thread needs zlib.crc32 (Node 20.15+, 22.2+); without it large files are read on the main thread. */
export function largeFileThreadCanRun(): boolean {
  return typeof (zlib as unknown as { crc32?: unknown }).crc32 === 'function';
}

/**
 * One file's bytes as the thread reads them, with their SHA-256 (computed here, on the main
 * thread); `result` settles once all were read. A thread that stops before the first chunk (one
 * that could not start, say) hands the file to `fallback`, a main-thread reader; one that stops
 * later fails the read.
 */
export class ThreadFileReader extends Readable {
  readonly result: Promise<ThreadReadResult>;
  private settle!: { resolve: (r: ThreadReadResult) => void; reject: (e: Error) => void };
  /** The thread no longer uses the file descriptor: the owner may close it. */
  readonly released: Promise<void>;
  private release!: () => void;
  private ended = false;
  private chunks = 0;
  private fallbackSource: Readable | undefined;
  private readonly hash: Hash = createHash('sha256');

  constructor(
    readonly id: number,
    private readonly onDestroy: (reader: ThreadFileReader) => void,
    private readonly fallback: () => Readable,
  ) {
    // Chunks arrive as the thread reads them; the slots bound how many (SLOTS MiB), not this.
    super({ highWaterMark: SLOTS * SLOT_BYTES });
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => undefined);
    this.released = new Promise((resolve) => (this.release = resolve));
  }

  override _read(): void {
    this.fallbackSource?.resume();
  }

  /** The slot stays unread into until the archive file holds the chunk, so hashing after the push is safe. */
  chunk(view: Buffer): void {
    this.chunks += 1;
    if (this.destroyed) return;
    // Handed on first: the write is under way on the thread pool while this hashes.
    this.push(view);
    this.hash.update(view);
  }

  end(size: number): void {
    this.ended = true;
    this.release();
    this.settle.resolve({ sha256: this.hash.digest('hex'), size });
    if (!this.destroyed) this.push(null);
  }

  /** `fallBack` off: the writer is ending (an abort, a cancel): nothing is read any more. */
  fail(error: Error, fallBack = true): void {
    this.release();
    if (fallBack && this.chunks === 0 && !this.destroyed && !this.fallbackSource) return this.readHere();
    this.settle.reject(error);
    this.destroy(error);
  }

  /** The main thread reads the file instead (it owns the descriptor again: `released` has resolved). */
  private readHere(): void {
    const hash = this.hash;
    let size = 0;
    const source = (this.fallbackSource = this.fallback());
    source.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      if (!this.push(chunk)) source.pause();
    });
    source.once('end', () => {
      this.ended = true;
      this.settle.resolve({ sha256: hash.digest('hex'), size });
      this.push(null);
    });
    source.once('error', (error) => {
      this.settle.reject(error);
      this.destroy(error);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.fallbackSource) this.fallbackSource.destroy();
    else if (!this.ended) this.onDestroy(this);
    callback(error);
  }
}

/**
 * The backup's large-file thread: one file at a time (the archive writes one entry at a time).
 * `giveBack(chunk)` must be called once the archive file holds a chunk this gave out.
 */
export class LargeFileThread {
  private readonly worker: Worker;
  private readonly thread: StoppableThread;
  private readonly shared = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
  private readonly slotOf = new WeakMap<Buffer, number>();
  private current: ThreadFileReader | undefined;
  private nextId = 0;
  private stopped: Error | undefined;
  /** close() was called: a read cut short is not handed to the main thread. */
  private closing = false;

  /** `source` is the thread's code (tests give one that fails). */
  constructor(source = THREAD_SOURCE) {
    this.worker = new Worker(source, { eval: true, workerData: { shared: this.shared } });
    this.thread = new StoppableThread(this.worker);
    this.worker.on('message', (reply: Reply) => this.onReply(reply));
    this.worker.on('error', (error) => this.onStopped(error));
    this.worker.on('exit', (code) => this.onStopped(new Error(`the large-file thread exited (code ${code})`)));
    // Alive only while it reads: an idle thread never keeps the process from exiting.
    this.worker.unref();
  }

  /**
   * Reads [0, size) of an open file. The descriptor is the thread's until `released`; `fallback`
   * reads the file on the main thread if the thread stops before it has read any of it.
   */
  read(fd: number, size: number, fallback: () => Readable): ThreadFileReader {
    if (this.stopped) throw new LargeFileThreadStopped(this.stopped.message);
    if (this.current) throw new Error('The large-file thread reads one file at a time.');
    const reader = new ThreadFileReader(this.nextId++, (r) => this.cancel(r), fallback);
    this.current = reader;
    this.worker.ref();
    this.worker.postMessage({ kind: 'read', id: reader.id, fd, size });
    return reader;
  }

  /** A chunk the archive file now holds: its slot can be read into again. */
  giveBack(chunk: Buffer): void {
    const slot = this.slotOf.get(chunk);
    if (slot === undefined) return;
    this.slotOf.delete(chunk);
    if (!this.stopped) this.worker.postMessage({ kind: 'free', slot });
  }

  private cancel(reader: ThreadFileReader): void {
    if (this.current === reader && !this.stopped) this.worker.postMessage({ kind: 'cancel', id: reader.id });
  }

  private onReply(reply: Reply): void {
    const reader = this.current;
    if (!reader || reader.id !== reply.id) return;
    if (reply.kind === 'chunk') {
      const view = Buffer.from(this.shared, reply.slot * SLOT_BYTES, reply.length);
      this.slotOf.set(view, reply.slot);
      chunkCrcs.set(view, { before: reply.before, after: reply.crc });
      reader.chunk(view);
      return;
    }
    this.current = undefined;
    this.worker.unref();
    if (reply.kind === 'end') reader.end(reply.size);
    else if (reply.kind === 'failed') reader.fail(Object.assign(new Error(reply.message.startsWith(reply.code) ? reply.message : `${reply.code}: ${reply.message}`), { code: reply.code }));
    else reader.fail(new LargeFileThreadStopped('the read was cancelled'));
  }

  private onStopped(error: Error): void {
    this.stopped ??= error;
    const reader = this.current;
    this.current = undefined;
    reader?.fail(new LargeFileThreadStopped(`the large-file thread stopped (${error.message})`), !this.closing);
  }

  async close(): Promise<void> {
    this.stopped ??= new Error('the large-file thread was stopped');
    this.closing = true;
    // It stops between two reads and exits; the read in progress fails below.
    await this.thread.end();
    const reader = this.current;
    this.current = undefined;
    reader?.fail(new LargeFileThreadStopped(this.stopped.message), false);
  }
}
