import type { ParameterValues } from '../../templates/model';
import type { restoreDatabase as template } from '../../templates/restore-database';
import { formatRestorePlan, masterKeyIdOf, planRestore, restoreDatabase, RestoreError, RestorePlanError } from '../shared/database-backup/restore';
import { dropIfRestoringStatement } from '../shared/database-backup/tsql';
import { normaliseLocalTime } from '../shared/database-backup/backup-set';
import { ParameterError, StepFailure } from '../shared/runtime/errors';
import { quoteValue } from '../shared/runtime/parameters';
import type { StepContext } from '../shared/runtime/step-context';
import { openSqlConnection, SqlError, type SqlConnection } from '../shared/sql';

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
  let connection: SqlConnection;
  try {
    // A database cannot be restored while the connection uses it: work from master.
    connection = await openSqlConnection(params.connectionString, { setSecret: (s) => context.setSecret(s), log, database: 'master' });
  } catch (error) {
    asFailure(error, 'Cannot connect to SQL Server: ');
  }
  context.onCleanup(() => connection.close());

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
  }).catch((e) => asFailure(e, '', context.signal));
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
