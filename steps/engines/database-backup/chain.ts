// Chooses the backups a restore needs: the latest full backup before the target, the
// differential based on it, then log backups in LSN order with no gap and in the same recovery
// fork (the rules dbatools' Select-DbaBackupInformation applies). LSNs compare as BigInt.
import { kindOf, type BackupSet } from './backup-set';
import { compareLsn, lsnEqual, lsnLessOrEqual, lsnValue } from './lsn';
import { StepFailure } from '../../runtime/errors';

export interface RestoreChain {
  full: BackupSet;
  differential?: BackupSet;
  logs: BackupSet[];
  /** STOPAT for the last log, when restoring to a point in time inside it. */
  stopAt?: string;
  /** The time the restored database will reflect (server local time). */
  pointInTime: string;
}

/** No restorable chain: the message names the missing file or the LSN gap. */
export class ChainError extends StepFailure {
  constructor(message: string) {
    super(message);
    this.name = 'ChainError';
  }
}

export interface ChainOptions {
  /** Restore to this server-local time (`YYYY-MM-DDTHH:mm:ss.mmm`). */
  stopAt?: string;
  /** Restore exactly up to the end of this set (a manifest or file the user named). */
  endAt?: BackupSet;
}

const byLastLsnDescending = (a: BackupSet, b: BackupSet) => compareLsn(b.header.lastLsn, a.header.lastLsn);

function describe(set: BackupSet): string {
  return `${set.label} (${kindOf(set.header) ?? set.header.backupTypeDescription}, LSN ${set.header.firstLsn}..${set.header.lastLsn}, finished ${set.header.backupFinishDate})`;
}

function differentialFor(full: BackupSet, sets: readonly BackupSet[], notAfter?: string): BackupSet | undefined {
  return sets
    .filter((s) => kindOf(s.header) === 'Differential')
    .filter((s) => lsnEqual(s.header.databaseBackupLsn, full.header.checkpointLsn))
    .filter((s) => lsnLessOrEqual(full.header.lastLsn, s.header.lastLsn))
    .filter((s) => notAfter === undefined || s.header.backupFinishDate <= notAfter)
    .sort(byLastLsnDescending)[0];
}

interface LogWalk {
  logs: BackupSet[];
  /** Why the walk stopped before the goal, if it did. */
  gap?: string;
}

// LSNs as BigInt, parsed once per header (a history can hold tens of thousands of log backups).
const parsed = new WeakMap<object, { first: bigint; last: bigint }>();
function range(set: BackupSet): { first: bigint; last: bigint } {
  let r = parsed.get(set.header);
  if (!r) parsed.set(set.header, (r = { first: lsnValue(set.header.firstLsn), last: lsnValue(set.header.lastLsn) }));
  return r;
}

/** The log backups of one database, sorted by FirstLSN, for walks. */
type LogIndex = BackupSet[];

function logIndex(sets: readonly BackupSet[]): LogIndex {
  return sets
    .filter((s) => kindOf(s.header) === 'Log')
    .sort((a, b) => (range(a).first < range(b).first ? -1 : range(a).first > range(b).first ? 1 : 0));
}

const forkKey = (fork: string | null) => (fork === null ? '' : fork.toLowerCase());

/**
 * Log backups that follow `base`, each starting at or before the previous end (FirstLSN <= previous
 * LastLSN < LastLSN), until `done` says the goal is reached or no log continues the chain. Among
 * overlapping candidates the one reaching furthest is taken. One sweep over the logs sorted by
 * FirstLSN, keeping per recovery fork the log that reaches furthest among those started so far.
 */
