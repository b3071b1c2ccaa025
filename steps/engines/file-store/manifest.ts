// The manifest of a file-store backup set: every file with its folder, relative path, size,
// mtime, mode, SHA-256 and the archive that holds its bytes (this one, or an earlier one of the
// chain for files an incremental did not need to store again). It is stored as the last entry
// of the archive and beside it; the copy beside it is what finds, chains and retains sets.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { StepFailure } from '../../runtime/errors';
import { openRegularFile } from '../../runtime/files';
import { accountName, errnoOf } from '../../runtime/failure';
import { FILE_STORE_FOLDERS, type FileStoreFolderName } from './folders';
import { isDeepStrictEqual } from 'node:util';
import { backupDirectoryFault } from './errors';
import { damagedEntryReason, openArchive, readArchiveComment, type OpenedArchive } from './zip-reader';

export const MANIFEST_FORMAT = 'octopus-dr/file-store-backup';
export const MANIFEST_ENTRY_NAME = 'octopus-dr-manifest.json';
export const ARCHIVE_PREFIX = 'octopus-file-store-';
// `-<6 hex>` keeps two runs in the same second apart; older sets have none, or `-<n>`.
const SET_NAME = /^octopus-file-store-(\d{8}T\d{6}Z)(?:-\d{1,2}|-[0-9a-f]{6})?-(full|incremental)\.zip$/;

export type BackupMode = 'Full' | 'Incremental';

export interface ManifestFile {
  folder: FileStoreFolderName;
  /** Relative to the folder, `/`-separated. */
  path: string;
  size: number;
  mtimeMs: number;
  /** Permission bits (0o777), as on the source. */
  mode: number;
  sha256: string;
  /** File name of the archive (in the same directory) that holds the bytes. */
  archive: string;
}

export interface ManifestDirectory {
  folder: FileStoreFolderName;
  path: string;
  mtimeMs: number;
  mode: number;
}

export interface FileStoreManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: 1;
  /** File name of this set's archive. */
  archive: string;
  mode: BackupMode;
  createdAt: string;
  toolVersion: string;
  host: string;
  platform: string;
  /** Archives this set needs, oldest first; the last is `archive`. */
  chain: string[];
  /** The set an incremental was compared with. */
  basedOn?: string;
  /** Each folder with its own mtime and mode, restored on the folder itself. */
  folders: { name: FileStoreFolderName; source: string; files: number; bytes: number; mtimeMs?: number; mode?: number }[];
  totals: { files: number; bytes: number; directories: number; storedFiles: number; storedBytes: number };
  warnings: string[];
  skipped: { folder: FileStoreFolderName; path: string; reason: string }[];
  /**
   * What the scan saw of every file and folder these lists record (scanDigestOf): the next
   * incremental whose scan gives the same knows that nothing changed without reading the lists.
   * Absent in sets written before it was recorded.
   */
  scanDigest?: string;
  files: ManifestFile[];
  directories: ManifestDirectory[];
}

/** Every file record this tool writes is made here, so all have one shape (see below). */
export function manifestFileRecord(folder: FileStoreFolderName, path: string, size: number, mtimeMs: number, mode: number, sha256: string, archive: string): ManifestFile {
  return { folder, path, size, mtimeMs, mode, sha256, archive };
}

/** Every folder record this tool writes is made here. */
export function manifestDirectoryRecord(folder: FileStoreFolderName, path: string, mtimeMs: number, mode: number): ManifestDirectory {
  return { folder, path, mtimeMs, mode };
}

// Why the first record made, and the first parsed, have numbers that are not small integers.
// V8 stores a number field of objects of one shape (made by one object literal, or by JSON.parse
// with the same keys in the same order; both start from one map per number of keys) as a small
// integer for as long as every value fits one: below 2^31 on 64-bit Node.js, so a size below
// 2 GiB. The first value that does not fit (a package of 2 GiB or more) gives the field a new
// representation, and every record made before it is rebuilt the next time it is read: for the
// bench's scale 1 (20,328 files, the last folder holding a 4.5 GiB package) that was 50-60 ms of
// each unchanged incremental, in checking the previous manifest (docs/design.md, stop 25). A field
// whose first value was a fraction takes any number from then on, so nothing is ever rebuilt. The
// text parsed here is written by the same functions, so its keys are in a manifest's order.
const NOT_A_SMALL_INTEGER = 0.5;
JSON.parse(
  JSON.stringify({
    files: [manifestFileRecord('TaskLogs', '', NOT_A_SMALL_INTEGER, NOT_A_SMALL_INTEGER, 0, '', '')],
    directories: [manifestDirectoryRecord('TaskLogs', '', NOT_A_SMALL_INTEGER, 0)],
  }),
);

/**
 * The SHA-256 of each file's folder, path, size, mtime and mode, then each folder's folder, path,
 * mtime and mode, in the order given: equal for a scan and a set's lists exactly when those fields
 * of every record are equal, in the same order. The numbers are hashed as doubles (little-endian
 * on every platform Node.js runs this on), the paths as
 * UTF-16 (so that no two names, not even ones with unpaired surrogates, which Windows allows, give
 * the same bytes), each ended by a NUL, which no file system allows in a name. Built in two pieces
 * rather than record by record: a buffer write per record took ~8 ms at scale 0.3.
 */
export function scanDigestOf(
  files: readonly Pick<ManifestFile, 'folder' | 'path' | 'size' | 'mtimeMs' | 'mode'>[],
  directories: readonly Pick<ManifestDirectory, 'folder' | 'path' | 'mtimeMs' | 'mode'>[],
): string {
  const numbers = new Float64Array(2 + 4 * files.length + 3 * directories.length);
  const paths: string[] = [];
  numbers[0] = files.length;
  numbers[1] = directories.length;
  let at = 2;
  for (const f of files) {
    numbers[at++] = FILE_STORE_FOLDERS.indexOf(f.folder);
    numbers[at++] = f.size;
    numbers[at++] = f.mtimeMs;
    numbers[at++] = f.mode;
    paths.push(f.path);
  }
  for (const d of directories) {
    numbers[at++] = FILE_STORE_FOLDERS.indexOf(d.folder);
    numbers[at++] = d.mtimeMs;
    numbers[at++] = d.mode;
    paths.push(d.path);
  }
  paths.push('');
  const hash = createHash('sha256').update(new Uint8Array(numbers.buffer));
  return `sha256:${hash.update(paths.join('\0'), 'utf16le').digest('hex')}`;
}

