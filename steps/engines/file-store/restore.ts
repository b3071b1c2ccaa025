// Verifies and restores a file-store backup set (an archive chain). Every archive is checked
// for unsafe entries before anything is written; data goes into a staging folder beside each
// destination with every hash checked, and only then is the destination swapped in. What was
// there is moved aside to `<folder>.before-restore-<UTC timestamp>`, never deleted.
import { closeSync, fchmodSync, futimesSync, openSync, promises as fs, writeSync } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { inflateRaw } from 'node:zlib';
import { restoreReplaceExisting, restoreRollBackOnFailure, restoreSource } from '../../../templates/parameters';
import { quietEngineContext, type EngineContext } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { cleanLeftovers } from '../../runtime/leftovers';
import { fileFailure } from '../../runtime/failure';
import { unsafeEntryNameReason } from './entry-safety';
import { FileStoreError } from './errors';
import { canonicalFolderName, type FileStoreFolderName, type ResolvedFolder } from './folders';
import {
  checkManifestBesideArchive,
  isInternalError,
  isPartialName,
  listBackupSets,
  newestWithWholeChain,
  manifestDifferences,
  oldestByName,
  manifestNameFor,
  readInternalManifest,
  readManifestEntry,
  readManifestFile,
  stampOf,
  utcStamp,
  type BackupSet,
  type ManifestDirectory,
  type ManifestFile,
} from './manifest';
import { describeStore, groupByStore } from './origin';
import { progressReporter, type FileStoreProgress } from './progress';
import { formatBytes } from '../../runtime/format';
import { damagedEntryReason, openArchive, type ArchiveEntry, type OpenedArchive } from './zip-reader';
import { HashingCounter } from './zip-writer';
import { startEntryThreads, ThreadStoppedError, type CreateWorker, type EntryThreads } from './restore-threads';
import { chooseHeapSettingsOnce } from './heap';

/** Small entries in flight at once (each at most WHOLE_ENTRY_LIMIT compressed and inflated). */
const PARALLEL_SMALL_ENTRIES = 4;
/** Large entries in flight at once: a thread copies one at a time; streamed ones hold a few MiB each. */
const PARALLEL_LARGE_ENTRIES = 1;
/** Entries up to this size are read whole and inflated in one thread-pool job (streams cost ~1 ms per entry). */
const WHOLE_ENTRY_LIMIT = 4 * 1024 * 1024;
const inflateRawAsync = promisify(inflateRaw);

const labels = { source: restoreSource.label, replaceExisting: restoreReplaceExisting.label, rollBackOnFailure: restoreRollBackOnFailure.label };

/** The last line of a refused or failed verification: what to do about it. */
export const DAMAGED_BACKUP_ADVICE =
  `Restore an earlier backup set or the offsite copy of this one (give its archive or manifest as "${labels.source}"), ` +
  'check the storage that holds this one, and run the file-store backup again so that a sound set exists.';

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'ERROR';
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Permission bits restored on files: setuid and setgid are dropped (an archive must not make a file run as its owner). */
const RESTORED_FILE_MODE_BITS = 0o1777;

/**
 * Finds the set a `Backup to restore` value names: a manifest, an archive, or a directory
 * (then the newest set whose archives are all present).
 */
export async function resolveBackupSource(source: string): Promise<BackupSet> {
  const absolute = path.resolve(source);
  refuseLeftover(absolute);
  let stat;
  try {
    stat = await fs.stat(absolute);
  } catch (error) {
    throw new FileStoreError(`${labels.source} ${absolute} cannot be read (${errnoOf(error)}). Give a backup directory, archive or manifest.`);
  }
  if (stat.isDirectory()) return newestSetIn(absolute);
  const directory = path.dirname(absolute);
  if (absolute.endsWith('.json')) {
    const manifest = await readManifestFile(absolute);
    return { directory, manifestPath: absolute, archivePath: path.join(directory, manifest.archive), manifest };
  }
  const sidecar = path.join(directory, manifestNameFor(path.basename(absolute)));
  const manifest = (await exists(sidecar)) ? await readManifestFile(sidecar) : await readInternalManifest(absolute);
  if (manifest.archive !== path.basename(absolute)) {
    throw new FileStoreError(`${absolute} was renamed (its manifest names ${manifest.archive}); give it back its name so its chain can be found.`);
  }
  return { directory, manifestPath: (await exists(sidecar)) ? sidecar : absolute, archivePath: absolute, manifest };
}

/** The restore staging folders a restore works in (beside the destination, or inside a mount point). */
export function isRestoreStagingName(name: string): boolean {
  return /\.restore-staging-\d{8}T\d{6}Z(-[0-9a-f]+)?$/.test(name) || /^\.octopus-dr-restore-staging-\d{8}T\d{6}Z(-[0-9a-f]+)?$/.test(name);
}

/**
 * Staging folders of restores that were killed, beside each destination or inside it (a mount
 * point): named, and deleted once nothing has written to them for the age guard.
 */
export async function cleanRestoreLeftovers(destinations: readonly ResolvedFolder[], now: Date, log: { warn(message: string): void }): Promise<void> {
  for (const destination of destinations) {
    const base = path.basename(destination.path);
    await cleanLeftovers(path.dirname(destination.path), (n) => n.startsWith(`${base}.restore-staging-`) && isRestoreStagingName(n), 'a file-store restore', now, log);
    await cleanLeftovers(destination.path, (n) => n.startsWith('.octopus-dr-restore-staging-') && isRestoreStagingName(n), 'a file-store restore', now, log);
  }
}

