// Where an opened file really is. O_NOFOLLOW refuses a link in a file's own place, but a folder
// on its path replaced by a link since the scan is still followed, and its files (from anywhere
// the worker's account can read) would go into the archive under the store's names. On Linux the
// kernel says where a descriptor leads (/proc/self/fd/<fd>), so each open is checked against the
// folder's real path plus the scanned relative path: one readlink, and no window between the
// check and the read. Elsewhere (Windows, macOS) there is no such check (docs/design.md).
import { closeSync, constants as fsConstants, openSync, readlinkSync, realpathSync } from 'node:fs';
import type { ResolvedFolder } from './folders';

/** Why a file reached through a link is not read. */
export const NOW_THROUGH_A_LINK = 'reached through a symbolic link now (a folder on its path was replaced since the scan); links are not followed';

/** Where the kernel says `fd` leads, or undefined where it cannot say. */
export function openedPath(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** `actual` (from openedPath) is somewhere else than `expected`; a file deleted since it was opened still counts as where it was. */
export function leadsElsewhere(actual: string | undefined, expected: string | undefined): boolean {
  if (actual === undefined || expected === undefined) return false;
  return actual !== expected && actual !== `${expected} (deleted)`;
}

/**
 * The real path each scanned file must have once opened, per folder. A folder whose own
 * descriptor does not read back as its real path (no /proc, an unusual file system) is not
 * checked, rather than failing every file in it.
 */
export class OpenedPathCheck {
  private readonly roots = new Map<string, string>();

  constructor(folders: readonly ResolvedFolder[]) {
    if (process.platform !== 'linux') return;
    for (const folder of folders) {
      try {
        const real = realpathSync.native(folder.path);
        const fd = openSync(real, fsConstants.O_RDONLY | (fsConstants.O_DIRECTORY ?? 0));
        try {
          if (openedPath(fd) === real) this.roots.set(folder.name, real === '/' ? '' : real);
        } finally {
          closeSync(fd);
        }
      } catch {
        // Not checked: the scan has already said what is wrong with the folder, if anything.
      }
    }
  }

  /** Where `file` must lead once opened; undefined: not checked. */
  expected(file: { folder: string; path: string }): string | undefined {
    const root = this.roots.get(file.folder);
    return root === undefined ? undefined : `${root}/${file.path}`;
  }
}
