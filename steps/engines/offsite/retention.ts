// Remote retention, chain-aware like the local one: a set older than the limit is deleted
// offsite only when no kept set needs it (a full or differential under kept logs, an archive
// an incremental refers to); the newest verified full set and the newest `keepAtLeast` sets of
// each kind are never deleted. A set's record goes first (the set is then no longer offsite),
// then its files. Copy Offsite asks the same plan, before it sends anything, which of the local
// sets not offsite yet it would delete as soon as they arrived (deletedOnArrival), and does not
// send those.
import type { BackupSet as DatabaseSet } from '../database-backup/backup-set';
import { kindOf } from '../database-backup/backup-set';
import { ChainError, selectChain } from '../database-backup/chain';
import type { BackupManifest } from '../database-backup/manifest';
import { describeOrigin, groupByOrigin, neededAcrossOrigins, originOf } from '../database-backup/origin';
import { planRetention } from '../database-backup/retention';
import { madeAt, oldestByName, parseManifest as parseFileStoreManifest } from '../file-store/manifest';
import { groupByStore } from '../file-store/origin';
import { lockedUntil, offsiteRecordKey, OFFSITE_SUFFIX, parseOffsiteRecord, type OffsiteSetRecord } from './offsite-manifest';
import type { Area } from './sets';
import type { Decrypt } from './stage';
import type { OffsiteStore } from './store';
import type { EngineContext, EngineLog } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { printable } from '../../runtime/format';
import { offsiteEncryptionPassphrase } from '../../../templates/offsite-parameters';

export interface OffsiteRetentionOptions {
  store: OffsiteStore;
  retentionDays: number;
  keepAtLeast: number;
  now: Date;
  decrypt?: Decrypt;
  /** Called before each set is deleted: throws when this run may no longer delete (it lost the offsite lock, target-lock.ts). */
  beforeDelete?: () => Promise<void>;
}

/** The options with the context's log and signal, as the retention's helpers use them. */
type RetentionRun = OffsiteRetentionOptions & { log: EngineLog; signal: AbortSignal };

/** What retention decides by: a set's record (id, time, manifest name, lock) and its manifest's text. */
interface Entry {
  record: Pick<OffsiteSetRecord, 'id' | 'takenAt' | 'immutability'> & { manifest: { name: string } };
  /** Undefined when the manifest could not be read: then `problem` says why. */
  manifestText?: string;
  /** Why its manifest could not be read: the current key cannot decrypt it (why; none when no key is set), or it does not decrypt to the end. */
  problem?: { kind: 'key'; why?: string } | { kind: 'damaged'; error: Error };
}

/** A set offsite: its whole record, to delete its objects. */
interface OffsiteEntry extends Entry {
  record: OffsiteSetRecord;
}

const DAY_MS = 24 * 3600 * 1000;

/** Sets made before this (ms) are older than the limit; planRetention (database) ages them by the same days. */
function cutoffOf(options: Pick<OffsiteRetentionOptions, 'now' | 'retentionDays'>): number {
  return options.now.getTime() - options.retentionDays * DAY_MS;
}

const PASSPHRASE = `"${offsiteEncryptionPassphrase.label}" (${offsiteEncryptionPassphrase.name})`;

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The area's sets with their manifests. An encrypted manifest the current key cannot decrypt (the
 * passphrase was changed, encryption turned off, or the set was encrypted for a recipient) is not a
 * failure of the run: the set comes back with its problem, and retention keeps it (readableSets).
 */