/** A killed run's temporary file or staging folder is never read as a backup: refused before it is opened. */
function refuseLeftover(absolute: string): void {
  const name = path.basename(absolute);
  if (!isPartialName(name) && !name.endsWith('.partial') && !isRestoreStagingName(name)) return;
  throw new FileStoreError(
    `${labels.source} ${absolute} is a temporary ${isRestoreStagingName(name) ? 'folder of a restore' : 'file of a backup'} that did not finish ` +
      '(a stopped run leaves it); it is not a backup and is never read. Give a finished archive (octopus-file-store-<time>-full.zip), its manifest, or the backup directory.',
    { exitCode: 2 },
  );
}

/**
 * The newest set of a directory, when it is complete. A newer set that cannot be read, or whose
 * chain is incomplete, is refused rather than silently skipped: an older set restored in its place
 * would lose what only the newer one holds.
 */
async function newestSetIn(directory: string): Promise<BackupSet> {
  const { sets, ignored, ignoredArchives } = await listBackupSets(directory);
  refuseMixedStores(directory, sets);
  // Listed by the time in their names (oldestByName): a set whose creation time was edited to look older is not passed over for an older one.
  const { set: chosen, incomplete } = await newestWithWholeChain([...sets].reverse());
  if (!chosen) {
    throw new FileStoreError(
      `No complete file-store backup set in ${directory}${ignored.length ? ` (ignored: ${ignored.join('; ')})` : ''}. Give the directory the backups were written to, or an archive or manifest.`,
    );
  }
  const stamp = stampOf(chosen.manifest.archive);
  // Another set of the same second whose manifest beside it was edited (its creation time made
  // to look older, say): which of the two is newer cannot be told.
  const editedTime: { archive: string; reason: string }[] = [];
  for (const other of sets.filter((s) => s !== chosen && stampOf(s.manifest.archive) === stamp)) {
    try {
      await checkManifestBesideArchive(other);
    } catch (error) {
      if (isInternalError(error)) throw error;
      editedTime.push({ archive: other.manifest.archive, reason: (error as Error).message });
    }
  }
  const unusable = [
    ...incomplete,
    ...editedTime,
    ...ignoredArchives.map((archive, i) => ({ archive, reason: ignored[i] })),
  ].filter((u) => stampOf(u.archive) >= stamp && u.archive !== chosen.manifest.archive);
  if (unusable.length > 0) {
    throw new FileStoreError(
      `The newest backup set in ${directory} cannot be used: ${unusable.map((u) => `${u.archive} (${u.reason})`).join('; ')}. ` +
        `The newest usable set, ${chosen.manifest.archive}, is ${unusable.every((u) => stampOf(u.archive) === stamp) ? 'of the same second (which is newer cannot be told)' : 'older'} and is not taken in its place. To use it, give its archive or manifest as the backup to restore; ` +
        'otherwise repair the newer set (copy back its archives and manifest) or move it away.',
    );
  }
  return chosen;
}

/**
 * A directory holding the sets of more than one file store (two Octopus Servers backing up into
 * one folder): which server's newest set is meant cannot be told, so none is taken. Before, the
 * newest set of any server was restored, exit 0: staging's store in production's place whenever
 * staging had backed up last. Sets that do not say where they were read from count with none.
 */
function refuseMixedStores(directory: string, sets: readonly BackupSet[]): void {
  const { groups } = groupByStore(sets);
  if (groups.length < 2) return;
  const named = groups
    .map((group) => group.sort(oldestByName))
    .sort((a, b) => oldestByName(b.at(-1)!, a.at(-1)!))
    .map((group) => `${describeStore(group.at(-1)!.manifest)}: ${group.length} set${group.length === 1 ? '' : 's'}, the newest ${group.at(-1)!.manifest.archive}`);
  throw new FileStoreError(
    `${directory} holds the backup sets of more than one file store (more than one Octopus Server, or folders read from other places): ${named.join('; ')}. ` +
      `Which one to restore cannot be told, so nothing was restored. Give the manifest of the set to restore as ${labels.source} ` +
      '(its chain is found in the same directory), or move the other server\'s sets out of the directory.',
  );
}

export interface ChainCheck {
  archives: Map<string, OpenedArchive>;
  problems: string[];
}

/** The manifest beside the archive must be the one inside it: an edited record would otherwise go unchecked. */
async function compareWithInternalManifest(set: BackupSet, archive: OpenedArchive | undefined): Promise<string[]> {
  if (!archive || set.manifestPath === set.archivePath) return [];
  const where = path.basename(set.manifestPath);
  let inside;
  try {
    inside = await readManifestEntry(archive);
  } catch (error) {
    return [`${set.manifest.archive}: the manifest inside it cannot be read (${(error as Error).message})`];
  }
  const differences = manifestDifferences(set.manifest, inside);
  if (differences.length === 0) return [];
  const shown = differences.slice(0, 5).join('; ') + (differences.length > 5 ? `; and ${differences.length - 5} more` : '');
  return [
    `${where} differs from the manifest inside ${set.manifest.archive} (${shown}): it was edited or damaged after the backup was written. ` +
      'Use another backup set, or put back the manifest as it was written.',
  ];
}

