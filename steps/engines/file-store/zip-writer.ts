// Streaming ZIP (ZIP64 where needed) writer over yazl, with bounded memory.
//
// Small files arrive prepared by worker threads (read, hashed, deflated: addPrepared), or, on
// Node 18 or when no worker runs, as buffers yazl deflates on the libuv thread pool (addBuffer).
// Large files stream through with constant memory. yazl gives no per-entry "written" event, but it calls a lazy entry's stream
// factory only when every earlier entry is written; each lazy entry is therefore a checkpoint,
// and we never run more than one segment of buffered entries ahead of the last checkpoint.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, fdatasync, fsync, promises as fs, type WriteStream } from 'node:fs';
import { promisify } from 'node:util';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import * as yazl from 'yazl';
import crc32 = require('buffer-crc32');
// The module object itself (not an ES-module copy of it): the one yazl's require('zlib') sees.
import zlib = require('node:zlib');
import { FileStoreError, sourceReadFailure } from './errors';
import { CentralDirectoryRecords, FILE_DATA_DONE, type WrittenYazlEntry } from './central-directory';
import { chunkCrcs, LargeFileThread, largeFileThreadCanRun, LargeFileThreadStopped, ThreadFileReader } from './large-file-thread';
import type { PreparedFile } from './small-file-workers';

/**
 * Entries a worker has already deflated (see addPrepared): yazl is handed a stand-in buffer of
 * the file's length, and its CRC-32 and deflate calls on that very object get the worker's
 * results. Each step is recorded, and addPrepared fails the archive unless both were taken.
 */
interface Precomputed {
  crc32: number;
  content: Buffer;
  crcTaken: boolean;
  deflateTaken: boolean;
}
const precomputed = new WeakMap<Buffer, Precomputed>();

// yazl computes CRC-32 with buffer-crc32's JavaScript loop (about 270 MB/s on one core, the
// largest single cost of a backup). Node 20.15+ has zlib.crc32 (about 3 GB/s) with the same
// contract, so use it when present; Node 18 keeps the JavaScript one.
const nativeCrc32 = (zlib as unknown as { crc32?: (data: Buffer, value?: number) => number }).crc32;
const computeCrc32 = crc32.unsigned;
crc32.unsigned = ((data: Buffer, previous?: Buffer | number) => {
  const known = previous === undefined ? precomputed.get(data) : undefined;
  if (known) {
    known.crcTaken = true;
    return known.crc32;
  }
  // A chunk the large-file thread read: its CRC is known, if yazl's running value is the one it continued.
  const chunk = typeof previous === 'number' ? chunkCrcs.get(data) : undefined;
  if (chunk && typeof previous === 'number' && chunk.before === previous >>> 0) return chunk.after;
  if (typeof nativeCrc32 !== 'function') return computeCrc32(data, previous);
  return nativeCrc32(data, typeof previous === 'number' ? previous >>> 0 : previous ? previous.readUInt32BE(0) : 0);
}) as typeof crc32.unsigned;

type DeflateCallback = (error: Error | null, result: Buffer) => void;
const deflateRaw = zlib.deflateRaw as unknown as (...args: unknown[]) => unknown;
/**
 * Buffers added with `addBuffer(..., { inPieces: true })`: their deflate goes to deflateRawInPieces,
 * and a failure fails their writer (yazl ignores a deflate error and stores whatever it is given).
 */
const toDeflateInPieces = new WeakMap<Buffer, { fail: (error: Error) => void; ahead?: DeflatedAhead }>();
// Any other caller's deflateRaw goes through, at DEFLATE_MEM_LEVEL unless it chose a memLevel.
(zlib as unknown as { deflateRaw: unknown }).deflateRaw = function deflateRawOrPrecomputed(this: unknown, ...args: unknown[]): unknown {
  const known = Buffer.isBuffer(args[0]) ? precomputed.get(args[0]) : undefined;
  if (known && typeof args[2] === 'function') {
    known.deflateTaken = true;
    (args[2] as DeflateCallback)(null, known.content);
    return undefined;
  }
  const inPieces = Buffer.isBuffer(args[0]) ? toDeflateInPieces.get(args[0]) : undefined;
  if (inPieces && typeof args[2] === 'function') {
    const callback = args[2] as DeflateCallback;
    // On failure yazl is never answered: the writer fails instead, so no entry is written empty.
    const done = (error: Error | null, pieces: Buffer[]) => (error ? inPieces.fail(error) : callback(null, Buffer.concat(pieces)));
    const options = (args[1] ?? {}) as zlib.ZlibOptions;
    if (inPieces.ahead) deflateRawAfterAhead(args[0] as Buffer, options, inPieces.ahead, done);
    else deflateRawInPieces(args[0] as Buffer, options, done);
    return undefined;
  }
  return deflateRaw.apply(this, withDeflateMemLevel(args));
};