async function entries(options: RetentionRun, area: Area): Promise<OffsiteEntry[]> {
  const { store } = options;
  const result: OffsiteEntry[] = [];
  for (const o of await store.list(`${area}/`)) {
    if (!o.key.endsWith(OFFSITE_SUFFIX)) continue;
    const record = parseOffsiteRecord(await text(await store.download(o.key, options.signal)), `${store.display}/${o.key}`);
    const stored = await store.download(`${area}/${record.manifest.name}`, options.signal);
    if (!record.encryption) {
      result.push({ record, manifestText: await text(stored) });
      continue;
    }
    if (!options.decrypt) {
      stored.destroy();
      result.push({ record, problem: { kind: 'key' } });
      continue;
    }
    let plain: NodeJS.ReadableStream;
    try {
      plain = await options.decrypt(stored, record);
    } catch (error) {
      stored.destroy();
      options.signal.throwIfAborted();
      if (!(error instanceof StepFailure)) throw error;
      const why =
        record.encryption.method === 'recipient'
          ? `encrypted for ${record.encryption.recipients.join(', ') || 'a recipient'}: only that recipient's identity can`
          : 'encrypted with another passphrase, one used before it was changed?';
      result.push({ record, problem: { kind: 'key', why } });
      continue;
    }
    try {
      result.push({ record, manifestText: await text(plain) });
    } catch (error) {
      options.signal.throwIfAborted();
      result.push({ record, problem: { kind: 'damaged', error: new Error(`it does not decrypt to the end: ${(error as Error).message}`) } });
    }
  }
  return result;
}

/**
 * The area's sets whose manifest offsite reads, and the time up to which every set is kept: a set
 * whose manifest cannot be read (a file-store set that an earlier build of copy-offsite sent with its archive
 * standing as its manifest, or one damaged offsite) may need any older set, so it and every set
 * not newer than it are kept, and a warning names it and what to do. Before, one such set failed
 * the area's retention on every run ("... is not valid JSON"), and with it the step. So are the
 * sets whose manifest the current key cannot decrypt, named together in one warning per reason:
 * before, the first of them failed the whole run after a passphrase change.
 */
function readableSets<M, E extends Entry>(list: E[], area: Area, parse: (e: E) => M, options: RetentionRun): { readable: { e: E; m: M }[]; keptUpTo: number } {
  const readable: { e: E; m: M }[] = [];
  let keptUpTo = -Infinity;
  const keep = (e: E) => {
    const time = madeAt({ archive: e.record.id, createdAt: e.record.takenAt });
    keptUpTo = Math.max(keptUpTo, Number.isNaN(time) ? Infinity : time);
  };
  const undecryptable = new Map<string | undefined, E[]>();
  for (const e of list) {
    if (e.problem?.kind === 'key') {
      keep(e);
      undecryptable.set(e.problem.why, [...(undecryptable.get(e.problem.why) ?? []), e]);
      continue;
    }
    try {
      if (e.problem) throw e.problem.error;
      readable.push({ e, m: parse(e) });
    } catch (error) {
      if (!(error instanceof StepFailure || error instanceof SyntaxError || error === e.problem?.error)) throw error;
      keep(e);
      // JSON.parse quotes the text it stopped at: an archive's bytes, not for a log line.
      const reason = printable((error as Error).message);
      options.log.warn(
        `Offsite retention: kept ${area}/${e.record.id} and every older ${area} set: its manifest offsite (${area}/${e.record.manifest.name}) cannot be read (${reason.replace(/\.$/, '')}), ` +
          `so which sets it needs is unknown. If the set is still in its local backup directory, delete its objects offsite (its record ${offsiteRecordKey(area, e.record.id)} first) and run Copy Offsite again to send it anew.`,
      );
    }
  }
  for (const [why, sets] of undecryptable) {
    const one = sets.length === 1;
    const named = [...sets].sort((a, b) => b.record.takenAt.localeCompare(a.record.takenAt) || b.record.id.localeCompare(a.record.id)).map((e) => `${area}/${e.record.id}`);
    const cannot = why === undefined ? `${one ? 'is' : 'are'} encrypted and ${PASSPHRASE} is not set` : `cannot be decrypted with ${PASSPHRASE} (${why})`;
    options.log.warn(
      `Offsite retention: kept ${named.join(', ')} and every older ${area} set: ${one ? 'its manifest' : 'their manifests'} offsite ${cannot}, so which sets ${one ? 'it needs' : 'they need'} is unknown. ` +
        `${one ? 'It is' : 'They are'} never deleted by retention while that is so: delete ${one ? 'it' : 'them'} by hand when no longer needed (${one ? 'its' : "each set's"} .offsite.json record first), or by the store's lifecycle rules.`,
    );
  }
  return { readable, keptUpTo };
}

