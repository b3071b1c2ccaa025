import type { ParameterValues } from '../../templates/model';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { environmentNameOf } from '../../templates/model';
import { restoreDatabase as template } from '../../templates/restore-database';
import {
  formatRestorePlan,
  masterKeyIdOf,
  planRestore,
  readDatabaseState,
  restoreDatabase,
  RestoreError,
  RestorePlanError,
  restoreSafetyBackup,
  type DatabaseState,
  type RestorePlan,
} from '../shared/database-backup/restore';
import { dropIfRestoringStatement } from '../shared/database-backup/tsql';
import { normaliseLocalTime } from '../shared/database-backup/backup-set';
import { databaseSourceFrom } from '../shared/offsite/azure-source';
import { ParameterError, StepFailure } from '../shared/runtime/errors';
import { isDirectory, sqlSourceLocationsOf, sqlSourceProblemsBeforeConnecting, sqlSourceProblemsForServer } from '../shared/runtime/locations';
import { waitForWriters } from '../shared/runtime/lock';
import { quoteValue } from '../shared/runtime/parameters';
import type { StepContext } from '../shared/runtime/step-context';
import { openSqlConnection, SqlError, type SqlConnection } from '../shared/sql';
import { chainOctopusVersion, enforceStandbyVersion, standbyProblems } from '../shared/standby/step-gate';

type Params = ParameterValues<typeof template.params>;

function asFailure(error: unknown, prefix = '', signal?: AbortSignal): never {
  // A cancel is reported as such (exit 130/143), not as the failure it caused.
  if (signal?.aborted) throw signal.reason;
  if (error instanceof RestorePlanError || error instanceof RestoreError || error instanceof SqlError) {
    throw new StepFailure(`${prefix}${error.message}`, { cause: error });
  }
  throw error;
}