// yazl's stream entries (text files over 4 MiB, and small files written at a checkpoint) get a
// `new zlib.DeflateRaw({ level })` of yazl's own: the same memLevel there, so that a file's bytes
// do not depend on the path that wrote it.
const DeflateRawOfNode = (zlib as unknown as { DeflateRaw: new (options?: zlib.ZlibOptions) => zlib.DeflateRaw }).DeflateRaw;
class DeflateRawAtOurMemLevel extends DeflateRawOfNode {
  constructor(options?: zlib.ZlibOptions) {
    super(atOurMemLevel(options));
  }
}
(zlib as unknown as { DeflateRaw: unknown }).DeflateRaw = DeflateRawAtOurMemLevel;

/** Options with DEFLATE_MEM_LEVEL unless the caller chose a memLevel: the one rule for every deflate of ours. */
function atOurMemLevel(options: zlib.ZlibOptions | undefined): zlib.ZlibOptions {
  return options?.memLevel === undefined ? { ...options, memLevel: DEFLATE_MEM_LEVEL } : options;
}

/** The arguments of a deflateRaw(buffer, options, callback) call, at atOurMemLevel. */
function withDeflateMemLevel(args: unknown[]): unknown[] {
  if (typeof args[2] !== 'function') return args;
  return [args[0], atOurMemLevel(args[1] as zlib.ZlibOptions | undefined), ...args.slice(2)];
}

/**
 * The manifest entry (1.75 MB at scale 0.3, 5.8 MB at scale 1) is deflated in up to four pieces of
 * at least 1 MiB side by side on the thread pool, instead of on one thread while both cores wait
 * at the end of every backup: every piece but the last ends with a sync flush (an empty stored
 * block, no final bit), so the pieces joined are one raw deflate stream, as pigz makes them. Each
 * piece starts without the previous one's 32 KiB of history, which costs a little of the ratio.
 * Files are not deflated this way: an entry's bytes stay the same whichever thread made them.
 */
const DEFLATE_PIECE_BYTES = 1024 * 1024;
const MAX_DEFLATE_PIECES = 4;
export function deflateRawInPieces(data: Buffer, options: zlib.ZlibOptions, callback: (error: Error | null, pieces: Buffer[]) => void): void {
  const count = Math.max(1, Math.min(MAX_DEFLATE_PIECES, Math.floor(data.length / DEFLATE_PIECE_BYTES)));
  const pieceBytes = Math.ceil(data.length / count);
  const outputs: Buffer[] = new Array(count);
  let waiting = count;
  let failed = false;
  for (let i = 0; i < count; i++) {
    const piece = data.subarray(i * pieceBytes, Math.min(data.length, (i + 1) * pieceBytes));
    const finishFlush = i === count - 1 ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH;
    deflateRaw(piece, { ...atOurMemLevel(options), finishFlush }, (error: Error | null, output: Buffer) => {
      if (failed) return;
      if (error) {
        failed = true;
        callback(error, []);
        return;
      }
      outputs[i] = output;
      if (--waiting === 0) callback(null, outputs);
    });
  }
}

/**
 * The deflate of a buffer's tail, started before the buffer is whole: an unchanged incremental's
 * manifest is its new header followed by the previous manifest's file list, byte for byte
 * (encodeManifestAfter), and that list is known as soon as the previous set is read. Deflated on
 * the thread pool while the scan runs on the main thread, it is off the end of the backup, where
 * both cores waited for it (~7 ms of ~110 at scale 0.3). If the buffer does not end with these very
 * bytes, or the deflate failed, the buffer is deflated whole as before.
 */
export interface DeflatedAhead {
  readonly tail: Buffer;
  readonly level: number;
  /** The tail as one raw deflate stream (ending the stream), or undefined if deflating it failed. */
  readonly deflated: Promise<Buffer | undefined>;
}

export function deflateAhead(tail: Buffer, level: number): DeflatedAhead {
  // One piece on one thread-pool thread: the scan runs meanwhile and needs the pool for its
  // listings, and when the store changed (the usual incremental) the work is dropped.
  const deflated = new Promise<Buffer | undefined>((resolve) => {
    try {
      deflateRaw(tail, atOurMemLevel({ level }), (error: Error | null, output: Buffer) => resolve(error ? undefined : output));
    } catch {
      resolve(undefined);
    }
  });
  return { tail, level, deflated };
}

