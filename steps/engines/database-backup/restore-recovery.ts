// A restore that leaves nothing in an unknown state: a database it creates is dropped again if
// the restore fails or is cancelled (it did not exist, so nothing is lost); a database it
// replaces is rolled back from the safety backup on a failure (when asked), and the failure's
// message says what state the database is in and how to get its previous content back. One
// restore per target at a time: the whole of it, rollback included, holds the target's restore
// lock (restore-lock.ts), and a rollback whose lock was lost does not run.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { environmentNameOf } from '../../../templates/model';
import { restoreDatabase as restoreTemplate } from '../../../templates/restore-database';
import type { EngineContext } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { openSqlConnection, SqlError, type SqlConnection } from '../sql';
import { readDatabaseState, restoreDatabase, RestoreError, RestorePlanError, restoreSafetyBackup, type DatabaseState, type RestorePlan, type RestoreResult } from './restore';
import { lockRestoreTarget, type RestoreLock } from './restore-lock';
import { dropIfRestoringStatement, quoteName } from './tsql';

/** Where fresh connections go (the restore's own may be the one that was lost), and whether to roll back. */
export interface RecoveryTarget {
  connectionString: string;
  /** Restore the safety backup over a replaced database when the restore fails. */
  rollBackOnFailure: boolean;
}

/** Runs the plan; on a failure or cancel, leaves the target in a known state and throws a StepFailure saying which. */
export async function restoreWithRecovery(connection: SqlConnection, plan: RestorePlan, target: RecoveryTarget, context: EngineContext): Promise<RestoreResult> {
  // Held until the restore and any rollback or drop are done.
  const lock = await lockRestoreTarget(target.connectionString, plan.targetDatabase, plan.server.serverName, context);
  // A partly restored new database left for the step's cleanup to drop keeps the lock until then
  // (the lock's own cleanup, registered first, runs after it).
  let dropLeftToCleanup = false;
  try {
    await confirmTargetAsPlanned(connection, plan);
    // A database this restore creates must not be left half-restored (RESTORING) by a failure or a
    // cancel: it did not exist before, so removing it loses nothing. A replaced database is kept.
    let restored = false;
    if (!plan.targetExists) {
      context.onCleanup(async () => {
        // Without the lock, a RESTORING database of this name may be another restore's by now.
        if (restored || !(await lock.isHeld())) return;
        const cleanup = await openSqlConnection(target.connectionString, context, { database: 'master' });
        try {
          const drop = dropIfRestoringStatement(plan.targetDatabase);
          const { rows } = await cleanup.query(drop.sql, drop.params);
          if (rows.length > 0) context.log.warn(`Dropped the partly restored database '${plan.targetDatabase}' (it did not exist before this restore).`);
        } finally {
          await cleanup.close();
        }
      });
    }
    const result = await restoreDatabase(connection, plan, context, lock).catch(async (e) => {
      if (plan.targetExists) throw await replaceFailure(e, plan, target, lock, context);
      dropLeftToCleanup = true;
      // Dropped now, so that the message (the last line) says what is left.
      const failure = await newDatabaseFailure(e, plan, target, lock, context);
      restored = failure !== undefined;
      dropLeftToCleanup = !restored;
      if (failure) throw failure;
      // A cancel is reported as such (exit 130/143), not as the failure it caused.
      context.signal.throwIfAborted();
      throw e;
    });
    restored = true;
    return result;
  } finally {
    if (!dropLeftToCleanup) await lock.release();
  }
}

/** The target as the plan found it: it may have changed while the backups were verified, before the lock was taken. */
async function confirmTargetAsPlanned(connection: SqlConnection, plan: RestorePlan): Promise<void> {
  const now = await readDatabaseState(connection, plan.targetDatabase);
  if (Boolean(now) === plan.targetExists && (!now || now.identity === plan.targetIdentity)) return;
  // The same state but not the same database (dropped and created again, restored over): said in full.
  const same = now && now.state === plan.targetState;
  const was = plan.targetExists ? `existed (${same ? plan.targetIdentity : plan.targetState})` : 'did not exist';
  const is = now ? `exists (${same ? now.identity : now.state})` : 'does not exist';
  throw new RestorePlanError(`'${plan.targetDatabase}' changed while the backups were read and verified: it ${was} then and ${is} now. Run the restore again, so that it is planned against the database as it is.`);
}

