// Deletes old file-store backup sets. Only this tool's own sets (named as it names them, with a
// manifest it can read) are candidates. Kept, however old: the newest `minimumSets` complete sets
// (every one got its name only after it read back; the newest is the set just written), the
// newest full set, and every archive a kept set's chain still needs. Nothing is deleted before
// `beforeDeleting` (the step verifies the new set there) has passed.
// Every set is read only as far as its manifest's header (archive, kind, time, chain): reading
// every manifest whole made each run slower with every set kept (41 sets at scale 0.3: an
// unchanged incremental took 2.3-3.1 s instead of 0.4-0.7). The sets whose records matter are read
// whole: those counted among the newest complete ones, and each one about to be deleted (one that
// cannot be read whole is kept, as an unreadable set always was). A set named as ours whose
// manifest cannot be read even as far as its header is kept with every older set, and named in a
// warning: which sets its chain needs is unknown. Before, it was left out of the listing, so the
// sets it needed could go, whatever had made it unreadable (a damaged manifest, or one read that
// failed on a flaky share).
// Only the sets of the store just backed up are retention's (origin.ts): another server's sets in
// the same directory, and sets that do not say where they were read from, are kept, and said once.
// Before, staging's retention deleted production's sets by staging's limit, its newest full and
// newest verified set included, whenever staging had a newer full.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { listBackupSetHeaders, madeAt, MANIFEST_ENTRY_NAME, readWholeSet, stampOf, type BackupSetHeader, type UnreadableSetHeader } from './manifest';
import { printable } from '../../runtime/format';
import { describeStore, storeLocations, storeRelation, type StoreHeader } from './origin';

export interface RetentionResult {
  deleted: string[];
  kept: number;
}

export interface RetentionOptions {
  /** Never leave fewer complete sets than this (at least 1: the newest is never deleted). */
  minimumSets?: number;
  /** Runs once, only when something is about to be deleted; a throw deletes nothing. */
  beforeDeleting?: () => Promise<void>;
  /** The store whose sets are retention's (the set just written); by default the newest set's. Other stores' sets are kept. */
  origin?: StoreHeader;
}

async function isComplete(set: BackupSetHeader): Promise<boolean> {
  const present = await Promise.all(set.manifest.chain.map((a) => fs.access(path.join(set.directory, a)).then(() => true, () => false)));
  return !present.includes(false);
}

/**
 * The newest time in the names of the sets whose manifest cannot be read ('' when there is none):
 * every set named no later is kept (a chain only holds sets made before it). Each is named in a
 * warning with what to do, which depends on what is wrong.
 */
function keepOlderThanUnreadable(unreadable: readonly UnreadableSetHeader[], log: { warn(m: string): void }): string {
  let keptUpTo = '';
  for (const set of unreadable) {
    const archive = path.basename(set.archivePath);
    const manifest = path.basename(set.manifestPath);
    const directory = path.dirname(set.archivePath);
    const stamp = stampOf(archive) || '\uffff';
    if (stamp > keptUpTo) keptUpTo = stamp;
    // A parser quotes the text it stopped at: a damaged file's bytes, not for a log line.
    const reason = printable(set.reason).replace(/\.$/, '');
    const what = {
      manifest: `${archive} and every older set: its manifest ${manifest} cannot be read (${reason}), so which older sets it needs is unknown. If the set is needed, put its manifest back (the archive holds a copy, its entry ${MANIFEST_ENTRY_NAME}); if not, move both files out of ${directory}.`,
      archive: `${archive} and every older set: it has no manifest beside it and the one inside it cannot be read (${reason}), so which older sets it needs is unknown. Bring the set back from its offsite copy, or move the archive out of ${directory}.`,
      'no-archive': `every set older than ${manifest}: its manifest cannot be read (${reason}) and its archive ${archive} is missing. Bring the set back from its offsite copy, or move ${manifest} out of ${directory}.`,
      'not-a-file': `every set older than ${manifest}: ${reason}.`,
    }[set.kind];
    log.warn(`Retention kept ${what} The next backup then applies retention to the older sets.`);
  }
  return keptUpTo;
}

/**
 * Sets of another store (another server's, or another folder list's) or of an unknown one, kept
 * whatever their age: each named at verbose level, and one warning for them all.
 */
