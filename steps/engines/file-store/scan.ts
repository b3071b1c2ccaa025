// Walks a file-store folder: every regular file and directory with its size, mtime and mode, in
// a stable (sorted) order. Problems are collected, not thrown, so a backup reports all of them.
import type { Stats } from 'node:fs';
import { lstatSync, promises as fs, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { withErrorCode } from './errors';
import type { FileStoreFolderName } from './folders';

export interface ScannedFile {
  folder: FileStoreFolderName;
  /** Relative to the folder, `/`-separated. */
  path: string;
  localPath: string;
  size: number;
  mtimeMs: number;
  mode: number;
}

export interface ScannedDirectory {
  folder: FileStoreFolderName;
  path: string;
  localPath: string;
  mtimeMs: number;
  mode: number;
}

export interface ScanProblem {
  folder: FileStoreFolderName;
  path: string;
  code: string;
  /** Unreadable (permissions) problems fail a backup unless skipping is allowed; the rest warn. */
  kind: 'unreadable' | 'vanished' | 'unsupported';
  message: string;
}

export interface ScanResult {
  files: ScannedFile[];
  directories: ScannedDirectory[];
  problems: ScanProblem[];
}

/**
 * Entries looked at between two yields to the event loop: a cancel (SIGTERM) and the progress
 * bar are served within milliseconds however large a folder is (1,000 lstat calls take 5-20 ms
 * here), while the yields themselves cost nothing measurable.
 */
const ENTRIES_BETWEEN_YIELDS = 1000;

/** How far a scan has got, reported at most once per ENTRIES_BETWEEN_YIELDS entries. */
export type ScanProgress = (entriesSeen: number) => void;

/**
 * A subfolder whose lstat size is at most this is listed synchronously: ~2,000-4,000 names on
 * ext4 (a directory's size is the space its entries take); 0 where a file system reports none.
 */
const SYNC_LISTING_BYTES = 128 * 1024;

/**
 * Starts listing a folder on the thread pool, for a scan that comes later (its rejection is left
 * for that scan to report). A backup lists its folders while it reads the previous set's manifest:
 * 20,000 task logs took ~20 ms to list, which the scan no longer waits for.
 */
export function listFolderEarly(root: string): Promise<string[]> {
  const listing = fs.readdir(path.normalize(root));
  listing.catch(() => undefined);
  return listing;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Scans one folder. `rootListing`, when given, is the folder's own listing, started earlier on the
 * thread pool (see listFolderEarly); it is used in place of listing the folder again. `stopAt`
 * ends the scan at the first problem it gives an error for, with that error: a share that stopped
 * answering is not walked to the end (on a soft NFS mount each entry waits out its own time-out).
 */
export async function scanFolder(
  folder: FileStoreFolderName,
  root: string,
  signal?: AbortSignal,
  onProgress?: ScanProgress,
  rootListing?: Promise<string[]>,
  stopAt?: (problem: ScanProblem) => Error | undefined,
): Promise<ScanResult> {
  const result: ScanResult = { files: [], directories: [], problems: [] };
  const problem = (relative: string, error: NodeJS.ErrnoException | string, kind?: ScanProblem['kind']) => {
    const code = typeof error === 'string' ? 'UNSUPPORTED' : (error.code ?? 'ERROR');
    const resolvedKind = kind ?? (code === 'ENOENT' ? 'vanished' : code === 'EACCES' || code === 'EPERM' ? 'unreadable' : 'unreadable');
    const message = typeof error === 'string' ? error : withErrorCode(code, error.message);
    const found: ScanProblem = { folder, path: relative, code, kind: resolvedKind, message };
    result.problems.push(found);
    const stop = stopAt?.(found);
    if (stop) throw stop;
  };
  let entriesSeen = 0;

  /** `listedSize`: the folder's size as its parent's lstat saw it (unknown for the folder itself). */
  const walk = async (relative: string, local: string, listedSize?: number): Promise<void> => {
    signal?.throwIfAborted();
    let names: string[];
    try {
      // Names only: the lstat below tells each entry's type, so Dirent objects would be garbage.
      // A small subfolder is listed synchronously, like the lstat: a thread-pool hop per folder
      // cost more than the listing (the 74 folders of scale 0.3: 10-19 ms against 21-31 ms at
      // load 9). A large one, or the folder itself, on the thread pool: listing 200,000 names
      // took ~350 ms, which a cancel would otherwise wait for.
      // An early listing that found no folder is tried again: the scan found one since (created
      // meanwhile). Other errors stand (a share that timed out is not waited out twice).
      if (relative === '' && rootListing) names = await rootListing.catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' || error.code === 'ENOTDIR' ? fs.readdir(local) : Promise.reject(error)));
      else names = listedSize !== undefined && listedSize <= SYNC_LISTING_BYTES ? readdirSync(local) : await fs.readdir(local);
    } catch (error) {
      problem(relative, error as NodeJS.ErrnoException);
      return;
    }
    // The default sort compares UTF-16 code units, as `<` does: the order every earlier set has.
    names.sort();
    // Each child's path is joined once (path.join normalises: ~5 % of an unchanged incremental).
    const localPrefix = local.endsWith(path.sep) ? local : local + path.sep;
    const relativePrefix = relative === '' ? '' : relative + '/';
    const subdirectories: [string, string, number][] = [];
    for (const name of names) {
      if (++entriesSeen % ENTRIES_BETWEEN_YIELDS === 0) {
        await yieldToEventLoop();
        signal?.throwIfAborted();
        onProgress?.(entriesSeen);
      }
      const childRelative = relativePrefix + name;
      const childLocal = localPrefix + name;
      // Synchronous lstat: a thread-pool hop costs more than the syscall on a cached directory.
      let stat: Stats;
      try {
        stat = lstatSync(childLocal);
      } catch (error) {
        problem(childRelative, error as NodeJS.ErrnoException);
        continue;
      }
      if (path.sep === '/' && name.includes('\\')) {
        problem(childRelative, 'has a backslash in its name, which cannot be stored portably in a zip; rename it', 'unsupported');
      } else if (stat.isSymbolicLink()) {
        problem(childRelative, 'is a symbolic link; links are not followed or stored', 'unsupported');
      } else if (stat.isDirectory()) {
        result.directories.push({ folder, path: childRelative, localPath: childLocal, mtimeMs: stat.mtimeMs, mode: stat.mode & 0o7777 });
        subdirectories.push([childRelative, childLocal, stat.size]);
      } else if (stat.isFile()) {
        result.files.push({ folder, path: childRelative, localPath: childLocal, size: stat.size, mtimeMs: stat.mtimeMs, mode: stat.mode & 0o7777 });
      } else {
        problem(childRelative, 'is not a regular file (device, socket or pipe); skipped', 'unsupported');
      }
    }
    for (const [childRelative, childLocal, size] of subdirectories) await walk(childRelative, childLocal, size);
  };

  // Normalised once, so that each child is the same path path.join() would give.
  await walk('', path.normalize(root));
  return result;
}