/** `data` deflated as its head (ending with a sync flush) followed by the tail deflated ahead, when `data` ends with that tail. */
function deflateRawAfterAhead(data: Buffer, options: zlib.ZlibOptions, ahead: DeflatedAhead, callback: (error: Error | null, pieces: Buffer[]) => void): void {
  const { tail } = ahead;
  const endsWithTail =
    data.buffer === tail.buffer && tail.byteOffset >= data.byteOffset && data.byteOffset + data.length === tail.byteOffset + tail.length && tail.length > 0;
  if (!endsWithTail || (options.level ?? zlib.constants.Z_DEFAULT_COMPRESSION) !== ahead.level) {
    deflateRawInPieces(data, options, callback);
    return;
  }
  const headBytes = data.subarray(0, data.length - tail.length);
  const head = new Promise<Buffer>((resolve, reject) =>
    deflateRaw(headBytes, { ...atOurMemLevel(options), finishFlush: zlib.constants.Z_SYNC_FLUSH }, (error: Error | null, output: Buffer) => (error ? reject(error) : resolve(output))),
  );
  Promise.all([head, ahead.deflated]).then(
    ([headPiece, tailPiece]) => (tailPiece ? callback(null, [headPiece, tailPiece]) : deflateRawInPieces(data, options, callback)),
    (error: Error) => callback(error, []),
  );
}

/** Stand-ins share one zeroed buffer: yazl reads only their length (its crc32 and deflate calls are answered above). */
let standInBytes = Buffer.alloc(0);
function standIn(length: number): Buffer {
  if (standInBytes.length < length) standInBytes = Buffer.alloc(Math.max(length, 4 * 1024 * 1024));
  // A new object every time: each is a key of its own.
  return standInBytes.subarray(0, length);
}

/** Prepared (worker-compressed) bytes a writer holds before the file has taken them. */
export const PREPARED_BYTES_AHEAD = 8 * 1024 * 1024;
/**
 * ...and entries: yazl finds the next entry to write by scanning its list from the start, so
 * tens of thousands of tiny prepared entries queued at once cost quadratic time (30,000 tiny
 * logs: 24 s of CPU against 7 on the main thread, measured). Written ones leave the list as
 * each prepared entry is added (see hideWrittenEntries), and at most this many wait.
 */
export const PREPARED_ENTRIES_AHEAD = 256;

/** Buffered bytes a writer may run ahead of its last checkpoint. */
export const SEGMENT_BYTES = 8 * 1024 * 1024;
/**
 * ...and buffered entries: each one holds a zlib deflate state (~300 KiB of native memory) from
 * the moment it is added, so 160 small logs in one segment cost ~50 MiB (measured).
 */
export const SEGMENT_ENTRIES = 32;

/**
 * Written bytes between two background flushes (fdatasync while writing goes on). The page cache
 * here holds a whole 2 GB archive without writing any of it, so a single fsync at the end waited
 * ~3 s for the disk with both cores idle; flushing as we go overlaps that wait with the work.
 */
export const FLUSH_BYTES = 128 * 1024 * 1024;
const FLUSH_CHECK_MS = 100;
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);

interface YazlEntry extends WrittenYazlEntry {
  doFileDataPump?: unknown;
}

// Already-compressed content: deflating it costs CPU and gains nothing.
const STORED_EXTENSIONS = new Set(
  ('nupkg zip gz tgz bz2 xz zst 7z rar jar war ear apk aar whl egg snupkg vsix msi cab ' +
    'png jpg jpeg gif webp ico mp3 mp4 mov avi mkv woff woff2 pdf docx xlsx pptx odt').split(' '),
);

/** Deflate level for text: level 1 is about twice as fast as 6; logs come out ~20 % larger (0.28 vs 0.23 of the input, per the reference). */
export const TEXT_DEFLATE_LEVEL = 1;

/**
 * zlib's memLevel for the deflates of a backup (the workers', yazl's through deflateRaw and
 * DeflateRaw above, the manifest's): 9 rather than the default 8 doubles the hash table and the
 * buffer of symbols a block holds, so level 1 builds Huffman trees half as often: ~10 % less CPU
 * on the bench's logs, and 0.04 % smaller (docs/design.md, "Stop 34"). The output is raw deflate as before. Workers and
 * the main thread must use the same, so a file's entry has the same bytes whichever made it.
 */
export const DEFLATE_MEM_LEVEL = 9;

export function compressionLevelFor(name: string): number {
  const dot = name.lastIndexOf('.');
  const extension = dot >= 0 ? name.slice(dot + 1).toLowerCase() : '';
  return STORED_EXTENSIONS.has(extension) || name.toLowerCase().endsWith('.tar.gz') ? 0 : TEXT_DEFLATE_LEVEL;
}

