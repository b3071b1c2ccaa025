// One restore per target database at a time. Two restores over one database at once interleave:
// the second replaces it while the first's chain holds it RESTORING, reports success, and the
// first's rollback then undoes it. Every octopus-dr restore (and test restore, and rollback)
// holds SQL Server's application lock on its target, owned by a session of its own, from before
// the target is checked until it is done. A session of its own: the restore's connection may be
// the one that is lost, and the rollback runs on a fresh one, still under the lock.
import type { EngineContext } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { openSqlConnection, type SqlConnection } from '../sql';
import { runStatement } from './server-reads';
import { releaseRestoreLockStatement, restoreLockModeStatement, takeRestoreLockStatement } from './tsql';

export interface RestoreLock {
  readonly database: string;
  /** The lock's name, as the server derived it (takeRestoreLockStatement). */
  readonly resource: string;
  /** True while the lock's session lives and holds it (false once its connection was lost). */
  isHeld(): Promise<boolean>;
  /** Releases the lock and closes its session; safe to call twice. */
  release(): Promise<void>;
}

/** Another octopus-dr restore holds the target's lock: nothing was changed. */
export class RestoreTargetBusyError extends StepFailure {
  constructor(readonly database: string, serverName: string, resource: string) {
    super(
      `Another octopus-dr restore of '${database}' is running on ${serverName} (it holds the application lock '${resource}'), so nothing was changed. ` +
        `Wait for it to finish, then run this restore again if it is still needed.`,
    );
    this.name = 'RestoreTargetBusyError';
  }
}

/**
 * Takes the target's restore lock without waiting, on a session of its own (closed on release, or
 * by the step's cleanup). Resolves undefined when another session holds it; the caller decides
 * whether that fails (a restore) or means "choose another name" (a test restore's scratch name).
 */
export async function tryLockRestoreTarget(connectionString: string, database: string, context: EngineContext): Promise<RestoreLock | undefined> {
  return (await takeLock(connectionString, database, context)).lock;
}

/** Takes the target's restore lock, or fails saying another restore of it is running. */
export async function lockRestoreTarget(connectionString: string, database: string, serverName: string, context: EngineContext): Promise<RestoreLock> {
  const { lock, resource } = await takeLock(connectionString, database, context);
  if (!lock) throw new RestoreTargetBusyError(database, serverName, resource);
  return lock;
}

async function takeLock(connectionString: string, database: string, context: EngineContext): Promise<{ lock?: RestoreLock; resource: string }> {
  const connection = await openSqlConnection(connectionString, context, { database: 'master' });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    unregister();
    await connection.close().catch(() => undefined);
  };
  const unregister = context.onCleanup(close);
  let resource: string;
  try {
    const { rows } = await runStatement<{ result: number; resource: string }>(connection, takeRestoreLockStatement(database), { signal: context.signal });
    const result = Number(rows[0]?.result);
    resource = String(rows[0]?.resource);
    if (result < 0) {
      await close();
      if (result === -1) return { resource };
      throw new StepFailure(`SQL Server refused octopus-dr's restore lock on '${database}' (sp_getapplock returned ${result}); nothing was changed. Check that the login may run sp_getapplock in master.`);
    }
  } catch (error) {
    await close();
    throw error;
  }
  context.log.verbose(`Holding the application lock '${resource}' for this restore.`);
  const lock: RestoreLock = {
    database,
    resource,
    isHeld: () => (closed ? Promise.resolve(false) : stillHeld(connection, resource)),
    async release() {
      if (closed) return;
      await runStatement(connection, releaseRestoreLockStatement(resource)).catch(() => undefined);
      await close();
    },
  };
  return { lock, resource };
}

async function stillHeld(connection: SqlConnection, resource: string): Promise<boolean> {
  try {
    const { rows } = await runStatement<{ mode: string }>(connection, restoreLockModeStatement(resource));
    return rows[0]?.mode === 'Exclusive';
  } catch {
    return false;
  }
}