function keepOtherStores(directory: string, origin: StoreHeader, others: readonly BackupSetHeader[], log: { verbose(m: string): void; warn(m: string): void }): void {
  const stores = new Map<string, BackupSetHeader[]>();
  for (const set of others) {
    const key = storeLocations(set.manifest) ? describeStore(set.manifest) : 'a store it does not record';
    stores.set(key, [...(stores.get(key) ?? []), set]);
    log.verbose(`Retention: kept ${set.archivePath}: it is of another file store (${key}).`);
  }
  const named = [...stores].map(([store, sets]) => `${sets.length} of ${store} (newest ${sets.at(-1)!.manifest.archive})`);
  log.warn(
    `${directory} also holds backup sets of another file store than this one (${describeStore(origin)}): ${named.join('; ')}. ` +
      'Retention keeps them: it deletes only this store\'s sets. Give each Octopus Server its own backup directory, and move these sets away once they are not needed.',
  );
}

/** Empty or 0 days keeps everything (the same rule as the database step's). */
export async function applyRetention(
  directory: string,
  retentionDays: number | undefined,
  now: Date,
  log: { verbose(m: string): void; warn(m: string): void },
  options: RetentionOptions = {},
): Promise<RetentionResult> {
  if (!retentionDays || retentionDays <= 0) return { deleted: [], kept: 0 };
  const minimumSets = Math.max(1, options.minimumSets ?? 1);
  const { sets, unreadable } = await listBackupSetHeaders(directory);
  const keptUpTo = keepOlderThanUnreadable(unreadable, log);
  const origin = options.origin ?? sets.at(-1)?.manifest;
  const others = origin ? sets.filter((s) => storeRelation(s.manifest, origin) !== 'same') : [];
  const own = sets.filter((s) => !others.includes(s));
  if (origin && others.length > 0) keepOtherStores(directory, origin, others, log);
  const cutoff = now.getTime() - retentionDays * 24 * 3600 * 1000;
  const wholeReads = new Map<BackupSetHeader, Promise<boolean>>();
  const readsWhole = (set: BackupSetHeader) => {
    let reads = wholeReads.get(set);
    if (!reads) wholeReads.set(set, (reads = readWholeSet(set).then(() => true, () => false)));
    return reads;
  };
  const complete: BackupSetHeader[] = [];
  for (const set of [...own].reverse()) if (complete.length < minimumSets && (await isComplete(set)) && (await readsWhole(set))) complete.push(set);
  // The newest full set that reads whole (as listBackupSets found it); whether the newest by its
  // header does is read only when an older full would otherwise go.
  const fulls = own.filter((s) => s.manifest.mode === 'Full').reverse();
  let candidates: BackupSetHeader[] = [];
  for (let i = 0; ; i++) {
    const newestFull = fulls[i];
    const kept = sets.filter((s) => others.includes(s) || madeAt(s.manifest) >= cutoff || stampOf(s.manifest.archive) <= keptUpTo || s === newestFull || complete.includes(s));
    const needed = new Set(kept.flatMap((s) => s.manifest.chain));
    candidates = sets.filter((s) => !kept.includes(s) && !needed.has(s.manifest.archive));
    if (!newestFull || !candidates.some((s) => s.manifest.mode === 'Full') || (await readsWhole(newestFull))) break;
  }
  const doomed: BackupSetHeader[] = [];
  for (const set of candidates) {
    if (await readsWhole(set)) doomed.push(set);
    else log.verbose(`Retention: kept ${set.archivePath}: its manifest cannot be read whole.`);
  }
  if (doomed.length > 0) await options.beforeDeleting?.();
  const deleted: string[] = [];
  for (const set of doomed) {
    // The manifest goes last: a set without it is not listed, so a crash here leaves no half set that looks usable.
    await fs.rm(set.archivePath, { force: true });
    if (set.manifestPath !== set.archivePath) await fs.rm(set.manifestPath, { force: true });
    deleted.push(path.basename(set.archivePath));
    log.verbose(`Retention: deleted ${set.archivePath} (from ${set.manifest.createdAt}).`);
  }
  return { deleted, kept: sets.length - deleted.length };
}
