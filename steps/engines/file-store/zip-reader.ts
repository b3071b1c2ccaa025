// Streaming ZIP (ZIP64) reader over yauzl: reads the central directory, checks every entry
// (zip-slip, links, encryption, duplicates) before any data is read, and opens entries for
// reading concurrently, each with constant memory.
import { close, constants as fsConstants, fstat, open, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import * as yauzl from 'yauzl';
import { whatIsNotAFile } from '../../runtime/files';
import { unsafeEntryNameReason, unsafeEntryTypeReason, unixModeOf } from './entry-safety';

export interface ArchiveEntry {
  name: string;
  isDirectory: boolean;
  size: number;
  compressedSize: number;
  /** Permission bits from the Unix attributes, when the archive was made on Unix. */
  mode?: number;
  raw: yauzl.Entry;
}

export interface OpenedArchive {
  path: string;
  entries: Map<string, ArchiveEntry>;
  /** Every reason to refuse this archive, one line per entry. */
  problems: string[];
  openEntry(entry: ArchiveEntry): Promise<Readable>;
  /** The entry's stored bytes, still compressed (for small entries inflated in one go). */
  openRawEntry(entry: ArchiveEntry): Promise<Readable>;
  /** Where the entry's stored bytes start in the archive file (its local header checked). */
  dataStart(entry: ArchiveEntry): Promise<number>;
  /** Reads the entry's stored bytes (still compressed) into `into`, which must hold them all. */
  readStoredInto(entry: ArchiveEntry, into: Uint8Array): Promise<void>;
  close(): void;
}

function decodeName(entry: yauzl.Entry): string {
  const raw = (entry as { fileNameRaw?: Buffer }).fileNameRaw ?? (entry.fileName as unknown as Buffer);
  // strict: keep backslashes as they are, so that our rules see (and refuse) them.
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
}

/**
 * Drops what yauzl keeps of an entry's name, comment and extra fields once they are checked: five
 * Buffers and a string per entry, ~10 MiB of the heap for a 20,000-file archive (heap snapshot),
 * kept for the whole restore. Reading the entry later (openReadStream, readLocalFileHeader) uses
 * only its offsets, sizes, method and flags (yauzl 3.4's source).
 */
function forgetNameAndExtras(raw: yauzl.Entry): void {
  const entry = raw as unknown as Record<string, unknown>;
  for (const field of ['fileName', 'fileNameRaw', 'fileComment', 'fileCommentRaw', 'comment']) if (field in entry) entry[field] = '';
  entry.extraFields = [];
}

const CHUNK = 1 << 18;

/** Reads [start, end) of an fd it does not own (fs.ReadStream closes its fd on destroy()). */
class RangeStream extends Readable {
  constructor(
    private readonly fd: number,
    private position: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: CHUNK });
  }
  override _read(): void {
    const length = Math.min(CHUNK, this.end - this.position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(length);
    read(this.fd, buffer, 0, length, this.position, (error, bytesRead) => {
      if (error) return this.destroy(error);
      if (bytesRead === 0) return this.destroy(new Error('unexpected end of the archive file'));
      this.position += bytesRead;
      this.push(bytesRead < length ? buffer.subarray(0, bytesRead) : buffer);
    });
  }
}

const WINDOW = 256 * 1024;

/**
 * yauzl's own file reader reads 16 KiB at a time (the stream default) and makes one read per
 * header. This one reads 256 KiB ranges, and serves headers (the central directory, local
 * headers) and small entries from a window read in one go, synchronously: a thread-pool hop
 * costs ~0.1 ms of main-thread time here, several per entry (measured).
 */