/** A set found in a backup directory. */
export interface BackupSet {
  directory: string;
  manifestPath: string;
  archivePath: string;
  manifest: FileStoreManifest;
  /** The manifest file's bytes, when asked for and read from the file beside the archive (see encodeManifestAfter). */
  manifestBytes?: Buffer;
}

/** A manifest without its file and folder lists: the set's archive, kind, time and chain. */
export type ManifestHeader = Omit<FileStoreManifest, 'files' | 'directories'>;

/** A set found in a backup directory, read only as far as its header (see readManifestHeaderFile). */
export interface BackupSetHeader extends Omit<BackupSet, 'manifest'> {
  manifest: ManifestHeader;
}

export function utcStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** `octopus-file-store-<UTC stamp>-<unique>-<mode>.zip`; `unique` is 6 hex characters (random by default). */
export function archiveNameFor(date: Date, mode: BackupMode, unique: string = randomBytes(3).toString('hex')): string {
  if (!/^[0-9a-f]{6}$/.test(unique)) throw new Error(`The unique part of an archive name must be 6 hex characters, not ${unique}.`);
  return `${ARCHIVE_PREFIX}${utcStamp(date)}-${unique}-${mode === 'Full' ? 'full' : 'incremental'}.zip`;
}

export function isOwnArchiveName(name: string): boolean {
  return SET_NAME.test(name);
}

/** A temporary file of this tool's file-store backups (an archive or a manifest not yet renamed): never a backup. */
export function isPartialName(name: string): boolean {
  return /^\.octopus-file-store-.*\.partial$/.test(name);
}

export function manifestNameFor(archiveName: string): string {
  return archiveName.replace(/\.zip$/, '.manifest.json');
}

/** Validates the shape of a parsed manifest; throws a StepFailure naming the file. */
export function checkManifest(value: unknown, where: string): FileStoreManifest {
  const m = value as Partial<FileStoreManifest> | null;
  if (!m || m.format !== MANIFEST_FORMAT) throw new StepFailure(`${where} is not an octopus-dr file-store manifest.`);
  if (m.formatVersion !== 1) throw new StepFailure(`${where} has manifest format version ${String(m.formatVersion)}; this octopus-dr reads version 1. Use a newer octopus-dr.`);
  if (typeof m.archive !== 'string' || !isOwnArchiveName(m.archive)) throw new StepFailure(`${where} names no valid archive.`);
  // Retention ages sets and incrementals compare file times by it: an unreadable time must not count as old.
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) throw new StepFailure(`${where} has no valid creation time (createdAt).`);
  if (!Array.isArray(m.files) || !Array.isArray(m.directories) || !Array.isArray(m.chain) || !Array.isArray(m.folders)) {
    throw new StepFailure(`${where} is incomplete (files, directories, chain or folders missing).`);
  }
  for (const name of m.chain) {
    if (typeof name !== 'string' || !isOwnArchiveName(name)) throw new StepFailure(`${where} has an invalid chain entry "${String(name)}".`);
  }
  // Folder names become paths below the home directory: only the known names are accepted.
  for (const folder of m.folders) {
    if (typeof folder?.name !== 'string' || !(FILE_STORE_FOLDERS as readonly string[]).includes(folder.name)) {
      throw new StepFailure(`${where} names an unknown folder ${JSON.stringify(folder?.name)}.`);
    }
  }
  for (const record of [...m.files, ...m.directories]) {
    if (!(FILE_STORE_FOLDERS as readonly string[]).includes(record.folder)) throw new StepFailure(`${where} has a record in an unknown folder ${JSON.stringify(record.folder)}.`);
  }
  for (const file of m.files) {
    if (typeof file.path !== 'string' || typeof file.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(file.sha256) || !Number.isSafeInteger(file.size) || !m.chain.includes(file.archive)) {
      throw new StepFailure(`${where} has an invalid file record (${JSON.stringify(file.path)}).`);
    }
  }
  return m as FileStoreManifest;
}

export function parseManifest(text: string, where: string): FileStoreManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StepFailure(`${where} is not valid JSON (${(error as Error).message}).`);
  }
  return checkManifest(value, where);
}

/** Something named like a manifest that is not a regular file: no set at all. */
export class NotARegularManifest extends StepFailure {}

/** Opens a manifest only if it is a regular file (see openRegularFile: a FIFO named like one hung retention, the next backup and a restore). */
function openManifest(manifestPath: string): Promise<fs.FileHandle> {
  return openRegularFile(
    manifestPath,
    (what) => new NotARegularManifest(`${manifestPath} is not a regular file (${what} with a manifest's name); it is no backup set. Move it out of the backup directory, then run this again.`),
  );
}

export async function readManifestFile(manifestPath: string): Promise<FileStoreManifest> {
  const handle = await openManifest(manifestPath);
  try {
    // As text, not as a Buffer decoded here: Node reads it straight into a string. A 1.75 MB
    // Buffer (external memory) made V8 start a full collection in 8 of 10 unchanged incrementals
    // at scale 0.3 (12-25 ms), against none of 10.
    return parseManifest(await handle.readFile('utf8'), manifestPath);
  } finally {
    await handle.close();
  }
}

/**
 * Room kept in front of a manifest's bytes read for reuse: the next set's header is written there,
 * just before the file list, so the list is not copied (copying 5.8 MB into fresh memory took
 * ~17 ms at scale 1, most of it page faults). A header longer than this is joined by a copy.
 */