/** A shell argument as typed: bare when safe, else single-quoted (PowerShell and POSIX shells both take these). */
function shellArgument(value: string): string {
  if (/^[\w./:\\@%+=,-]+$/.test(value)) return value;
  return process.platform === 'win32' ? `'${value.replace(/'/g, "''")}'` : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The command that restores the safety backup over the target (the connection string comes from the environment). */
export function safetyRestoreCommand(plan: RestorePlan, file = plan.safetyBackupFile!): string {
  const flag = (name: keyof typeof restoreTemplate.params) => restoreTemplate.params[name].flag;
  const args = [
    `--${flag('source')}`,
    shellArgument(file),
    `--${flag('targetDatabase')}`,
    shellArgument(plan.targetDatabase),
    `--${flag('replaceExisting')}`,
  ];
  if (plan.request.dataDirectory) args.push(`--${flag('dataDirectory')}`, shellArgument(plan.request.dataDirectory));
  if (plan.request.logDirectory) args.push(`--${flag('logDirectory')}`, shellArgument(plan.request.logDirectory));
  return `npx octopus-dr ${restoreTemplate.stepId} ${args.join(' ')}`;
}

function describeState(database: string, state: DatabaseState | undefined | Error): string {
  if (state instanceof Error) return `The state of '${database}' could not be read (${state.message}); expect it RESTORING (not usable)`;
  if (!state) return `'${database}' no longer exists`;
  const usable = state.state === 'ONLINE' && state.userAccess === 'MULTI_USER';
  return `'${database}' is now ${state.state}, ${state.userAccess} (as SQL Server reports it)${usable ? '' : ': not usable by Octopus'}`;
}

/** Opens a fresh connection (the restore's own may be the one that was lost) for `work`. */
async function withFreshConnection<T>(target: RecoveryTarget, context: EngineContext, work: (connection: SqlConnection) => Promise<T>): Promise<T> {
  const connection = await openSqlConnection(target.connectionString, context, { database: 'master' });
  try {
    return await work(connection);
  } finally {
    await connection.close();
  }
}

async function stateOf(target: RecoveryTarget, context: EngineContext, database: string): Promise<DatabaseState | undefined | Error> {
  return withFreshConnection(target, context, (c) => readDatabaseState(c, database)).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
}

/** How the user puts the previous database back (the last lines of the message): from this restore's safety backup, or an earlier one. */
function wayBack(plan: RestorePlan, file = plan.safetyBackupFile!, whose = 'Its previous content is in the safety backup'): string {
  const connectionVariable = environmentNameOf(restoreTemplate.params.connectionString.name);
  const visible = existsSync(file);
  return (
    `${whose} ${file} (a path on the SQL Server). ` +
    (visible ? '' : 'This worker cannot see that path: run the command where it can, or copy the file to a folder you can see and change --source. ') +
    `To put it back, stop the Octopus Server nodes and run, with the connection string in the environment variable ${connectionVariable}:\n` +
    `  ${safetyRestoreCommand(plan, file)}`
  );
}

/** A safety backup cut off part-way may leave a partial file: deleted where this worker sees it, else named. */
async function partialSafetyBackup(plan: RestorePlan, error: unknown): Promise<string> {
  const file = plan.safetyBackupFile;
  if (!file || !(error instanceof RestoreError) || error.stage !== 'safety-backup') return '';
  if (existsSync(file)) {
    const deleted = await rm(file, { force: true }).then(() => true, () => false);
    return deleted ? ` The partial safety backup ${file} was deleted.` : ` The partial safety backup ${file} could not be deleted: delete it (it is not a usable backup).`;
  }
  const seen = path.dirname(file) !== '.' && existsSync(path.dirname(file));
  return seen ? '' : ` SQL Server may have left a partial safety backup at ${file} (this worker cannot see that folder): delete it.`;
}

function exitCodeOf(signal: AbortSignal): number {
  return signal.aborted ? (signal.reason instanceof StepFailure ? signal.reason.exitCode : 143) : 1;
}

/**
 * A failed or cancelled restore of a database that did not exist before: the partly restored
 * copy is dropped (nothing is lost). Undefined when there was nothing to drop (e.g. it was
 * restored and a check after it failed: the library's message says so).
 */
async function newDatabaseFailure(error: unknown, plan: RestorePlan, target: RecoveryTarget, lock: RestoreLock, context: EngineContext): Promise<StepFailure | undefined> {
  if (!(error instanceof RestoreError) && !(error instanceof SqlError) && !context.signal.aborted) return undefined;
  const database = plan.targetDatabase;
  if (error instanceof RestoreError && error.targetChanged) {
    // Created, restored over or dropped by another session: not this restore's to drop.
    const state = await stateOf(target, context, database);
    return new StepFailure(
      `Restoring the new database '${database}' stopped: ${error.reason}\n` +
        `${describeState(database, state)}. Not dropped: it is another session's now (a restore, CREATE or DROP run outside octopus-dr takes no lock). ` +
        (error.restoreStarted
          ? `If nothing else is restoring '${database}', drop it (DROP DATABASE ${quoteName(database)}) and run the restore again.`
          : `Nothing was changed by this restore: choose another "${restoreTemplate.params.targetDatabase.label}", or let that session finish and run the restore again.`),
      { exitCode: exitCodeOf(context.signal), cause: error },
    );
  }
  if (!(await lock.isHeld())) {
    const state = await stateOf(target, context, database);
    const reason = error instanceof RestoreError ? error.reason : (error as Error).message;
    return new StepFailure(
      `Restoring the new database '${database}' failed: ${reason}\n` +
        `${describeState(database, state)}. Not dropped: the connection holding octopus-dr's restore lock on it was lost, so it may be another restore's by now. ` +
        `If no other restore of '${database}' is running, drop it (DROP DATABASE ${quoteName(database)}) and run the restore again.`,
      { exitCode: exitCodeOf(context.signal), cause: error },
    );
  }
  const dropped = await withFreshConnection(target, context, async (c) => {
    const drop = dropIfRestoringStatement(database);
    return (await c.query(drop.sql, drop.params)).rows.length > 0;
  }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  if (dropped === false) return undefined;
  const exitCode = exitCodeOf(context.signal);
  const reason = error instanceof RestoreError ? error.reason : (error as Error).message;
  const what = context.signal.aborted
    ? `Cancelled (${exitCode === 130 ? 'SIGINT' : 'SIGTERM'}) while restoring the new database '${database}'.`
    : `Restoring the new database '${database}' failed: ${reason}`;
  const state =
    dropped === true
      ? `It did not exist before, so the partly restored copy was dropped: nothing else was changed.${context.signal.aborted ? '' : ' Fix the cause above and run the restore again.'}`
      : `The partly restored copy could not be dropped (${dropped.message}): it is probably left RESTORING (not usable). Drop it (DROP DATABASE ${quoteName(database)}), or run the restore again.`;
  return new StepFailure(`${what}\n${state}`, { exitCode, cause: error });
}

/**
 * A failed or cancelled restore over an existing database: reads its state from SQL Server,
 * rolls back from the safety backup on a failure (unless "Roll back on failure" is off), and
 * returns the failure whose message says what state it is in and how to get back.
 */
async function replaceFailure(error: unknown, plan: RestorePlan, target: RecoveryTarget, lock: RestoreLock, context: EngineContext): Promise<StepFailure> {
  const { signal, log } = context;
  const database = plan.targetDatabase;
  const cancelled = signal.aborted;
  if (!(error instanceof RestoreError) && !(error instanceof SqlError) && !cancelled) return error as StepFailure;
  const reason = error instanceof RestoreError ? error.reason : (error as Error).message;
  const replaceStarted = error instanceof RestoreError ? error.replaceStarted : true;
  const exitCode = exitCodeOf(signal);
  const signalName = exitCode === 130 ? 'SIGINT' : 'SIGTERM';
  const what = cancelled ? `Cancelled (${signalName}) while restoring over the existing database '${database}'.` : `Restoring over the existing database '${database}' failed: ${reason}`;
  const failure = (lines: string[]) => new StepFailure([what, ...lines].join('\n'), { exitCode, cause: error });

  const changed = error instanceof RestoreError && error.targetChanged;
  if (!replaceStarted) {
    const state = await stateOf(target, context, database);
    return failure([
      changed
        ? `Nothing was restored over it: ${describeState(database, state)}. octopus-dr's lock does not stop a RESTORE, ALTER DATABASE or DROP run outside octopus-dr (in SSMS, a job, another tool). Find out what changed it and let that finish, then run the restore again: it is planned against the database as it is then.`
        : `Nothing was restored: ${describeState(database, state)}.${await partialSafetyBackup(plan, error)}${cancelled ? '' : ' Fix the cause above and run the restore again.'}`,
    ]);
  }
  if (changed) {
    // Another session restored over, dropped or recovered it mid-chain: a rollback would undo its work.
    const state = await stateOf(target, context, database);
    const lines = [`Not rolled back: another session changed '${database}' during this restore, and a rollback would undo what it did. ${describeState(database, state)}.`];
    if (plan.safetyBackupFile) lines.push(wayBack(plan));
    else lines.push('Find out what changed it and let that finish, then run the restore again if it is still needed.');
    return failure(lines);
  }
  if (!plan.safetyBackupFile && plan.earlierSafetyBackupFile) {
    // It was RESTORING (a killed replace): what that replace replaced is in the safety backup it took.
    const state = await stateOf(target, context, database);
    return failure([
      `${describeState(database, state)}. It was RESTORING before this restore, so no safety backup of it was taken: run the restore again to finish it.`,
      wayBack(plan, plan.earlierSafetyBackupFile, 'Its content before the earlier, unfinished restore may be in the safety backup that restore took,'),
    ]);
  }
  if (!plan.safetyBackupFile) {
    const state = await stateOf(target, context, database);
    return failure([
      `${describeState(database, state)}. No safety backup of its previous content was taken ("${restoreTemplate.params.safetyBackup.label}" was off, or it was RESTORING), so it cannot be put back: run the restore again to finish it.`,
    ]);
  }
  if (cancelled || !target.rollBackOnFailure) {
    const state = await stateOf(target, context, database);
    const why = cancelled ? 'A cancel does not roll back' : `"${restoreTemplate.params.rollBackOnFailure.label}" is off, so it was left as it is`;
    return failure([`${why}: ${describeState(database, state)}.`, wayBack(plan)]);
  }

  if (!(await lock.isHeld())) {
    // The lock's session ended (its connection was lost): another restore may have started since, and a rollback would undo it.
    const state = await stateOf(target, context, database);
    return failure([
      `Not rolled back: the connection holding octopus-dr's restore lock on '${database}' was lost, so another restore of it may have started since. ${describeState(database, state)}.`,
      wayBack(plan),
    ]);
  }
  log.warn(`Restoring '${database}' failed; rolling back to its previous content from the safety backup ${plan.safetyBackupFile}.`);
  try {
    await withFreshConnection(target, context, (c) => restoreSafetyBackup(c, plan, context));
  } catch (rollbackError) {
    const state = await stateOf(target, context, database);
    const why = signal.aborted
      ? 'was cancelled'
      : rollbackError instanceof SqlError && rollbackError.kind === 'connection'
        ? `failed: the connection to SQL Server was lost (${rollbackError.code ?? 'connection closed'})`
        : `failed: ${(rollbackError as Error).message}`;
    return new StepFailure(
      [what, `Rolling back from the safety backup ${why}. ${describeState(database, state)}.`, wayBack(plan)].join('\n'),
      { exitCode: exitCodeOf(signal), cause: rollbackError },
    );
  }
  const state = await stateOf(target, context, database);
  const now = state && !(state instanceof Error) ? `; it is ${state.state}, ${state.userAccess}` : '';
  return failure([
    `Rolled back: '${database}' was restored from the safety backup ${plan.safetyBackupFile} and holds its previous content again${now}.`,
    `Nothing was lost (the safety backup is kept). Fix the cause above and run the restore again.`,
  ]);
}