export async function restoreDatabaseStep(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  const started = Date.now();
  // A malformed moment is a parameter problem (exit 2), found before connecting.
  if (params.pointInTime.trim() && !normaliseLocalTime(params.pointInTime)) {
    throw new ParameterError([
      `"Point in time" (OctopusDr.Restore.PointInTime) must be an ISO-8601 date and time without offset, in the SQL Server's local time ` +
        `(e.g. 2026-11-27T14:30:00), not ${quoteValue(params.pointInTime)}: set it in the step, or --point-in-time on the command line.`,
    ]);
  }
  // An Azure Blob URL becomes the download folder first (its chain fetched and checked); from here on it is an ordinary restore.
  params = { ...params, source: await databaseSourceFrom(params, context) };
  const locations = sqlSourceLocationsOf(params);
  const before = [...(await sqlSourceProblemsBeforeConnecting(locations)), ...standbyProblems(params)];
  if (before.length > 0) throw new ParameterError(before);
  if (await isDirectory(params.source)) {
    const waitMs = (params.lockWaitMinutes ?? 0) * 60_000;
    await waitForWriters({ directory: params.source, keys: /^database-/, purpose: 'choosing the newest backups', waitMs, log, signal: context.signal });
  }
  let connection: SqlConnection;
  try {
    // A database cannot be restored while the connection uses it: work from master.
    connection = await openSqlConnection(params.connectionString, { setSecret: (s) => context.setSecret(s), log, database: 'master' });
  } catch (error) {
    asFailure(error, 'Cannot connect to SQL Server: ');
  }
  context.onCleanup(() => connection.close());
  const facts = await connection.serverFacts().catch((e) => asFailure(e, 'Cannot read the SQL Server facts: ', context.signal));
  const against = sqlSourceProblemsForServer(locations, facts.pathSeparator);
  if (against.length > 0) throw new ParameterError(against);

  // Reading headers and RESTORE VERIFYONLY report no progress of their own: the phase keeps the log alive.
  const planning = context.phase('Reading and verifying the backup', 0);
  const planLog = {
    info: (message: string) => {
      log.info(message);
      planning.update(message);
    },
    verbose: (message: string) => log.verbose(message),
    warn: (message: string) => log.warn(message),
  };
  const plan = await planRestore(
    connection,
    {
      source: params.source,
      sourceOnServer: params.sourceOnServer || undefined,
      targetDatabase: params.targetDatabase || undefined,
      pointInTime: params.pointInTime || undefined,
      replaceExisting: params.replaceExisting,
      safetyBackup: params.safetyBackup,
      dataDirectory: params.dataDirectory || undefined,
      logDirectory: params.logDirectory || undefined,
      checkDb: params.checkDb,
      signal: context.signal,
    },
    planLog,
  )
    .catch((e) => asFailure(e, 'Nothing was changed. ', context.signal))
    .finally(() => planning.stop());
  for (const warning of plan.warnings) log.warn(warning);
  log.info(formatRestorePlan(plan));
  const keyId = masterKeyIdOf(plan);
  if (keyId) context.setOutput('MasterKeyId', keyId);
  // A backup from a newer Octopus than the standby's is refused here, before anything is restored.
  await enforceStandbyVersion(params, () => chainOctopusVersion(plan), log, context.signal);

  if (params.dryRun) {
    const message = `Dry run: the plan above was checked (files present, verified, chain complete) and nothing was changed.`;
    log.highlight(message);
    context.setOutput('RestoredDatabase', plan.targetDatabase);
    context.setOutput('PointInTime', plan.chain.pointInTime);
    context.result(message);
    return;
  }

  // A database this restore creates must not be left half-restored (RESTORING) by a failure or a
  // cancel: it did not exist before, so removing it loses nothing. A replaced database is kept.
  let restored = false;
  if (!plan.targetExists) {
    context.onCleanup(async () => {
      if (restored) return;
      const cleanup = await openSqlConnection(params.connectionString, { setSecret: (s) => context.setSecret(s), database: 'master' });
      try {
        const drop = dropIfRestoringStatement(plan.targetDatabase);
        const { rows } = await cleanup.query(drop.sql, drop.params);
        if (rows.length > 0) log.warn(`Dropped the partly restored database '${plan.targetDatabase}' (it did not exist before this restore).`);
      } finally {
        await cleanup.close();
      }
    });
  }
  context.progress(0, `Restoring ${plan.targetDatabase}`);
  const result = await restoreDatabase(connection, plan, {
    signal: context.signal,
    log,
    onProgress: (percent, message) => context.progress(percent, message),
  }).catch(async (e) => {
    if (plan.targetExists) throw await replaceFailure(e, plan, params, context);
    // Dropped now, so that the message (the last line) says what is left.
    const failure = await newDatabaseFailure(e, plan, params, context);
    restored = failure !== undefined;
    if (failure) throw failure;
    return asFailure(e, '', context.signal);
  });
  restored = true;
  context.progress(100, 'Restore complete');
  const seconds = (Date.now() - started) / 1000;
  context.setOutput('RestoredDatabase', result.database);
  context.setOutput('PointInTime', result.pointInTime);
  context.setOutput('DurationSeconds', seconds.toFixed(1));
  context.setOutput('CheckDb', result.checkDb);
  if (result.safetyBackupFile) context.setOutput('SafetyBackupFile', result.safetyBackupFile);
  const summary = `Restored '${result.database}' to ${result.pointInTime} (server local time) in ${seconds.toFixed(1)} s${result.checkDb === 'passed' ? ', DBCC CHECKDB passed' : ''}.`;
  log.highlight(summary);
  context.result(summary);
}

