// Retention: which of this tool's own backup sets may go. A set older than the limit is deleted
// only when no kept set needs it to restore (its full base, differential, earlier logs), and the
// newest verified full backup is always kept.
import { retentionMinimumSets } from '../../../templates/parameters';
import { kindOf, type BackupSet } from './backup-set';
import { ChainError, selectChain } from './chain';
import { compareLsn } from './lsn';
import { neededAcrossOrigins } from './origin';

export interface RetentionCandidate {
  set: BackupSet;
  /** When the backup was taken (UTC, from the manifest). */
  takenAt: Date;
}

export interface RetentionDecision {
  candidate: RetentionCandidate;
  reason: string;
}

export interface RetentionPlan {
  remove: RetentionDecision[];
  keep: RetentionDecision[];
  warnings: string[];
}

export function planRetention(
  candidates: readonly RetentionCandidate[],
  options: {
    now: Date;
    retentionDays: number;
    /** Never fewer verified sets than this (at least 1: the newest verified set stays). */
    minimumVerifiedSets?: number;
    /**
     * Sets of this database whose manifest cannot be read, by the time in their manifest's name
     * (undefined when it has none): which backups each needs is unknown, so every backup taken
     * no later is kept.
     */
    unreadable?: readonly { label: string; takenAt: Date | undefined }[];
    /**
     * Sets of this database kept whatever this plan says (another server's or database family's, or
     * whose origin is unknown), with whose they are: a candidate one of them needs is kept
     * (neededAcrossOrigins: a database restored onto another server continues its chain there).
     */
    keptElsewhere?: readonly { set: BackupSet; origin: string }[];
  },
): RetentionPlan {
  const cutoff = options.now.getTime() - options.retentionDays * 24 * 60 * 60 * 1000;
  const keepReasons = new Map<RetentionCandidate, string>();
  const warnings: string[] = [];
  const sets = candidates.map((c) => c.set);
  const candidateOf = new Map(candidates.map((c) => [c.set, c]));

  for (const c of candidates) {
    const time = c.takenAt.getTime();
    // An unreadable time must never make a set look old.
    if (Number.isNaN(time)) keepReasons.set(c, 'its time is unknown (the manifest has no valid takenAt)');
    else if (time >= cutoff) keepReasons.set(c, `newer than ${options.retentionDays} days`);
  }

  for (const u of options.unreadable ?? []) {
    const upTo = u.takenAt?.getTime() ?? Infinity;
    warnings.push(
      `Cannot tell which backups ${u.label} needs (its manifest cannot be read); keeping every backup of this database taken no later. ` +
        `If the set is needed, put its manifest back (from a copy offsite, say); if not, move the manifest and its backup files out of the backup folder.`,
    );
    for (const c of candidates) if (!keepReasons.has(c) && !(c.takenAt.getTime() > upTo)) keepReasons.set(c, `may be needed by ${u.label}, whose manifest cannot be read`);
  }

  const newestVerifiedFull = candidates
    .filter((c) => kindOf(c.set.header) === 'Full' && c.set.verified === true)
    .sort((a, b) => compareLsn(b.set.header.lastLsn, a.set.header.lastLsn))[0];
  if (newestVerifiedFull && !keepReasons.has(newestVerifiedFull)) keepReasons.set(newestVerifiedFull, 'the newest verified full backup');

  // The newest verified sets of any kind (each restorable with its chain, kept below), however old.
  const minimum = Math.max(1, options.minimumVerifiedSets ?? 1);
  const newestVerified = candidates.filter((c) => c.set.verified === true).sort((a, b) => compareLsn(b.set.header.lastLsn, a.set.header.lastLsn));
  newestVerified.slice(0, minimum).forEach((c, i) => {
    if (!keepReasons.has(c)) keepReasons.set(c, i === 0 ? 'the newest verified backup' : `one of the ${minimum} newest verified backups ("${retentionMinimumSets.label}")`);
  });

  // Everything a kept set needs for its own restore stays too. Newest first: a set already in a
  // kept set's chain needs nothing more than the chain members before it, already kept.
  const needed = new Set<RetentionCandidate>();
  const keptNewestFirst = [...keepReasons.keys()].sort((a, b) => compareLsn(b.set.header.lastLsn, a.set.header.lastLsn));
  for (const kept of keptNewestFirst) {
    if (needed.has(kept)) continue;
    let chain;
    try {
      chain = selectChain(sets, { endAt: kept.set });
    } catch (error) {
      if (!(error instanceof ChainError)) throw error;
      // Without a known chain, keep every older set: deleting one might break a restore.
      warnings.push(`Cannot tell which backups ${kept.set.label} needs (${error.message}); keeping every older backup of this database.`);
      const keptTime = kept.takenAt.getTime();
      for (const c of candidates) if ((Number.isNaN(keptTime) || c.takenAt.getTime() <= keptTime) && !keepReasons.has(c)) keepReasons.set(c, `may be needed by ${kept.set.label}`);
      continue;
    }
    for (const member of [chain.full, chain.differential, ...chain.logs]) {
      const c = member && candidateOf.get(member);
      if (!c) continue;
      needed.add(c);
      if (!keepReasons.has(c)) keepReasons.set(c, `needed to restore ${kept.set.label}`);
    }
  }

  if (options.keptElsewhere?.length) {
    const originOfKept = new Map(options.keptElsewhere.map((k) => [k.set, k.origin]));
    const all = [...sets, ...options.keptElsewhere.map((k) => k.set)];
    const kept = [...options.keptElsewhere.map((k) => k.set), ...[...keepReasons.keys()].map((c) => c.set)];
    for (const [member, by] of neededAcrossOrigins(all, kept)) {
      const c = candidateOf.get(member);
      if (c && !keepReasons.has(c)) keepReasons.set(c, `needed to restore ${by.label}${originOfKept.has(by) ? `, taken on ${originOfKept.get(by)}` : ''}`);
    }
  }

  const remove: RetentionDecision[] = [];
  const keep: RetentionDecision[] = [];
  for (const c of candidates) {
    const reason = keepReasons.get(c);
    if (reason) keep.push({ candidate: c, reason });
    else remove.push({ candidate: c, reason: `older than ${options.retentionDays} days and not needed by a kept backup` });
  }
  return { remove, keep, warnings };
}