/**
 * Which database sets to delete, each database on its own (by the name its backup headers record,
 * as local retention does): the local retention plan, plus the newest `keepAtLeast` sets with their
 * chains. Before, every database in the area was one pool, so one database's newer sets could make
 * another's only full "old and not needed".
 */
function databaseRemovals<E extends Entry>(list: E[], options: RetentionRun): E[] {
  const { readable, keptUpTo } = readableSets(list, 'database', (e) => JSON.parse(e.manifestText!) as BackupManifest, options);
  const byDatabase = new Map<string, typeof readable>();
  for (const r of readable) {
    const name = String(r.m.header?.databaseName ?? r.m.database);
    byDatabase.set(name, [...(byDatabase.get(name) ?? []), r]);
  }
  return [...byDatabase.values()].flatMap((readableOfOne) => {
    const sets = readableOfOne.map((r) => ({ ...r, set: databaseSetOf(r.e, r.m) }));
    const { groups, unknownUpTo } = byOrigin(sets, options);
    const removed = new Set(groups.flatMap((one) => oneDatabaseRemovals(one, Math.max(keptUpTo, unknownUpTo), options)));
    // A kept set of one origin may need a set of another (a database restored onto another server
    // continues its chain there): what any kept set needs stays, whoever took it (red team 40).
    const kept = sets.filter((r) => !removed.has(r.e));
    const entryOf = new Map(sets.map((r) => [r.set, r.e]));
    for (const [member, by] of neededAcrossOrigins(sets.map((r) => r.set), kept.map((r) => r.set))) {
      const e = entryOf.get(member)!;
      if (!removed.delete(e)) continue;
      options.log.verbose(`Offsite retention: kept database/${e.record.id}: ${by.label}, taken on ${describeOrigin(originOf({ manifest: sets.find((r) => r.set === by)!.m }))}, is kept and needs it to restore.`);
    }
    return [...removed];
  });
}

/** A database set offsite as the chain selection reads it. */
function databaseSetOf(e: Entry, m: BackupManifest): DatabaseSet {
  return { label: e.record.id, files: [], missingFiles: [], header: m.header, verified: m.verification?.passed === true };
}

/**
 * One database's sets by origin (origin.ts: the server and database family, or the availability
 * group), each retained on its own as Back Up SQL Database's local retention does: before, a shared
 * folder's sets from two servers were one pool offsite, "the newest verified full" was picked by
 * comparing LSNs across servers, and another server's only full was deleted because this one had
 * newer sets. A set whose origin is not recorded is kept (never deleted on another's behalf), and,
 * since which sets it needs is unknown, so is every set of the database not newer than it (unknownUpTo).
 */
function byOrigin<T extends { e: Entry; m: BackupManifest }>(sets: T[], options: RetentionRun): { groups: T[][]; unknownUpTo: number } {
  const { groups, unknown } = groupByOrigin(sets, (r) => originOf({ manifest: r.m }));
  let unknownUpTo = -Infinity;
  for (const r of unknown) {
    const time = Date.parse(r.m.takenAt);
    unknownUpTo = Math.max(unknownUpTo, Number.isNaN(time) ? Infinity : time);
  }
  if (unknown.length > 0) {
    options.log.warn(
      `Offsite retention: kept ${unknown.map((r) => `database/${r.e.record.id}`).join(', ')} and every older set of the database: ${unknown.length === 1 ? 'its manifest records' : 'their manifests record'} no server or no database family GUID, ` +
        'so whose backup it is, and which sets it needs, cannot be told; retention deletes no set on another\'s behalf. Delete it by hand when no longer needed (its .offsite.json record first).',
    );
  }
  return { groups: groups.map((g) => g.sets), unknownUpTo };
}