const HEADER_ROOM = 64 * 1024;
/** Buffers read with HEADER_ROOM free in front of them, which encodeManifestAfter may write into (once). */
const withHeaderRoom = new WeakSet<Buffer>();

/** A manifest file and its bytes, for an incremental that may reuse its file list (encodeManifestAfter). */
export async function readManifestFileWithBytes(manifestPath: string): Promise<{ manifest: FileStoreManifest; bytes: Buffer }> {
  const handle = await openManifest(manifestPath);
  try {
    const { size } = await handle.stat();
    // One byte more than its size, to see that it did not grow while read.
    const room = Buffer.allocUnsafeSlow(HEADER_ROOM + size + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(room, HEADER_ROOM + length, room.length - HEADER_ROOM - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (HEADER_ROOM + length === room.length) throw new StepFailure(`${manifestPath} grew while it was read; it is being written by something else. Run this again once it is left alone.`);
    }
    const bytes = room.subarray(HEADER_ROOM, HEADER_ROOM + length);
    withHeaderRoom.add(bytes);
    return { manifest: parseManifestBytesListsOnDemand(bytes, manifestPath), bytes };
  } finally {
    await handle.close();
  }
}

const utf8Encoder = new TextEncoder();

/** Records stringified at a time by encodeManifest. */
const RECORDS_PER_PIECE = 1000;
/** What follows the header in a manifest whose lists are empty, as JSON.stringify(_, null, 1) writes it. */
const EMPTY_LISTS_TAIL = '\n "files": [],\n "directories": []\n}';
/** A list's records wrapped at a list's depth in a manifest, and what is cut off around them. */
const PIECE_KEY = 'l';
const PIECE_HEAD = `{\n "${PIECE_KEY}": [\n`.length;
const PIECE_TAIL = '\n ]\n}'.length;

/**
 * The manifest's bytes (UTF-8, one JSON text for both copies): exactly those of
 * `JSON.stringify(manifest, null, 1)`, written without that whole text ever being one string. At
 * scale 1 the text is ~6 M characters, held as 12 MB (a two-byte string once any name is outside
 * Latin-1) next to the bytes, at the end of the backup, where its peak memory is: the records are
 * stringified a thousand at a time, at the depth they have in the manifest (wrapped in an object of
 * one list, whose lines are then indented as the manifest's), and each piece is encoded into the
 * buffer as it comes. A manifest whose lists are not its last two keys, or not arrays, is
 * stringified whole. Plain data is assumed, as this tool makes it: no toJSON methods or getters.
 */
export function encodeManifest(manifest: FileStoreManifest): Buffer {
  const header = headerText(manifest);
  if (header === undefined) return encodeText([JSON.stringify(manifest, null, 1)], 0);
  // Room for ~285 bytes a file record at scale 1 and more: pages never written are never touched.
  const room = header.length + 400 * manifest.files.length + 200 * manifest.directories.length;
  return encodeText([
    header,
    '\n "files": ',
    ...listPieces(manifest.files),
    ',\n "directories": ',
    ...listPieces(manifest.directories),
    '\n}',
  ], room);
}

/**
 * The manifest's text up to its file list (FILE_LIST_START), as JSON.stringify(manifest, null, 1)
 * writes it; undefined unless its lists are arrays and its last two keys.
 */
function headerText(manifest: FileStoreManifest): string | undefined {
  if (!Array.isArray(manifest.files) || !Array.isArray(manifest.directories)) return undefined;
  const empty = JSON.stringify({ ...manifest, files: [], directories: [] }, null, 1);
  return empty.endsWith(EMPTY_LISTS_TAIL) ? empty.slice(0, -EMPTY_LISTS_TAIL.length) : undefined;
}

/** A list as JSON.stringify(_, null, 1) writes it one level into an object, in pieces. */
function* listPieces(records: readonly object[]): Generator<string> {
  if (records.length === 0) {
    yield '[]';
    return;
  }
  yield '[\n';
  for (let at = 0; at < records.length; at += RECORDS_PER_PIECE) {
    const piece = JSON.stringify({ [PIECE_KEY]: records.slice(at, at + RECORDS_PER_PIECE) }, null, 1);
    if (at > 0) yield ',\n';
    yield piece.slice(PIECE_HEAD, piece.length - PIECE_TAIL);
  }
  yield '\n ]';
}

/**
 * The UTF-8 of the pieces joined, in one buffer of at least `room` bytes: each piece is encoded
 * straight into it (`TextEncoder.encodeInto`; Buffer.from measures a string before it encodes it,
 * twice the work for a two-byte string). The buffer doubles when a piece does not fit.
 */
function encodeText(pieces: Iterable<string>, room: number): Buffer {
  let bytes = Buffer.allocUnsafeSlow(Math.max(room, 64 * 1024));
  let length = 0;
  for (let piece of pieces) {
    for (;;) {
      const { read, written } = utf8Encoder.encodeInto(piece, length === 0 ? bytes : bytes.subarray(length));
      length += written;
      // encodeInto stops before a character that does not fit, never inside one.
      if (read === piece.length) break;
      piece = piece.slice(read);
      const larger = Buffer.allocUnsafeSlow(Math.max(2 * bytes.length, length + piece.length * 3));
      bytes.copy(larger, 0, 0, length);
      bytes = larger;
    }
  }
  return bytes.subarray(0, length);
}

/** Where a manifest as encodeManifest writes it starts its file list: every key before it is the set's header. */
const FILE_LIST_START = '\n "files": [';
/** What closes a header cut just before FILE_LIST_START, so that it parses as a whole manifest. */
const EMPTY_LISTS_END = '\n "files": [], "directories": []}';

/**
 * The manifest's bytes; for an incremental whose file and folder records are those of the set it
 * builds on (an unchanged store), its header followed by that set's own file list, byte for byte
 * as its manifest file holds it. Encoding the lists again was most of the work left in an
 * unchanged incremental: JSON.stringify and UTF-8 of a 1.75 MB manifest (scale 0.3) took ~40 ms.
 * The previous bytes are reused only when they cannot say anything else: its records equal these
 * one by one, the text before its file list is its whole header (so nothing after the list sets a
 * header key again), and it has no top-level key but the header's and the two lists.
 */
export function encodeManifestAfter(manifest: FileStoreManifest, previous: BackupSet | undefined): Buffer {
  const bytes = previous?.manifestBytes;
  const list = bytes && reusableFileList(manifest, previous.manifest, bytes, previous.manifestPath);
  const header = list ? headerText(manifest) : undefined;
  if (!list || header === undefined) return encodeManifest(manifest);
  return headerBeforeList(header, list, previous);
}

/**
 * The manifest's bytes for a set whose lists are the previous set's, byte for byte: `header`
 * followed by the previous manifest's file list, neither list read. For an incremental whose scan
 * has the previous set's scanDigest, where the records are the same by construction (each names
 * the archive that holds its file); undefined when the previous bytes are not laid out as
 * encodeManifest writes them.
 */
export function encodeManifestOfUnchangedStore(header: ManifestHeader, previous: BackupSet): Buffer | undefined {
  const list = previous.manifestBytes && fileListBytesOf(previous.manifestBytes);
  const text = list && headerText({ ...header, files: [], directories: [] });
  return text === undefined ? undefined : headerBeforeList(text, list!, previous);
}

/** The header's UTF-8 followed by `list`, the previous manifest's file list (see encodeManifestAfter). */
function headerBeforeList(header: string, list: Buffer, previous: BackupSet): Buffer {
  const bytes = previous.manifestBytes!;
  const head = Buffer.from(header, 'utf8');
  // Written in front of the list, over the previous header and the room before it: those bytes
  // are no longer the previous manifest's, so they are not offered again.
  const start = list.byteOffset - head.length;
  if (!withHeaderRoom.has(bytes) || start < bytes.byteOffset - HEADER_ROOM) return Buffer.concat([head, list]);
  withHeaderRoom.delete(bytes);
  previous.manifestBytes = undefined;
  const whole = Buffer.from(list.buffer, start, head.length + list.length);
  head.copy(whole, 0);
  return whole;
}

function reusableFileList(manifest: FileStoreManifest, before: FileStoreManifest, bytes: Buffer, where: string): Buffer | undefined {
  if (!sameRecords(manifest.files, before.files) || !sameRecords(manifest.directories, before.directories)) return undefined;
  const headerKeys = new Set(Object.keys(manifest));
  if (Object.keys(before).some((key) => !headerKeys.has(key))) return undefined;
  const list = fileListBytesOf(bytes);
  if (!list) return undefined;
  const header = headerIfComplete(bytes.toString('utf8', 0, list.byteOffset - bytes.byteOffset) + EMPTY_LISTS_END, where);
  return header && isDeepStrictEqual(header, headerOf(before)) ? list : undefined;
}

/**
 * The bytes of a manifest file from its file list on, which encodeManifestAfter reuses when the
 * new set's records equal that set's (it checks that too); undefined when they are not laid out
 * as encodeManifest writes them. The same subarray each time for the same bytes.
 */
export function fileListBytesOf(bytes: Buffer): Buffer | undefined {
  const at = bytes.indexOf(FILE_LIST_START);
  if (at < 0) return undefined;
  const list = bytes.subarray(at);
  return twoListsIn(list) ? list : undefined;
}

/**
 * Whether a file list (fileListBytesOf) holds `archive` as a JSON string: what a record naming it
 * holds (a file named so would too, which only keeps it longer). Inside a JSON string a quote is
 * escaped, so the quoted name cannot be found within a longer one.
 */
export function fileListNamesArchive(list: Buffer, archive: string): boolean {
  return list.includes(JSON.stringify(archive));
}

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const BETWEEN_THE_LISTS = Buffer.from('],\n "directories": [');
const AFTER_THE_LISTS = [Buffer.from(']\n}'), Buffer.from(']\n}\n')];

/**
 * The text from FILE_LIST_START on sets no top-level key but "files" and "directories", once
 * each. A key set again after the list (even to the value the header has: the new header's would
 * then be overridden by the previous set's) is refused, as is anything not laid out as
 * encodeManifest writes it. Pinned by its brackets: records hold no arrays, so in a list this tool
 * wrote the only `[` and `]` are the two lists' own (a name holding one is encoded whole instead);
 * between and after them the bytes must be exactly encodeManifest's. A few memchr scans, not a parse.
 */
function twoListsIn(list: Buffer): TwoLists | undefined {
  const filesOpen = FILE_LIST_START.length - 1;
  const filesClose = list.indexOf(CLOSE);
  const directoriesOpen = list.indexOf(OPEN, filesOpen + 1);
  if (filesClose < 0 || directoriesOpen < filesClose) return undefined;
  if (!list.subarray(filesClose, directoriesOpen + 1).equals(BETWEEN_THE_LISTS)) return undefined;
  const directoriesClose = list.indexOf(CLOSE, filesClose + 1);
  if (directoriesClose < directoriesOpen || list.indexOf(OPEN, directoriesOpen + 1) >= 0) return undefined;
  const end = list.subarray(directoriesClose);
  return AFTER_THE_LISTS.some((expected) => end.equals(expected)) ? { filesOpen, filesClose, directoriesOpen, directoriesClose } : undefined;
}

/** Where twoListsIn found the lists' brackets, as offsets into the text it was given. */
interface TwoLists {
  filesOpen: number;
  filesClose: number;
  directoriesOpen: number;
  directoriesClose: number;
}

/** Bytes of file records decoded and parsed at a time by parseManifestBytes (~230 records). */
const LIST_PIECE_BYTES = 64 * 1024;
/** Between two file records, as encodeManifest writes them: the comma is at index 4. */
const RECORD_BREAK = Buffer.from('\n  },\n  {\n');

/**
 * A manifest's bytes parsed: the same value as JSON.parse of their UTF-8 text, and checked as
 * parseManifest checks it. Laid out as encodeManifest writes it (pinned as twoListsIn
 * pins it), the file list is decoded and parsed ~64 KB at a time, cut where one record ends and
 * the next begins: the text is never one 5.8 MB string (11.6 MB, two bytes a character, once any
 * name is outside Latin-1). Any other layout is parsed whole, as is one whose pieces do not each
 * parse as a list of records (a cut inside a record leaves braces open, so a cut can only hold
 * where the list's own commas are).
 */
export function parseManifestBytes(bytes: Buffer, where: string): FileStoreManifest {
  const value = parsedInPieces(bytes);
  return value ? checkManifest(value, where) : parseManifest(bytes.toString('utf8'), where);
}

/**
 * A manifest's bytes parsed as parseManifestBytes parses them, but its lists only when first read:
 * its header now (and checked as a manifest with empty lists), its records when `files` or
 * `directories` is first read (and checked then: reading them throws what parseManifestBytes
 * would have). An unchanged incremental never reads them (scanDigest tells it that nothing changed),
 * and parsing them was its largest cost left (~12 ms of ~105 at scale 0.3, with the collections of
 * the records it made). Bytes not laid out as encodeManifest writes them are parsed whole now.
 */
export function parseManifestBytesListsOnDemand(bytes: Buffer, where: string): FileStoreManifest {
  const split = splitAtLists(bytes);
  if (!split) return parseManifestBytes(bytes, where);
  const header = headerOf(checkManifest({ ...split.header, files: [], directories: [] }, where));
  return withListsOnDemand(header, () => {
    try {
      return checkManifest({ ...split.header, ...listsInPieces(bytes, split.at, split.lists) }, where);
    } catch (error) {
      if (error instanceof StepFailure) throw error;
      return parseManifest(bytes.toString('utf8'), where);
    }
  });
}

/**
 * A manifest whose `files` and `directories` are `parse()`'s, parsed when either is first read
 * and kept from then on (as plain properties: reading them again costs nothing). A failed parse
 * throws from that read, and again from the next.
 */
export function withListsOnDemand(header: ManifestHeader, parse: () => FileStoreManifest): FileStoreManifest {
  const manifest = { ...header } as FileStoreManifest;
  const settle = (): FileStoreManifest => {
    const whole = parse();
    const plain = (value: unknown) => ({ value, writable: true, enumerable: true, configurable: true });
    Object.defineProperties(manifest, { files: plain(whole.files), directories: plain(whole.directories) });
    return whole;
  };
  Object.defineProperties(manifest, {
    files: { get: () => settle().files, enumerable: true, configurable: true },
    directories: { get: () => settle().directories, enumerable: true, configurable: true },
  });
  return manifest;
}

/** The header of bytes laid out as encodeManifest writes them (pinned as twoListsIn pins them), and where their lists are. */
function splitAtLists(bytes: Buffer): { header: Record<string, unknown>; at: number; lists: TwoLists } | undefined {
  const at = bytes.indexOf(FILE_LIST_START);
  const lists = at < 0 ? undefined : twoListsIn(bytes.subarray(at));
  if (!lists) return undefined;
  try {
    const header: unknown = JSON.parse(bytes.toString('utf8', 0, at) + EMPTY_LISTS_END);
    return typeof header === 'object' && header !== null && !Array.isArray(header) ? { header: header as Record<string, unknown>, at, lists } : undefined;
  } catch {
    return undefined;
  }
}

function parsedInPieces(bytes: Buffer): Record<string, unknown> | undefined {
  const split = splitAtLists(bytes);
  if (!split) return undefined;
  try {
    return Object.assign(split.header, listsInPieces(bytes, split.at, split.lists));
  } catch {
    return undefined;
  }
}

/** The lists of bytes split by splitAtLists, the file list parsed ~64 KB of records at a time; throws when a piece does not parse. */
function listsInPieces(bytes: Buffer, at: number, lists: TwoLists): { files: unknown[]; directories: unknown } {
  const filesOpen = at + lists.filesOpen;
  const filesClose = at + lists.filesClose;
  const directoriesOpen = at + lists.directoriesOpen;
  const directoriesClose = at + lists.directoriesClose;
  const files: unknown[] = [];
  for (let start = filesOpen + 1; start < filesClose; ) {
    const found = start + LIST_PIECE_BYTES < filesClose ? bytes.indexOf(RECORD_BREAK, start + LIST_PIECE_BYTES) : -1;
    const end = found < 0 || found >= filesClose ? filesClose : found + 4;
    const piece: unknown[] = JSON.parse(`[${bytes.toString('utf8', start, end)}]`);
    for (const record of piece) files.push(record);
    start = end + 1;
  }
  const directories: unknown = JSON.parse(bytes.toString('utf8', directoriesOpen, directoriesClose + 1));
  return { files, directories };
}

/** The same records in the same order, each with the same keys and values (the values are strings and numbers). */
function sameRecords(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    // An unchanged file's record is the previous set's own object (reusedRecord): 20,000 records
    // compared key by key took ~20 ms at scale 1.
    if (a[i] === b[i]) continue;
    const x = a[i] as Record<string, unknown>;
    const y = b[i] as Record<string, unknown>;
    const keys = Object.keys(x);
    if (keys.length !== Object.keys(y).length) return false;
    for (const key of keys) if (typeof x[key] === 'object' || x[key] !== y[key]) return false;
  }
  return true;
}
/** Characters of a header read before the manifest is read whole instead (see readManifestHeaderFile). */
const HEADER_READ_LIMIT = 64 * 1024 * 1024;
/** Every key encodeManifest writes before the file list (basedOn only in incrementals). */
const HEADER_KEYS = ['format', 'formatVersion', 'archive', 'mode', 'createdAt', 'toolVersion', 'host', 'platform', 'chain', 'folders', 'totals', 'warnings', 'skipped'] as const;