export interface EntryMetadata {
  mtimeMs: number;
  /** Permission bits. */
  mode: number;
}

export interface StreamedEntryResult {
  sha256: string;
  size: number;
}

/** Hashes and counts what flows through it. */
export class HashingCounter extends Transform {
  private readonly hash: Hash | undefined;
  bytes = 0;
  /** `hashing` off: only counts (the bytes' SHA-256 comes from whoever read them). */
  constructor(private readonly onBytes?: (bytes: number) => void, hashing = true) {
    super({ highWaterMark: 1 << 20 });
    this.hash = hashing ? createHash('sha256') : undefined;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }
  digest(): string {
    if (!this.hash) throw new Error('This counter does not hash.');
    return this.hash.digest('hex');
  }
}

function entryDate(mtimeMs: number): Date {
  return new Date(Math.round(mtimeMs));
}

/** Read size of a large file, and the size of a recycled read buffer. */
const READ_CHUNK = 1 << 20;
/** Free read buffers kept for reuse (what a stored entry's pipe holds at most is about as much). */
const READ_BUFFERS_KEPT = 16;

/**
 * 1 MiB read buffers for stored (not deflated) large entries, reused once the archive's output has
 * written them. A fresh buffer per read made V8 run a full GC every ~33 MB read (97 for the 2.5 GB
 * bench store, ~2 s) and cost a fresh mapping and 256 page faults per MiB. A buffer is reused only
 * after the output's own write callback for that very buffer, so nothing can still be reading it:
 * a stored entry's pipe passes each chunk on as it is (hash, yazl's CRC and counters, the output).
 */
class ReadBufferPool {
  private readonly free: Buffer[] = [];
  private readonly lent = new Set<Buffer>();
  take(): Buffer {
    const buffer = this.free.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
    this.lent.add(buffer);
    return buffer;
  }
  /** Back for reuse: only what take() lent, and only once it was written (or never pushed). */
  giveBack(buffer: Buffer): void {
    if (this.lent.delete(buffer) && this.free.length < READ_BUFFERS_KEPT) this.free.push(buffer);
  }
}

/** Reads [0, end) of an open file into recycled buffers; closes the file when done or destroyed. */
class PooledFileReader extends Readable {
  private position = 0;
  constructor(
    private readonly handle: fs.FileHandle,
    private readonly end: number,
    private readonly pool: ReadBufferPool,
  ) {
    super({ highWaterMark: READ_CHUNK });
    // As fs read streams do: a file closed by its owner (the backup's cleanup after a failure or
    // a cancel) ends this stream quietly rather than with a read error nobody listens for.
    (handle as unknown as NodeJS.EventEmitter).once('close', () => this.destroy());
  }
  override _read(): void {
    const length = Math.min(READ_CHUNK, this.end - this.position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = this.pool.take();
    this.handle.read(buffer, 0, length, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          // The file shrank: it ends here (the caller compares sizes and warns).
          this.pool.giveBack(buffer);
          this.push(null);
          return;
        }
        this.position += bytesRead;
        // A partial buffer goes out as a view: never given back, so never reused.
        this.push(bytesRead === READ_CHUNK ? buffer : buffer.subarray(0, bytesRead));
      },
      (error: Error) => {
        this.pool.giveBack(buffer);
        // Closed under us (see above): not a read error.
        this.destroy(this.handle.fd === -1 ? undefined : error);
      },
    );
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}

/** A large file whose threads stopped before it was read and hashed to its end. */
function cutShort(name: string, cause: LargeFileThreadStopped): FileStoreError {
  return new FileStoreError(`${name} could not be read to its end: ${cause.message}. Nothing was kept; run the backup again (OCTOPUSDR_FILE_STORE_WORKERS=0 reads every file on the main thread).`, { cause });
}

export class StreamingZipWriter {
  private readonly zip = new yazl.ZipFile();
  private readonly output: WriteStream;
  private readonly finished: Promise<void>;
  private readonly failed: Promise<never>;
  private failure: Error | undefined;
  private readonly fail: (error: Error) => void;
  private lastCheckpoint: Promise<void> = Promise.resolve();
  private bufferedSinceCheckpoint = 0;
  private entriesSinceCheckpoint = 0;
  /** Written entries' central-directory records, until end() (see hideWrittenEntries). */
  private readonly writtenRecords = new CentralDirectoryRecords();
  /** Written entries kept whole, after the first one that could not give its record as bytes. */
  private readonly writtenEntries: YazlEntry[] = [];
  private ending = false;
  private closed = false;
  private readonly flushTimer: NodeJS.Timeout;
  private flushedBytes = 0;
  private flushing: Promise<void> | undefined;
  private flushStopped = false;
  private readonly flushBytes: number;
  private readonly readBuffers = new ReadBufferPool();
  /** Prepared entries' bytes handed to yazl and not yet written to the file. */
  private readonly preparedInFlight = new Map<Buffer, Extract<PreparedFile, { kind: 'read' }>>();
  private preparedBytes = 0;
  private readonly roomWaiters: (() => void)[] = [];

