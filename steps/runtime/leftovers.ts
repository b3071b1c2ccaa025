// Leftovers of a run that was killed (SIGKILL, power loss): temporary files and staging folders
// that never got their final name. The next run names every one it finds; it deletes one only
// when nothing has written to it for ABANDONED_AFTER_MS, so a concurrent run's live files are
// never touched. None of them is ever read as a backup.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { formatDuration } from './format';

/** A live run writes continuously; nothing written for this long belongs to a run that was killed. */
export const ABANDONED_AFTER_MS = 6 * 3600 * 1000;

export interface LeftoverReport {
  removed: string[];
  /** Too recent to tell from a live run's: named, left alone. */
  kept: string[];
}

/** The newest mtime in a file or folder tree (a staging folder's top mtime does not move while a file deep inside grows). */
async function lastWrittenMs(target: string): Promise<number | undefined> {
  const stat = await fs.lstat(target).catch(() => undefined);
  if (!stat) return undefined;
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    const names = await fs.readdir(target).catch(() => [] as string[]);
    for (const name of names) newest = Math.max(newest, (await lastWrittenMs(path.join(target, name))) ?? 0);
  }
  return newest;
}

/**
 * Deletes the leftovers in `directory` that `isLeftover` recognises and nothing has written to for
 * ABANDONED_AFTER_MS; names each one, deleted or not. `what` says whose they are ("a file-store backup").
 */
export async function cleanLeftovers(
  directory: string,
  isLeftover: (name: string) => boolean,
  what: string,
  now: Date,
  log: { warn(message: string): void },
): Promise<LeftoverReport> {
  const report: LeftoverReport = { removed: [], kept: [] };
  const names = await fs.readdir(directory).catch(() => [] as string[]);
  for (const name of names.sort()) {
    if (!isLeftover(name)) continue;
    const target = path.join(directory, name);
    const written = await lastWrittenMs(target);
    if (written === undefined) continue;
    const age = now.getTime() - written;
    if (age > ABANDONED_AFTER_MS) {
      try {
        // unlink for a file: rm's recursive mode reports a refused unlink as ENOTDIR.
        if ((await fs.lstat(target)).isDirectory()) await fs.rm(target, { recursive: true, force: true });
        else await fs.unlink(target);
      } catch (error) {
        // Still open (Windows refuses to delete a file in use): then it is not abandoned after all.
        report.kept.push(target);
        log.warn(`${target} was left by ${what}, but cannot be deleted (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); it is not a backup. Delete it once nothing uses it.`);
        continue;
      }
      report.removed.push(target);
      log.warn(`Deleted ${target}, left by ${what} that was stopped before it finished (last written ${formatDuration(age / 1000)} ago). It was never a backup.`);
    } else {
      report.kept.push(target);
      log.warn(
        `${target} was left by ${what} that was stopped, or belongs to one still running (last written ${formatDuration(Math.max(0, age) / 1000)} ago); ` +
          `it is not a backup and is left alone. A run after it is ${formatDuration(ABANDONED_AFTER_MS / 1000)} old deletes it.`,
      );
    }
  }
  return report;
}