function oneDatabaseRemovals<E extends Entry>(readable: { e: E; m: BackupManifest; set: DatabaseSet }[], keptUpTo: number, options: RetentionRun): E[] {
  const bySet = new Map<DatabaseSet, E>();
  const candidates = readable.map(({ e, m, set }) => {
    bySet.set(set, e);
    return { set, takenAt: new Date(m.takenAt) };
  });
  const plan = planRetention(candidates, { now: options.now, retentionDays: options.retentionDays });
  for (const w of plan.warnings) options.log.warn(`Offsite retention: ${w}`);
  const removed = new Set(plan.remove.map((d) => d.candidate.set));
  const sets = candidates.map((c) => c.set);
  const newest = [...candidates].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime()).slice(0, options.keepAtLeast);
  // A set still locked offsite cannot be deleted, so it is kept like the newest: with everything it needs.
  const locked = candidates.filter((c) => lockedUntil(bySet.get(c.set)!.record, options.now) !== undefined);
  for (const kept of [...newest, ...locked]) {
    removed.delete(kept.set);
    try {
      const chain = selectChain(sets, { endAt: kept.set });
      for (const member of [chain.full, chain.differential, ...chain.logs]) if (member) removed.delete(member);
    } catch (error) {
      if (!(error instanceof ChainError)) throw error;
      // Unknown chain: keep everything older than it.
      for (const c of candidates) if (c.takenAt <= kept.takenAt) removed.delete(c.set);
    }
  }
  for (const c of candidates) if (c.takenAt.getTime() <= keptUpTo) removed.delete(c.set);
  return [...removed].filter((s) => kindOf(s.header) !== undefined).map((s) => bySet.get(s)!);
}

/**
 * Which file-store sets to delete, each file store on its own (file-store/origin.ts: where its
 * folders were read from), as local retention keeps another store's sets: before, a shared
 * folder's sets of two servers were one pool offsite, and production's newest (and only) set was
 * deleted because staging had newer ones. A set that does not say where it was read from is kept.
 * What any kept set's chain needs is kept, whichever store's it is.
 */
function fileStoreRemovals<E extends Entry>(list: E[], options: RetentionRun): E[] {
  const { readable: parsed, keptUpTo } = readableSets(list, 'file-store', (e) => parseFileStoreManifest(e.manifestText!, e.record.manifest.name), options);
  // By the time in their names, and aged by the later of it and the creation time (as local retention).
  parsed.sort((a, b) => oldestByName({ manifest: a.m }, { manifest: b.m }));
  const cutoff = cutoffOf(options);
  const isLocked = (p: (typeof parsed)[number]) => lockedUntil(p.e.record, options.now) !== undefined;
  const { groups, unknown } = groupByStore(parsed.map((p) => ({ manifest: p.m, p })));
  if (unknown.length > 0) {
    options.log.warn(
      `Offsite retention: kept ${unknown.map((u) => `file-store/${u.p.e.record.id}`).join(', ')}: ${unknown.length === 1 ? 'its manifest does' : 'their manifests do'} not say where ${unknown.length === 1 ? 'its folders were' : 'their folders were'} read from, ` +
        "so whose file store it is cannot be told; retention deletes no set on another's behalf. Delete it by hand when no longer needed (its .offsite.json record first).",
    );
  }
  const kept = unknown.map((u) => u.p);
  for (const group of groups) {
    const sets = group.map((g) => g.p);
    const newestFull = [...sets].reverse().find((p) => p.m.mode === 'Full');
    const newestN = sets.slice(-options.keepAtLeast);
    kept.push(...sets.filter((p) => madeAt(p.m) >= cutoff || madeAt(p.m) <= keptUpTo || p === newestFull || newestN.includes(p) || isLocked(p)));
  }
  const needed = new Set(kept.flatMap((p) => p.m.chain));
  return parsed.filter((p) => !kept.includes(p) && !needed.has(p.m.archive)).map((p) => p.e);
}

/** The sets of `area` that retention deletes from `list`: one rule for the sets offsite and for those a copy would add. */
function removals<E extends Entry>(area: Area, list: E[], options: RetentionRun): E[] {
  return area === 'database' ? databaseRemovals(list, options) : fileStoreRemovals(list, options);
}