  /** Reads stored large files off the main thread (started with the first of them); see large-file-thread.ts. */
  private largeFileThread: LargeFileThread | undefined;
  private largeFileThreadEnded: Promise<void> | undefined;
  private readonly useLargeFileThread: boolean;

  private readonly largeFileThreadSource: string | undefined;
  private readonly largeFileHasherSource: string | undefined;
  /** Streamed entries added whose reading has not ended. */
  private streamsUnderWay = 0;
  /** No large file will be added any more (see largeFilesAdded). */
  private largeFilesOver = false;

  /** `threads` off: every file is read on the main thread. `largeFileThreadSource`, `largeFileHasherSource`: for tests. */
  constructor(readonly filePath: string, options: { threads?: boolean; largeFileThreadSource?: string; largeFileHasherSource?: string; flushBytes?: number } = {}) {
    this.flushBytes = options.flushBytes ?? FLUSH_BYTES;
    this.useLargeFileThread = (options.threads ?? true) && largeFileThreadCanRun();
    this.largeFileThreadSource = options.largeFileThreadSource;
    this.largeFileHasherSource = options.largeFileHasherSource;
    // 'wx': never overwrite; the caller picks a fresh temporary name. autoClose off: finish()
    // flushes the same descriptor to disk before it is closed.
    this.output = createWriteStream(filePath, { flags: 'wx', mode: 0o644, highWaterMark: 1 << 20, autoClose: false });
    let reject!: (error: Error) => void;
    this.failed = new Promise<never>((_, r) => (reject = r));
    this.failed.catch(() => undefined);
    const onError = (error: Error) => {
      if (!this.failure) {
        this.failure = error;
        reject(error);
      }
    };
    this.fail = onError;
    this.output.on('error', onError);
    this.zip.on('error', onError);
    this.finished = new Promise<void>((resolve, reject) => {
      this.output.on('finish', () => (this.failure ? reject(this.failure) : resolve()));
      this.output.on('error', reject);
    });
    this.finished.catch(() => undefined);
    this.zip.outputStream.pipe(this.output);
    this.returnWrittenReadBuffers();
    this.flushTimer = setInterval(() => this.flushInBackground(), FLUSH_CHECK_MS);
    this.flushTimer.unref();
  }

  /** Read buffers come back to the pool when the output's write of them has completed. */
  private returnWrittenReadBuffers(): void {
    type Callback = (error?: Error | null) => void;
    const output = this.output as unknown as {
      _write: (chunk: Buffer, encoding: BufferEncoding, callback: Callback) => void;
      _writev?: (chunks: { chunk: Buffer }[], callback: Callback) => void;
    };
    const write = output._write;
    output._write = (chunk, encoding, callback) =>
      write.call(output, chunk, encoding, (error) => {
        if (!error) this.written(chunk);
        callback(error);
      });
    const writev = output._writev;
    if (typeof writev === 'function') {
      output._writev = (chunks, callback) =>
        writev.call(output, chunks, (error) => {
          if (!error) for (const { chunk } of chunks) this.written(chunk);
          callback(error);
        });
    }
  }

  /** A chunk the archive file now holds: a read buffer can be reused, a prepared entry's bytes are let go. */
  private written(chunk: Buffer): void {
    this.readBuffers.giveBack(chunk);
    this.largeFileThread?.giveBack(chunk);
    const prepared = this.preparedInFlight.get(chunk);
    if (prepared === undefined) return;
    this.preparedInFlight.delete(chunk);
    this.preparedBytes -= chunk.length;
    prepared.release();
    if (this.hasRoomForPrepared) for (const wake of this.roomWaiters.splice(0)) wake();
  }

  /**
   * Waits until the prepared entries not yet written (queued behind a large file, or in the
   * output's buffers) are within PREPARED_BYTES_AHEAD and PREPARED_ENTRIES_AHEAD: what bounds a backup's memory (and yazl's list) when
   * workers prepare the small files faster than the disk takes them.
   */
  async roomForPrepared(): Promise<void> {
    while (!this.hasRoomForPrepared) {
      this.throwIfFailed();
      await this.race(new Promise<void>((resolve) => this.roomWaiters.push(resolve)));
    }
  }

