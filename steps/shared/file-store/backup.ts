// Backs up file-store folders into one ZIP per set (full, or incremental against the newest
// set in the same directory), with a manifest inside and beside it. The archive is written
// under a temporary name and renamed only when complete, so an interrupted backup leaves
// nothing that looks like a backup.
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, fstatSync, openSync, promises as fs, readSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { StepFailure } from '../runtime/errors';
import { describeFileError } from '../runtime/failure';
import { writeFileAtomically } from '../runtime/files';
import { cleanLeftovers } from '../runtime/leftovers';
import type { ResolvedFolder } from './folders';
import {
  archiveNameFor,
  isPartialName,
  listBackupSets,
  manifestNameFor,
  MANIFEST_ENTRY_NAME,
  MANIFEST_FORMAT,
  type BackupMode,
  type BackupSet,
  type FileStoreManifest,
  type ManifestFile,
} from './manifest';
import { scanFolder, type ScannedDirectory, type ScannedFile, type ScanProblem } from './scan';
import { formatBytes } from '../runtime/format';
import { openArchive } from './zip-reader';
import { StreamingZipWriter } from './zip-writer';

/** Files up to this size are read whole and compressed on the thread pool; larger ones stream. */
export const BUFFERED_FILE_LIMIT = 4 * 1024 * 1024;
const READ_AHEAD_FILES = 16;
/** ...and at most this many bytes of them. */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;
/** A file modified this close to the previous backup may have changed within the same mtime tick. */
const RACY_WINDOW_MS = 2000;

export interface FileStoreProgress {
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
}

export interface BackupLogger {
  info(message: string): void;
  verbose(message: string): void;
  warn(message: string): void;
}

export interface BackupOptions {
  folders: readonly ResolvedFolder[];
  backupDirectory: string;
  mode: BackupMode;
  skipUnreadable: boolean;
  /** A backup of 0 files succeeds only when asked for (each folder must exist either way). */
  allowEmpty?: boolean;
  toolVersion: string;
  log: BackupLogger;
  signal?: AbortSignal;
  onProgress?: (progress: FileStoreProgress) => void;
  now?: () => Date;
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

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'ERROR';
}

function isUnreadable(code: string): boolean {
  return code === 'EACCES' || code === 'EPERM' || code === 'EBUSY';
}

/**
 * Reads a small file whole; a file that changes while read is read once more. Synchronous on
 * purpose: each thread-pool hop costs ~0.1 ms of main-thread time (measured), more than the
 * syscalls of a small cached file, and five hops per file made 1,000 task logs take 3.6 s.
 */
function readWholeFile(file: ScannedFile, retry = true): ReadOutcome {
  let fd: number;
  try {
    fd = openSync(file.localPath, 'r');
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT') return { kind: 'vanished' };
    return { kind: 'unreadable', message: `${code}: ${(error as Error).message}` };
  }
  try {
    const before = fstatSync(fd);
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
      return readWholeFile(file, false);
    }
    const data = buffer.subarray(0, Math.min(length, before.size));
    return { kind: 'read', data, sha256: createHash('sha256').update(data).digest('hex'), mtimeMs: before.mtimeMs, mode: before.mode & 0o7777, changed };
  } catch (error) {
    return { kind: 'unreadable', message: `${errnoOf(error)}: ${(error as Error).message}` };
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

async function hashFile(localPath: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(localPath, 'r');
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false })) {
      signal?.throwIfAborted();
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
      problems.push({ folder: f.folder, path: f.path, code, kind: code === 'ENOENT' ? 'vanished' : 'unreadable', message: `${code}: ${(error as Error).message}` });
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
  throw new StepFailure(`Too many backups named for ${now.toISOString()} in ${directory}.`);
}