function walkLogs(base: BackupSet, logs: LogIndex, done: (last: BackupSet) => boolean): LogWalk {
  const chosen: BackupSet[] = [];
  const bestByFork = new Map<string, BackupSet>();
  let overall: BackupSet | undefined;
  let next = 0;
  let current = base;
  let fork = base.header.recoveryForkId;
  while (!done(current)) {
    const end = range(current).last;
    while (next < logs.length && range(logs[next]).first <= end) {
      const log = logs[next++];
      const key = forkKey(log.header.firstRecoveryForkId);
      const best = bestByFork.get(key);
      if (!best || range(log).last > range(best).last) bestByFork.set(key, log);
      if (!overall || range(log).last > range(overall).last) overall = log;
    }
    const candidates = fork === null ? [...bestByFork.values()] : [bestByFork.get(forkKey(fork)), bestByFork.get('')];
    let step: BackupSet | undefined;
    for (const c of candidates) if (c && range(c).last > end && (!step || range(c).last > range(step).last)) step = c;
    if (!step) {
      const later = logs[next];
      const forked = overall && range(overall).last > end ? overall : undefined;
      return {
        logs: chosen,
        gap: later
          ? `LSN gap after ${current.label}: the chain ends at LSN ${end}, but the next log backup ${later.label} starts at LSN ${later.header.firstLsn}; the log backups in between are missing.`
          : forked
            ? `${forked.label} continues LSN ${end} but belongs to another recovery fork (the database was restored in between).`
            : undefined,
      };
    }
    chosen.push(step);
    current = step;
    fork = step.header.recoveryForkId ?? fork;
  }
  return { logs: chosen };
}

function assertComplete(chain: RestoreChain): RestoreChain {
  for (const set of [chain.full, chain.differential, ...chain.logs]) {
    if (set && set.missingFiles.length > 0 && set.files.length === 0 && set.missingFiles.length === 1) {
      throw new ChainError(`${set.missingFiles[0]} is missing (${set.label} lists it). Copy it back beside ${set.label}, or restore from an earlier backup.`);
    }
    if (set && set.missingFiles.length > 0) {
      throw new ChainError(
        `${set.label} is striped over ${set.files.length + set.missingFiles.length} files, and ${set.missingFiles.join(', ')} ${set.missingFiles.length === 1 ? 'is' : 'are'} missing. Every stripe is needed: copy the missing file${set.missingFiles.length === 1 ? '' : 's'} beside the others.`,
      );
    }
  }
  return chain;
}

/** Selects the backups to restore, or throws a ChainError naming the missing file or LSN gap. */
export function selectChain(allSets: readonly BackupSet[], options: ChainOptions = {}): RestoreChain {
  const database = options.endAt?.header.databaseName;
  const sets = allSets.filter((s) => kindOf(s.header) !== undefined && (database === undefined || s.header.databaseName === database));
  const names = [...new Set(sets.map((s) => s.header.databaseName))];
  if (names.length > 1) {
    throw new ChainError(
      `The backups are of ${names.length} databases (${names.join(', ')}). Point the source at one database's manifest or backup file, or at a directory holding one database's backups.`,
    );
  }
  const fulls = sets.filter((s) => kindOf(s.header) === 'Full').sort(byLastLsnDescending);
  const logs = logIndex(sets);

  if (options.endAt) return assertComplete(chainEndingAt(options.endAt, sets, fulls, logs));

  const stopAt = options.stopAt;
  if (stopAt === undefined) {
    const full = fulls[0];
    if (!full) throw new ChainError('No full database backup was found, and every restore starts from one.');
    const differential = differentialFor(full, sets);
    const base = differential ?? full;
    const walk = walkLogs(base, logs, () => false);
    if (walk.gap) throw new ChainError(walk.gap);
    const last = walk.logs[walk.logs.length - 1] ?? base;
    return assertComplete({ full, differential, logs: walk.logs, pointInTime: last.header.backupFinishDate });
  }

  const candidates = fulls.filter((f) => f.header.backupFinishDate <= stopAt);
  if (candidates.length === 0) {
    const oldest = [...fulls].sort((a, b) => (a.header.backupFinishDate < b.header.backupFinishDate ? -1 : 1))[0];
    throw new ChainError(
      oldest
        ? `No full backup finished at or before ${stopAt}; the oldest full backup, ${oldest.label}, finished ${oldest.header.backupFinishDate}.`
        : 'No full database backup was found, and every restore starts from one.',
    );
  }
  let firstProblem: string | undefined;
  for (const full of candidates) {
    const differential = differentialFor(full, sets, stopAt);
    const base = differential ?? full;
    if (base.header.backupFinishDate === stopAt) {
      return assertComplete({ full, differential, logs: [], pointInTime: stopAt });
    }
    const walk = walkLogs(base, logs, (last) => last !== base && last.header.backupFinishDate >= stopAt);
    const last = walk.logs[walk.logs.length - 1];
    if (last && last.header.backupFinishDate >= stopAt) {
      return assertComplete({ full, differential, logs: walk.logs, stopAt, pointInTime: stopAt });
    }
    firstProblem ??=
      walk.gap ??
      `The backups reach only ${(last ?? base).header.backupFinishDate} (${(last ?? base).label}); no log backup covers ${stopAt}. ` +
        (walk.logs.length === 0 && base.header.recoveryModel.toUpperCase() === 'SIMPLE'
          ? 'The database uses the SIMPLE recovery model, so it has no log backups: restore points are its full and differential backups.'
          : 'Take a log backup after that time, or choose an earlier point in time.');
  }
  throw new ChainError(`Point in time ${stopAt} cannot be reached. ${firstProblem ?? ''}`.trim());
}