  private get hasRoomForPrepared(): boolean {
    return this.preparedBytes <= PREPARED_BYTES_AHEAD && this.preparedInFlight.size < PREPARED_ENTRIES_AHEAD;
  }

  /**
   * Adds a file a worker has read, hashed and (at a level above 0) deflated. yazl frames it as
   * it frames any buffer; for a deflated one it gets a stand-in of the file's length and the
   * worker's CRC-32 and deflate output (see `precomputed`). If yazl did not take both, the entry
   * would hold the stand-in's zeros: the archive fails instead.
   */
  addPrepared(name: string, file: Extract<PreparedFile, { kind: 'read' }>, meta: EntryMetadata): void {
    this.throwIfFailed();
    this.hideWrittenEntries();
    const options = { mtime: entryDate(meta.mtimeMs), mode: 0o100000 | (meta.mode & 0o7777), compressionLevel: file.level };
    if (file.content.length > 0) {
      this.preparedInFlight.set(file.content, file);
      this.preparedBytes += file.content.length;
    }
    if (file.level === 0) {
      this.zip.addBuffer(file.content, name, options);
      return;
    }
    const stand = standIn(file.size);
    const known: Precomputed = { crc32: file.crc32, content: file.content, crcTaken: false, deflateTaken: false };
    precomputed.set(stand, known);
    this.zip.addBuffer(stand, name, options);
    precomputed.delete(stand);
    if (!known.crcTaken || !known.deflateTaken) {
      const error = new Error(`yazl did not take the prepared data of ${name} (crc ${known.crcTaken}, deflate ${known.deflateTaken}); this yazl version is not supported.`);
      this.fail(error);
      throw error;
    }
  }

  /**
   * The stream a large file's entry reads: stored entries into recycled buffers, deflated ones
   * (whose input the compressor keeps) through a plain read stream. Either closes the file.
   */
  fileReader(handle: fs.FileHandle, size: number, compressionLevel: number): Readable {
    if (compressionLevel === 0 && this.useLargeFileThread && !this.largeFileThreadEnded) {
      try {
        this.largeFileThread ??= new LargeFileThread(this.largeFileThreadSource, this.largeFileHasherSource);
        let fellBack = false;
        const reader = this.largeFileThread.read(handle.fd, size, () => {
          fellBack = true;
          return new PooledFileReader(handle, size, this.readBuffers);
        });
        // The thread reads through this descriptor: it is closed once the thread is done with it
        // (or by the main-thread reader that took the file over).
        void reader.released.then(() => (fellBack ? undefined : handle.close())).catch(() => undefined);
        return reader;
      } catch {
        // No thread (it could not start, or stopped): this file and the rest are read here.
        void this.endLargeFileThread();
      }
    }
    if (compressionLevel === 0) return new PooledFileReader(handle, size, this.readBuffers);
    return handle.createReadStream({ start: 0, end: size - 1, highWaterMark: READ_CHUNK });
  }

  /** The archive's descriptor, once open (@types/node does not declare WriteStream.fd). */
  private get fd(): number | null | undefined {
    return (this.output as unknown as { fd?: number | null }).fd;
  }

  /**
   * Starts an fdatasync once `flushBytes` more were written, and the next as soon as one ends; a
   * failed one fails the archive. One at a time, and none after stopFlushing: the descriptor is
   * then fsynced and closed, and a flush still running could meet a reused descriptor.
   */
  private flushInBackground(): void {
    const fd = this.fd;
    const written = this.output.bytesWritten;
    if (this.flushing || this.flushStopped || this.failure || typeof fd !== 'number' || written - this.flushedBytes < this.flushBytes) return;
    this.flushedBytes = written;
    this.flushing = fdatasyncAsync(fd).then(
      () => {
        this.flushing = undefined;
        // The next at once, if due: waiting for the timer left the disk idle between flushes.
        this.flushInBackground();
      },
      (error: Error) => {
        this.flushing = undefined;
        this.fail(error);
      },
    );
  }

  private async stopFlushing(): Promise<void> {
    clearInterval(this.flushTimer);
    this.flushStopped = true;
    while (this.flushing) await this.flushing;
  }