function headerOf(manifest: FileStoreManifest): ManifestHeader {
  const { files: _files, directories: _directories, ...header } = manifest;
  return header;
}

/** The header in `text` when it parses, checks, and has every key this tool writes before the file list. */
function headerIfComplete(text: string, where: string): ManifestHeader | undefined {
  try {
    const header = headerOf(parseManifest(text, where));
    return HEADER_KEYS.every((key) => key in header) ? header : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A manifest file read only as far as its file list, and its header checked as a whole manifest
 * is: what retention needs of every set (its archive, kind, time and chain) in well under a
 * millisecond, where reading a whole 5.8 MB manifest took ~100 ms, and a backup directory holds
 * one per set (an hourly incremental kept 7 days: 168). A manifest not laid out as this tool
 * writes it (one edited by hand, say) is read whole. JSON escapes a line break inside a string, so
 * the file list's start cannot be mistaken for part of a name or a warning.
 */
export async function readManifestHeaderFile(manifestPath: string): Promise<ManifestHeader> {
  const handle = await openManifest(manifestPath);
  try {
    const decoder = new StringDecoder('utf8');
    const chunk = Buffer.allocUnsafe(64 * 1024);
    // The text read so far, in pieces: searching one growing string flattened it on every read,
    // so a header of 32 MiB (a long "skipped" list) took 10 s against 0.15 s for a whole read.
    const pieces: string[] = [];
    let length = 0;
    let tail = '';
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) return headerOf(parseManifest(pieces.join('') + decoder.end(), manifestPath));
      position += bytesRead;
      const piece = decoder.write(chunk.subarray(0, bytesRead));
      // Searched from the end of the previous piece, in case the start was cut between two reads.
      const atInWindow = (tail + piece).indexOf(FILE_LIST_START);
      pieces.push(piece);
      length += piece.length;
      if (atInWindow < 0) {
        // No header is this long (or the file never ends: a link to /dev/zero): read whole, which
        // fails as it always did rather than holding ever more text.
        if (length > HEADER_READ_LIMIT) return headerOf(await readManifestFile(manifestPath));
        tail = (tail + piece).slice(-(FILE_LIST_START.length - 1));
        continue;
      }
      const at = length - piece.length - tail.length + atInWindow;
      // Keys in another order (say, rewritten with sorted keys: "folders" after the file list, or
      // "mode" moved there): read whole, as listBackupSets would, so that a set restore can use is
      // never left out, nor taken for another kind.
      const header = headerIfComplete(`${pieces.join('').slice(0, at)}\n "files": [], "directories": []}`, manifestPath);
      return header ?? headerOf(await readManifestFile(manifestPath));
    }
  } finally {
    await handle.close();
  }
}

