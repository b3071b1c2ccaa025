// One writer at a time per backup directory and database (or file store). Two runs at once
// must never overwrite or delete each other's files: the second waits a bounded time for the
// first, then fails naming it. The lock is a file created with O_EXCL ('wx': atomic on local
// disks, SMB and NFSv3+), holding a JSON record of its holder; the holder refreshes its mtime
// (a heartbeat) while it runs. A lock left by a killed process is recognised and taken over:
// on the same host when its process no longer runs, from any host when the heartbeat stopped.
import { randomBytes } from 'node:crypto';
import { promises as fs, readlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lockWaitMinutes, restoreSource } from '../../templates/parameters';
import { StepFailure } from './errors';
import { describeFileError } from './failure';
import { formatDuration } from './format';

export interface LockHolder {
  tool: 'octopus-dr';
  host: string;
  pid: number;
  step: string;
  /** What is locked, for messages (e.g. "database 'Octopus'"). */
  resource: string;
  since: string;
  token: string;
  /** Linux: the pid namespace (containers with the same host name do not see each other's processes). */
  processSpace?: string;
}

/** This process as the holder of a new lock on `resource`: a fresh token, the pid namespace where there is one. */
export function newLockHolder(who: { host: string; pid?: number; step: string; resource: string }): LockHolder {
  const space = processSpace();
  return {
    tool: 'octopus-dr',
    host: who.host,
    pid: who.pid ?? process.pid,
    step: who.step,
    resource: who.resource,
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    ...(space ? { processSpace: space } : {}),
  };
}

export interface LockOptions {
  directory: string;
  /** File-name-safe key of what is locked within the directory (e.g. `database-octopus`). */
  key: string;
  /** What is locked, for messages: "database 'Octopus'", "the file store". */
  resource: string;
  /** The step taking the lock (its step id). */
  step: string;
  /** How long to wait for another holder; 0 fails at once. */
  waitMs: number;
  pollMs?: number;
  /** A lock whose heartbeat is older than this is stale, whoever holds it. */
  staleAfterMs?: number;
  heartbeatMs?: number;
  log: { info(message: string): void; warn(message: string): void };
  signal?: AbortSignal;
  /** For tests. */
  host?: string;
  pid?: number;
}

export interface HeldLock {
  path: string;
  holder: LockHolder;
  release(): Promise<void>;
}

export const LOCK_POLL_MS = 2000;
export const LOCK_HEARTBEAT_MS = 60_000;
/** Fifteen missed heartbeats: a running holder never gets near it, a dead one is taken over within the wait. */
export const LOCK_STALE_AFTER_MS = 15 * 60_000;
/** A lock file still empty after this long was left by a process killed between creating and writing it. */
const UNWRITTEN_AFTER_MS = 60_000;

export function lockFileName(key: string): string {
  return `.octopus-dr-${key}.lock`;
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Which processes `process.kill(pid, 0)` can see: on Linux, the pid namespace of this process. */
export function processSpace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

export function describeHolder(holder: LockHolder): string {
  return `${holder.step} (process ${holder.pid} on ${holder.host}, since ${holder.since})`;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (value.tool === 'octopus-dr' && typeof value.host === 'string' && Number.isInteger(value.pid) && typeof value.token === 'string') {
      return value as LockHolder;
    }
  } catch {
    // An unparsable record is judged by its age below.
  }
  return undefined;
}

/** True when a process with this id runs on this host (EPERM: it runs as another user). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) === 'EPERM';
  }
}

interface Observed {
  text: string;
  holder?: LockHolder;
  ageMs: number;
}

async function observe(lockPath: string): Promise<Observed | undefined> {
  try {
    const [text, stat] = await Promise.all([fs.readFile(lockPath, 'utf8'), fs.stat(lockPath)]);
    return { text, holder: parseHolder(text), ageMs: Date.now() - stat.mtimeMs };
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Why `holder` is known to have stopped: it ran on this host, in this pid namespace, and its process no longer runs. */
export function deadOnThisHost(holder: Pick<LockHolder, 'host' | 'pid' | 'processSpace'>, host: string): string | undefined {
  const ours = processSpace();
  const sameProcessSpace = !holder.processSpace || !ours || holder.processSpace === ours;
  return holder.host === host && sameProcessSpace && !processIsAlive(holder.pid) ? `process ${holder.pid} no longer runs on ${host}` : undefined;
}

/** Why a lock may be taken over, or undefined when its holder may still be running. */
function staleness(observed: Observed, host: string, staleAfterMs: number): string | undefined {
  const { holder, ageMs } = observed;
  if (!holder) return ageMs > UNWRITTEN_AFTER_MS ? 'its record is empty or unreadable, and it is older than a minute' : undefined;
  const dead = deadOnThisHost(holder, host);
  if (dead) return dead;
  if (ageMs > staleAfterMs) return `its holder has not refreshed it for ${Math.round(ageMs / 60_000)} minutes`;
  return undefined;
}

function fail(message: string, cause?: unknown): never {
  throw new StepFailure(message, cause === undefined ? {} : { cause });
}

async function createExclusive(lockPath: string, holder: LockHolder): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(lockPath, 'wx', 0o644);
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(holder, null, 1) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * Removes a stale lock, unless it changed since it was judged stale (another waiter took it over
 * first). A second exclusive file makes the check-and-remove one step among waiters.
 */
