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
  const racy = file.mtimeMs >= previousSetTimeMs - RACY_WINDOW_MS;
  return previous.mtimeMs === file.mtimeMs && !racy ? 'unchanged' : 'hash';
}