/** A shell argument as typed: bare when safe, else single-quoted (PowerShell and POSIX shells both take these). */
function shellArgument(value: string): string {
  if (/^[\w./:\\@%+=,-]+$/.test(value)) return value;
  return process.platform === 'win32' ? `'${value.replace(/'/g, "''")}'` : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The command that restores the safety backup over the target (the connection string comes from the environment). */
export function safetyRestoreCommand(plan: RestorePlan): string {
  const flag = (name: keyof typeof template.params) => template.params[name].flag;
  const args = [
    `--${flag('source')}`,
    shellArgument(plan.safetyBackupFile!),
    `--${flag('targetDatabase')}`,
    shellArgument(plan.targetDatabase),
    `--${flag('replaceExisting')}`,
  ];
  if (plan.request.dataDirectory) args.push(`--${flag('dataDirectory')}`, shellArgument(plan.request.dataDirectory));
  if (plan.request.logDirectory) args.push(`--${flag('logDirectory')}`, shellArgument(plan.request.logDirectory));
  return `npx octopus-dr ${template.stepId} ${args.join(' ')}`;
}

function describeState(database: string, state: DatabaseState | undefined | Error): string {
  if (state instanceof Error) return `The state of '${database}' could not be read (${state.message}); expect it RESTORING (not usable)`;
  if (!state) return `'${database}' no longer exists`;
  const usable = state.state === 'ONLINE' && state.userAccess === 'MULTI_USER';
  return `'${database}' is now ${state.state}, ${state.userAccess} (as SQL Server reports it)${usable ? '' : ': not usable by Octopus'}`;
}

/** Opens a fresh connection (the restore's own may be the one that was lost) for `work`. */
async function withFreshConnection<T>(params: Params, context: StepContext, work: (connection: SqlConnection) => Promise<T>): Promise<T> {
  const connection = await openSqlConnection(params.connectionString, { setSecret: (s) => context.setSecret(s), database: 'master' });
  try {
    return await work(connection);
  } finally {
    await connection.close();
  }
}

async function stateOf(params: Params, context: StepContext, database: string): Promise<DatabaseState | undefined | Error> {
  return withFreshConnection(params, context, (c) => readDatabaseState(c, database)).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
}

/** How the user puts the previous database back (the last lines of the message). */
function wayBack(plan: RestorePlan): string {
  const connectionVariable = environmentNameOf(template.params.connectionString.name);
  const visible = existsSync(plan.safetyBackupFile!);
  return (
    `Its previous content is in the safety backup ${plan.safetyBackupFile} (a path on the SQL Server). ` +
    (visible ? '' : 'This worker cannot see that path: run the command where it can, or copy the file to a folder you can see and change --source. ') +
    `To put it back, stop the Octopus Server nodes and run, with the connection string in the environment variable ${connectionVariable}:\n` +
    `  ${safetyRestoreCommand(plan)}`
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
async function newDatabaseFailure(error: unknown, plan: RestorePlan, params: Params, context: StepContext): Promise<StepFailure | undefined> {
  if (!(error instanceof RestoreError) && !(error instanceof SqlError) && !context.signal.aborted) return undefined;
  const database = plan.targetDatabase;
  const dropped = await withFreshConnection(params, context, async (c) => {
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

function quoteName(name: string): string {
  return `[${name.replace(/]/g, ']]')}]`;
}

/**
 * A failed or cancelled restore over an existing database: reads its state from SQL Server,
 * rolls back from the safety backup on a failure (unless "Roll back on failure" is off), and
 * returns the failure whose message says what state it is in and how to get back.
 */
async function replaceFailure(error: unknown, plan: RestorePlan, params: Params, context: StepContext): Promise<StepFailure> {
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

  if (!replaceStarted) {
    const state = await stateOf(params, context, database);
    return failure([
      `Nothing was restored: ${describeState(database, state)}.${await partialSafetyBackup(plan, error)}${cancelled ? '' : ' Fix the cause above and run the restore again.'}`,
    ]);
  }
  if (!plan.safetyBackupFile) {
    const state = await stateOf(params, context, database);
    return failure([
      `${describeState(database, state)}. No safety backup of its previous content was taken ("Safety backup" was off, or it was not ONLINE), so it cannot be put back: run the restore again to finish it.`,
    ]);
  }
  if (cancelled || !params.rollBackOnFailure) {
    const state = await stateOf(params, context, database);
    const why = cancelled ? 'A cancel does not roll back' : '"Roll back on failure" is off, so it was left as it is';
    return failure([`${why}: ${describeState(database, state)}.`, wayBack(plan)]);
  }

  log.warn(`Restoring '${database}' failed; rolling back to its previous content from the safety backup ${plan.safetyBackupFile}.`);
  try {
    await withFreshConnection(params, context, (c) => restoreSafetyBackup(c, plan, { log, signal }));
  } catch (rollbackError) {
    const state = await stateOf(params, context, database);
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
  const state = await stateOf(params, context, database);
  const now = state && !(state instanceof Error) ? `; it is ${state.state}, ${state.userAccess}` : '';
  return failure([
    `Rolled back: '${database}' was restored from the safety backup ${plan.safetyBackupFile} and holds its previous content again${now}.`,
    `Nothing was lost (the safety backup is kept). Fix the cause above and run the restore again.`,
  ]);
}