/** The manifest entry of an opened archive, checked like the one beside it. */
export async function readManifestEntry(archive: OpenedArchive): Promise<FileStoreManifest> {
  const entry = archive.entries.get(MANIFEST_ENTRY_NAME);
  if (!entry) throw new StepFailure(`${archive.path} has no ${MANIFEST_ENTRY_NAME}; it is not an octopus-dr file-store backup.`);
  if (entry.size > 1024 * 1024 * 1024) throw new StepFailure(`${archive.path}: its manifest is implausibly large.`);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of await archive.openEntry(entry)) chunks.push(chunk as Buffer);
  } catch (error) {
    const reason = damagedEntryReason(error);
    if (!reason) throw error;
    throw new StepFailure(
      `The backup is damaged: ${archive.path}: its manifest (${MANIFEST_ENTRY_NAME}) cannot be read: ${reason}. ` +
        'Restore an earlier backup set or the offsite copy of this one, and run the file-store backup again so that a sound set exists.',
      { cause: error },
    );
  }
  return parseManifestBytes(Buffer.concat(chunks), `${archive.path} (${MANIFEST_ENTRY_NAME})`);
}

/** The manifest inside an archive (its last entry). */
export async function readInternalManifest(archivePath: string): Promise<FileStoreManifest> {
  const archive = await openArchive(archivePath);
  try {
    return await readManifestEntry(archive);
  } finally {
    archive.close();
  }
}