/** Sets old enough to go but still locked offsite (Offsite immutability): kept, and said so. */
function reportLocked(list: Entry[], area: string, options: RetentionRun): void {
  const cutoff = cutoffOf(options);
  for (const e of list) {
    const until = lockedUntil(e.record, options.now);
    if (until && Date.parse(e.record.takenAt) < cutoff) {
      options.log.info(`Offsite retention: kept ${area}/${e.record.id} (taken ${e.record.takenAt}): it is locked offsite until ${until} (Offsite immutability); it can be deleted after that.`);
    }
  }
}

/** Deletes offsite sets older than the limit that no kept set needs; logs and stops on cancel through the context. */
export async function applyOffsiteRetention(request: OffsiteRetentionOptions, context: EngineContext): Promise<string[]> {
  const options: RetentionRun = { ...request, log: context.log, signal: context.signal };
  const deleted: string[] = [];
  for (const area of ['database', 'file-store'] as const) {
    const list = await entries(options, area);
    if (list.length === 0) continue;
    reportLocked(list, area, options);
    for (const e of removals(area, list, options)) {
      options.signal?.throwIfAborted();
      await options.beforeDelete?.();
      // The record first: from then on the set is not offsite, so a crash never leaves a half set that looks whole.
      await options.store.remove(offsiteRecordKey(area, e.record.id));
      for (const f of e.record.files) await options.store.remove(`${area}/${f.name}`);
      await options.store.remove(`${area}/${e.record.manifest.name}`);
      options.log.verbose(`Offsite retention: deleted ${area}/${e.record.id} (taken ${e.record.takenAt}).`);
      deleted.push(`${area}/${e.record.id}`);
    }
  }
  return deleted;
}

/** A local set that is not offsite yet, as its offsite record and manifest would be once copied. */
export interface ArrivingSet {
  area: Area;
  id: string;
  /** As the record would say (LocalSet.takenAt). */
  takenAt: string;
  manifestName: string;
  /** The manifest as it would be sent (before encryption). */
  manifestText: string;
}

/**
 * Which of `arriving` (local sets not offsite yet) this retention would delete as soon as they were
 * copied: the same plan as applyOffsiteRetention (`removals`), over the sets offsite now and these
 * together, so a newest set (Keep at least, the newest verified full) and everything a kept set needs
 * are still sent. Before, a set older than the limit was uploaded, deleted by the retention of the same
 * run, and uploaded again by the next (stop 37 red team). The arriving sets enter unlocked: a lock the
 * copy would give them (Offsite immutability) only delays the delete, and each cycle would add locked
 * copies. Nothing is logged: retention says its warnings itself after the copy. A set newer than the
 * limit is never deleted, so when none is older nothing is read offsite.
 */
export async function deletedOnArrival(request: OffsiteRetentionOptions, arriving: readonly ArrivingSet[], signal: AbortSignal): Promise<Set<ArrivingSet>> {
  const quiet: EngineLog = { info: () => undefined, verbose: () => undefined, warn: () => undefined };
  const options: RetentionRun = { ...request, log: quiet, signal };
  const result = new Set<ArrivingSet>();
  if (options.retentionDays <= 0) return result;
  const cutoff = cutoffOf(options);
  for (const area of ['database', 'file-store'] as const) {
    const mine = arriving.filter((a) => a.area === area);
    if (!mine.some((a) => !(Date.parse(a.takenAt) >= cutoff))) continue;
    const byEntry = new Map<Entry, ArrivingSet>();
    for (const a of mine) byEntry.set({ record: { id: a.id, takenAt: a.takenAt, immutability: null, manifest: { name: a.manifestName } }, manifestText: a.manifestText }, a);
    const list: Entry[] = [...(await entries(options, area)), ...byEntry.keys()];
    for (const e of removals(area, list, options)) {
      const a = byEntry.get(e);
      if (a) result.add(a);
    }
  }
  return result;
}