function chainEndingAt(target: BackupSet, sets: readonly BackupSet[], fulls: readonly BackupSet[], logs: LogIndex): RestoreChain {
  const kind = kindOf(target.header);
  if (kind === 'Full') return { full: target, logs: [], pointInTime: target.header.backupFinishDate };
  if (kind === 'Differential') {
    const full = fulls.find((f) => lsnEqual(f.header.checkpointLsn, target.header.databaseBackupLsn));
    if (!full) {
      throw new ChainError(
        `${describe(target)} is a differential backup based on the full backup with checkpoint LSN ${target.header.databaseBackupLsn}, which was not found beside it.`,
      );
    }
    return { full, differential: target, logs: [], pointInTime: target.header.backupFinishDate };
  }
  // A log backup: try bases from the newest full at or before it, with their differentials.
  let firstProblem: string | undefined;
  for (const full of fulls.filter((f) => lsnLessOrEqual(f.header.lastLsn, target.header.lastLsn))) {
    const differential = differentialFor(full, sets.filter((s) => lsnLessOrEqual(s.header.lastLsn, target.header.lastLsn)));
    const bases = differential ? [differential, full] : [full];
    for (const base of bases) {
      const walk = walkLogs(base, logs, (last) => range(target).last <= range(last).last);
      const last = walk.logs[walk.logs.length - 1];
      if (last && lsnEqual(last.header.lastLsn, target.header.lastLsn)) {
        const logs = walk.logs.slice(0, -1).concat(target);
        return { full, differential: base === differential ? differential : undefined, logs, pointInTime: target.header.backupFinishDate };
      }
      firstProblem ??= walk.gap;
    }
  }
  throw new ChainError(
    firstProblem ?? `${describe(target)} is a log backup, and no full backup it can be restored on top of was found beside it.`,
  );
}

/**
 * The earlier sets `set` needs, by the backup headers: the chain a restore up to its end would take
 * (selectChain). When that chain cannot be made from `all` (a log missing, a stripe gone), at least
 * the full its header names as its base (DatabaseBackupLSN = the full's CheckpointLSN). A full needs
 * none. Pure.
 */
export function earlierSetsNeeded<S extends BackupSet>(set: S, all: readonly S[]): S[] {
  const kind = kindOf(set.header);
  if (kind === undefined || kind === 'Full') return [];
  let members: (BackupSet | undefined)[];
  try {
    const chain = selectChain(all, { endAt: set });
    members = [chain.full, chain.differential, ...chain.logs];
  } catch (error) {
    if (!(error instanceof ChainError)) throw error;
    members = all.filter((s) => s.header.databaseName === set.header.databaseName && kindOf(s.header) === 'Full' && lsnEqual(s.header.checkpointLsn, set.header.databaseBackupLsn));
  }
  return (members as (S | undefined)[]).filter((m): m is S => m !== undefined && m !== set);
}
