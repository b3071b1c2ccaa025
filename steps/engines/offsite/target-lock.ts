// One Copy Offsite run at a time per offsite target (bucket or container and prefix). Two runs at
// once overwrote each other's objects, and with encryption one run's record could describe the
// other's ciphertext. The lock is a small object, `<prefix>/.octopus-dr/copy.lock` (outside the
// database/ and file-store/ areas, so no listing sees it), holding its holder (host, process, run
// token, since) and when it expires. It is taken by a create-only write (S3 `If-None-Match: *`,
// Azure `ifNoneMatch: "*"`), renewed every minute by a write conditional on its ETag (`If-Match`),
// and taken over, by the same conditional write, once its holder is known to have stopped: released
// (marked free), its process gone on this host, or expired (no renewal for LOCK_STALE_AFTER_MS).
// A lock object that is not a record of this tool is taken over once it has not changed for a minute.
// Only one of two runs trying at once wins. A store that ignores the conditions (s3rver, older MinIO
// and Ceph; stores that keep one of the two conditions) is found by a probe: a second create-only write
// of the lock, and a write on an ETag it does not have, must both be refused. There the run
// warns, and falls back to reading its lock back after a pause. Before every upload and retention
// delete the run checks, by reading the lock, that it still holds it. Released on every exit path by
// a delete conditional on its ETag, or, where the store refuses the delete (Object Lock, no delete
// permission), by overwriting it marked free.
import * as os from 'node:os';
import type { EngineLog } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { formatDuration, printable } from '../../runtime/format';
import { deadOnThisHost, describeHolder, LOCK_HEARTBEAT_MS, LOCK_POLL_MS, LOCK_STALE_AFTER_MS, newLockHolder, sleep, type LockHolder } from '../../runtime/lock';
import { lockWaitMinutes } from '../../../templates/parameters';
import type { ConditionalWrite, OffsiteStore, WriteCondition } from './store';

/** Relative to the target's prefix. */
export const OFFSITE_LOCK_KEY = '.octopus-dr/copy.lock';

export interface OffsiteLockRecord extends LockHolder {
  /** When the lock ends unless renewed (the holder's clock). */
  expires: string;
  /** Released where it could not be deleted: whoever comes next takes it. */
  free?: boolean;
}

export interface OffsiteLockOptions {
  store: OffsiteStore;
  /** The step taking it (its step id). */
  step: string;
  /** How long to wait for another holder; 0 fails at once. */
  waitMs: number;
  log: EngineLog;
  signal: AbortSignal;
  /** For tests: the timings, and who this run says it is. */
  pollMs?: number;
  heartbeatMs?: number;
  staleAfterMs?: number;
  /** Where the store ignores conditions: how long to let a concurrent write land before reading the lock back. */
  settleMs?: number;
  unreadableAfterMs?: number;
  host?: string;
  pid?: number;
}

export interface HeldOffsiteLock {
  holder: OffsiteLockRecord;
  /** Throws a StepFailure when this run no longer holds the lock (another run took it over). */
  assertHeld(): Promise<void>;
  /** Never throws: a lock that cannot be released is said in a warning, and expires. */
  release(): Promise<void>;
}

/** Long enough for a write another run sent at the same moment to land (a few hundred bytes). */
const SETTLE_MS = 1000;
/**
 * A lock object that is not a record this tool wrote is taken over once it has stayed the same (one
 * ETag) this long: a store that writes in place (s3rver) can show a write half done, and another
 * tool's object deserves a pause. Real stores write an object whole.
 */
const UNREADABLE_AFTER_MS = 60_000;

/** An ETag no store gives an object: a write conditional on it must be refused (the If-Match probe). */
const PROBE_ETAG = '"octopus-dr-if-match-probe"';

function parseRecord(body: Buffer): OffsiteLockRecord | undefined {
  try {
    const value = JSON.parse(body.toString('utf8')) as Partial<OffsiteLockRecord>;
    if (value.tool === 'octopus-dr' && typeof value.host === 'string' && Number.isInteger(value.pid) && typeof value.token === 'string' && typeof value.expires === 'string') {
      return value as OffsiteLockRecord;
    }
  } catch {
    // Not a lock this tool wrote: said as such below.
  }
  return undefined;
}