/** Every missing folder, on one line with the fix; an intentionally empty folder must still exist. */
function missingFoldersMessage(missing: readonly ResolvedFolder[]): string {
  const names = missing.map((f) => `${f.name} folder ${f.path}`).join(', ');
  const fromHome = missing.some((f) => f.origin === 'home');
  return (
    `${names} ${missing.length === 1 ? 'does' : 'do'} not exist, so nothing was backed up. Correct ` +
    `${fromHome ? '"Octopus home directory" or ' : ''}"File store folders", create a folder this server really keeps empty ` +
    `(an empty folder is backed up as empty), or leave ${missing.map((f) => f.name).join(', ')} out of "Folders to back up".`
  );
}

function describe(problem: ScanProblem): string {
  return `${problem.folder}/${problem.path}${problem.path ? ' ' : ''}(${problem.message})`;
}

export async function backupFileStore(options: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const now = (options.now ?? (() => new Date()))();
  const { log, signal } = options;
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    log.warn(message);
  };

  // A backup directory inside a folder being backed up would archive its own archives.
  for (const folder of options.folders) {
    const relative = path.relative(path.resolve(folder.path), path.resolve(options.backupDirectory));
    if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
      throw new StepFailure(`The backup directory ${options.backupDirectory} is inside the ${folder.name} folder ${folder.path}; choose a backup directory outside the file store.`, { exitCode: 2 });
    }
  }

  // 1. Scan.
  const files: ScannedFile[] = [];
  const directories: ScannedDirectory[] = [];
  const problems: ScanProblem[] = [];
  const folderSummaries: FileStoreManifest['folders'] = [];
  const missing: ResolvedFolder[] = [];
  for (const folder of options.folders) {
    signal?.throwIfAborted();
    let rootStat;
    try {
      rootStat = await fs.stat(folder.path);
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT') {
        missing.push(folder);
        continue;
      }
      throw new StepFailure(`${folder.name} folder ${folder.path} cannot be read (${code}). Give the worker's account read access.`);
    }
    if (!rootStat.isDirectory()) throw new StepFailure(`${folder.name} path ${folder.path} is not a folder.`);
    const scanned = await scanFolder(folder.name, folder.path, signal);
    const unreadable = checkReadable(scanned.files);
    const unreadableKeys = new Set(unreadable.map((p) => p.path));
    const kept = scanned.files.filter((f) => !unreadableKeys.has(f.path));
    files.push(...kept);
    directories.push(...scanned.directories);
    problems.push(...scanned.problems, ...unreadable);
    folderSummaries.push({
      name: folder.name,
      source: folder.path,
      files: kept.length,
      bytes: kept.reduce((sum, f) => sum + f.size, 0),
      mtimeMs: rootStat.mtimeMs,
      mode: rootStat.mode & 0o7777,
    });
    log.verbose(`${folder.name}: ${kept.length} files, ${scanned.directories.length} folders in ${folder.path}`);
  }
  if (missing.length > 0) throw new StepFailure(missingFoldersMessage(missing));
  const skipped: FileStoreManifest['skipped'] = [];
  const unreadable = problems.filter((p) => p.kind === 'unreadable');
  if (unreadable.length > 0) {
    const list = unreadable.map((p) => `  - ${describe(p)}`).join('\n');
    if (!options.skipUnreadable) {
      throw new StepFailure(
        `${unreadable.length} file(s) or folder(s) cannot be read:\n${list}\nGive the worker's account read access, or set "Skip unreadable files" to back up the rest.`,
      );
    }
    warn(`${unreadable.length} unreadable file(s) or folder(s) skipped:\n${list}`);
  }
  for (const p of problems) {
    if (p.kind !== 'unreadable') warn(`${p.folder}/${p.path} ${p.kind === 'vanished' ? 'vanished during the backup' : p.message}; not backed up.`);
    skipped.push({ folder: p.folder, path: p.path, reason: p.message });
  }

  if (files.length === 0 && !options.allowEmpty) {
    throw new StepFailure(
      `Nothing to back up: ${options.folders.map((f) => `${f.name} (${f.path})`).join(', ')} hold no files we can read. An Octopus Server's file store is ` +
        'not empty, so this is most likely the wrong "Octopus home directory" or "File store folders" path: correct it. ' +
        'If these folders really are empty (a new server), check "Allow an empty backup". Nothing was written.',
    );
  }
  await fs.mkdir(options.backupDirectory, { recursive: true });
  await cleanLeftovers(options.backupDirectory, isPartialName, 'a file-store backup', now, log);

  // 2. Plan: an incremental reuses files the previous set already has.
  let mode = options.mode;
  let previous: BackupSet | undefined;
  if (mode === 'Incremental') {
    const { sets } = await listBackupSets(options.backupDirectory);
    const usable: BackupSet[] = [];
    for (const set of sets) {
      const present = await Promise.all(set.manifest.chain.map((a) => fs.access(path.join(options.backupDirectory, a)).then(() => true, () => false)));
      if (!present.includes(false)) usable.push(set);
    }
    previous = usable.at(-1);
    if (!previous) {
      warn(`No earlier backup set in ${options.backupDirectory} to build on: taking a full backup.`);
      mode = 'Full';
    }
  }
  const previousFiles = new Map<string, ManifestFile>();
  if (previous) for (const f of previous.manifest.files) previousFiles.set(`${f.folder}/${f.path}`, f);
  const previousTime = previous ? Date.parse(previous.manifest.createdAt) : 0;

  const planned: PlannedFile[] = [];
  let hashedForPlan = 0;
  for (const scanned of files) {
    const before = previousFiles.get(`${scanned.folder}/${scanned.path}`);
    if (!before || before.size !== scanned.size) {
      planned.push({ scanned });
      continue;
    }
    const racy = scanned.mtimeMs >= previousTime - RACY_WINDOW_MS;
    if (before.mtimeMs === scanned.mtimeMs && !racy) {
      planned.push({ scanned, reuse: before });
      continue;
    }
    // Same size, but touched (or modified right around the last backup): only the hash can tell.
    signal?.throwIfAborted();
    try {
      const sha256 = await hashFile(scanned.localPath, signal);
      hashedForPlan += 1;
      planned.push(sha256 === before.sha256 ? { scanned, reuse: before } : { scanned });
    } catch (error) {
      if (signal?.aborted) throw error;
      planned.push({ scanned });
    }
  }
  if (hashedForPlan > 0) log.verbose(`Hashed ${hashedForPlan} file(s) whose mtime alone could not tell whether they changed.`);

  const toStore = planned.filter((p) => !p.reuse);
  const bytesTotal = toStore.reduce((sum, p) => sum + p.scanned.size, 0);
  const archiveName = await pickArchiveName(options.backupDirectory, now, mode);
  const archivePath = path.join(options.backupDirectory, archiveName);
  const chain = previous ? [...previous.manifest.chain, archiveName] : [archiveName];
  log.info(
    `${mode} backup of ${files.length} files (${toStore.length} to store, ${formatBytes(bytesTotal)}) into ${archivePath}` +
      (previous ? `, based on ${previous.manifest.archive}` : ''),
  );

  // 3. Write.
  const tempPath = path.join(options.backupDirectory, `.${archiveName}.partial`);
  const writer = new StreamingZipWriter(tempPath);
  const onAbort = () => void writer.abort(signal?.reason instanceof Error ? signal.reason : undefined).catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  let committed = false;
  // Large files opened for a stream the writer may never start (it failed first): closed on failure,
  // or Node warns about them on exit, after the step's last line.
  const openedHandles: fs.FileHandle[] = [];
  try {
    const progress: FileStoreProgress = { bytesDone: 0, bytesTotal, filesDone: 0, filesTotal: toStore.length };
    const report = () => options.onProgress?.(progress);
    report();

    for (const d of directories) writer.addDirectory(`${d.folder}/${d.path}/`, d);

    const manifestFiles = new Map<PlannedFile, ManifestFile>();
    const streamed: Promise<void>[] = [];
    const reads = new Map<number, ReadOutcome>();
    let nextRead = 0;
    const isSmall = (p: PlannedFile) => p.scanned.size <= BUFFERED_FILE_LIMIT;

    for (let i = 0; i < toStore.length; i++) {
      signal?.throwIfAborted();
      writer.throwIfFailed();
      // Read ahead: several small files are opened and read at once.
      let ahead = 0;
      for (let j = i; j < nextRead; j++) if (reads.has(j)) ahead += toStore[j].scanned.size;
      while (nextRead < toStore.length && nextRead < i + READ_AHEAD_FILES && (ahead < READ_AHEAD_BYTES || nextRead === i)) {
        if (isSmall(toStore[nextRead])) {
          reads.set(nextRead, readWholeFile(toStore[nextRead].scanned));
          ahead += toStore[nextRead].scanned.size;
        }
        nextRead += 1;
      }
      const item = toStore[i];
      const file = item.scanned;
      const name = `${file.folder}/${file.path}`;
      const record = (sha256: string, size: number, mtimeMs: number, mode: number) =>
        manifestFiles.set(item, { folder: file.folder, path: file.path, size, mtimeMs, mode, sha256, archive: archiveName });

      if (isSmall(item)) {
        const outcome = reads.get(i)!;
        reads.delete(i);
        if (outcome.kind === 'vanished') {
          warn(`${name} vanished during the backup; not backed up.`);
          skipped.push({ folder: file.folder, path: file.path, reason: 'vanished during the backup' });
        } else if (outcome.kind === 'unreadable') {
          if (!options.skipUnreadable) throw new StepFailure(`${name} cannot be read (${outcome.message}). Give the worker's account read access, or set "Skip unreadable files".`);
          warn(`${name} cannot be read (${outcome.message}); skipped.`);
          skipped.push({ folder: file.folder, path: file.path, reason: outcome.message });
        } else {
          if (outcome.changed) warn(`${name} kept changing while being read (read twice); the archive holds the copy read last.`);
          const meta = { mtimeMs: outcome.mtimeMs, mode: outcome.mode };
          if (writer.needsCheckpoint) {
            const data = outcome.data;
            const { done } = await writer.addStream(name, meta, () => new PassThrough().end(data));
            const tracked = done.then(() => undefined);
            tracked.catch(() => undefined);
            streamed.push(tracked);
          } else {
            writer.addBuffer(name, outcome.data, meta);
          }
          record(outcome.sha256, outcome.data.length, outcome.mtimeMs, outcome.mode);
          progress.bytesDone += outcome.data.length;
        }
        progress.filesDone += 1;
        report();
        continue;
      }

      // Large file: open now (so a vanished or unreadable file is known before it is added)
      // and stream it when yazl gets to it, reading no further than the size seen now.
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(file.localPath, 'r');
        openedHandles.push(handle);
      } catch (error) {
        const code = errnoOf(error);
        if (code === 'ENOENT') {
          warn(`${name} vanished during the backup; not backed up.`);
          skipped.push({ folder: file.folder, path: file.path, reason: 'vanished during the backup' });
        } else if (isUnreadable(code) && options.skipUnreadable) {
          warn(`${name} cannot be read (${code}); skipped.`);
          skipped.push({ folder: file.folder, path: file.path, reason: code });
        } else {
          throw new StepFailure(`${name} cannot be read (${code}: ${(error as Error).message}). Give the worker's account read access, or set "Skip unreadable files".`);
        }
        progress.filesDone += 1;
        continue;
      }
      const before = await handle.stat();
      const meta = { mtimeMs: before.mtimeMs, mode: before.mode & 0o7777 };
      const { done } = await writer.addStream(
        name,
        meta,
        () =>
          before.size === 0
            ? (void handle.close().catch(() => undefined), new PassThrough().end())
            : handle.createReadStream({ start: 0, end: before.size - 1, highWaterMark: 1 << 20 }),
        (bytes) => {
          progress.bytesDone += bytes;
          report();
        },
      );
      const tracked =
        done.then(async (result) => {
          const after = await fs.stat(file.localPath).catch(() => undefined);
          if (!after || after.size !== before.size || after.mtimeMs !== before.mtimeMs || result.size !== before.size) {
            warn(`${name} changed while being read; the archive holds ${result.size} bytes as read (a large file is not read twice).`);
          }
          record(result.sha256, result.size, before.mtimeMs, before.mode & 0o7777);
          progress.filesDone += 1;
          report();
        });
      // Awaited below; a cancel in between must not make it an unhandled rejection.
      tracked.catch(() => undefined);
      streamed.push(tracked);
    }
    await writer.race(Promise.all(streamed));

    // 4. Manifest: the files in scan order, each pointing at the archive that holds it.
    const manifestFileList: ManifestFile[] = [];
    for (const item of planned) {
      const record = item.reuse ? { ...item.reuse, mtimeMs: item.scanned.mtimeMs, mode: item.scanned.mode } : manifestFiles.get(item);
      if (record) manifestFileList.push(record);
    }
    const stored = [...manifestFiles.values()];
    const manifest: FileStoreManifest = {
      format: MANIFEST_FORMAT,
      formatVersion: 1,
      archive: archiveName,
      mode,
      createdAt: now.toISOString(),
      toolVersion: options.toolVersion,
      host: os.hostname(),
      platform: process.platform,
      chain,
      ...(previous ? { basedOn: previous.manifest.archive } : {}),
      folders: folderSummaries,
      totals: {
        files: manifestFileList.length,
        bytes: manifestFileList.reduce((sum, f) => sum + f.size, 0),
        directories: directories.length,
        storedFiles: stored.length,
        storedBytes: stored.reduce((sum, f) => sum + f.size, 0),
      },
      warnings,
      skipped,
      files: manifestFileList,
      directories: directories.map((d) => ({ folder: d.folder, path: d.path, mtimeMs: d.mtimeMs, mode: d.mode })),
    };
    // The chain must only name archives this set really uses (retention relies on it).
    const used = new Set(manifestFileList.map((f) => f.archive));
    manifest.chain = chain.filter((a) => a === archiveName || used.has(a));
    const manifestText = JSON.stringify(manifest, null, 1);
    writer.addBuffer(MANIFEST_ENTRY_NAME, Buffer.from(manifestText), { mtimeMs: now.getTime(), mode: 0o644 }, 6);
    await writer.finish();
    signal?.throwIfAborted();

    // 5. Read back the central directory before the archive gets its real name.
    const check = await openArchive(tempPath);
    try {
      const missing = stored.filter((f) => check.entries.get(`${f.folder}/${f.path}`)?.size !== f.size);
      if (missing.length > 0 || !check.entries.has(MANIFEST_ENTRY_NAME)) {
        throw new StepFailure(`The archive written to ${tempPath} does not read back (${missing.length} entries missing or of the wrong size); it was deleted.`);
      }
    } finally {
      check.close();
    }
    await fs.rename(tempPath, archivePath);
    committed = true;
    const manifestPath = path.join(options.backupDirectory, manifestNameFor(archiveName));
    await writeFileAtomically(manifestPath, manifestText);
    return {
      archivePath,
      manifestPath,
      manifest,
      chainPaths: manifest.chain.map((a) => path.join(options.backupDirectory, a)),
      durationMs: Date.now() - started,
      warnings,
    };
  } catch (error) {
    if (!committed) await writer.abort().catch(() => undefined);
    for (const handle of openedHandles) await handle.close().catch(() => undefined);
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : error;
    // Any write can fail (a full disk, a folder turned read-only): say which, where and what to do.
    const what = committed
      ? `writing the manifest beside ${archivePath}`
      : `writing the archive ${archivePath} (the partial archive was deleted)`;
    const message = error instanceof StepFailure ? undefined : describeFileError(error, { path: options.backupDirectory, what, neededBytes: committed ? undefined : bytesTotal });
    if (message) throw new StepFailure(message, { cause: error });
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
