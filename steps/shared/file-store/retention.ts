// Deletes old file-store backup sets. Only this tool's own sets (named as it names them, with a
// manifest it can read) are candidates; the newest full set and every archive that a kept set's
// chain still needs are never deleted.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { listBackupSets } from './manifest';

export interface RetentionResult {
  deleted: string[];
  kept: number;
}

export async function applyRetention(directory: string, retentionDays: number, now: Date, log: { verbose(m: string): void }): Promise<RetentionResult> {
  if (retentionDays <= 0) return { deleted: [], kept: 0 };
  const { sets } = await listBackupSets(directory);
  const cutoff = now.getTime() - retentionDays * 24 * 3600 * 1000;
  const newestFull = [...sets].reverse().find((s) => s.manifest.mode === 'Full');
  const kept = sets.filter((s) => Date.parse(s.manifest.createdAt) >= cutoff || s === newestFull);
  const needed = new Set(kept.flatMap((s) => s.manifest.chain));
  const deleted: string[] = [];
  for (const set of sets) {
    if (kept.includes(set) || needed.has(set.manifest.archive)) continue;
    // The manifest goes last: a set without it is not listed, so a crash here leaves no half set that looks usable.
    await fs.rm(set.archivePath, { force: true });
    await fs.rm(set.manifestPath, { force: true });
    deleted.push(path.basename(set.archivePath));
    log.verbose(`Retention: deleted ${set.archivePath} (from ${set.manifest.createdAt}).`);
  }
  return { deleted, kept: sets.length - deleted.length };
}