/**
 * How the manifest beside an archive differs from the one inside it (empty when they are the
 * same). Both were written from one text, so any difference is an edit or damage.
 */
export function manifestDifferences(beside: FileStoreManifest, inside: FileStoreManifest): string[] {
  const differences: string[] = [];
  const key = (f: ManifestFile) => `${f.folder}/${f.path}`;
  const besideFiles = new Map(beside.files.map((f) => [key(f), f]));
  const insideFiles = new Map(inside.files.map((f) => [key(f), f]));
  for (const [name, f] of insideFiles) {
    const other = besideFiles.get(name);
    if (!other) differences.push(`${name} is missing from the manifest beside the archive`);
    else if (!isDeepStrictEqual(f, other)) {
      const fields = (Object.keys({ ...f, ...other }) as (keyof ManifestFile)[]).filter((k) => !isDeepStrictEqual(f[k], other[k]));
      differences.push(`${name}: ${fields.join(', ')} differ${fields.length === 1 ? 's' : ''}`);
    }
  }
  for (const name of besideFiles.keys()) if (!insideFiles.has(name)) differences.push(`${name} is only in the manifest beside the archive`);
  const { files: _a, ...besideRest } = beside;
  const { files: _b, ...insideRest } = inside;
  for (const field of new Set([...Object.keys(besideRest), ...Object.keys(insideRest)])) {
    if (!isDeepStrictEqual((besideRest as Record<string, unknown>)[field], (insideRest as Record<string, unknown>)[field])) differences.push(`${field} differs`);
  }
  return differences;
}

/**
 * The archive's comment: the SHA-256 of its manifest, so that the copy beside the archive can be
 * checked against the archive without reading its central directory (`unzip -z` shows it; it is
 * what `sha256sum` prints for the manifest beside the archive).
 */
const ARCHIVE_COMMENT = /^octopus-dr manifest sha256:([0-9a-f]{64})$/;