/** Why the lock found may be taken, or undefined when its holder may still be running. */
function takeable(record: OffsiteLockRecord, host: string, now: number): string | undefined {
  if (record.free) return 'released';
  const dead = deadOnThisHost(record, host);
  if (dead) return dead;
  const expires = Date.parse(record.expires);
  if (!(expires > now)) return `it expired at ${record.expires} (its holder stopped renewing it)`;
  return undefined;
}

function serialise(record: OffsiteLockRecord): Buffer {
  return Buffer.from(JSON.stringify(record, null, 1) + '\n');
}

/** Takes the lock on the store's target, waiting up to `waitMs` for another run; throws a StepFailure naming the holder. */
export async function acquireOffsiteLock(options: OffsiteLockOptions): Promise<HeldOffsiteLock> {
  const { store, log, signal } = options;
  const host = options.host ?? os.hostname();
  const staleAfterMs = options.staleAfterMs ?? LOCK_STALE_AFTER_MS;
  const where = `${store.display}/${OFFSITE_LOCK_KEY}`;
  const holder: OffsiteLockRecord = {
    ...newLockHolder({ host, pid: options.pid, step: options.step, resource: store.display }),
    expires: '',
  };
  const renewed = () => serialise({ ...holder, expires: new Date(Date.now() + staleAfterMs).toISOString() });
  /** Whether the store keeps the conditions: unknown until the first write is probed. */
  let conditions: 'kept' | 'ignored' | undefined;
  const ignored = (what = `a second create-only write of ${OFFSITE_LOCK_KEY} was accepted`) => {
    if (conditions === 'ignored') return;
    conditions = 'ignored';
    log.warn(
      `The offsite store at ${store.display} ignores conditional writes (${what}), so it cannot keep two Copy Offsite runs ` +
        'apart reliably: this run checks its lock by reading it back instead. Run one copy at a time against this target, or use a store that supports conditional writes ' +
        '(Amazon S3, Azure Blob Storage, a current MinIO).',
    );
  };
  const write = async (body: Buffer, condition: WriteCondition): Promise<ConditionalWrite> => {
    const done = await store.putIf(OFFSITE_LOCK_KEY, body, conditions === 'ignored' ? undefined : condition);
    if (done !== 'unsupported') return done;
    ignored();
    return store.putIf(OFFSITE_LOCK_KEY, body, undefined);
  };
  /** Reads the lock back: whose it is now. A record that does not parse is read again twice (a store that writes in place can show a write half done). */
  const current = async () => {
    for (let attempt = 1; ; attempt++) {
      const found = await store.read(OFFSITE_LOCK_KEY);
      const record = found && parseRecord(found.body);
      if (!found || record || attempt === 3) return found && { ...found, record };
      await sleep(200, signal);
    }
  };

  const deadline = Date.now() + options.waitMs;
  const unreadableSince = new Map<string, number>();
  let waitingFor: string | undefined;
  let etag: string;
  let wrote = false;
  try {
    for (;;) {
      signal.throwIfAborted();
      const found = await current();
      let attempt: ConditionalWrite | undefined;
      let takeover: string | undefined;
      holder.since = new Date().toISOString();
      const body = renewed();
      if (!found) attempt = await write(body, { ifNoneMatch: '*' });
      else if (found.record?.token === holder.token) {
        // This run's own write: it reached the store, but its answer did not (the SDK's retry of it was then refused). It is held.
        attempt = await write(body, { ifMatch: found.etag });
      } else {
        let why: string | undefined;
        if (found.record) why = takeable(found.record, host, Date.now());
        else {
          const since = unreadableSince.get(found.etag) ?? Date.now();
          unreadableSince.set(found.etag, since);
          if (Date.now() - since >= (options.unreadableAfterMs ?? UNREADABLE_AFTER_MS)) why = `it is not a lock record this tool wrote, and it did not change for ${formatDuration((Date.now() - since) / 1000)}`;
        }
        if (why) {
          // A lock released (marked free) is simply taken; any other is taken over, and said so.
          if (!found.record?.free) takeover = `${found.record ? ` held by ${describeHolder(found.record)}` : ''}: ${why}`;
          attempt = await write(body, { ifMatch: found.etag });
        }
      }
      if (attempt && attempt !== 'refused' && attempt !== 'unsupported') {
        wrote = true;
        etag = attempt.etag;
        if (conditions === undefined) {
          // The probe: a second create-only write must be refused now that the lock exists; and so must a
          // write on an ETag the lock does not have. Some S3-compatible stores keep one condition and not the
          // other: with If-Match ignored, two runs taking over one expired lock both wrote it, and both held it.
          const probe = await store.putIf(OFFSITE_LOCK_KEY, body, { ifNoneMatch: '*' });
          if (probe !== 'refused') {
            ignored();
            if (probe !== 'unsupported') etag = probe.etag;
          } else {
            const matchProbe = await store.putIf(OFFSITE_LOCK_KEY, body, { ifMatch: PROBE_ETAG });
            if (matchProbe === 'refused') conditions = 'kept';
            else {
              ignored(`a write of ${OFFSITE_LOCK_KEY} on an ETag it does not have (If-Match) was accepted`);
              if (matchProbe !== 'unsupported') etag = matchProbe.etag;
            }
          }
        }
        if (conditions === 'kept') {
          if (takeover) log.warn(`Took over the offsite lock ${where}${takeover}.`);
          break;
        }
        // Conditions ignored: another run may have written at the same moment. The last write wins; see whose it is.
        await sleep(options.settleMs ?? SETTLE_MS, signal);
        const after = await current();
        if (after?.record?.token === holder.token) {
          etag = after.etag;
          if (takeover) log.warn(`Took over the offsite lock ${where}${takeover}.`);
          break;
        }
        continue;
      }
      if (attempt) {
        // Refused: another run wrote it first. Look again (after a moment, should the store keep refusing).
        await sleep(Math.min(options.pollMs ?? LOCK_POLL_MS, 250), signal);
        continue;
      }
      const record = found!.record;
      const holderNow = record ? describeHolder(record) : `a run whose lock object cannot be read (not a record this tool wrote, or one being written)`;
      const who = record ? `${holderNow}, lock renewed until ${record.expires}` : holderNow;
      if (Date.now() >= deadline) {
        const waited = options.waitMs > 0 ? `; waited ${formatDuration(options.waitMs / 1000)}` : '';
        throw new StepFailure(
          `Another Copy Offsite run is writing to ${store.display}: ${who}${waited}. Nothing was copied. ` +
            `Let it finish and run this step again, or raise "${lockWaitMinutes.label}" (${lockWaitMinutes.name}). ` +
            `A lock whose run was stopped is taken over by the next run: at once on the same host, from another host once it expires (${formatDuration(staleAfterMs / 1000)} after its last renewal); ` +
            `if no run holds it, delete ${where}.`,
        );
      }
      if (waitingFor !== who) {
        waitingFor = who;
        log.info(`Waiting up to ${formatDuration(Math.max(0, deadline - Date.now()) / 1000)} for ${holderNow}, which is copying to ${store.display}...`);
      }
      await sleep(Math.min(options.pollMs ?? LOCK_POLL_MS, Math.max(1, deadline - Date.now())), signal);
    }
  } catch (error) {
    // Failed or cancelled after writing the lock (its probe, the pause a store without conditions needs):
    // the lock is this run's, and nothing else would release it before it expires.
    if (wrote) {
      await (async () => {
        const now = await current();
        if (now?.record?.token !== holder.token) return;
        if (conditions === 'ignored') await store.remove(OFFSITE_LOCK_KEY);
        else await store.removeIf(OFFSITE_LOCK_KEY, now.etag);
      })().catch(() => log.warn(`Could not remove the offsite lock ${where} this run wrote before it stopped; it expires ${formatDuration(staleAfterMs / 1000)} after it was written, or delete it.`));
    }
    throw error;
  }
  log.verbose(`Holding the offsite lock ${where} (run ${holder.token}).`);

  let lost: string | undefined;
  const lose = (record: OffsiteLockRecord | undefined) => {
    lost ??= record ? describeHolder(record) : 'no run (the lock object was deleted)';
  };
  // Renewals and checks one at a time: a check never reads the lock while this run is writing it.
  let queue: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(task: () => Promise<T>): Promise<T> => {
    const done = queue.then(task);
    queue = done.catch(() => undefined);
    return done;
  };
  let renewing: Promise<void> | undefined;
  let renewalProblem: string | undefined;
  const renew = async () => {
    if (lost) return;
    try {
      if (conditions === 'ignored') {
        const now = await current();
        if (now?.record?.token !== holder.token) return lose(now?.record);
      }
      const done = await write(renewed(), { ifMatch: etag });
      if (done === 'refused') {
        // A renewal of this run whose answer was lost (the SDK's retry was refused) changed the ETag: still this run's.
        const now = await current();
        if (now?.record?.token !== holder.token) return lose(now?.record);
        etag = now.etag;
        renewalProblem = undefined;
        return;
      }
      if (done !== 'unsupported') etag = done.etag;
      renewalProblem = undefined;
    } catch (error) {
      // The store or network failed: try again at the next beat (the lock lasts LOCK_STALE_AFTER_MS).
      if (renewalProblem === undefined) log.verbose(`Could not renew the offsite lock ${where} (${printable((error as Error).message)}); trying again in a minute.`);
      renewalProblem = (error as Error).message;
    }
  };
  const beat = setInterval(() => {
    renewing ??= oneAtATime(renew).finally(() => (renewing = undefined));
  }, options.heartbeatMs ?? LOCK_HEARTBEAT_MS);
  beat.unref();

  let released = false;
  return {
    holder,
    async assertHeld() {
      if (!lost) {
        const now = await oneAtATime(current);
        if (now?.record?.token !== holder.token) lose(now?.record);
      }
      if (lost) {
        throw new StepFailure(
          `This run no longer holds the offsite lock ${where}: ${lost} has it now (a run that cannot renew its lock for ${formatDuration(staleAfterMs / 1000)} loses it). ` +
            'This run stopped before writing anything more; what it uploaded may have been replaced. Let the other run finish, then run the copy again: it checks every set.',
        );
      }
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(beat);
      await renewing;
      try {
        if (!lost && conditions === 'ignored') {
          const now = await current();
          if (now?.record?.token !== holder.token) lose(now?.record);
        }
        if (lost) {
          log.warn(`The offsite lock ${where} was taken over by ${lost} while this run held it; left it to that run.`);
          return;
        }
        let refusedDelete: unknown;
        if (conditions === 'ignored') await store.remove(OFFSITE_LOCK_KEY).catch((e: unknown) => (refusedDelete = e));
        else {
          let removed = await store.removeIf(OFFSITE_LOCK_KEY, etag).catch((e: unknown) => ((refusedDelete = e), undefined));
          if (removed === 'refused') {
            // A write of this run whose answer was lost left it another ETag: still this run's lock.
            const mine = await current();
            if (mine?.record?.token === holder.token) {
              etag = mine.etag;
              removed = await store.removeIf(OFFSITE_LOCK_KEY, etag).catch((e: unknown) => ((refusedDelete = e), undefined));
            }
          }
          if (removed === 'refused') {
            const now = await current();
            log.warn(`The offsite lock ${where} was taken over by ${now?.record ? describeHolder(now.record) : 'another run'} while this run held it; left it to that run.`);
            return;
          }
        }
        if (refusedDelete === undefined) return;
        // Object Lock, or credentials without delete: overwrite it marked free; the next run takes it at once.
        const freed = await write(serialise({ ...holder, expires: new Date().toISOString(), free: true }), { ifMatch: etag });
        if (freed === 'refused') log.warn(`The offsite lock ${where} was taken over by another run while this run held it; left it to that run.`);
        else log.verbose(`Released the offsite lock ${where} by marking it free (the store refused its delete: ${printable((refusedDelete as Error).message)}).`);
      } catch (error) {
        log.warn(
          `Could not release the offsite lock ${where} (${printable((error as Error).message)}). It expires ${formatDuration(staleAfterMs / 1000)} after its last renewal, ` +
            'and the next run takes it over then (at once on this host); or delete it.',
        );
      }
    },
  };
}
