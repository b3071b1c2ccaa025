// Reads a backup's large stored files on a worker thread, with their CRC-32, while a second
// thread computes their SHA-256 and the main thread writes them.
//
// On the main thread alone a stored large file cost a thread-pool read, SHA-256 and CRC-32 per
// MiB (3.3 s of main-thread time for the bench store's 2 GB of packages, with another ~1.6 s spent
// waiting for a core), and the read, the hashing and the write took turns rather than
// overlapping. The reading thread reads with synchronous calls into slots of one SharedArrayBuffer
// (nothing is copied between threads) and computes each chunk's CRC-32 as it lands; the main
// thread hands the chunk to the output and to the hashing thread, and gives the slot back once the
// archive file holds it and it is hashed. SHA-256 (~0.5 ms a MiB here) is the largest cost of the
// phase and one file's hash cannot be split: with it on the reading thread, that thread was the
// bottleneck (stop 23); on the main thread, the main thread was (stop 30: packages alone 1.9 s,
// 1.0 s without the hash). On a thread of its own it runs beside the reads, the writes and the
// main thread's stream work.
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

/** A large file as the threads read and hashed it. */
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

/**
 * The hashing thread: SHA-256 of the chunks named to it, in the order named, each answered with
 * `hashed` once its slot may be read into again; `digest` ends a file. Run with `eval`, as above.
 */
export const HASHER_SOURCE = `${THREAD_STOP_SOURCE}
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const shared = workerData.shared;
let hash;
let current;
onJobs((message) => {
  if (message.kind === 'start') {
    hash = createHash('sha256');
    current = message.id;
  } else if (message.kind === 'chunk') {
    if (message.id === current) hash.update(new Uint8Array(shared, message.slot * ${SLOT_BYTES}, message.length));
    parentPort.postMessage({ kind: 'hashed', slot: message.slot });
  } else if (message.kind === 'digest') {
    parentPort.postMessage({ kind: 'digest', id: message.id, sha256: message.id === current ? hash.digest('hex') : undefined });
    hash = undefined;
    current = undefined;
  }
});
`;

type HasherReply = { kind: 'hashed'; slot: number } | { kind: 'digest'; id: number; sha256: string | undefined };

/** The thread needs zlib.crc32 (Node 20.15+, 22.2+); without it large files are read on the main thread. */
export function largeFileThreadCanRun(): boolean {
  return typeof (zlib as unknown as { crc32?: unknown }).crc32 === 'function';
}