export function archiveCommentFor(manifestBytes: Buffer): string {
  return `octopus-dr manifest sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
}

/** Why a set cannot be built on, with what to do about it when that is not to repair or move away the whole set. */
export class UnusableSetError extends StepFailure {
  constructor(
    message: string,
    readonly advice?: string,
  ) {
    super(message);
  }
}

/** At most this many differences are named in a message; the rest are counted. */
const DIFFERENCES_NAMED = 3;

/** The first sentence of a message: the reason without the advice of the step that wrote it. */
function firstSentence(message: string): string {
  return message.split(/(?<=\.)\s+(?=[A-Z])/)[0].replace(/\.$/, '');
}

/** An error of this program itself: never a reason about a set, so never reported as one. */
export function isInternalError(error: unknown): error is Error {
  return error instanceof TypeError || error instanceof ReferenceError;
}

/**
 * Why a set's archive cannot be read, as a reason to pass the set over; or, for what is not the
 * set's fault (the backup directory's share gone, this worker out of open files, an internal
 * error), the error the backup fails with.
 */
function archiveUnreadable(archivePath: string, error: unknown): Error {
  if (isInternalError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = errnoOf(error);
  const fault = backupDirectoryFault(message, path.dirname(archivePath), code, error);
  if (fault) return fault;
  return code === 'EACCES' || code === 'EPERM'
    ? new UnusableSetError(`its archive cannot be read: ${message}`, `Give the account ${accountName()} read access to ${path.basename(archivePath)}.`)
    : new UnusableSetError(`its archive cannot be read: ${firstSentence(message)}`);
}

/**
 * Throws an UnusableSetError unless the manifest beside a set's archive says what the one inside it
 * says: an incremental carries the records of the set it builds on forward, so an edited or
 * damaged copy would make a new set that exits 0 and does not restore. Returns the set with the
 * bytes its manifest was parsed from (read again when they were not kept, so that the bytes
 * checked are the bytes parsed). The archive's comment records the SHA-256 of its
 * manifest: the same bytes need no more (~1 ms at scale 0.3), and their lists are taken as this
 * tool wrote them, so they need not even be parsed yet. Other bytes (line endings changed by
 * a copy tool, a damaged comment) or no comment (an archive written before there was one) are
 * compared record by record with the manifest inside the archive, as a restore compares them
 * (the whole central directory read: tens of ms). A set read through the manifest inside its
 * archive needs no check.
 */
export async function checkManifestBesideArchive(listed: BackupSet): Promise<BackupSet> {
  if (listed.manifestPath === listed.archivePath) return listed;
  const set = listed.manifestBytes ? listed : await readWholeSet(listed, true);
  let inside: FileStoreManifest;
  try {
    const recorded = ARCHIVE_COMMENT.exec((await readArchiveComment(set.archivePath)).toString('latin1'));
    if (recorded && createHash('sha256').update(set.manifestBytes!).digest('hex') === recorded[1]) return set;
    inside = await readInternalManifest(set.archivePath);
  } catch (error) {
    throw archiveUnreadable(set.archivePath, error);
  }
  const differences = manifestDifferences(set.manifest, inside);
  if (differences.length === 0) return set;
  const named = differences.slice(0, DIFFERENCES_NAMED).join('; ') + (differences.length > DIFFERENCES_NAMED ? `; and ${differences.length - DIFFERENCES_NAMED} more` : '');
  const manifestName = path.basename(set.manifestPath);
  throw new UnusableSetError(
    `the manifest beside its archive is not the copy inside it, edited or damaged since the backup: ${named}`,
    `Put back ${manifestName} as it was written, from the copy inside the archive (its entry ${MANIFEST_ENTRY_NAME}, whose SHA-256 the archive's comment records; ` +
      `for example: unzip -p ${path.basename(set.archivePath)} ${MANIFEST_ENTRY_NAME} > ${manifestName}). As it is, the set cannot be restored.`,
  );
}

/** The UTC stamp in a set's archive name (sorts as time), for telling which set is newest without reading it. */
export function stampOf(archiveName: string): string {
  return /^octopus-file-store-(\d{8}T\d{6}Z)/.exec(archiveName)?.[1] ?? '';
}

/** A backup set passed over, and why. */
export interface PassedOverSet {
  archive: string;
  reason: string;
  /** What to do, when it is not to repair or move away the whole set. */
  advice?: string;
}

/**
 * Of `setsNewestFirst`, the first whose chain's archives are all in its directory, and the newer
 * ones passed over before it, each with the archives it is missing.
 */
export async function newestWithWholeChain(setsNewestFirst: readonly BackupSet[]): Promise<{ set: BackupSet | undefined; incomplete: PassedOverSet[] }> {
  const incomplete: PassedOverSet[] = [];
  for (const set of setsNewestFirst) {
    const present = await Promise.all(set.manifest.chain.map((a) => fs.access(path.join(set.directory, a)).then(() => true, () => false)));
    const missing = set.manifest.chain.filter((_, i) => !present[i]);
    if (missing.length === 0) return { set, incomplete };
    incomplete.push({ archive: set.manifest.archive, reason: `its chain needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} missing` });
  }
  return { set: undefined, incomplete };
}

/**
 * The sets in a directory, oldest first by the time in their names (oldestByName): each archive named as this tool names them, read through
 * the manifest beside it or, when that is missing (an archive copied on its own, or a backup
 * stopped between the two), the manifest inside it. Sets that cannot be read are listed in
 * `ignored` (why) and `ignoredArchives` (which), never used.
 */
export async function listBackupSets(directory: string): Promise<{ sets: BackupSet[]; ignored: string[]; ignoredArchives: string[] }> {
  const names = await fs.readdir(directory);
  const present = new Set(names);
  const sets: BackupSet[] = [];
  const ignored: string[] = [];
  const ignoredArchives: string[] = [];
  for (const archiveName of setArchiveNames(names)) {
    try {
      sets.push(await readBackupSet(directory, archiveName, present));
    } catch (error) {
      ignored.push(`${path.basename(setManifestPath(directory, archiveName, present))}: ${(error as Error).message}`);
      ignoredArchives.push(archiveName);
    }
  }
  sets.sort(oldestByName);
  return { sets, ignored, ignoredArchives };
}

