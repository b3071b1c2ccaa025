// The incremental change test: has a file changed since the last set? Pure, so its rules are
// unit-tested on their own; the backup hashes only the files it answers 'hash' for.
import type { ManifestFile } from './manifest';

/** A file modified this close to the previous backup may have changed within the same mtime tick. */
export const RACY_WINDOW_MS = 2000;

/**
 * - `new`: the previous set does not have it; `changed`: its size differs (store it);
 * - `unchanged`: same size and mtime, and modified well before the previous set was taken (reuse it);
 * - `hash`: same size, but touched, or modified around the previous backup: only its hash can tell.
 */
export type ChangeVerdict = 'new' | 'changed' | 'unchanged' | 'hash';

export function changeSincePreviousSet(
  file: { size: number; mtimeMs: number },
  previous: Pick<ManifestFile, 'size' | 'mtimeMs'> | undefined,
  previousSetTimeMs: number,
): ChangeVerdict {
  if (!previous) return 'new';
  if (previous.size !== file.size) return 'changed';
  return previous.mtimeMs === file.mtimeMs && !modifiedAroundPreviousSet(file.mtimeMs, previousSetTimeMs) ? 'unchanged' : 'hash';
}

/** Modified so close to the previous set (or after it) that the same mtime does not prove the same bytes. */
export function modifiedAroundPreviousSet(mtimeMs: number, previousSetTimeMs: number): boolean {
  return mtimeMs >= previousSetTimeMs - RACY_WINDOW_MS;
}

/**
 * A lookup of the previous set's records for files asked for in scan order. The previous manifest
 * lists its files in the order of the scan that wrote it, so the next record is nearly always the
 * one asked for: a comparison of two strings instead of building a key and hashing it (two such
 * lookups per file were ~10 % of an unchanged incremental). Anything else (a new file, a folder
 * scanned in another order) falls back to an index built on first need. A path listed twice (only
 * an edited manifest has that) finds its first record either way.
 */
export function recordsInScanOrder(records: readonly ManifestFile[]): (folder: string, path: string) => ManifestFile | undefined {
  let next = 0;
  let index: Map<string, Map<string, number>> | undefined;
  const buildIndex = () => {
    const built = new Map<string, Map<string, number>>();
    records.forEach((record, at) => {
      let paths = built.get(record.folder);
      if (!paths) built.set(record.folder, (paths = new Map()));
      if (!paths.has(record.path)) paths.set(record.path, at);
    });
    return built;
  };
  return (folder, path) => {
    const candidate = records[next];
    if (candidate !== undefined && candidate.path === path && candidate.folder === folder) {
      next += 1;
      return candidate;
    }
    index ??= buildIndex();
    const at = index.get(folder)?.get(path);
    if (at === undefined) return undefined;
    next = at + 1;
    return records[at];
  };
}