/**
 * One file's bytes as the thread reads them; `result` settles once all were read and hashed (by
 * the hashing thread). A thread that stops before the first chunk (one that could not start, say)
 * hands the file to `fallback`, a main-thread reader that hashes here; one that stops later fails
 * the read.
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

  /** The slot stays unread into until the archive file holds the chunk and the hashing thread has hashed it. */
  chunk(view: Buffer): void {
    this.chunks += 1;
    if (!this.destroyed) this.push(view);
  }

  /** Every chunk was read (`size` bytes); `sha256` settles once the hashing thread has hashed them all. */
  end(size: number, sha256: Promise<string>): void {
    this.ended = true;
    this.release();
    sha256.then(
      (digest) => this.settle.resolve({ sha256: digest, size }),
      (error: Error) => this.settle.reject(error),
    );
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
    const hash: Hash = createHash('sha256');
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

/** Holds on a slot handed out: the archive file must hold its chunk, and the hashing thread must have hashed it. */
const HOLDS_PER_CHUNK = 2;

/**
 * The backup's large-file threads, reading and hashing: one file at a time (the archive writes
 * one entry at a time). `giveBack(chunk)` must be called once the archive file holds a chunk this
 * gave out. Either thread stopping stops both (see onStopped).
 */
export class LargeFileThread {
  private readonly worker: Worker;
  private readonly thread: StoppableThread;
  private readonly hasher: Worker;
  private readonly hasherThread: StoppableThread;
  private readonly shared = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
  private readonly slotOf = new WeakMap<Buffer, number>();
  /** Per slot: holds still to be released before the reading thread may read into it again. */
  private readonly holds = new Uint8Array(SLOTS);
  private readonly digests = new Map<number, { resolve: (sha256: string) => void; reject: (error: Error) => void }>();
  private current: ThreadFileReader | undefined;
  private nextId = 0;
  private stopped: Error | undefined;
  /** The reading thread has exited: it no longer reads any file's descriptor. */
  private readingThreadExited = false;
  /** close() was called: a read cut short is not handed to the main thread. */
  private closing = false;

  /** `source` and `hasherSource` are the threads' code (tests give ones that fail). */
  constructor(source = THREAD_SOURCE, hasherSource = HASHER_SOURCE) {
    this.worker = new Worker(source, { eval: true, workerData: { shared: this.shared } });
    this.thread = new StoppableThread(this.worker);
    this.worker.on('message', (reply: Reply) => this.onReply(reply));
    this.worker.on('error', (error) => this.onStopped(error, 'reading'));
    this.worker.on('exit', (code) => {
      this.readingThreadExited = true;
      this.onStopped(new Error(`the large-file thread exited (code ${code})`), 'reading');
    });
    // Alive only while they read and hash: idle threads never keep the process from exiting.
    this.worker.unref();
    try {
      this.hasher = new Worker(hasherSource, { eval: true, workerData: { shared: this.shared } });
    } catch (error) {
      // No second thread: the first is not left running (the caller reads on the main thread).
      void this.thread.end();
      throw error;
    }
    this.hasherThread = new StoppableThread(this.hasher);
    this.hasher.on('message', (reply: HasherReply) => this.onHasherReply(reply));
    this.hasher.on('error', (error) => this.onStopped(error, 'hashing'));
    this.hasher.on('exit', (code) => this.onStopped(new Error(`the large-file hashing thread exited (code ${code})`), 'hashing'));
    this.hasher.unref();
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
    this.hasher.ref();
    this.hasher.postMessage({ kind: 'start', id: reader.id });
    this.worker.postMessage({ kind: 'read', id: reader.id, fd, size });
    return reader;
  }

  /** A chunk the archive file now holds: once hashed too, its slot can be read into again. */
  giveBack(chunk: Buffer): void {
    const slot = this.slotOf.get(chunk);
    if (slot === undefined) return;
    this.slotOf.delete(chunk);
    this.release(slot);
  }

  private release(slot: number): void {
    if (this.holds[slot] === 0) return;
    this.holds[slot] -= 1;
    if (this.holds[slot] === 0 && !this.stopped) this.worker.postMessage({ kind: 'free', slot });
  }

  /** The file's SHA-256, once the hashing thread has hashed every chunk named to it (it takes them in order). */
  private digest(id: number): Promise<string> {
    const sha256 = new Promise<string>((resolve, reject) => this.digests.set(id, { resolve, reject }));
    this.hasher.postMessage({ kind: 'digest', id });
    return sha256;
  }

  /**
   * The hashing thread may lag by more than one file: a file is read to its end once its chunks
   * are written, not hashed, and the next file's read starts then. So it keeps the process alive
   * while a file is read or any digest is awaited; a promise alone does not, and Node ended a
   * backup of two large files with exit 0 and nothing done when the first digest came in after the
   * second file's read had ended.
   */
  private unrefHasherIfIdle(): void {
    if (!this.current && this.digests.size === 0) this.hasher.unref();
  }

  private onHasherReply(reply: HasherReply): void {
    if (reply.kind === 'hashed') return this.release(reply.slot);
    const waiter = this.digests.get(reply.id);
    this.digests.delete(reply.id);
    this.unrefHasherIfIdle();
    if (reply.sha256 === undefined) waiter?.reject(new LargeFileThreadStopped('the hashing thread lost the file'));
    else waiter?.resolve(reply.sha256);
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
      this.holds[reply.slot] = HOLDS_PER_CHUNK;
      chunkCrcs.set(view, { before: reply.before, after: reply.crc });
      // Named to the hashing thread first: it hashes while the main thread passes the chunk on.
      this.hasher.postMessage({ kind: 'chunk', id: reply.id, slot: reply.slot, length: reply.length });
      reader.chunk(view);
      return;
    }
    this.current = undefined;
    this.worker.unref();
    if (reply.kind === 'end') return reader.end(reply.size, this.digest(reply.id));
    // Failed or cancelled: no digest is asked for this file (one may still be awaited for the previous one).
    this.unrefHasherIfIdle();
    if (reply.kind === 'failed') reader.fail(Object.assign(new Error(reply.message.startsWith(reply.code) ? reply.message : `${reply.code}: ${reply.message}`), { code: reply.code }));
    else reader.fail(new LargeFileThreadStopped('the read was cancelled'));
  }

  /**
   * Either thread stopped (or failed): a digest awaited fails, the other thread is ended, and the
   * file under way fails (or goes to the main thread), with the first thread's reason. When the
   * hashing thread stopped, the file fails only once the reading thread has exited: until then it
   * may be in a read of the file's descriptor, which `released` would hand back to be closed.
   */
  private onStopped(error: Error, thread: 'reading' | 'hashing'): void {
    this.stopped ??= error;
    const stopped = new LargeFileThreadStopped(`the large-file thread stopped (${this.stopped.message})`);
    this.rejectDigests(stopped);
    if (!this.closing) void this.endThreads();
    // The reading thread's exit comes back here and fails the file.
    if (thread === 'hashing' && !this.readingThreadExited && !this.closing) return;
    const reader = this.current;
    this.current = undefined;
    reader?.fail(stopped, !this.closing);
  }

  private endThreads(): Promise<void> {
    return Promise.all([this.thread.end(), this.hasherThread.end()]).then(() => undefined);
  }

  async close(): Promise<void> {
    this.stopped ??= new Error('the large-file thread was stopped');
    this.closing = true;
    // They stop between two jobs and exit; the read in progress fails below.
    await this.endThreads();
    const reader = this.current;
    this.current = undefined;
    const stopped = new LargeFileThreadStopped(this.stopped.message);
    this.rejectDigests(stopped);
    reader?.fail(stopped, false);
  }

  private rejectDigests(error: LargeFileThreadStopped): void {
    for (const waiter of this.digests.values()) waiter.reject(error);
    this.digests.clear();
  }
}