/** A set named as this tool names its sets whose manifest could not be read as far as its header, and why. */
export interface UnreadableSetHeader {
  archivePath: string;
  manifestPath: string;
  reason: string;
  /** What is wrong, for what to advise: the manifest beside the archive, the archive (its manifest is inside), no archive beside the manifest, or not a file at all. */
  kind: 'manifest' | 'archive' | 'no-archive' | 'not-a-file';
}

/**
 * The sets in a directory as listBackupSets finds them, each read only as far as its header
 * (readManifestHeaderFile) when its manifest is beside it. `unreadable`: the sets named as ours
 * whose header could not be read, or names another archive (damaged, edited, a read that failed):
 * which sets such a set needs is unknown, so retention keeps it and every older set.
 */
export async function listBackupSetHeaders(directory: string): Promise<{ sets: BackupSetHeader[]; unreadable: UnreadableSetHeader[] }> {
  const names = await fs.readdir(directory);
  const present = new Set(names);
  const sets: BackupSetHeader[] = [];
  const unreadable: UnreadableSetHeader[] = [];
  for (const archiveName of setArchiveNames(names)) {
    const archivePath = path.join(directory, archiveName);
    const manifestPath = setManifestPath(directory, archiveName, present);
    const kind = manifestPath === archivePath ? 'archive' : present.has(archiveName) ? 'manifest' : 'no-archive';
    try {
      const manifest = manifestPath === archivePath ? headerOf(await readInternalManifest(archivePath)) : await readManifestHeaderFile(manifestPath);
      if (manifest.archive === archiveName) sets.push({ directory, manifestPath, archivePath, manifest });
      else unreadable.push({ archivePath, manifestPath, kind, reason: `it is the manifest of another archive (${manifest.archive})` });
    } catch (error) {
      // Gone since the listing (moved or deleted meanwhile): nothing left to keep.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !(await anyExists(manifestPath, archivePath))) continue;
      const reason = error instanceof Error ? error.message : String(error);
      unreadable.push({ archivePath, manifestPath, kind: error instanceof NotARegularManifest ? 'not-a-file' : kind, reason });
    }
  }
  sets.sort(oldestByName);
  return { sets, unreadable };
}

async function anyExists(...paths: string[]): Promise<boolean> {
  for (const p of paths) if (await fs.lstat(p).then(() => true, () => false)) return true;
  return false;
}

/** A set found by its header, read whole (manifest checked record by record; its bytes kept if asked); throws when it cannot be read. */
export async function readWholeSet(set: BackupSetHeader, keepBytes = false): Promise<BackupSet> {
  const present = new Set([path.basename(set.manifestPath)]);
  return readBackupSet(set.directory, path.basename(set.archivePath), present, keepBytes);
}

/**
 * The order of sets by the time in their names, then as oldestFirst: the order to find the newest
 * set in, since a creation time edited to look older must not hide a newer set.
 */
export function oldestByName(a: { manifest: Pick<ManifestHeader, 'createdAt' | 'archive'> }, b: { manifest: Pick<ManifestHeader, 'createdAt' | 'archive'> }): number {
  return stampOf(a.manifest.archive).localeCompare(stampOf(b.manifest.archive)) || oldestFirst(a, b);
}

/**
 * When a set was made, as retention ages it: the later of the time in its name and its creation
 * time, so that a manifest edited (or damaged) to look older does not make its set old enough to delete.
 */
export function madeAt(manifest: Pick<ManifestHeader, 'createdAt' | 'archive'>): number {
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stampOf(manifest.archive));
  const named = stamp ? Date.UTC(+stamp[1], +stamp[2] - 1, +stamp[3], +stamp[4], +stamp[5], +stamp[6]) : -Infinity;
  return Math.max(named, Date.parse(manifest.createdAt));
}

/** The order of sets: by creation time, then name. */
export function oldestFirst(a: { manifest: Pick<ManifestHeader, 'createdAt' | 'archive'> }, b: { manifest: Pick<ManifestHeader, 'createdAt' | 'archive'> }): number {
  return a.manifest.createdAt.localeCompare(b.manifest.createdAt) || a.manifest.archive.localeCompare(b.manifest.archive);
}

/** The archive of every set in a folder's listing: each archive named as this tool names them, or the manifest beside one that is missing. */
export function setArchiveNames(names: readonly string[]): Set<string> {
  const archiveNames = new Set<string>();
  for (const name of names) {
    if (isOwnArchiveName(name)) archiveNames.add(name);
    else if (name.endsWith('.manifest.json') && isOwnArchiveName(name.replace(/\.manifest\.json$/, '.zip'))) archiveNames.add(name.replace(/\.manifest\.json$/, '.zip'));
  }
  return archiveNames;
}

function setManifestPath(directory: string, archiveName: string, present: ReadonlySet<string>): string {
  const sidecar = manifestNameFor(archiveName);
  return path.join(directory, present.has(sidecar) ? sidecar : archiveName);
}

/**
 * One set, read through the manifest beside its archive or, when that is missing (an archive
 * copied on its own, or a backup stopped between the two), the manifest inside it. Throws when it
 * cannot be read. `keepBytes`: keep the manifest file's bytes on the set (an incremental may reuse
 * its file list); its lists are then parsed when first read (parseManifestBytesListsOnDemand).
 */
export async function readBackupSet(directory: string, archiveName: string, present: ReadonlySet<string>, keepBytes = false): Promise<BackupSet> {
  const archivePath = path.join(directory, archiveName);
  const manifestPath = setManifestPath(directory, archiveName, present);
  const read =
    manifestPath === archivePath
      ? { manifest: await readInternalManifest(archivePath), bytes: undefined }
      : keepBytes
        ? await readManifestFileWithBytes(manifestPath)
        : { manifest: await readManifestFile(manifestPath), bytes: undefined };
  const { manifest } = read;
  if (manifest.archive !== archiveName) throw new StepFailure(`${manifestPath} describes ${manifest.archive}`);
  return { directory, manifestPath, archivePath, manifest, ...(read.bytes ? { manifestBytes: read.bytes } : {}) };
}