  /** Rejects as soon as writing fails (e.g. disk full), so no caller waits forever. */
  async race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.failed]);
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** True when the next entry should be a checkpoint (streamed) to keep memory bounded. */
  get needsCheckpoint(): boolean {
    return this.bufferedSinceCheckpoint >= SEGMENT_BYTES || this.entriesSinceCheckpoint >= SEGMENT_ENTRIES;
  }

  addDirectory(name: string, meta: EntryMetadata): void {
    this.throwIfFailed();
    this.zip.addEmptyDirectory(name, { mtime: entryDate(meta.mtimeMs), mode: 0o040000 | (meta.mode & 0o7777) });
  }

  /**
   * Adds a file already in memory; yazl compresses it on the thread pool right away (`inPieces`:
   * in pieces side by side, see deflateRawInPieces; `ahead`: its tail already deflated, see deflateAhead).
   */
  addBuffer(
    name: string,
    data: Buffer,
    meta: EntryMetadata,
    compressionLevel = compressionLevelFor(name),
    { inPieces = false, ahead }: { inPieces?: boolean; ahead?: DeflatedAhead } = {},
  ): void {
    this.throwIfFailed();
    if (inPieces && data.length > 0) toDeflateInPieces.set(data, { fail: this.fail, ahead });
    this.zip.addBuffer(data, name, { mtime: entryDate(meta.mtimeMs), mode: 0o100000 | (meta.mode & 0o7777), compressionLevel });
    this.bufferedSinceCheckpoint += data.length;
    this.entriesSinceCheckpoint += 1;
  }

  /**
   * Adds a streamed entry, a checkpoint. Waits first until the previous checkpoint has started,
   * so at most two segments of buffered entries are held. `open` is called when yazl is ready
   * for the data; the returned promise resolves once `open` was called, `done` when the data
   * has all been read (with its SHA-256 and length).
   */
  async addStream(
    name: string,
    meta: EntryMetadata,
    open: () => Readable,
    onBytes?: (bytes: number) => void,
    compressionLevel = compressionLevelFor(name),
  ): Promise<{ done: Promise<StreamedEntryResult> }> {
    await this.race(this.lastCheckpoint);
    let started!: () => void;
    const checkpoint = new Promise<void>((resolve) => (started = resolve));
    let settle!: { resolve: (r: StreamedEntryResult) => void; reject: (e: Error) => void };
    const done = new Promise<StreamedEntryResult>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => undefined);
    this.streamsUnderWay += 1;
    void done.then(
      () => this.streamEnded(),
      () => this.streamEnded(),
    );
    this.zip.addReadStreamLazy(name, { mtime: entryDate(meta.mtimeMs), mode: 0o100000 | (meta.mode & 0o7777), compressionLevel }, (callback) => {
      started();
      this.hideWrittenEntries();
      let source: Readable;
      try {
        source = open();
      } catch (error) {
        settle.reject(error as Error);
        callback(null, new PassThrough().end());
        return;
      }
      // The large-file threads hash what they read: here it is only counted.
      const hasher = new HashingCounter(onBytes, !(source instanceof ThreadFileReader));
      // A source's error reaches the caller through the zip (below), not through this stream.
      hasher.on('error', () => undefined);
      // Any failure of the entry fails the archive at once (not after the files still to come):
      // the entry's bytes are not the file's.
      const failEntry = (cause: Error) => {
        // A read error has no path (a descriptor's read): passed on as it is, the backup would
        // report it as the backup directory's and blame the wrong disk.
        const error =
          cause instanceof LargeFileThreadStopped
            ? cutShort(name, cause)
            : cause instanceof FileStoreError
              ? cause
              : sourceReadFailure(name, cause);
        settle.reject(error);
        hasher.destroy(error);
        this.zip.emit('error', error);
      };
      source.on('error', failEntry);
      hasher.on('finish', () => {
        if (!(source instanceof ThreadFileReader)) return settle.resolve({ sha256: hasher.digest(), size: hasher.bytes });
        // Settles once the hashing thread has hashed the last chunk (or stopped before it had).
        source.result.then(
          (read) =>
            read.size === hasher.bytes
              ? settle.resolve({ sha256: read.sha256, size: read.size })
              : failEntry(new FileStoreError(`${name}: the large-file thread read ${read.size} bytes, the archive got ${hasher.bytes}. Nothing was kept; run the backup again (OCTOPUSDR_FILE_STORE_WORKERS=0 reads every file on the main thread).`)),
          failEntry,
        );
      });
      source.pipe(hasher);
      callback(null, hasher);
    });
    this.lastCheckpoint = checkpoint;
    this.bufferedSinceCheckpoint = 0;
    this.entriesSinceCheckpoint = 0;
    return { done: this.race(done) };
  }

  /**
   * When a lazy entry starts, every earlier entry has been written; three things are then done to
   * them, all reaching into yazl 3.x internals (`entries`, `state`, `doFileDataPump`,
   * `getCentralDirectoryRecord`; if they change, nothing breaks, it is just slower and holds more):
   * - yazl keeps each addBuffer() entry's (compressed) bytes referenced from its pump function
   *   until end(), so memory would grow with the store (measured: 2,000 task logs, RSS 196 MiB):
   *   drop those references;
   * - yazl looks for the next entry to write by scanning its list from the start, several times
   *   per entry, which is quadratic: 6,700 entries cost ~1.5 s of main-thread time (CPU profile).
   *   Written entries leave the list until end() puts them back, in order, for the central
   *   directory;
   * - an entry is kept only for its central-directory record, whose fields are all final once its
   *   data is written: the record is kept as bytes and the entry let go (central-directory.ts).
   */
  private hideWrittenEntries(): void {
    const zip = this.zip as unknown as { entries?: YazlEntry[] };
    const entries = zip.entries;
    if (!Array.isArray(entries) || this.ending) return;
    let written = 0;
    while (written < entries.length && entries[written].state === FILE_DATA_DONE) {
      const entry = entries[written];
      if (typeof entry.doFileDataPump === 'function') entry.doFileDataPump = undefined;
      written += 1;
    }
    for (const entry of entries.splice(0, written)) {
      // Records stay in list order: once one entry is kept whole, every later one is too.
      if (this.writtenEntries.length > 0 || !this.writtenRecords.take(entry)) this.writtenEntries.push(entry);
    }
  }

  /** Puts the written entries back in front, so that end() writes every one into the central directory. */
  private restoreWrittenEntries(): void {
    this.ending = true;
    const zip = this.zip as unknown as { entries?: YazlEntry[] };
    if (Array.isArray(zip.entries) && this.writtenRecords.count + this.writtenEntries.length > 0) {
      zip.entries = [...this.writtenRecords.standIns(), ...this.writtenEntries, ...zip.entries];
    }
    this.writtenEntries.length = 0;
  }

  /** Writes the central directory (and the archive's comment, if given) and waits until everything is on disk. */
  async finish(options: { comment?: string } = {}): Promise<void> {
    this.throwIfFailed();
    this.restoreWrittenEntries();
    this.zip.end({ forceZip64Format: false, comment: options.comment ?? '' });
    await this.race(this.finished);
    await this.endLargeFileThread();
    // The central directory is written, so yazl's entry list (a stand-in per written file, and
    // the last entries whole) is no longer needed while the archive is read back.
    (this.zip as unknown as { entries?: YazlEntry[] }).entries = [];
    await this.stopFlushing();
    this.throwIfFailed();
    await fsyncAsync(this.fd as number);
    this.closed = true;
    await this.closeOutput();
  }

  private async closeOutput(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.output.closed) return resolve();
      this.output.once('close', () => resolve());
      this.output.destroy();
    });
  }

  /**
   * No large file will be added from now on: the large-file thread ends once those added are
   * read, so that its slots (8 MiB) and its heap are not held through the small files after them.
   */
  largeFilesAdded(): void {
    this.largeFilesOver = true;
    this.endLargeFileThreadWhenIdle();
  }

  private streamEnded(): void {
    this.streamsUnderWay -= 1;
    this.endLargeFileThreadWhenIdle();
  }

  private endLargeFileThreadWhenIdle(): void {
    if (this.largeFilesOver && this.streamsUnderWay === 0 && this.largeFileThread) void this.endLargeFileThread();
  }

  /** Ends the large-file thread, once; every call waits until it has exited. */
  private endLargeFileThread(): Promise<void> {
    const thread = this.largeFileThread;
    // Let go of it once it has exited: its slots are freed when the chunks written from them are.
    this.largeFileThreadEnded ??= (thread?.close() ?? Promise.resolve()).finally(() => {
      if (this.largeFileThread === thread) this.largeFileThread = undefined;
    });
    return this.largeFileThreadEnded;
  }

  /** Stops writing and deletes the partial file. Safe to call more than once. */
  async abort(reason: Error = new Error('The archive was abandoned.')): Promise<void> {
    // Anyone still waiting on this writer stops waiting.
    this.fail(reason);
    // Before the files it reads are closed by the caller.
    await this.endLargeFileThread();
    await this.stopFlushing().catch(() => undefined);
    if (!this.closed) {
      this.closed = true;
      this.zip.outputStream.unpipe(this.output);
      (this.zip.outputStream as unknown as PassThrough).destroy();
      await this.closeOutput();
    }
    await fs.rm(this.filePath, { force: true });
  }
}
