// Backs up file-store folders into one ZIP per set (full, or incremental against the newest
// set in the same directory), with a manifest inside and beside it. The archive is written
// under a temporary name and renamed only when complete, so an interrupted backup leaves
// nothing that looks like a backup. The phases: scan, plan, write, manifest, read back.
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, fstatSync, openSync, promises as fs, readSync, type Stats } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { backupFileStore as backupTemplate } from '../../../templates/backup-file-store';
import { fileStoreFolders, fileStoreHomeDirectory } from '../../../templates/parameters';
import type { EngineContext, EngineLog } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { describeFileError } from '../../runtime/failure';
import { stageFileAtomically, type StagedFile } from '../../runtime/files';
import { formatBytes } from '../../runtime/format';
import { cleanLeftovers } from '../../runtime/leftovers';
import { changeSincePreviousSet, modifiedAroundPreviousSet, recordsInScanOrder, type ChangeVerdict } from './change';
import { backupDirectoryFault, backupFault, FileStoreError, withErrorCode } from './errors';
import type { ResolvedFolder } from './folders';
import {
  archiveCommentFor,
  archiveNameFor,
  checkManifestBesideArchive,
  encodeManifestAfter,
  fileListBytesOf,
  fileListNamesArchive,
  encodeManifestOfUnchangedStore,
  isInternalError,
  isPartialName,
  listBackupSets,
  newestWithWholeChain,
  manifestDirectoryRecord,
  manifestFileRecord,
  manifestNameFor,
  oldestByName,
  oldestFirst,
  type PassedOverSet,
  readBackupSet,
  scanDigestOf,
  setArchiveNames,
  stampOf,
  utcStamp,
  MANIFEST_ENTRY_NAME,
  MANIFEST_FORMAT,
  type BackupMode,
  type BackupSet,
  type FileStoreManifest,
  type ManifestFile,
  type ManifestHeader,
  parseManifestBytes,
  UnusableSetError,
  withListsOnDemand,
} from './manifest';
import { describeStore, storeRelation, type StoreHeader } from './origin';
import { leadsElsewhere, NOW_THROUGH_A_LINK, openedPath, OpenedPathCheck } from './opened-path';
import { progressReporter, type FileStoreProgress } from './progress';
import { listFolderEarly, scanFolder, type ScannedDirectory, type ScannedFile, type ScanProblem, type ScanProgress, type ScanResult } from './scan';
import { readEntrySizes } from './zip-reader';
import {
  BATCH_BYTES,
  BATCH_FILES,
  BUFFERED_FILE_LIMIT,
  NOT_A_FILE,
  OPEN_SCANNED_FILE,
  openFailure,
  smallFileWorkerCount,
  unreadableAdvice,
  workersCanRun,
  SmallFileWorkers,
  WorkerUnavailable,
  type PreparedFile,
} from './small-file-workers';
import { compressionLevelFor, deflateAhead, type DeflatedAhead, StreamingZipWriter } from './zip-writer';
import { chooseHeapSettingsOnce, optimizingCompilerOffForFullBackup } from './heap';

const READ_AHEAD_FILES = 16;
/** ...and at most this many bytes of them. */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;
/** Bytes of small files sent to workers and not yet written into the archive. */
const PREPARE_AHEAD_BYTES = 12 * 1024 * 1024;
/**
 * ...and batches: each comes back in a buffer of BATCH_BUFFER_BYTES however small its files, so
 * tiny or empty files (whose bytes never reach PREPARE_AHEAD_BYTES) sent every batch at once,
 * each in a fresh 4 MiB buffer (20,000 empty files: 1,250 of them).
 */
const PREPARE_AHEAD_BATCHES = 8;
/** Below these, starting worker threads costs more than it saves. */
const WORKERS_FROM_FILES = 64;
const WORKERS_FROM_BYTES = 16 * 1024 * 1024;

const labels = {
  homeDirectory: fileStoreHomeDirectory.label,
  folders: fileStoreFolders.label,
  include: backupTemplate.params.include.label,
  skipUnreadable: backupTemplate.params.skipUnreadable.label,
  allowEmpty: backupTemplate.params.allowEmpty.label,
};

export interface BackupOptions {
  folders: readonly ResolvedFolder[];
  backupDirectory: string;
  mode: BackupMode;
  skipUnreadable: boolean;
  /** A backup of 0 files succeeds only when asked for (each folder must exist either way). */
  allowEmpty?: boolean;
  toolVersion: string;
  /** Byte and file counts as they change; by default they go to the context's progress bar. */
  onProgress?: (progress: FileStoreProgress) => void;
  now?: () => Date;
  /**
   * Worker threads for the small files (0: the main thread reads them). By default one per core
   * (OCTOPUSDR_FILE_STORE_WORKERS overrides it), and none for a backup with few small files.
   */
  smallFileWorkers?: number;
}

export interface BackupResult {
  archivePath: string;
  manifestPath: string;
  manifest: FileStoreManifest;
  /** Full paths of every archive the set needs, oldest first. */
  chainPaths: string[];
  durationMs: number;
  warnings: string[];
}

interface PlannedFile {
  scanned: ScannedFile;
  /** Set when an earlier archive already holds these bytes. */
  reuse?: ManifestFile;
}

type ReadOutcome =
  | { kind: 'read'; data: Buffer; sha256: string; mtimeMs: number; mode: number; changed: boolean }
  | { kind: 'vanished' }
  | { kind: 'unreadable'; message: string };

/** Warnings go to the log as they happen and into the manifest and result at the end. */
class Warnings {
  readonly list: string[] = [];
  readonly skipped: FileStoreManifest['skipped'] = [];
  constructor(private readonly log: EngineLog) {}
  warn(message: string): void {
    this.list.push(message);
    this.log.warn(message);
  }
  skip(file: { folder: ScannedFile['folder']; path: string }, reason: string): void {
    this.skipped.push({ folder: file.folder, path: file.path, reason });
  }
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'ERROR';
}

/**
 * Reads a small file whole; a file that changes while read is read once more. Synchronous on
 * purpose: each thread-pool hop costs ~0.1 ms of main-thread time (measured), more than the
 * syscalls of a small cached file, and five hops per file made 1,000 task logs take 3.6 s.
 */