async function removeStale(lockPath: string, judged: Observed): Promise<boolean> {
  const guard = `${lockPath}.takeover`;
  try {
    await fs.writeFile(guard, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') throw error;
    // A guard left by a waiter killed mid-takeover.
    const stat = await fs.stat(guard).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > UNWRITTEN_AFTER_MS) await fs.rm(guard, { force: true });
    return false;
  }
  try {
    const now = await observe(lockPath);
    if (!now) return true;
    if (now.text !== judged.text) return false;
    await fs.rm(lockPath, { force: true });
    return true;
  } finally {
    await fs.rm(guard, { force: true });
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Takes the lock, waiting up to `waitMs` for another holder; throws a StepFailure naming the holder. */
export async function acquireLock(options: LockOptions): Promise<HeldLock> {
  const host = options.host ?? os.hostname();
  const lockPath = path.join(options.directory, lockFileName(options.key));
  const staleAfterMs = options.staleAfterMs ?? LOCK_STALE_AFTER_MS;
  const holder = newLockHolder({ host, pid: options.pid, step: options.step, resource: options.resource });
  const deadline = Date.now() + options.waitMs;
  let waitingFor: string | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      if (await createExclusive(lockPath, holder)) break;
    } catch (error) {
      // The same words as any other file error: which folder, which account, what to do.
      const described = describeFileError(error, { path: options.directory, what: `creating the lock file ${path.basename(lockPath)} there (nothing was written)` });
      fail(described ?? `Cannot create the lock file ${lockPath} (${errnoOf(error) ?? 'error'}): give the worker's account write access to ${options.directory}, or choose another backup directory.`, error);
    }
    const observed = await observe(lockPath);
    if (!observed) continue;
    const stale = staleness(observed, host, staleAfterMs);
    if (stale) {
      if (await removeStale(lockPath, observed)) {
        options.log.warn(
          `Took over the lock on ${options.resource} in ${options.directory}` +
            `${observed.holder ? ` held by ${describeHolder(observed.holder)}` : ''}: ${stale}.`,
        );
      }
      continue;
    }
    const current = observed.holder ? describeHolder(observed.holder) : `a process that is just starting (${lockPath})`;
    if (Date.now() >= deadline) {
      const waited = options.waitMs > 0 ? `; waited ${formatDuration(options.waitMs / 1000)}` : '';
      fail(
        `Another run is writing ${options.resource} in ${options.directory}: ${current}${waited}. Nothing was changed. ` +
          `Let it finish and run this step again, or raise "${lockWaitMinutes.label}". ` +
          `A lock whose process no longer runs is taken over by the next run (at once on the same host; from another host ${formatDuration(staleAfterMs / 1000)} after its last heartbeat).`,
      );
    }
    if (waitingFor !== current) {
      waitingFor = current;
      options.log.info(`Waiting up to ${formatDuration(options.waitMs / 1000)} for ${current}, which is writing ${options.resource} in ${options.directory}...`);
    }
    await sleep(Math.min(options.pollMs ?? LOCK_POLL_MS, Math.max(1, deadline - Date.now())), options.signal);
  }

  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockPath, now, now).catch(() => undefined);
  }, options.heartbeatMs ?? LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  let released = false;
  return {
    path: lockPath,
    holder,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      const observed = await observe(lockPath).catch(() => undefined);
      if (observed?.holder?.token !== holder.token) {
        options.log.warn(`The lock ${lockPath} was taken over by another run while this one held it; left it to that run.`);
        return;
      }
      await fs.rm(lockPath, { force: true });
    },
  };
}

export interface WriterWaitOptions {
  directory: string;
  /** Which locks matter, by key (e.g. every `database-*` key, or `file-store`). */
  keys: RegExp;
  /** What the waiting step is about to do, for messages: "restoring the newest set from it". */
  purpose: string;
  waitMs: number;
  pollMs?: number;
  staleAfterMs?: number;
  log: { info(message: string): void };
  signal?: AbortSignal;
  host?: string;
}

/**
 * Waits until no live backup holds a lock in the directory, without taking one (a restore may read
 * from read-only media). A restore that chose "the newest set" while a backup was writing would
 * restore an older point than the one being written; so it waits, then fails naming the backup.
 */
export async function waitForWriters(options: WriterWaitOptions): Promise<void> {
  const host = options.host ?? os.hostname();
  const staleAfterMs = options.staleAfterMs ?? LOCK_STALE_AFTER_MS;
  const deadline = Date.now() + options.waitMs;
  let announced = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const names = await fs.readdir(options.directory).catch(() => [] as string[]);
    let live: Observed | undefined;
    for (const name of names) {
      const key = /^\.octopus-dr-(.+)\.lock$/.exec(name)?.[1];
      if (!key || !options.keys.test(key)) continue;
      const observed = await observe(path.join(options.directory, name)).catch(() => undefined);
      if (observed && !staleness(observed, host, staleAfterMs)) {
        live = observed;
        break;
      }
    }
    if (!live) return;
    const holder = live.holder ? describeHolder(live.holder) : 'a backup that is just starting';
    if (Date.now() >= deadline) {
      fail(
        `A backup is being written to ${options.directory}: ${holder}${options.waitMs > 0 ? `; waited ${formatDuration(options.waitMs / 1000)}` : ''}. Nothing was changed. ` +
          `Run this step again when it has finished (the newest set is not complete yet), raise "${lockWaitMinutes.label}", or name a manifest or archive as "${restoreSource.label}" to use an earlier set now.`,
      );
    }
    if (!announced) {
      announced = true;
      options.log.info(`Waiting up to ${formatDuration(options.waitMs / 1000)} for ${holder}, which is writing a backup to ${options.directory}, before ${options.purpose}...`);
    }
    await sleep(Math.min(options.pollMs ?? LOCK_POLL_MS, Math.max(1, deadline - Date.now())), options.signal);
  }
}