/** Opens every archive of the chain and checks entries and manifest records, reading no file data. */
async function checkChain(set: BackupSet, files: readonly ManifestFile[], windows: boolean): Promise<ChainCheck> {
  const archives = new Map<string, OpenedArchive>();
  const problems: string[] = [];
  for (const name of set.manifest.chain) {
    const archivePath = path.join(set.directory, name);
    try {
      const archive = await openArchive(archivePath, { windows });
      archives.set(name, archive);
      for (const p of archive.problems) problems.push(`${name}: ${p}`);
    } catch (error) {
      problems.push(`${name}: cannot be opened (${(error as Error).message})`);
    }
  }
  for (const file of files) {
    const entryName = `${file.folder}/${file.path}`;
    const reason = canonicalFolderName(file.folder) !== file.folder ? 'unknown folder' : unsafeEntryNameReason(file.path, windows);
    if (reason) {
      problems.push(`manifest record ${JSON.stringify(entryName)}: ${reason}`);
      continue;
    }
    const archive = archives.get(file.archive);
    if (!archive) continue;
    const entry = archive.entries.get(entryName);
    if (!entry || entry.isDirectory) problems.push(`${file.archive}: ${entryName} is missing`);
    else if (entry.size !== file.size) problems.push(`${file.archive}: ${entryName} is ${entry.size} bytes, the manifest says ${file.size}`);
  }
  for (const d of set.manifest.directories) {
    const reason = canonicalFolderName(d.folder) !== d.folder ? 'unknown folder' : unsafeEntryNameReason(d.path, windows);
    if (reason) problems.push(`manifest folder record ${JSON.stringify(`${d.folder}/${d.path}`)}: ${reason}`);
  }
  // Last, so that the last line says what to do.
  // A loop, not push(...list): spread arguments overflow the stack past ~120,000 problems.
  for (const problem of await compareWithInternalManifest(set, archives.get(set.manifest.archive))) problems.push(problem);
  return { archives, problems };
}

function closeAll(check: ChainCheck): void {
  for (const archive of check.archives.values()) archive.close();
}

/**
 * Runs `work` over each lane's items, the lanes side by side and at most `limit` items of a lane
 * at once. The first error (or a cancel) stops every lane: the work in flight is told through
 * the signal it is given, and is waited for, so that nothing still runs when this returns.
 */