function readWholeFile(file: ScannedFile, paths: OpenedPathCheck, retry = true): ReadOutcome {
  let fd: number;
  try {
    fd = openSync(file.localPath, OPEN_SCANNED_FILE);
  } catch (error) {
    return openFailure(errnoOf(error), (error as Error).message);
  }
  try {
    if (leadsElsewhere(openedPath(fd), paths.expected(file))) return { kind: 'unreadable', message: NOW_THROUGH_A_LINK };
    const before = fstatSync(fd);
    // A folder too: the scan saw a file here (reading one would fail as "EISDIR", read-access advice).
    if (!before.isFile()) return { kind: 'unreadable', message: NOT_A_FILE };
    // One byte more than expected tells us the file grew while we read it.
    const buffer = Buffer.allocUnsafe(before.size + 1);
    let length = 0;
    for (;;) {
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, length);
      length += bytesRead;
      // A regular file returns what was asked for unless it ends first.
      if (bytesRead === 0 || length === buffer.length || length >= before.size) break;
    }
    const after = fstatSync(fd);
    const changed = length !== before.size || after.size !== before.size || after.mtimeMs !== before.mtimeMs;
    if (changed && retry) {
      closeSync(fd);
      fd = -1;
      return readWholeFile(file, paths, false);
    }
    const data = buffer.subarray(0, Math.min(length, before.size));
    return { kind: 'read', data, sha256: createHash('sha256').update(data).digest('hex'), mtimeMs: before.mtimeMs, mode: before.mode & 0o7777, changed };
  } catch (error) {
    const code = errnoOf(error);
    const message = (error as Error).message;
    return { kind: 'unreadable', message: withErrorCode(code, message) };
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

async function hashFile(file: ScannedFile, paths: OpenedPathCheck, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const size = file.size;
  // Not through a pipe or link swapped in since the scan: such a file is then stored, and refused there.
  const handle = await fs.open(file.localPath, OPEN_SCANNED_FILE);
  try {
    if (leadsElsewhere(openedPath(handle.fd), paths.expected(file))) throw new Error(NOW_THROUGH_A_LINK);
    // Nor a device (one like /dev/zero never ends), and never past the scanned size (one byte
    // more tells that it changed): a hash that cannot match sends the file to be stored.
    if (!(await handle.stat()).isFile()) throw new Error(NOT_A_FILE);
    for await (const chunk of handle.createReadStream({ start: 0, end: size, highWaterMark: 1 << 20, autoClose: false })) {
      signal.throwIfAborted();
      hash.update(chunk as Buffer);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

function checkReadable(files: ScannedFile[]): ScanProblem[] {
  const problems: ScanProblem[] = [];
  for (const f of files) {
    try {
      accessSync(f.localPath, fsConstants.R_OK);
    } catch (error) {
      const code = errnoOf(error);
      const message = withErrorCode(code, (error as Error).message);
      // At the first one: a share that stopped answering may take its time-out on every file.
      const fault = backupFault(message, `checking that ${f.folder}/${f.path} can be read`, code);
      if (fault) throw fault;
      problems.push({ folder: f.folder, path: f.path, code, kind: code === 'ENOENT' ? 'vanished' : 'unreadable', message });
    }
  }
  return problems;
}

async function pickArchiveName(directory: string, now: Date, mode: BackupMode): Promise<string> {
  // A random part in every name; one that is taken anyway is never reused.
  for (let attempt = 1; attempt < 100; attempt++) {
    const name = archiveNameFor(now, mode);
    // A partial of the same name may be a killed run's (named and aged out, never reused) or a live one's.
    const candidates = [name, manifestNameFor(name), `.${name}.partial`].map((n) => fs.access(path.join(directory, n)));
    const taken = await Promise.all(candidates.map((p) => p.then(() => true, () => false)));
    if (!taken.includes(true)) return name;
  }
  throw new FileStoreError(`Too many backups named for ${now.toISOString()} in ${directory}.`);
}

/** Every missing folder, on one line with the fix; an intentionally empty folder must still exist. */
function missingFoldersMessage(missing: readonly ResolvedFolder[]): string {
  const names = missing.map((f) => `${f.name} folder ${f.path}`).join(', ');
  const fromHome = missing.some((f) => f.origin === 'home');
  return (
    `${names} ${missing.length === 1 ? 'does' : 'do'} not exist, so nothing was backed up. Correct ` +
    `${fromHome ? `"${labels.homeDirectory}" or ` : ''}"${labels.folders}", create a folder this server really keeps empty ` +
    `(an empty folder is backed up as empty), or leave ${missing.map((f) => f.name).join(', ')} out of "${labels.include}".`
  );
}

/** A scan problem that is no file's own (see backupFault): the backup fails with it. */
function scanFault(problem: ScanProblem): FileStoreError | undefined {
  return backupFault(problem.message, `scanning ${problem.folder}${problem.path ? `/${problem.path}` : ''}`, problem.code);
}

function describe(problem: ScanProblem): string {
  return `${problem.folder}/${problem.path}${problem.path ? ' ' : ''}(${problem.message})`;
}

/** A backup directory inside a folder being backed up would archive its own archives. */
function refuseBackupDirectoryInsideStore(options: BackupOptions): void {
  for (const folder of options.folders) {
    const relative = path.relative(path.resolve(folder.path), path.resolve(options.backupDirectory));
    if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
      throw new FileStoreError(`The backup directory ${options.backupDirectory} is inside the ${folder.name} folder ${folder.path}; choose a backup directory outside the file store.`, { exitCode: 2 });
    }
  }
}

/** A scanned file with what the previous set holds of it, judged once. */
interface JudgedFile {
  scanned: ScannedFile;
  previous?: ManifestFile;
  verdict: ChangeVerdict;
}

interface ScanOutcome {
  /** In scan order; in an unchanged store (`unchanged`), each judged unchanged with no record looked up. */
  files: JudgedFile[];
  directories: ScannedDirectory[];
  folderSummaries: FileStoreManifest['folders'];
  /** The device each scanned folder was on, to tell at the end that it is still mounted there. */
  roots: ScannedRoot[];
  /** The previous set's lists record exactly what the scan found (PreviousSet.recordsExactly): they are the new set's. */
  unchanged: boolean;
}

interface ScannedRoot {
  folder: ResolvedFolder;
  dev: number;
}

/** A scan that takes more than a moment says how far it has got (percent 0: the total is not known yet). */
export function scanProgress(context: Pick<EngineContext, 'progress'>, folder: string, now: () => number = Date.now): ScanProgress {
  let lastAt = now();
  return (entriesSeen) => {
    const at = now();
    if (at - lastAt < 1000) return;
    lastAt = at;
    context.progress(0, `Scanning ${folder}: ${entriesSeen} files and folders so far`);
  };
}

/** Each folder as the scan found it, with its own stat. */
interface ScannedFolder {
  folder: ResolvedFolder;
  rootStat: Stats;
  scanned: ScanResult;
}

/**
 * 1a. Scan: every folder must exist. A store that stopped answering (or a worker out of resources)
 * fails the scan at its first sign, skipped or not.
 */
async function scanFolders(options: BackupOptions, context: EngineContext, listings?: ReadonlyMap<ResolvedFolder, Promise<string[]>>): Promise<ScannedFolder[]> {
  const { signal } = context;
  const missing: ResolvedFolder[] = [];
  const scannedFolders: ScannedFolder[] = [];
  for (const folder of options.folders) {
    signal.throwIfAborted();
    let rootStat;
    try {
      rootStat = await fs.stat(folder.path);
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT') {
        missing.push(folder);
        continue;
      }
      const reason = withErrorCode(code, (error as Error).message);
      throw (
        backupFault(reason, `reading the ${folder.name} folder ${folder.path}`, code) ??
        new FileStoreError(`${folder.name} folder ${folder.path} cannot be read (${reason}). ${unreadableAdvice(reason)}.`)
      );
    }
    if (!rootStat.isDirectory()) throw new FileStoreError(`${folder.name} path ${folder.path} is not a folder.`);
    const scanned = await scanFolder(folder.name, folder.path, signal, scanProgress(context, folder.name), listings?.get(folder), scanFault);
    scannedFolders.push({ folder, rootStat, scanned });
  }
  if (missing.length > 0) throw new FileStoreError(missingFoldersMessage(missing));
  return scannedFolders;
}

/**
 * 1b. Judge: each file against the previous set, at once when its lists record exactly what the
 * scan found (PreviousSet.recordsExactly). Unreadable files fail the backup unless skipping was
 * asked for. A file the previous set already holds unchanged is not read, so it is not checked
 * either (an access() per file was ~10 % of an unchanged incremental).
 */
function judgeScan(options: BackupOptions, context: EngineContext, warnings: Warnings, scannedFolders: readonly ScannedFolder[], previous: PreviousSet | undefined): ScanOutcome {
  const files: JudgedFile[] = [];
  const directories: ScannedDirectory[] = [];
  const problems: ScanProblem[] = [];
  const folderSummaries: FileStoreManifest['folders'] = [];
  // Loops, not push(...list): spread arguments overflow the stack past ~120,000 (a TaskLogs
  // folder of 200,000 logs failed with "Maximum call stack size exceeded").
  for (const { scanned } of scannedFolders) for (const directory of scanned.directories) directories.push(directory);
  const unchanged = previous?.recordsExactly(scannedFolders.map((f) => f.scanned.files), directories) ?? false;
  for (const { folder, rootStat, scanned } of scannedFolders) {
    const judged = scanned.files.map((file) => (unchanged ? { scanned: file, verdict: 'unchanged' as const } : previous ? previous.judge(file) : { scanned: file, verdict: 'new' as const }));
    const unreadable = checkReadable(judged.filter((f) => f.verdict !== 'unchanged').map((f) => f.scanned));
    const unreadableKeys = new Set(unreadable.map((p) => p.path));
    const kept = unreadable.length === 0 ? judged : judged.filter((f) => !unreadableKeys.has(f.scanned.path));
    for (const file of kept) files.push(file);
    for (const found of [scanned.problems, unreadable]) for (const problem of found) problems.push(problem);
    folderSummaries.push({
      name: folder.name,
      source: folder.path,
      files: kept.length,
      bytes: kept.reduce((sum, f) => sum + f.scanned.size, 0),
      mtimeMs: rootStat.mtimeMs,
      mode: rootStat.mode & 0o7777,
    });
    context.log.verbose(`${folder.name}: ${kept.length} files, ${scanned.directories.length} folders in ${folder.path}`);
  }
  const unreadable = problems.filter((p) => p.kind === 'unreadable');
  if (unreadable.length > 0) {
    const list = unreadable.map((p) => `  - ${describe(p)}`).join('\n');
    if (!options.skipUnreadable) {
      throw new FileStoreError(
        `${unreadable.length} file(s) or folder(s) cannot be read:\n${list}\n${[...new Set(unreadable.map((p) => unreadableAdvice(p.message)))].join('; ')}, or set "${labels.skipUnreadable}" to back up the rest.`,
      );
    }
    warnings.warn(`${unreadable.length} unreadable file(s) or folder(s) skipped:\n${list}`);
  }
  for (const p of problems) {
    if (p.kind !== 'unreadable') warnings.warn(`${p.folder}/${p.path} ${p.kind === 'vanished' ? 'vanished during the backup' : p.message}; not backed up.`);
    warnings.skip(p, p.message);
  }
  if (files.length === 0 && !options.allowEmpty) {
    throw new FileStoreError(
      `Nothing to back up: ${options.folders.map((f) => `${f.name} (${f.path})`).join(', ')} hold no files we can read. An Octopus Server's file store is ` +
        `not empty, so this is most likely the wrong "${labels.homeDirectory}" or "${labels.folders}" path: correct it. ` +
        `If these folders really are empty (a new server), check "${labels.allowEmpty}". Nothing was written.`,
    );
  }
  return { files, directories, folderSummaries, roots: scannedFolders.map(({ folder, rootStat }) => ({ folder, dev: rootStat.dev })), unchanged };
}

/**
 * Each folder the scan read must still be on the device it was on once its files are written. A
 * share unmounted during the backup leaves its mount point (another device) or no folder at all,
 * and its files look deleted: they were "vanished" warnings and the set was kept as if complete.
 * The device only, not the inode: a CIFS mount with noserverino makes up inode numbers, which can
 * change when the folder's inode leaves the cache during a long backup.
 */
async function refuseChangedRoots(roots: readonly ScannedRoot[]): Promise<void> {
  for (const { folder, dev } of roots) {
    let now: { dev: number } | undefined;
    let reason: string;
    try {
      now = await fs.stat(folder.path);
      reason = `it is now on device ${now.dev}, it was on device ${dev}`;
    } catch (error) {
      const code = errnoOf(error);
      const message = withErrorCode(code, (error as Error).message);
      const fault = backupFault(message, `checking the ${folder.name} folder ${folder.path} after writing its files`, code);
      if (fault) throw fault;
      reason = message;
    }
    if (now && now.dev === dev) continue;
    throw new FileStoreError(
      `The ${folder.name} folder ${folder.path} is no longer where the backup scanned it (${reason}): the disk or share holding it was unmounted or remounted while the backup ran, ` +
        'so files that look deleted may only be out of reach. Nothing was kept: check that the disk or share holding it stays mounted, then run the backup again.',
    );
  }
}

interface BackupPlan {
  mode: BackupMode;
  previous?: BackupSet;
  /**
   * Every scanned file, in scan order, with what an earlier archive already holds; none in an
   * unchanged store (ScanOutcome.unchanged), whose new set has the previous set's lists as they are.
   */
  planned: PlannedFile[];
  toStore: PlannedFile[];
  bytesTotal: number;
}

/**
 * The newest set whose archives are all present: what an incremental builds on, with the newer
 * sets passed over (an unreadable manifest, a chain with archives missing). Manifests are
 * read newest first by the time in their names, until a set is usable, rather than every set's
 * (each set's 1.75 MB manifest cost ~35 ms of CPU at scale 0.3, measured with ten sets).
 * Sets of the same second are read together and ordered as listBackupSets orders them. A set
 * whose creation time is not the time in its name (an edited manifest) makes the search read
 * every set, as before.
 */
async function newestCompleteSet(directory: string, origin: StoreHeader): Promise<{ set: BackupSet | undefined; passedOver: PassedOverSet[]; otherStores: BackupSet[] }> {
  const names = await fs.readdir(directory);
  const present = new Set(names);
  const byStamp = new Map<string, string[]>();
  for (const archive of setArchiveNames(names)) {
    const stamp = stampOf(archive);
    const same = byStamp.get(stamp);
    if (same) same.push(archive);
    else byStamp.set(stamp, [archive]);
  }
  const passedOver: PassedOverSet[] = [];
  const otherStores: BackupSet[] = [];
  for (const stamp of [...byStamp.keys()].sort().reverse()) {
    const sets: BackupSet[] = [];
    for (const archive of byStamp.get(stamp)!) {
      let set: BackupSet;
      try {
        set = await readBackupSet(directory, archive, present, true);
      } catch (error) {
        passedOver.push(passedOverFor(archive, directory, error));
        continue;
      }
      if (utcStamp(new Date(set.manifest.createdAt)) !== stamp) return newestCompleteOfAll(directory, origin);
      // Another server's set (or one that does not say whose it is) is never built on: its records are another store's files.
      if (storeRelation(set.manifest, origin) !== 'same') otherStores.push(set);
      else sets.push(set);
    }
    const { set, passedOver: unusable } = await newestUsable(sets.sort(oldestFirst).reverse());
    passedOver.push(...unusable);
    if (set) return { set, passedOver, otherStores };
  }
  return { set: undefined, passedOver, otherStores };
}

/**
 * Of `setsNewestFirst`, the first whose chain's archives are all there and whose manifest beside
 * the archive says what the one inside it says (checkManifestBesideArchive), and those passed over
 * before it. The other sets of the chosen one's second are checked too: one whose creation time
 * was edited to look older is said, not passed over in silence.
 */
async function newestUsable(setsNewestFirst: readonly BackupSet[]): Promise<{ set: BackupSet | undefined; passedOver: PassedOverSet[] }> {
  const passedOver: PassedOverSet[] = [];
  let candidates = setsNewestFirst;
  for (;;) {
    const { set: whole, incomplete } = await newestWithWholeChain(candidates);
    passedOver.push(...incomplete);
    if (!whole) return { set: undefined, passedOver };
    candidates = candidates.slice(candidates.indexOf(whole) + 1);
    const checked = await checkedSet(whole);
    if ('reason' in checked) {
      passedOver.push(checked);
      continue;
    }
    const stamp = stampOf(whole.manifest.archive);
    for (const other of candidates.filter((c) => stampOf(c.manifest.archive) === stamp)) {
      const result = await checkedSet(other);
      if ('reason' in result) passedOver.push(result);
    }
    return { set: checked, passedOver };
  }
}

/** The set as checkManifestBesideArchive returns it, or why it is passed over. */
async function checkedSet(set: BackupSet): Promise<BackupSet | PassedOverSet> {
  try {
    return await checkManifestBesideArchive(set);
  } catch (error) {
    return passedOverFor(set.manifest.archive, set.directory, error);
  }
}

/**
 * A set that cannot be read or checked, passed over with why; but what is not the set's fault
 * (the backup directory's share gone, this worker out of open files, an internal error) fails
 * the backup instead of turning a sound set into a warning.
 */
function passedOverFor(archive: string, directory: string, error: unknown): PassedOverSet {
  if (error instanceof FileStoreError || isInternalError(error)) throw error;
  const message = error instanceof Error ? error.message : String(error);
  const fault = backupDirectoryFault(message, directory, errnoOf(error), error);
  if (fault) throw fault;
  return { archive, reason: message, ...(error instanceof UnusableSetError && error.advice ? { advice: error.advice } : {}) };
}

/** The newest complete set among all of them, each manifest read (listed by the time in their names: see oldestByName). */
async function newestCompleteOfAll(directory: string, origin: StoreHeader): Promise<{ set: BackupSet | undefined; passedOver: PassedOverSet[]; otherStores: BackupSet[] }> {
  const { sets: all, ignored, ignoredArchives } = await listBackupSets(directory);
  const otherStores = all.filter((s) => storeRelation(s.manifest, origin) !== 'same');
  const sets = all.filter((s) => !otherStores.includes(s));
  const { set: chosen, passedOver } = await newestUsable(sets.reverse());
  const since = chosen ? stampOf(chosen.manifest.archive) : '';
  ignoredArchives.forEach((archive, i) => {
    if (stampOf(archive) >= since) passedOver.push({ archive, reason: ignored[i] });
  });
  return { set: chosen, passedOver, otherStores: otherStores.filter((s) => stampOf(s.manifest.archive) >= since) };
}

/** The set an incremental builds on, and what it holds. */
interface PreviousSet {
  set: BackupSet;
  /** Each scanned file, in scan order, with its record in the set and whether it changed since. */
  judge(file: ScannedFile): JudgedFile;
  /**
   * Whether the set's lists record exactly these files (each folder's, in scan order) and folders,
   * none modified around the set's time: then every record is the new set's as it is, and the
   * lists need not be read at all (the set's scanDigest tells, and its bytes are reused).
   */
  recordsExactly(files: readonly (readonly ScannedFile[])[], directories: readonly ScannedDirectory[]): boolean;
}

/** Found while the store is scanned; the judging waits for it, so that files the previous set already holds unchanged need not be checked. */
async function findPreviousSet(options: BackupOptions): Promise<{ previous: PreviousSet | undefined; warnings: string[] }> {
  if (options.mode !== 'Incremental') return { previous: undefined, warnings: [] };
  const origin: StoreHeader = { host: os.hostname(), folders: options.folders.map((f) => ({ name: f.name, source: f.path, files: 0, bytes: 0 })) };
  const { set, passedOver, otherStores } = await newestCompleteSet(options.backupDirectory, origin).catch((error: unknown) => {
    // Not there yet: created below, and nothing to build on.
    if (errnoOf(error) === 'ENOENT') return { set: undefined, passedOver: [], otherStores: [] };
    throw error;
  });
  // Nothing is lost by building on an older set (every change since it is stored), but a newer
  // set that cannot be used is a backup that will not restore: said, not passed over in silence.
  // Returned, not logged: the backup says them once its scan has succeeded (a failed scan's error
  // is the last line, not a warning about what the backup would have done).
  const warnings = passedOver.map(
    ({ archive, reason, advice }) =>
      `The backup set ${archive} cannot be built on (${reason.replace(/\.$/, '')})` +
      (set ? `; this incremental builds on ${set.manifest.archive}, the newest usable set, and stores every change since it. ` : '. ') +
      (advice ?? `Repair ${archive} (copy back its archives and manifest) or move it away: as it is, it cannot be restored.`),
  );
  if (otherStores.length > 0) {
    const newest = otherStores.reduce((a, b) => (oldestByName(a, b) >= 0 ? a : b));
    warnings.push(
      `${options.backupDirectory} holds ${otherStores.length === 1 ? 'a newer set' : `${otherStores.length} newer sets`} of another file store than this one (${describeStore(origin)}), the newest ${newest.manifest.archive} (${describeStore(newest.manifest)}); ` +
        `this incremental does not build on ${otherStores.length === 1 ? 'it' : 'them'}. Give each Octopus Server its own backup directory.`,
    );
  }
  if (!set) return { previous: undefined, warnings: [...warnings, `No earlier backup set in ${options.backupDirectory} to build on: taking a full backup.`] };
  const previousTime = Date.parse(set.manifest.createdAt);
  // The records are read only when a file is judged: never in an unchanged store (recordsExactly).
  let recordOf: ReturnType<typeof recordsInScanOrder> | undefined;
  const previous: PreviousSet = {
    set,
    judge: (scanned) => {
      recordOf ??= recordsInScanOrder(recordsOf(set));
      const previous = recordOf(scanned.folder, scanned.path);
      return { scanned, previous, verdict: changeSincePreviousSet(scanned, previous, previousTime) };
    },
    recordsExactly: (files, directories) => {
      const { scanDigest } = set.manifest;
      if (scanDigest === undefined || !set.manifestBytes || !fileListBytesOf(set.manifestBytes)) return false;
      for (const list of files) for (const file of list) if (modifiedAroundPreviousSet(file.mtimeMs, previousTime)) return false;
      return scanDigestOf(files.flat(), directories) === scanDigest;
    },
  };
  return { previous, warnings };
}

/**
 * The file records of the set an incremental builds on, parsed now (parseManifestBytesListsOnDemand).
 * Its bytes are the ones its archive's comment records, so records that do not check were written
 * so, edited with the comment made to match: no copy of this set can be trusted.
 */
function recordsOf(set: BackupSet): ManifestFile[] {
  try {
    return set.manifest.files;
  } catch (error) {
    if (!(error instanceof StepFailure) || error instanceof FileStoreError) throw error;
    throw new FileStoreError(
      `The backup set ${set.manifest.archive}, the newest usable one, cannot be built on: ${error.message.replace(/\.$/, '')}. ` +
        `Move its archive and manifest out of ${set.directory} (a restore cannot use them either), then run the backup again: it builds on the set before it, or takes a full backup.`,
      { cause: error },
    );
  }
}

/** 2. Plan: an incremental reuses files the previous set already has; in an unchanged store, all of them, as its lists record them. */
async function planBackup(scan: ScanOutcome, previousSet: PreviousSet | undefined, context: EngineContext, paths: OpenedPathCheck): Promise<BackupPlan> {
  const { signal } = context;
  const mode: BackupMode = previousSet ? 'Incremental' : 'Full';
  const previous = previousSet?.set;
  if (previous && scan.unchanged) return { mode, previous, planned: [], toStore: [], bytesTotal: 0 };
  const planned: PlannedFile[] = [];
  let hashedForPlan = 0;
  for (const { scanned, previous: before, verdict } of scan.files) {
    if (verdict === 'unchanged') {
      planned.push({ scanned, reuse: before });
      continue;
    }
    if (verdict !== 'hash') {
      planned.push({ scanned });
      continue;
    }
    signal.throwIfAborted();
    try {
      const sha256 = await hashFile(scanned, paths, signal);
      hashedForPlan += 1;
      planned.push(sha256 === before!.sha256 ? { scanned, reuse: before } : { scanned });
    } catch (error) {
      if (signal.aborted) throw error;
      planned.push({ scanned });
    }
  }
  if (hashedForPlan > 0) context.log.verbose(`Hashed ${hashedForPlan} file(s) whose mtime alone could not tell whether they changed.`);
  const toStore = planned.filter((p) => !p.reuse);
  return { mode, previous, planned, toStore, bytesTotal: toStore.reduce((sum, p) => sum + p.scanned.size, 0) };
}

/** What the write phase needs besides the writer: where to report, and what to record. */
interface WriteState {
  archiveName: string;
  options: BackupOptions;
  context: EngineContext;
  warnings: Warnings;
  progress: FileStoreProgress;
  report: () => void;
  /** The manifest record of every file stored in this archive. */
  stored: Map<PlannedFile, ManifestFile>;
  /** Streamed entries still being read. */
  streamed: Promise<void>[];
  /**
   * Large files opened for a stream the writer may never start (it failed first): closed on
   * failure, or Node warns about them on exit, after the step's last line.
   */
  openedHandles: fs.FileHandle[];
  paths: OpenedPathCheck;
}

function record(state: WriteState, item: PlannedFile, sha256: string, size: number, mtimeMs: number, mode: number): void {
  const file = item.scanned;
  state.stored.set(item, manifestFileRecord(file.folder, file.path, size, mtimeMs, mode, sha256, state.archiveName));
}

/** A small file, already read: added as a buffer (or, at a checkpoint, as a stream), or as a worker prepared it. */
async function storeSmallFile(writer: StreamingZipWriter, state: WriteState, item: PlannedFile, outcome: ReadOutcome | PreparedFile): Promise<void> {
  const file = item.scanned;
  const name = `${file.folder}/${file.path}`;
  if (outcome.kind === 'vanished') {
    state.warnings.warn(`${name} vanished during the backup; not backed up.`);
    state.warnings.skip(file, 'vanished during the backup');
    state.progress.bytesTotal -= file.size;
  } else if (outcome.kind === 'unreadable') {
    // The same reason from a worker or from this thread: classified here, for both.
    const fault = backupFault(outcome.message, `reading ${name}`);
    if (fault) throw fault;
    if (!state.options.skipUnreadable) throw new FileStoreError(`${name} cannot be read (${outcome.message}). ${unreadableAdvice(outcome.message)}, or set "${labels.skipUnreadable}".`);
    state.warnings.warn(`${name} cannot be read (${outcome.message}); skipped.`);
    state.warnings.skip(file, outcome.message);
    // Out of the total, so that the progress ends at it (the total is what is stored).
    state.progress.bytesTotal -= file.size;
  } else {
    if (outcome.changed) state.warnings.warn(`${name} kept changing while being read (read twice); the archive holds the copy read last.`);
    const meta = { mtimeMs: outcome.mtimeMs, mode: outcome.mode };
    if ('content' in outcome) {
      await writer.roomForPrepared();
      writer.addPrepared(name, outcome, meta);
    } else if (writer.needsCheckpoint) {
      const data = outcome.data;
      const { done } = await writer.addStream(name, meta, () => new PassThrough().end(data));
      const tracked = done.then(() => undefined);
      tracked.catch(() => undefined);
      state.streamed.push(tracked);
    } else {
      writer.addBuffer(name, outcome.data, meta);
    }
    const size = 'content' in outcome ? outcome.size : outcome.data.length;
    record(state, item, outcome.sha256, size, outcome.mtimeMs, outcome.mode);
    state.progress.bytesTotal += size - file.size;
    state.progress.bytesDone += size;
  }
  state.progress.filesDone += 1;
  state.report();
}

/**
 * A large file: opened now (so a vanished or unreadable file is known before it is added) and
 * streamed when yazl gets to it, reading no further than the size seen now.
 */
async function storeLargeFile(writer: StreamingZipWriter, state: WriteState, item: PlannedFile): Promise<void> {
  const file = item.scanned;
  const name = `${file.folder}/${file.path}`;
  const { warnings, progress } = state;
  let handle: fs.FileHandle;
  let before: Stats;
  let opened: fs.FileHandle | undefined;
  // A path that cannot be read (no permission, an I/O error, no longer a regular file) is skipped with the opt-in.
  const unreadable = (reason: string) => {
    const fault = backupFault(reason, `reading ${name}`);
    if (fault) throw fault;
    if (!state.options.skipUnreadable) throw new FileStoreError(`${name} cannot be read (${reason}). ${unreadableAdvice(reason)}, or set "${labels.skipUnreadable}".`);
    warnings.warn(`${name} cannot be read (${reason}); skipped.`);
    warnings.skip(file, reason);
    progress.filesDone += 1;
    progress.bytesTotal -= file.size;
  };
  try {
    // Neither waits on a pipe nor follows a link swapped in since the scan (OPEN_SCANNED_FILE).
    handle = opened = await fs.open(file.localPath, OPEN_SCANNED_FILE);
    state.openedHandles.push(handle);
    if (leadsElsewhere(openedPath(handle.fd), state.paths.expected(file))) {
      await handle.close();
      return unreadable(NOW_THROUGH_A_LINK);
    }
    before = await handle.stat();
  } catch (error) {
    // unreadable() above has said what failed and what to do: not wrapped in a second message.
    if (error instanceof FileStoreError) throw error;
    // Opened, then its stat failed: it will not be streamed, so nothing else closes it.
    await opened?.close().catch(() => undefined);
    const code = errnoOf(error);
    const failure = openFailure(code, (error as Error).message);
    if (failure.kind === 'vanished') {
      warnings.warn(`${name} vanished during the backup; not backed up.`);
      warnings.skip(file, 'vanished during the backup');
      progress.bytesTotal -= file.size;
    } else {
      // As for a small file: any other failure (a permission, an I/O error) is skipped with the opt-in.
      return unreadable(failure.message);
    }
    progress.filesDone += 1;
    return;
  }
  if (!before.isFile()) {
    await handle.close();
    return unreadable(NOT_A_FILE);
  }
  const meta = { mtimeMs: before.mtimeMs, mode: before.mode & 0o7777 };
  // The total is what is stored: this file's size now (it may have changed since the scan), and
  // below what was read of it.
  progress.bytesTotal += before.size - file.size;
  const { done } = await writer.addStream(
    name,
    meta,
    () =>
      before.size === 0
        ? (void handle.close().catch(() => undefined), new PassThrough().end())
        : writer.fileReader(handle, before.size, compressionLevelFor(name)),
    (bytes) => {
      progress.bytesDone += bytes;
      state.report();
    },
  );
  const tracked = done.then(async (result) => {
    const after = await fs.stat(file.localPath).catch(() => undefined);
    if (!after || after.size !== before.size || after.mtimeMs !== before.mtimeMs || result.size !== before.size) {
      warnings.warn(`${name} changed while being read; the archive holds ${result.size} bytes as read (a large file is not read twice).`);
    }
    record(state, item, result.sha256, result.size, before.mtimeMs, before.mode & 0o7777);
    progress.bytesTotal += result.size - before.size;
    progress.filesDone += 1;
    state.report();
  });
  // Awaited below; a cancel in between must not make it an unhandled rejection.
  tracked.catch(() => undefined);
  state.streamed.push(tracked);
}

const isSmall = (p: PlannedFile) => p.scanned.size <= BUFFERED_FILE_LIMIT;

/**
 * Stores the large file at `index`; after the last one (`lastLarge`), the writer's large-file
 * thread may end, so that its memory is not held through the small files after it.
 */
async function storeLargeFileAt(writer: StreamingZipWriter, state: WriteState, toStore: readonly PlannedFile[], index: number, lastLarge: number): Promise<void> {
  await storeLargeFile(writer, state, toStore[index]);
  if (index === lastLarge) writer.largeFilesAdded();
}

function lastLargeIndex(toStore: readonly PlannedFile[]): number {
  for (let i = toStore.length - 1; i >= 0; i--) if (!isSmall(toStore[i])) return i;
  return -1;
}

/** Worker threads for this backup's small files, when there are enough of them to pay for starting (~40 ms). */
function startWorkers(toStore: readonly PlannedFile[], requested: number | undefined, env: NodeJS.ProcessEnv = process.env): SmallFileWorkers | undefined {
  const count = requested ?? smallFileWorkerCount(env);
  if (count === 0 || !workersCanRun()) return undefined;
  const small = toStore.filter(isSmall);
  const explicit = requested !== undefined || (env.OCTOPUSDR_FILE_STORE_WORKERS !== undefined && env.OCTOPUSDR_FILE_STORE_WORKERS !== '');
  const worthIt = small.length >= WORKERS_FROM_FILES || small.reduce((sum, p) => sum + p.scanned.size, 0) >= WORKERS_FROM_BYTES;
  return small.length > 0 && (explicit || worthIt) ? new SmallFileWorkers(count) : undefined;
}

/** Runs of consecutive small files, cut at BATCH_FILES files or BATCH_BYTES: one worker message each. */
function smallFileBatches(toStore: readonly PlannedFile[]): Map<number, number[]> {
  const batches = new Map<number, number[]>();
  let current: number[] = [];
  let bytes = 0;
  const close = () => {
    if (current.length > 0) batches.set(current[0], current);
    current = [];
    bytes = 0;
  };
  toStore.forEach((item, index) => {
    if (!isSmall(item)) return close();
    if (current.length >= BATCH_FILES || (current.length > 0 && bytes + item.scanned.size > BATCH_BYTES)) close();
    current.push(index);
    bytes += item.scanned.size;
  });
  close();
  return batches;
}

/**
 * 3. Write, with the small files read, hashed and compressed by worker threads: batches are sent
 * ahead (up to PREPARE_AHEAD_BYTES of files) while earlier entries, large files among them, are
 * written. A batch no worker could prepare is read on the main thread instead.
 */
async function writeWithWorkers(writer: StreamingZipWriter, state: WriteState, toStore: readonly PlannedFile[], workers: SmallFileWorkers): Promise<void> {
  const { signal } = state.context;
  const batches = smallFileBatches(toStore);
  const starts = [...batches.keys()];
  const sent = new Map<number, Promise<PreparedFile[]>>();
  let nextToSend = 0;
  let bytesAhead = 0;
  const batchBytes = (start: number) => batches.get(start)!.reduce((sum, i) => sum + toStore[i].scanned.size, 0);
  const sendAhead = () => {
    while (nextToSend < starts.length && ((bytesAhead < PREPARE_AHEAD_BYTES && sent.size < PREPARE_AHEAD_BATCHES) || sent.size === 0)) {
      const start = starts[nextToSend++];
      const jobs = batches.get(start)!.map((i) => ({
        localPath: toStore[i].scanned.localPath,
        expectedPath: state.paths.expected(toStore[i].scanned),
        size: toStore[i].scanned.size,
        level: compressionLevelFor(toStore[i].scanned.path),
      }));
      const prepared = workers.prepare(jobs);
      // Awaited in order below; one left behind by a failure must not be an unhandled rejection.
      prepared.catch(() => undefined);
      sent.set(start, prepared);
      bytesAhead += batchBytes(start);
    }
  };
  let fellBack = false;
  const lastLarge = lastLargeIndex(toStore);
  for (let i = 0; i < toStore.length; ) {
    signal.throwIfAborted();
    writer.throwIfFailed();
    sendAhead();
    if (!isSmall(toStore[i])) {
      await storeLargeFileAt(writer, state, toStore, i, lastLarge);
      i += 1;
      continue;
    }
    const indexes = batches.get(i)!;
    let outcomes: (PreparedFile | ReadOutcome)[];
    try {
      outcomes = await writer.race(sent.get(i)!);
    } catch (error) {
      if (!(error instanceof WorkerUnavailable)) throw error;
      if (!fellBack) state.context.log.info(`The worker threads stopped (${error.message}); the rest of the small files are read on the main thread.`);
      fellBack = true;
      outcomes = indexes.map((index) => readWholeFile(toStore[index].scanned, state.paths));
    }
    sent.delete(i);
    bytesAhead -= batchBytes(i);
    // The last batch is back: the workers' memory is not held through the large files after it.
    if (nextToSend === starts.length && sent.size === 0) void workers.close();
    for (let k = 0; k < indexes.length; k++) await storeSmallFile(writer, state, toStore[indexes[k]], outcomes[k]);
    i = indexes.at(-1)! + 1;
  }
  await writer.race(Promise.all(state.streamed));
}

/** 3. Write: every folder, then every file to store; small files are read ahead, several at once. */
async function writeFiles(writer: StreamingZipWriter, state: WriteState, directories: readonly ScannedDirectory[], toStore: readonly PlannedFile[]): Promise<void> {
  const { signal } = state.context;
  state.report();
  for (const d of directories) writer.addDirectory(`${d.folder}/${d.path}/`, d);
  const workers = startWorkers(toStore, state.options.smallFileWorkers);
  if (workers) {
    try {
      return await writeWithWorkers(writer, state, toStore, workers);
    } finally {
      await workers.close();
    }
  }
  const reads = new Map<number, ReadOutcome>();
  let nextRead = 0;
  const lastLarge = lastLargeIndex(toStore);
  for (let i = 0; i < toStore.length; i++) {
    signal.throwIfAborted();
    writer.throwIfFailed();
    // Read ahead: several small files are opened and read at once.
    let ahead = 0;
    for (let j = i; j < nextRead; j++) if (reads.has(j)) ahead += toStore[j].scanned.size;
    while (nextRead < toStore.length && nextRead < i + READ_AHEAD_FILES && (ahead < READ_AHEAD_BYTES || nextRead === i)) {
      if (isSmall(toStore[nextRead])) {
        reads.set(nextRead, readWholeFile(toStore[nextRead].scanned, state.paths));
        ahead += toStore[nextRead].scanned.size;
      }
      nextRead += 1;
    }
    if (isSmall(toStore[i])) {
      const outcome = reads.get(i)!;
      reads.delete(i);
      await storeSmallFile(writer, state, toStore[i], outcome);
    } else {
      await storeLargeFileAt(writer, state, toStore, i, lastLarge);
    }
  }
  await writer.race(Promise.all(state.streamed));
}

/** The previous set's record of a file reused as it is, with the file's mtime and mode now (the record itself when they are the same). */
function reusedRecord(previous: ManifestFile, scanned: ScannedFile): ManifestFile {
  if (previous.mtimeMs === scanned.mtimeMs && previous.mode === scanned.mode) return previous;
  return manifestFileRecord(previous.folder, previous.path, previous.size, scanned.mtimeMs, scanned.mode, previous.sha256, previous.archive);
}

/** What every set's manifest says besides its lists, in the order of its keys. */
function manifestHeader(
  input: { archiveName: string; now: Date; toolVersion: string; plan: BackupPlan; scan: ScanOutcome; warnings: Warnings },
  chain: string[],
  totals: FileStoreManifest['totals'],
  scanDigest: string,
): ManifestHeader {
  const { archiveName, plan, scan, warnings } = input;
  return {
    format: MANIFEST_FORMAT,
    formatVersion: 1,
    archive: archiveName,
    mode: plan.mode,
    createdAt: input.now.toISOString(),
    toolVersion: input.toolVersion,
    host: os.hostname(),
    platform: process.platform,
    chain,
    ...(plan.previous ? { basedOn: plan.previous.manifest.archive } : {}),
    folders: scan.folderSummaries,
    totals,
    warnings: warnings.list,
    skipped: warnings.skipped,
    scanDigest,
  };
}

/** 4. Manifest: the files in scan order, each pointing at the archive that holds it; its bytes, for both copies. */
function buildManifest(
  input: { archiveName: string; now: Date; toolVersion: string; plan: BackupPlan; scan: ScanOutcome; stored: Map<PlannedFile, ManifestFile>; warnings: Warnings },
): { manifest: FileStoreManifest; manifestBytes: Buffer } {
  const { archiveName, plan, scan, stored } = input;
  if (plan.previous && scan.unchanged) return manifestOfUnchangedStore(input, plan.previous);
  const files: ManifestFile[] = [];
  for (const item of plan.planned) {
    const entry = item.reuse ? reusedRecord(item.reuse, item.scanned) : stored.get(item);
    if (entry) files.push(entry);
  }
  const directories = scan.directories.map((d) => manifestDirectoryRecord(d.folder, d.path, d.mtimeMs, d.mode));
  const storedFiles = [...stored.values()];
  const chain = plan.previous ? [...plan.previous.manifest.chain, archiveName] : [archiveName];
  // The chain must only name archives this set really uses (retention relies on it).
  const used = new Set(files.map((f) => f.archive));
  const totals = {
    files: files.length,
    bytes: files.reduce((sum, f) => sum + f.size, 0),
    directories: directories.length,
    storedFiles: storedFiles.length,
    storedBytes: storedFiles.reduce((sum, f) => sum + f.size, 0),
  };
  const header = manifestHeader(input, chain.filter((a) => a === archiveName || used.has(a)), totals, scanDigestOf(files, directories));
  const manifest: FileStoreManifest = { ...header, files, directories };
  // Encoded once for both copies; an incremental whose records all equal the previous set's reuses its file list's bytes.
  return { manifest, manifestBytes: encodeManifestAfter(manifest, plan.previous) };
}

/**
 * The manifest of an unchanged store: the previous set's lists as they are (the records are the
 * same by construction: see PreviousSet.recordsExactly), after a header of this set. Its chain is
 * the archives those records name and this set's own: the previous chain but for the previous
 * set's own archive when no record names it (it stored no file; the rest of its chain is named by
 * its records, as buildManifest makes every chain). Told by the list's bytes, not by the header's
 * totals. The lists of the manifest returned are parsed only if read.
 */
function manifestOfUnchangedStore(
  input: { archiveName: string; now: Date; toolVersion: string; plan: BackupPlan; scan: ScanOutcome; warnings: Warnings },
  previous: BackupSet,
): { manifest: FileStoreManifest; manifestBytes: Buffer } {
  const before = previous.manifest;
  const list = previous.manifestBytes && fileListBytesOf(previous.manifestBytes);
  const chain = [...before.chain.filter((a) => a !== before.archive || !list || fileListNamesArchive(list, a)), input.archiveName];
  const totals = { files: input.scan.files.length, bytes: input.scan.files.reduce((sum, f) => sum + f.scanned.size, 0), directories: input.scan.directories.length, storedFiles: 0, storedBytes: 0 };
  const header = manifestHeader(input, chain, totals, before.scanDigest!);
  const manifestBytes = encodeManifestOfUnchangedStore(header, previous);
  // recordsExactly found the previous bytes laid out as encodeManifest writes them.
  if (!manifestBytes) throw new TypeError(`The manifest of ${previous.manifestPath} was read as reusable but is not.`);
  const where = `the manifest of ${input.archiveName}`;
  return { manifest: withListsOnDemand(header, () => parseManifestBytes(manifestBytes, where)), manifestBytes };
}

/** 5. Read back the central directory before the archive gets its real name. */
async function readBack(tempPath: string, stored: readonly ManifestFile[]): Promise<void> {
  // Names and sizes only (memory, h-rss): the backup still holds its own records at this point.
  const sizes = await readEntrySizes(tempPath);
  const missing = stored.filter((f) => sizes.get(`${f.folder}/${f.path}`) !== f.size);
  if (missing.length > 0 || !sizes.has(MANIFEST_ENTRY_NAME)) {
    throw new FileStoreError(`The archive written to ${tempPath} does not read back (${missing.length} entries missing or of the wrong size); it was deleted.`);
  }
}

export async function backupFileStore(options: BackupOptions, context: EngineContext): Promise<BackupResult> {
  // V8's flags, before any thread starts; the first file-store run of the process chooses (heap.ts).
  chooseHeapSettingsOnce('backup');
  return backUp(options, context);
}

/**
 * The previous manifest's file list, deflated on a thread-pool thread while the scan runs: if nothing
 * changed, the new manifest ends with exactly these bytes (encodeManifestAfter), and only its
 * header is left to deflate at the end.
 */
function deflateManifestListAhead(previousSet: PreviousSet | undefined): DeflatedAhead | undefined {
  const bytes = previousSet?.set.manifestBytes;
  const list = bytes && fileListBytesOf(bytes);
  return list ? deflateAhead(list, compressionLevelFor(MANIFEST_ENTRY_NAME)) : undefined;
}

async function backUp(options: BackupOptions, context: EngineContext): Promise<BackupResult> {
  const started = Date.now();
  const now = (options.now ?? (() => new Date()))();
  const { log, signal } = context;
  const warnings = new Warnings(log);
  refuseBackupDirectoryInsideStore(options);

  const listings = new Map(options.folders.map((folder) => [folder, listFolderEarly(folder.path)]));
  // The set to build on is found while the store is scanned: its reads wait on the backup
  // directory's disk, on the thread pool, while the scan's lstat calls keep this thread busy.
  // (A scan that fails leaves the search to end on its own: its deflate of the previous list is
  // let go, and it says nothing.)
  const previousFound = findPreviousSet(options).then((found) => ({ ...found, listAhead: deflateManifestListAhead(found.previous) }));
  previousFound.catch(() => undefined);
  const scannedFolders = await scanFolders(options, context, listings);
  const { previous: previousSet, warnings: passedOver, listAhead } = await previousFound;
  for (const warning of passedOver) warnings.warn(warning);
  let manifestListAhead = listAhead;
  const scan = judgeScan(options, context, warnings, scannedFolders, previousSet);
  await fs.mkdir(options.backupDirectory, { recursive: true });
  await cleanLeftovers(options.backupDirectory, isPartialName, 'a file-store backup', now, log);

  // Where each scanned file must lead once opened (Linux): see opened-path.ts.
  const paths = new OpenedPathCheck(options.folders);
  const plan = await planBackup(scan, previousSet, context, paths);
  // A file to store gets a record naming this archive, so the previous file list cannot be reused:
  // its bytes (5.8 MB at scale 1) need not stay in memory while the files are written.
  if (plan.toStore.length > 0) {
    if (plan.previous) plan.previous.manifestBytes = undefined;
    manifestListAhead = undefined;
  }
  const archiveName = await pickArchiveName(options.backupDirectory, now, plan.mode);
  const archivePath = path.join(options.backupDirectory, archiveName);
  log.info(
    `${plan.mode} backup of ${scan.files.length} files (${plan.toStore.length} to store, ${formatBytes(plan.bytesTotal)}) into ${archivePath}` +
      (plan.previous ? `, based on ${plan.previous.manifest.archive}` : ''),
  );

  const tempPath = path.join(options.backupDirectory, `.${archiveName}.partial`);
  // A full one (asked for, or an incremental with no set to build on) is C++ work: before any thread.
  if (plan.mode === 'Full') optimizingCompilerOffForFullBackup();
  // Threads (for small files and large ones) unless asked for none.
  const writer = new StreamingZipWriter(tempPath, { threads: (options.smallFileWorkers ?? smallFileWorkerCount()) > 0 });
  const onAbort = () => void writer.abort(signal.reason instanceof Error ? signal.reason : undefined).catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  let committed = false;
  const manifestPath = path.join(options.backupDirectory, manifestNameFor(archiveName));
  let sidecar: Promise<StagedFile> | undefined;
  let sidecarFailed = false;
  const onProgress = options.onProgress ?? progressReporter(context, 'Backed up');
  const progress: FileStoreProgress = { bytesDone: 0, bytesTotal: plan.bytesTotal, filesDone: 0, filesTotal: plan.toStore.length };
  const state: WriteState = { archiveName, options, context, warnings, progress, report: () => onProgress(progress), stored: new Map(), streamed: [], openedHandles: [], paths };
  try {
    await writeFiles(writer, state, scan.directories, plan.toStore);
    await refuseChangedRoots(scan.roots);
    // Every file the scan found was skipped when opened (a share that dropped after the scan):
    // an empty set is refused here as the scan refuses one.
    if (scan.files.length - plan.toStore.length + state.stored.size === 0 && !options.allowEmpty) {
      throw new FileStoreError(
        `Nothing was backed up: none of the ${plan.toStore.length} file(s) the scan found could be read when opened (each vanished or failed; see the warnings above). ` +
          `Nothing was kept. Check the disk or share that holds ${options.folders.map((f) => f.path).join(', ')}, then run the backup again; ` +
          `if these folders really are empty, check "${labels.allowEmpty}".`,
      );
    }

    const { manifest, manifestBytes } = buildManifest({ archiveName, now, toolVersion: options.toolVersion, plan, scan, stored: state.stored, warnings });
    // Level 1 like other text: 281 against 278 KB for 6,115 files, ~10 ms less (level 6 was the default);
    // in pieces on both cores (zip-writer.ts), or, in an unchanged incremental, only the header
    // in front of the previous list deflated during the scan (deflateManifestListAhead).
    writer.addBuffer(MANIFEST_ENTRY_NAME, manifestBytes, { mtimeMs: now.getTime(), mode: 0o644 }, compressionLevelFor(MANIFEST_ENTRY_NAME), {
      inPieces: true,
      ahead: manifestListAhead,
    });
    // The manifest beside the archive is written and flushed under its temporary name while the
    // archive is finished, so that the two waits for the disk overlap; it is renamed into place
    // only after the archive.
    sidecar = stageFileAtomically(manifestPath, manifestBytes);
    sidecar.catch(() => undefined);
    // The manifest's SHA-256 as the archive's comment: what the next incremental checks the copy beside it by.
    await writer.finish({ comment: archiveCommentFor(manifestBytes) });
    signal.throwIfAborted();

    await readBack(tempPath, [...state.stored.values()]);
    const staged = await sidecar.catch((error: unknown) => {
      sidecarFailed = true;
      throw error;
    });
    await fs.rename(tempPath, archivePath);
    committed = true;
    await staged.commit();
    return {
      archivePath,
      manifestPath,
      manifest,
      chainPaths: manifest.chain.map((a) => path.join(options.backupDirectory, a)),
      durationMs: Date.now() - started,
      warnings: warnings.list,
    };
  } catch (error) {
    if (!committed) {
      await writer.abort().catch(() => undefined);
      await sidecar?.then((staged) => staged.discard(), () => undefined).catch(() => undefined);
    }
    for (const handle of state.openedHandles) await handle.close().catch(() => undefined);
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : error;
    // Any write can fail (a full disk, a folder turned read-only): say which, where and what to do.
    const what = committed
      ? `writing the manifest beside ${archivePath}`
      : sidecarFailed
        ? `writing the manifest beside ${archivePath} (the partial archive was deleted)`
        : `writing the archive ${archivePath} (the partial archive was deleted)`;
    const message = error instanceof StepFailure ? undefined : describeFileError(error, { path: options.backupDirectory, what, neededBytes: committed ? undefined : plan.bytesTotal });
    if (message) throw new FileStoreError(message, { cause: error });
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