class FileRangeReader extends yauzl.RandomAccessReader {
  private window: { start: number; data: Buffer } | undefined;
  /** The window's buffer, for the next window, unless a stream was given a part of it. */
  private spare: Buffer | undefined;
  private windowLent = false;
  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {
    super();
  }
  private cached(start: number, end: number): Buffer | undefined {
    const w = this.window;
    if (w && start >= w.start && end <= w.start + w.data.length) return w.data.subarray(start - w.start, end - w.start);
    if (end - start > WINDOW) return undefined;
    const length = Math.min(Math.max(WINDOW, end - start), this.size - start);
    // Reused when nothing kept a part of it: a restore reads ~1,700 windows per 434 MB of small files.
    if (this.window && !this.windowLent && this.window.data.buffer.byteLength === WINDOW && this.window.data.byteOffset === 0) this.spare = Buffer.from(this.window.data.buffer, 0, WINDOW);
    const data = this.spare && length <= WINDOW ? this.spare.subarray(0, length) : Buffer.allocUnsafe(length);
    this.spare = undefined;
    this.windowLent = false;
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, data, got, length - got, start + got);
      if (n === 0) break;
      got += n;
    }
    this.window = { start, data: data.subarray(0, got) };
    return end - start <= got ? this.window.data.subarray(0, end - start) : undefined;
  }
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (error: Error | null) => void): void {
    let data: Buffer | undefined;
    try {
      data = this.cached(position, position + length);
    } catch (error) {
      return callback(error as Error);
    }
    if (!data) return super.read(buffer, offset, length, position, callback);
    data.copy(buffer, offset);
    callback(null);
  }
  /** Reads [start, start + into.length) into a buffer the caller owns, synchronously (from the window when it holds it). */
  readInto(start: number, into: Uint8Array): void {
    const w = this.window;
    const end = start + into.length;
    if (w && start >= w.start && end <= w.start + w.data.length) {
      into.set(w.data.subarray(start - w.start, end - w.start));
      return;
    }
    let got = 0;
    while (got < into.length) {
      const n = readSync(this.fd, into, got, into.length - got, start + got);
      if (n === 0) throw new Error('unexpected end of the archive file');
      got += n;
    }
  }
  override _readStreamForRange(start: number, end: number): Readable {
    const data = end - start <= WINDOW ? this.cached(start, end) : undefined;
    if (data) this.windowLent = true;
    return data ? Readable.from([data], { objectMode: false }) : new RangeStream(this.fd, start, end);
  }
  override close(callback: (error: Error | null) => void): void {
    this.window = undefined;
    this.spare = undefined;
    close(this.fd, callback);
  }
}

/** yauzl's (and RangeStream's) messages for entry bytes that do not agree with their headers. */
const ENTRY_DATA_ERRORS = /^(invalid local file header signature|file data overflows file bounds|too many bytes in the stream|not enough bytes in the stream|unexpected EOF|unexpected end of the archive file)/;

/**
 * Why an entry's data could not be read, when the archive itself is damaged (zlib's errors on a
 * corrupt or cut-short deflate stream, yauzl's on sizes that do not add up); undefined for
 * anything else (a disk error, a cancel), which its caller reports as it is.
 */
export function damagedEntryReason(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown } | null | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'Z_BUF_ERROR' || message === 'unexpected end of file') return `its compressed data is cut short (zlib: ${message})`;
  if (code !== undefined && code.startsWith('Z_') && code !== 'Z_MEM_ERROR') return `its compressed data is corrupt (zlib: ${message})`;
  if (code === 'ERR_BUFFER_TOO_LARGE') return 'its compressed data inflates to more than its recorded size';
  if (code === undefined && ENTRY_DATA_ERRORS.test(message)) return `its data does not agree with its headers (${message})`;
  return undefined;
}

/**
 * Opens an archive file only if it is a regular file, and gives its size. Without O_NONBLOCK,
 * opening a FIFO named like an archive waits for a writer that never comes, past any cancel; with
 * it the open returns, and the check refuses it (as openManifest does for manifests).
 */
async function openArchiveFile(archivePath: string): Promise<{ fd: number; size: number }> {
  const fd = await promisify(open)(archivePath, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const stats = await promisify(fstat)(fd);
    if (!stats.isFile()) throw new Error(`${archivePath} is not a regular file (${whatIsNotAFile(stats)} with an archive's name)`);
    return { fd, size: stats.size };
  } catch (error) {
    close(fd, () => undefined);
    throw error;
  }
}