async function forEachInLanes<T>(
  lanes: readonly { items: readonly T[]; limit: number }[],
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
  onStop?: () => void,
): Promise<void> {
  const stop = new AbortController();
  if (onStop) stop.signal.addEventListener('abort', onStop, { once: true });
  const onAbort = () => stop.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let failed: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    if (failed) return;
    failed = { error };
    stop.abort(error);
  };
  const runLane = async (items: readonly T[], limit: number) => {
    let next = 0;
    const worker = async () => {
      while (!failed && next < items.length) {
        if (signal.aborted) return fail(signal.reason);
        const item = items[next++];
        try {
          await work(item, stop.signal);
        } catch (error) {
          fail(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  };
  try {
    await Promise.all(lanes.map((lane) => runLane(lane.items, lane.limit)));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (failed) throw failed.error;
}

/**
 * Writes a small restored file with its mode and mtime, synchronously: five thread-pool hops
 * per file cost more main-thread time than the syscalls themselves (measured).
 */
function writeSmallFile(target: string, data: Buffer, file: ManifestFile): void {
  const fd = openSync(target, 'wx', 0o600);
  try {
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    if (process.platform !== 'win32') fchmodSync(fd, file.mode & RESTORED_FILE_MODE_BITS);
    // Seconds as a number keep sub-millisecond precision that a Date would drop.
    futimesSync(fd, file.mtimeMs / 1000, file.mtimeMs / 1000);
  } finally {
    closeSync(fd);
  }
}

const discard = () =>
  new Writable({
    highWaterMark: 1 << 20,
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

/** The failure of a restore or verify whose worker thread stopped: none of the entries it held can be trusted. */
function threadStoppedFailure(error: ThreadStoppedError, restoring: boolean): FileStoreError {
  return new FileStoreError(
    `${restoring ? 'The restore' : 'The verification'} stopped: ${error.message}.\n` +
      (restoring
        ? 'Nothing was changed: the restore stopped while extracting into its staging folders, which were removed; no destination folder was touched.\n'
        : 'The backup was not verified (this says nothing about whether it is damaged).\n') +
      `Run the ${restoring ? 'restore' : 'verification'} again; if it stops again, check the memory free on this machine and run it with --verbose.`,
    { cause: error },
  );
}

/** The failure of a restore that met a damaged entry: which one, that nothing changed, what to do. */
function damagedBackupFailure(problem: string, cause?: unknown): FileStoreError {
  return new FileStoreError(
    `The backup is damaged: ${problem}.\n` +
      'Nothing was changed: the restore stopped while extracting into its staging folders, which were removed; no destination folder was touched.\n' +
      DAMAGED_BACKUP_ADVICE,
    { cause },
  );
}

type StreamOptions = {
  signal: AbortSignal;
  onProgress: (p: FileStoreProgress) => void;
  targetOf?: (file: ManifestFile) => string;
  stopAtFirstMismatch: boolean;
  /** Where small entries are inflated, hashed and written, and large stored ones copied; without them, on this thread. */
  threads?: EntryThreads;
};

/** The worker threads, or none (then the main thread does all the work) when they cannot be started. */
function startThreads(log: Pick<EngineContext['log'], 'verbose'>, createWorker?: CreateWorker): EntryThreads | undefined {
  try {
    // Four 1 MiB slots and one for an entry up to the limit: 8 MiB of shared memory, not 16.
    return startEntryThreads({ slots: PARALLEL_SMALL_ENTRIES, slotSize: 1024 * 1024, largeSlots: 1, largeSlotSize: SMALL_ENTRY_STORED_LIMIT }, createWorker);
  } catch (error) {
    log.verbose(`Worker threads could not be started (${(error as Error).message}); every file is inflated, hashed and written on the main thread.`);
    return undefined;
  }
}

/** The most stored (compressed) bytes of an entry read whole. */
const SMALL_ENTRY_STORED_LIMIT = WHOLE_ENTRY_LIMIT + 1024;

function isSmallEntry(entry: ArchiveEntry): boolean {
  return entry.size <= WHOLE_ENTRY_LIMIT && entry.compressedSize <= SMALL_ENTRY_STORED_LIMIT;
}

/** Reads one entry, hashing it and writing it to `target` (small entries only when the hash matches). */
async function readEntry(
  archive: OpenedArchive,
  entry: ArchiveEntry,
  file: ManifestFile,
  target: string | undefined,
  progress: FileStoreProgress,
  options: StreamOptions,
): Promise<{ sha256: string; length: number }> {
  const small = isSmallEntry(entry);
  if (small && options.threads) {
    const result = await options.threads.runSmall({
      fill: (into) => archive.readStoredInto(entry, into),
      storedSize: entry.compressedSize,
      method: entry.raw.compressionMethod,
      size: entry.size,
      expectedSha256: file.sha256,
      target,
      mode: file.mode & RESTORED_FILE_MODE_BITS,
      mtimeMs: file.mtimeMs,
    });
    progress.bytesDone += result.length;
    return result;
  }
  if (small) {
    const chunks: Buffer[] = [];
    for await (const chunk of await archive.openRawEntry(entry)) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    // maxOutputLength: an entry that inflates to more than it claims is refused, not held.
    // One output chunk per entry: zlib's default 16 KiB chunks cost a thread-pool hop each.
    const data =
      entry.raw.compressionMethod === 8
        ? await inflateRawAsync(raw, { maxOutputLength: Math.max(1, entry.size + 1), chunkSize: Math.max(16 * 1024, entry.size + 1024) })
        : raw;
    options.signal.throwIfAborted();
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (target && sha256 === file.sha256) writeSmallFile(target, data, file);
    progress.bytesDone += data.length;
    return { sha256, length: data.length };
  }
  if (options.threads && entry.raw.compressionMethod === 0 && entry.compressedSize === entry.size) {
    const start = await archive.dataStart(entry);
    const onBytes = (bytes: number) => {
      progress.bytesDone += bytes;
      options.onProgress(progress);
    };
    const job = { kind: 'stored' as const, archivePath: archive.path, start, size: entry.size, target, mode: file.mode & RESTORED_FILE_MODE_BITS, mtimeMs: file.mtimeMs };
    return options.threads.copyStored(job, onBytes);
  }
  const hasher = new HashingCounter((bytes) => {
    progress.bytesDone += bytes;
    options.onProgress(progress);
  });
  const source = await archive.openEntry(entry);
  const sink = target ? (await fs.open(target, 'wx', 0o600)).createWriteStream({ highWaterMark: 1 << 20 }) : discard();
  await pipeline(source, hasher, sink, { signal: options.signal });
  if (target) {
    if (process.platform !== 'win32') await fs.chmod(target, file.mode & RESTORED_FILE_MODE_BITS);
    // Seconds as a number keep sub-millisecond precision that a Date would drop.
    await fs.utimes(target, file.mtimeMs / 1000, file.mtimeMs / 1000);
  }
  return { sha256: hasher.digest(), length: hasher.bytes };
}

/**
 * Streams each file out of its archive, checks its SHA-256 and size, and hands it to `target`
 * (a file to write) or discards it. Returns the files whose data is damaged: a hash or size that
 * does not match, or compressed data that cannot be inflated.
 */
async function streamFiles(check: ChainCheck, files: readonly ManifestFile[], options: StreamOptions): Promise<string[]> {
  const mismatches: string[] = [];
  const progress: FileStoreProgress = { bytesDone: 0, bytesTotal: files.reduce((s, f) => s + f.size, 0), filesDone: 0, filesTotal: files.length };
  options.onProgress(progress);
  const damaged = (problem: string, cause?: unknown) => {
    mismatches.push(problem);
    if (options.stopAtFirstMismatch) throw damagedBackupFailure(problem, cause);
  };
  const entryOf = (file: ManifestFile) => check.archives.get(file.archive)!.entries.get(`${file.folder}/${file.path}`)!;
  // Small and large entries side by side: the small ones cost file creations and inflating, the
  // large ones reading, hashing and writing; in archive order they would take turns.
  const small: ManifestFile[] = [];
  const large: ManifestFile[] = [];
  for (const file of files) (isSmallEntry(entryOf(file)) ? small : large).push(file);
  const lanes = [
    { items: small, limit: PARALLEL_SMALL_ENTRIES },
    { items: large, limit: PARALLEL_LARGE_ENTRIES },
  ];
  await forEachInLanes(lanes, options.signal, async (file, laneSignal) => {
    const entryName = `${file.folder}/${file.path}`;
    const archive = check.archives.get(file.archive)!;
    const entry = entryOf(file);
    try {
      const { sha256, length } = await readEntry(archive, entry, file, options.targetOf?.(file), progress, { ...options, signal: laneSignal });
      if (sha256 !== file.sha256 || length !== file.size) {
        damaged(`${file.archive}: ${entryName} does not match its manifest (${length} bytes, SHA-256 ${sha256.slice(0, 12)}…, expected ${file.sha256.slice(0, 12)}…)`);
      }
    } catch (error) {
      if (error instanceof ThreadStoppedError && !options.signal.aborted) throw threadStoppedFailure(error, options.targetOf !== undefined);
      // zlib's and yauzl's errors on the entry's bytes mean a damaged archive, not a bug; a
      // cancel or a disk error is reported as it is.
      const reason = error instanceof StepFailure || options.signal.aborted ? undefined : damagedEntryReason(error);
      if (!reason) throw error;
      damaged(`${file.archive}: ${entryName} cannot be read: ${reason}`, error);
    }
    progress.filesDone += 1;
    options.onProgress(progress);
    // A failure or a cancel ends the threads at once: a large copy in flight stops between chunks.
  }, () => void options.threads?.close());
  return mismatches;
}

export interface VerifyOptions {
  /** Byte and file counts as they change; by default they go to the context's progress bar. */
  onProgress?: (progress: FileStoreProgress) => void;
  /** Only these folders (default: all in the set). */
  include?: readonly FileStoreFolderName[];
  /** Creates each worker thread from its source (tests give ones that fail). */
  createWorker?: CreateWorker;
}

export interface VerifyResult {
  ok: boolean;
  problems: string[];
  set: BackupSet;
  files: number;
  bytes: number;
}

/**
 * Checks a backup set without restoring it: every archive of the chain opens, no entry is
 * unsafe, every file of the manifest is present and its SHA-256 matches. Nothing is written.
 */
export async function verifyFileStoreBackup(source: string, options: VerifyOptions = {}, context: EngineContext = quietEngineContext()): Promise<VerifyResult> {
  // Before any thread starts (heap.ts): the first file-store run of the process chooses.
  chooseHeapSettingsOnce('read');
  return verifyBackupSet(source, options, context);
}

async function verifyBackupSet(source: string, options: VerifyOptions, context: EngineContext): Promise<VerifyResult> {
  const set = await resolveBackupSource(source);
  const files = set.manifest.files.filter((f) => !options.include || options.include.includes(f.folder));
  const check = await checkChain(set, files, process.platform === 'win32');
  try {
    const problems = [...check.problems];
    if (problems.length === 0) {
      const onProgress = options.onProgress ?? progressReporter(context, 'Verified');
      const threads = startThreads(context.log, options.createWorker);
      try {
        for (const problem of await streamFiles(check, files, { signal: context.signal, onProgress, stopAtFirstMismatch: false, threads })) problems.push(problem);
      } finally {
        await threads?.close();
      }
    }
    return { ok: problems.length === 0, problems, set, files: files.length, bytes: files.reduce((s, f) => s + f.size, 0) };
  } finally {
    closeAll(check);
  }
}

/** The failure of a verification that found problems: each problem, then what to do. */
export function verificationFailure(result: VerifyResult): FileStoreError {
  return new FileStoreError(
    `The backup ${result.set.archivePath} failed verification (${result.problems.length} problem(s)):\n${result.problems.slice(0, 50).map((p) => `  - ${p}`).join('\n')}\n${DAMAGED_BACKUP_ADVICE}`,
  );
}

export interface RestoreOptions {
  set: BackupSet;
  /** On a failure while swapping folders in, put back the ones already swapped (default true). */
  rollBackOnFailure?: boolean;
  /** The destination of each folder to restore (already filtered by what to include). */
  destinations: readonly ResolvedFolder[];
  replaceExisting: boolean;
  dryRun: boolean;
  /** Byte and file counts as they change; by default they go to the context's progress bar. */
  onProgress?: (progress: FileStoreProgress) => void;
  now?: () => Date;
  /** Zip-slip rules for Windows (defaults to the platform's). */
  windows?: boolean;
  /** Creates each worker thread from its source (tests give ones that fail). */
  createWorker?: CreateWorker;
}

export interface RestoredFolder {
  name: FileStoreFolderName;
  destination: string;
  /** Where the previous content went, if there was any. */
  movedAsideTo?: string;
  files: number;
  bytes: number;
}

export interface RestoreResult {
  folders: RestoredFolder[];
  files: number;
  bytes: number;
  dryRun: boolean;
}

/** What a destination holds (on a mount point, `lost+found` belongs to the filesystem, not to Octopus). */
async function contentNames(folder: string, mountPoint: boolean): Promise<string[]> {
  const names = await fs.readdir(folder);
  return mountPoint ? names.filter((n) => n !== 'lost+found') : names;
}

type DestinationPlan = RestoredFolder & SwapPlan;

function restoredFolders(plans: readonly DestinationPlan[]): RestoredFolder[] {
  return plans.map(({ existing: _e, staging: _s, inPlace: _i, ...rest }) => rest);
}

/**
 * 1. Destinations: what each holds, where its staging folder and its previous content go; a
 * non-empty one is refused unless replacing was asked for. The plan is shown even when it is
 * refused, so a dry run says what a real run would do.
 */
async function planDestinations(
  options: RestoreOptions,
  files: readonly ManifestFile[],
  names: { stamp: string; run: string },
  log: EngineContext['log'],
): Promise<DestinationPlan[]> {
  const { stamp, run } = names;
  const refusals: string[] = [];
  // In place: the destination is a mount point (the Linux container's volumes), which cannot be
  // renamed; staging and the moved-aside content then live inside it, on the same filesystem.
  const plans: DestinationPlan[] = [];
  for (const destination of options.destinations) {
    const folderFiles = files.filter((f) => f.folder === destination.name);
    let existing: 'none' | 'empty' | 'content' = 'none';
    let inPlace = false;
    try {
      const stat = await fs.stat(destination.path);
      if (!stat.isDirectory()) refusals.push(`${destination.name}: ${destination.path} exists and is not a folder; move it away first.`);
      else {
        const parent = await fs.stat(path.dirname(destination.path));
        inPlace = parent.dev !== stat.dev;
        existing = (await contentNames(destination.path, inPlace)).length === 0 ? 'empty' : 'content';
      }
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') refusals.push(`${destination.name}: ${destination.path} cannot be read (${errnoOf(error)}).`);
    }
    const movedAsideTo = inPlace ? path.join(destination.path, `.octopus-dr-before-restore-${stamp}`) : `${destination.path}.before-restore-${stamp}`;
    if (existing === 'content' && !options.replaceExisting) {
      refusals.push(
        `${destination.name}: ${destination.path} is not empty. Set "${labels.replaceExisting}" to restore over it (its content is moved aside to ${movedAsideTo}, not deleted), or restore into an empty or new folder.`,
      );
    }
    plans.push({
      name: destination.name,
      destination: destination.path,
      existing,
      inPlace,
      // A random part: a killed restore's staging folder of the same second must not be reused.
      staging: inPlace ? path.join(destination.path, `.octopus-dr-restore-staging-${stamp}-${run}`) : `${destination.path}.restore-staging-${stamp}-${run}`,
      ...(existing === 'content' ? { movedAsideTo } : {}),
      files: folderFiles.length,
      bytes: folderFiles.reduce((s, f) => s + f.size, 0),
    });
  }
  for (const plan of plans) {
    const refused = plan.existing === 'content' && !options.replaceExisting;
    log.info(
      `${plan.name}: ${plan.files} files (${formatBytes(plan.bytes)}) to ${plan.destination}` +
        (refused ? ' (refused: not empty)' : plan.movedAsideTo ? `; its current content will be moved aside to ${plan.movedAsideTo}` : ''),
    );
  }
  if (refusals.length > 0) {
    const heading = options.dryRun ? 'Dry run: a restore would be refused, and nothing was written' : 'Nothing was restored';
    throw new FileStoreError(`${heading}:\n${refusals.map((r) => `  - ${r}`).join('\n')}`);
  }
  return plans;
}

/** 2. Check: every archive and record, before anything is written. */
async function checkBeforeWriting(set: BackupSet, files: readonly ManifestFile[], windows: boolean): Promise<ChainCheck> {
  const check = await checkChain(set, files, windows);
  if (check.problems.length > 0) {
    closeAll(check);
    const shown = check.problems.slice(0, 50).map((p) => `  - ${p}`).join('\n');
    throw new FileStoreError(
      `The backup was refused before anything was written (${check.problems.length} problem(s)):\n${shown}${check.problems.length > 50 ? '\n  - ...' : ''}\n${DAMAGED_BACKUP_ADVICE}`,
    );
  }
  return check;
}

/** 3. Extract into the staging folders, checking every hash; then the folders' modes and times. */
async function extractIntoStaging(
  check: ChainCheck,
  set: BackupSet,
  plans: readonly DestinationPlan[],
  content: { files: readonly ManifestFile[]; directories: readonly ManifestDirectory[] },
  context: EngineContext,
  onProgress: (p: FileStoreProgress) => void,
  threads: EntryThreads | undefined,
): Promise<void> {
  const { signal } = context;
  const stagings = plans.map((p) => p.staging);
  const stagingOf = new Map(plans.map((p) => [p.name, p.staging]));
  for (const staging of stagings) {
    await fs.mkdir(path.dirname(staging), { recursive: true });
    await fs.mkdir(staging);
  }
  const inside = (folder: FileStoreFolderName, relative: string) => {
    const root = stagingOf.get(folder)!;
    const target = path.join(root, ...relative.split('/'));
    // Belt and braces: the names were checked, but never write outside the staging folder.
    if (!target.startsWith(root + path.sep)) throw new FileStoreError(`Refused to write ${target} outside ${root}.`);
    return target;
  };
  for (const d of content.directories) await fs.mkdir(inside(d.folder, d.path), { recursive: true });
  const parents = new Set<string>();
  for (const f of content.files) parents.add(path.dirname(inside(f.folder, f.path)));
  for (const parent of parents) await fs.mkdir(parent, { recursive: true });

  await streamFiles(check, content.files, { signal, onProgress, targetOf: (f) => inside(f.folder, f.path), stopAtFirstMismatch: true, threads }).catch((error: unknown) => {
    // A write error (a full disk) often carries no path: name the staging folder, and that nothing was swapped in.
    if (signal.aborted) throw error;
    throw fileFailure(error, {
      path: (error as NodeJS.ErrnoException).path ?? stagings.join(', '),
      what: `extracting the backup into ${stagings.join(', ')} (nothing was restored; the staging folders are removed)`,
    });
  });
  // Folder mtimes last (writing files changes them), deepest first.
  const ordered = [...content.directories].sort((a, b) => b.path.split('/').length - a.path.split('/').length);
  for (const d of ordered) {
    const target = inside(d.folder, d.path);
    if (process.platform !== 'win32') await fs.chmod(target, d.mode & 0o7777);
    await fs.utimes(target, d.mtimeMs / 1000, d.mtimeMs / 1000);
  }
  for (const folder of set.manifest.folders) {
    const root = stagingOf.get(folder.name);
    if (!root || folder.mtimeMs === undefined) continue;
    if (process.platform !== 'win32' && folder.mode !== undefined) await fs.chmod(root, folder.mode & 0o7777);
    await fs.utimes(root, folder.mtimeMs / 1000, folder.mtimeMs / 1000);
  }
  signal.throwIfAborted();
}

/**
 * 4. Swap: move what is there aside, then the staging folder in, folder by folder. A cancel
 * stops between folders; a failure puts back the folders already swapped (unless asked not to).
 */
async function swapIn(set: BackupSet, plans: readonly DestinationPlan[], options: { rollBack: boolean; stamp: string }, context: EngineContext): Promise<void> {
  const { log, signal } = context;
  const done: SwapRecord[] = [];
  try {
    for (const plan of plans) {
      if (done.length > 0) signal.throwIfAborted();
      const record: SwapRecord = { plan, removedEmpty: false, movedOut: [], movedIn: [], complete: false };
      done.push(record);
      if (plan.inPlace) {
        // A mount point stays; its entries move, each rename atomic on the one filesystem.
        const own = new Set([path.basename(plan.staging), plan.movedAsideTo ? path.basename(plan.movedAsideTo) : '']);
        if (plan.existing === 'content') {
          await fs.mkdir(plan.movedAsideTo!);
          for (const name of await contentNames(plan.destination, true)) {
            if (own.has(name)) continue;
            await fs.rename(path.join(plan.destination, name), path.join(plan.movedAsideTo!, name));
            record.movedOut.push(name);
          }
        }
        // A rename replaces a file of the same name without a word: whatever was written into the
        // volume since the plan (an Octopus Server left running, another restore) is refused, not
        // replaced. Before, a file written there while the backup was extracted was overwritten, exit 0.
        const appeared = (await contentNames(plan.destination, true)).filter((n) => !own.has(n));
        if (appeared.length > 0) throw writtenMeanwhile(plan, appeared);
        for (const name of await fs.readdir(plan.staging)) {
          const target = path.join(plan.destination, name);
          if (await fs.lstat(target).then(() => true, () => false)) throw writtenMeanwhile(plan, [name]);
          await fs.rename(path.join(plan.staging, name), target);
          record.movedIn.push(name);
        }
        await fs.rmdir(plan.staging);
        const folder = set.manifest.folders.find((f) => f.name === plan.name);
        if (folder?.mtimeMs !== undefined) await fs.utimes(plan.destination, folder.mtimeMs / 1000, folder.mtimeMs / 1000);
      } else {
        if (plan.existing === 'content') await fs.rename(plan.destination, plan.movedAsideTo!);
        else if (plan.existing === 'empty') {
          await fs.rmdir(plan.destination);
          record.removedEmpty = true;
        }
        await fs.rename(plan.staging, plan.destination);
      }
      record.complete = true;
      log.verbose(`${plan.name}: restored into ${plan.destination}`);
    }
  } catch (error) {
    throw await swapFailure(error, done, plans, { signal, rollBack: options.rollBack, stamp: options.stamp, log });
  }
}

/** Something written into a volume (a mount point) while the restore ran: never replaced. */
function writtenMeanwhile(plan: SwapPlan, names: readonly string[]): FileStoreError {
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
  return new FileStoreError(
    `${plan.destination} ${plan.existing === 'content' ? 'had its content moved aside' : 'was empty when the restore began'}, and now holds ${shown}, written there while the restore ran ` +
      '(an Octopus Server still running, or another restore); it was not restored over, since that would replace what was written without a word',
  );
}

export async function restoreFileStore(options: RestoreOptions, context: EngineContext): Promise<RestoreResult> {
  // Before any thread starts (heap.ts): the first file-store run of the process chooses.
  chooseHeapSettingsOnce('read');
  return restoreBackupSet(options, context);
}

async function restoreBackupSet(options: RestoreOptions, context: EngineContext): Promise<RestoreResult> {
  const { set } = options;
  const { log } = context;
  const windows = options.windows ?? process.platform === 'win32';
  const stamp = utcStamp((options.now ?? (() => new Date()))());
  const run = randomBytes(3).toString('hex');
  const selected = new Set(options.destinations.map((d) => d.name));
  const files = set.manifest.files.filter((f) => selected.has(f.folder));
  const directories = set.manifest.directories.filter((d) => selected.has(d.folder));

  const plans = await planDestinations(options, files, { stamp, run }, log);
  const check = await checkBeforeWriting(set, files, windows);
  try {
    const totals = { files: files.length, bytes: files.reduce((s, f) => s + f.size, 0) };
    if (options.dryRun) {
      log.info(`Dry run: the backup chain (${set.manifest.chain.join(', ')}) is complete and safe; nothing was written.`);
      return { folders: restoredFolders(plans), ...totals, dryRun: true };
    }
    const stagings = plans.map((p) => p.staging);
    let swapped = false;
    const threads = startThreads(log, options.createWorker);
    const unregister = context.onCleanup(async () => {
      if (!swapped) for (const staging of stagings) await fs.rm(staging, { recursive: true, force: true });
    });
    // Registered last, so it runs first: no thread writes into a staging folder being removed.
    const unregisterThreads = context.onCleanup(async () => threads?.close());
    try {
      await extractIntoStaging(check, set, plans, { files, directories }, context, options.onProgress ?? progressReporter(context, 'Restored'), threads);
      await threads?.close();
      await swapIn(set, plans, { rollBack: options.rollBackOnFailure ?? true, stamp }, context);
      swapped = true;
    } finally {
      await threads?.close();
      if (!swapped) for (const staging of stagings) await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
      unregisterThreads();
      unregister();
    }
    for (const plan of plans) {
      if (plan.inPlace && plan.movedAsideTo) {
        log.warn(`${plan.name}: the previous content is in ${plan.movedAsideTo}, inside the volume; move it off the volume once the restore is checked.`);
      }
    }
    return { folders: restoredFolders(plans), ...totals, dryRun: false };
  } finally {
    closeAll(check);
  }
}

interface SwapPlan {
  name: FileStoreFolderName;
  destination: string;
  movedAsideTo?: string;
  existing: 'none' | 'empty' | 'content';
  staging: string;
  inPlace: boolean;
}

interface SwapRecord {
  plan: SwapPlan;
  removedEmpty: boolean;
  movedOut: string[];
  movedIn: string[];
  /** The restored content is in place. */
  complete: boolean;
}

/** Puts one folder back as it was before its swap; returns what went wrong, if anything. */
async function undoSwap(record: SwapRecord): Promise<string | undefined> {
  const { plan } = record;
  try {
    if (plan.inPlace) {
      await fs.mkdir(plan.staging, { recursive: true });
      for (const name of record.movedIn) await fs.rename(path.join(plan.destination, name), path.join(plan.staging, name));
      for (const name of record.movedOut) await fs.rename(path.join(plan.movedAsideTo!, name), path.join(plan.destination, name));
      if (plan.movedAsideTo) await fs.rmdir(plan.movedAsideTo).catch(() => undefined);
      return undefined;
    }
    if (!(await exists(plan.staging)) && (await exists(plan.destination))) await fs.rename(plan.destination, plan.staging);
    if (plan.movedAsideTo && (await exists(plan.movedAsideTo))) await fs.rename(plan.movedAsideTo, plan.destination);
    if (record.removedEmpty && !(await exists(plan.destination))) await fs.mkdir(plan.destination);
    return undefined;
  } catch (error) {
    return `${plan.name}: ${(error as Error).message}`;
  }
}

/** A command argument quoted for the shell of this platform (PowerShell on Windows). */
function quoted(value: string): string {
  return process.platform === 'win32' ? `'${value.replace(/'/g, "''")}'` : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The commands that put a swapped folder back (the restored content is kept beside it, not deleted). */
function putBackCommand(plan: SwapPlan, stamp: string): string {
  const restoredCopy = `${plan.destination}.restored-${stamp}`;
  if (plan.inPlace) {
    return `${plan.name}: move the entries of ${plan.destination} (except ${path.basename(plan.movedAsideTo ?? '')}) into a new folder, then the entries of ${plan.movedAsideTo ?? '(nothing was there)'} back into ${plan.destination}.`;
  }
  if (process.platform === 'win32') {
    const steps = [`Rename-Item -LiteralPath ${quoted(plan.destination)} -NewName ${quoted(path.basename(restoredCopy))}`];
    if (plan.movedAsideTo) steps.push(`Rename-Item -LiteralPath ${quoted(plan.movedAsideTo)} -NewName ${quoted(path.basename(plan.destination))}`);
    else if (plan.existing === 'empty') steps.push(`New-Item -ItemType Directory -Path ${quoted(plan.destination)}`);
    return steps.join('; ');
  }
  const steps = [`mv ${quoted(plan.destination)} ${quoted(restoredCopy)}`];
  if (plan.movedAsideTo) steps.push(`mv ${quoted(plan.movedAsideTo)} ${quoted(plan.destination)}`);
  else if (plan.existing === 'empty') steps.push(`mkdir ${quoted(plan.destination)}`);
  return steps.join(' && ');
}

function restoredLine(plan: SwapPlan): string {
  const before = plan.movedAsideTo ? `its previous content is kept in ${plan.movedAsideTo}` : plan.existing === 'empty' ? 'it was empty before' : 'it did not exist before';
  return `  - restored: ${plan.name} (${plan.destination}); ${before}`;
}

/**
 * The failure of a swap that stopped part-way: the folder being swapped is always put back (a
 * folder is either restored or as it was, never missing); the folders already swapped are put
 * back on a failure unless asked not to, never on a cancel. The message says which folders hold
 * what, where the previous content is, and how to put it back.
 */
async function swapFailure(
  error: unknown,
  done: SwapRecord[],
  plans: readonly SwapPlan[],
  options: { signal: AbortSignal; rollBack: boolean; stamp: string; log: EngineContext['log'] },
): Promise<StepFailure> {
  const cancelled = options.signal.aborted;
  const exitCode = cancelled ? (options.signal.reason instanceof StepFailure ? options.signal.reason.exitCode : 143) : 1;
  const problems: string[] = [];
  const current = done.find((r) => !r.complete);
  if (current) {
    const problem = await undoSwap(current);
    if (problem) problems.push(problem);
  }
  let swappedIn = done.filter((r) => r.complete);
  const what = cancelled
    ? `Cancelled (${exitCode === 130 ? 'SIGINT' : 'SIGTERM'}) while swapping the restored folders in.`
    : `Swapping the restored folders in failed at ${current?.plan.name ?? 'a folder'} (${(error as Error).message}).`;
  if (!cancelled && options.rollBack) {
    for (const record of [...swappedIn].reverse()) {
      options.log.warn(`Rolling back ${record.plan.name}: putting its previous content back into ${record.plan.destination}.`);
      const problem = await undoSwap(record);
      if (problem) problems.push(problem);
      else swappedIn = swappedIn.filter((r) => r !== record);
    }
    if (problems.length === 0) {
      return new FileStoreError(
        `${what}\nRolled back: ${plans.map((p) => p.name).join(', ')} hold their previous content again, as before the restore (nothing was lost). ` +
          'Fix the cause (e.g. stop the Octopus Server on every node so that nothing holds a file open, and check this account may rename folders there), then run the restore again.',
        { exitCode, cause: error },
      );
    }
  }
  const untouched = plans.filter((p) => !swappedIn.some((r) => r.plan === p));
  const lines = [
    what,
    cancelled
      ? 'A cancel does not roll back; the restore is left half-done:'
      : options.rollBack
        ? `Rolling back failed (${problems.join('; ')}); the restore is left half-done:`
        : `"${labels.rollBackOnFailure}" is off, so the restore is left half-done:`,
    ...swappedIn.map((r) => restoredLine(r.plan)),
    ...(untouched.length ? [`  - still their previous content: ${untouched.map((p) => `${p.name} (${p.destination})`).join(', ')}`] : []),
    ...(problems.length && !options.rollBack ? [`  - could not be checked: ${problems.join('; ')}`] : []),
  ];
  if (swappedIn.length === 0) {
    lines.push('Nothing was changed. Fix the cause, then run the restore again.');
  } else {
    lines.push(
      'Run the restore again to finish it, or put the restored folders back as they were (stop the Octopus Server first; the restored content is kept beside them):',
      ...swappedIn.map((r) => `  ${putBackCommand(r.plan, options.stamp)}`),
    );
  }
  return new FileStoreError(lines.join('\n'), { exitCode, cause: error });
}
