// Retention after a backup: decide (planRetention, pure) which of this tool's own sets of this
// database no kept set needs, then delete only files named as this tool names them. It runs only
// after a verified backup, so the newest verified set always exists and is always kept.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StepFailure } from '../../runtime/errors';
import { counted } from '../../runtime/format';
import type { EngineContext } from '../../runtime/engine-context';
import { kindOf } from './backup-set';
import { isManifestOf, loadManifestSets, type FolderLocation, type ManifestSet } from './discovery';
import { manifestStampOf, manifestStemOf, parseBackupFileName, parseBackupTimestamp } from './naming';
import { planRetention, type RetentionCandidate, type RetentionPlan } from './retention';
import { compareOrigins, describeOrigin, originOf, splitByOrigin, type SetOrigin } from './origin';

export interface RetentionRequest {
  /** Delete sets older than this many days (0: no retention). */
  days: number;
  /** Never fewer verified sets than this. */
  minimumVerifiedSets: number;
}

/** What the backup that retention follows left: the database, its folder, and whether it was verified. */
export interface RetentionBasis {
  /** The database as the new backup's header names it (RESTORE HEADERONLY: as the server keeps the name). */
  database: string;
  location: FolderLocation;
  manifestPath: string;
  verified: boolean;
  /**
   * The server and database family the new backup records (its header's ServerName and FamilyGUID):
   * retention considers only sets of the same. Without it, the new set's manifest says.
   */
  origin?: SetOrigin;
}

export interface RetentionOutcome {
  deleted: number;
  kept: number;
}

/**
 * The sets retention may consider: this database's sets of a known kind (full, differential, log),
 * by the name their backup header records, as the server keeps it. Not by the manifest's name for
 * the database: older sets recorded the connection string's spelling, and a set spelled otherwise
 * would not count as needing the full it was built on. With `origin`, only the sets taken on the
 * same server of the same database family: another server's sets of a database of the same name
 * (or sets that do not say whose they are) are kept, never compared nor deleted. Pure.
 */
export function retentionCandidatesOf(sets: readonly ManifestSet[], database: string, origin?: SetOrigin): RetentionCandidate[] {
  return sets
    .filter((s) => s.set.header.databaseName === database && kindOf(s.set.header) !== undefined)
    .filter((s) => origin === undefined || compareOrigins(originOf(s), origin) === 'same')
    .map((s) => ({ set: s.set, takenAt: new Date(s.manifest.takenAt) }));
}

/**
 * Deletes this tool's own old backup sets of the database that no kept set needs. Undefined when
 * retention did not run (not asked for, or the new backup was not verified).
 */
export async function applyRetention(basis: RetentionBasis, retention: RetentionRequest, context: EngineContext): Promise<RetentionOutcome | undefined> {
  // Empty or 0 days: no retention (the same rule as the file-store step's).
  if (!retention.days) return undefined;
  if (!basis.verified) {
    context.log.warn('Retention skipped: the new backup was not verified.');
    return undefined;
  }
  try {
    return await deleteUnneededSets(basis, retention, context);
  } catch (error) {
    throw new StepFailure(
      `The backup succeeded (${basis.manifestPath}), but retention failed: ${(error as Error).message}. Check the worker account may delete files in ${basis.location.workerDirectory}.`,
      { cause: error },
    );
  }
}

async function deleteUnneededSets(basis: RetentionBasis, retention: RetentionRequest, context: EngineContext): Promise<RetentionOutcome> {
  const { log } = context;
  const skipped: string[] = [];
  const sets = await loadManifestSets(basis.location, (m) => log.warn(m), skipped);
  const own = sets.find((s) => s.manifestPath === basis.manifestPath);
  const ownOrigin = basis.origin ?? (own && originOf(own));
  if (!ownOrigin) throw new Error(`the new backup's manifest ${basis.manifestPath} is no longer in the folder, so whose sets to consider cannot be told`);
  const { other, unknown } = splitByOrigin(sets, basis.database, ownOrigin);
  for (const s of [...other, ...unknown]) log.verbose(`Retention: kept ${s.set.label} (taken on ${describeOrigin(originOf(s))}, not by ${describeOrigin(ownOrigin)}).`);
  const plan = planRetention(retentionCandidatesOf(sets, basis.database, ownOrigin), {
    now: new Date(),
    retentionDays: retention.days,
    minimumVerifiedSets: retention.minimumVerifiedSets,
    unreadable: unreadableOf(skipped, basis.database),
    keptElsewhere: [...other, ...unknown].map((s) => ({ set: s.set, origin: describeOrigin(originOf(s)) })),
  });
  for (const warning of plan.warnings) log.warn(warning);
  const deleted = await deleteSets(plan, context);
  for (const decision of plan.keep) log.verbose(`Retention: kept ${decision.candidate.set.label} (${decision.reason}).`);
  const kept = plan.keep.length + other.length + unknown.length;
  const elsewhere = other.length + unknown.length > 0 ? ` (${other.length + unknown.length} of them another server's or database's)` : '';
  log.info(`Retention (${counted(retention.days, 'day')}): ${counted(deleted, 'backup set')} deleted, ${kept} kept${elsewhere}.`);
  return { deleted, kept };
}

/**
 * The manifests named as this database's that did not load (loadManifestSets warned for each):
 * damaged, edited, another set's, or a read that failed. Retention keeps every backup taken up to
 * the end of the second in each one's name.
 */
function unreadableOf(skipped: readonly string[], database: string): { label: string; takenAt: Date | undefined }[] {
  return skipped
    .filter((name) => isManifestOf(name, database))
    .map((name) => {
      const stamp = manifestStampOf(name);
      const named = stamp === undefined ? undefined : parseBackupTimestamp(stamp);
      return { label: name, takenAt: named && new Date(named.getTime() + 999) };
    });
}

async function deleteSets(plan: RetentionPlan, context: EngineContext): Promise<number> {
  let deleted = 0;
  for (const decision of plan.remove) {
    const set = decision.candidate.set;
    // Only files named as this tool names this set's files, in this folder (loadManifestSets
    // already refuses a manifest listing another set's: a second guard where it would cost a backup).
    const stem = set.manifestPath ? manifestStemOf(path.basename(set.manifestPath)) : undefined;
    const ours = set.files.filter((f) => stem !== undefined && parseBackupFileName(f.name)?.stem === stem);
    for (const file of ours) await fs.rm(file.workerPath, { force: true });
    if (set.manifestPath) await fs.rm(set.manifestPath, { force: true });
    deleted += 1;
    context.log.info(`Retention: deleted ${set.label} (${decision.reason}).`);
  }
  return deleted;
}