/** Opens an archive and checks its entries; the caller decides what to do with `problems`. */
export async function openArchive(archivePath: string, options: { windows?: boolean } = {}): Promise<OpenedArchive> {
  // decodeStrings:false so that yauzl does not stop at the first bad name: we list them all.
  // A plain fd (not a FileHandle): the reader owns it and closes it when yauzl is done.
  const { fd, size } = await openArchiveFile(archivePath);
  let zip: yauzl.ZipFile;
  let reader: FileRangeReader;
  try {
    reader = new FileRangeReader(fd, size);
    zip = await yauzl.fromRandomAccessReaderPromise(reader, size, { autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (error) {
    close(fd, () => undefined);
    throw error;
  }
  const entries = new Map<string, ArchiveEntry>();
  const problems: string[] = [];
  try {
    for await (const raw of zip.eachEntry()) {
      const name = decodeName(raw);
      const shown = JSON.stringify(name);
      const isDirectory = name.endsWith('/');
      const reason = unsafeEntryNameReason(name, options.windows) ?? (yauzl.validateFileName(name) ?? undefined);
      if (reason) problems.push(`entry ${shown}: ${reason}`);
      const typeReason = unsafeEntryTypeReason(raw.externalFileAttributes, raw.versionMadeBy, isDirectory);
      if (typeReason) problems.push(`entry ${shown}: ${typeReason}`);
      if (raw.isEncrypted()) problems.push(`entry ${shown}: encrypted`);
      if (raw.compressionMethod !== 0 && raw.compressionMethod !== 8) problems.push(`entry ${shown}: unsupported compression method ${raw.compressionMethod}`);
      // Windows and macOS folders ignore case; two names differing only in case would collide.
      const key = name;
      if (entries.has(key)) problems.push(`entry ${shown}: appears twice`);
      const mode = unixModeOf(raw.externalFileAttributes, raw.versionMadeBy);
      forgetNameAndExtras(raw);
      entries.set(key, {
        name,
        isDirectory,
        size: raw.uncompressedSize,
        compressedSize: raw.compressedSize,
        mode: mode === undefined ? undefined : mode & 0o7777,
        raw,
      });
    }
  } catch (error) {
    zip.close();
    throw error;
  }
  return {
    path: archivePath,
    entries,
    problems,
    openEntry: (entry) => zip.openReadStreamPromise(entry.raw),
    openRawEntry: (entry) => zip.openReadStreamPromise(entry.raw, entry.raw.compressionMethod === 0 ? {} : { decompress: false }),
    dataStart: async (entry) => (await zip.readLocalFileHeaderPromise(entry.raw, { minimal: true })).fileDataStart,
    readStoredInto: async (entry, into) => {
      const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry.raw, { minimal: true });
      reader.readInto(fileDataStart, into.subarray(0, entry.compressedSize));
    },
    close: () => zip.close(),
  };
}

/** The archive's end records read (not its central directory), for the functions below; the caller closes it. */
async function openCentralDirectory(archivePath: string): Promise<yauzl.ZipFile> {
  const { fd, size } = await openArchiveFile(archivePath);
  try {
    return await yauzl.fromRandomAccessReaderPromise(new FileRangeReader(fd, size), size, { autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (error) {
    close(fd, () => undefined);
    throw error;
  }
}

/**
 * Every entry's name and size from the central directory, keeping nothing else: the backup's
 * read-back needs no more, and runs while the backup still holds its own records (an opened
 * archive keeps ~700 bytes per entry; this ~100).
 */
export async function readEntrySizes(archivePath: string): Promise<Map<string, number>> {
  const zip = await openCentralDirectory(archivePath);
  const sizes = new Map<string, number>();
  try {
    for await (const raw of zip.eachEntry()) sizes.set(decodeName(raw), raw.uncompressedSize);
  } finally {
    zip.close();
  }
  return sizes;
}

/** The archive's comment (the last bytes of the file), read without its central directory. */
export async function readArchiveComment(archivePath: string): Promise<Buffer> {
  const zip = await openCentralDirectory(archivePath);
  zip.close();
  // decodeStrings: false, so yauzl gives the comment's bytes as they are.
  return zip.comment as unknown as Buffer;
}
