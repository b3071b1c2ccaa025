// Restore Database: the step over the database-backup engine's restore. It reads the parameters,
// plans (a dry run stops there), restores, and on a failure says what state the database is in
// and how to get back (rolling back from the safety backup when asked).
import type { ParameterValues } from '../../templates/model';
import { restoreDatabase as template } from '../../templates/restore-database';
import { formatRestorePlan, masterKeyIdOf, planRestore, restoreWithRecovery } from '../engines/database-backup';
import { databaseSourceFrom, plannedSource } from '../engines/offsite/url-source';
import { ParameterError } from '../runtime/errors';
import { isDirectory, sqlSourceLocationsOf, sqlSourceProblemsBeforeConnecting, sqlSourceProblemsForServer } from '../runtime/locations';
import { waitForWriters } from '../runtime/lock';
import { reportingThrough } from '../runtime/phase';
import type { StepContext } from '../runtime/step-context';
import { openSqlConnection } from '../engines/sql';
import { chainOctopusVersion, enforceStandbyVersion } from '../engines/standby';

type Params = ParameterValues<typeof template.params>;

export async function restoreDatabaseStep(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  const started = Date.now();
  // Every local path is checked before anything connects or downloads; for an offsite URL, as the
  // download folder the chain will land in.
  const planned = await sqlSourceProblemsBeforeConnecting(sqlSourceLocationsOf({ ...params, source: await plannedSource(params, 'database', context) }));
  if (planned.length > 0) throw new ParameterError(planned);
  // An offsite URL becomes the download folder (its chain fetched, decrypted and checked); from here on it is an ordinary restore.
  params = { ...params, source: await databaseSourceFrom(params, context) };
  const locations = sqlSourceLocationsOf(params);
  const before = await sqlSourceProblemsBeforeConnecting(locations);
  if (before.length > 0) throw new ParameterError(before);
  if (await isDirectory(params.source)) {
    const waitMs = (params.lockWaitMinutes ?? 0) * 60_000;
    await waitForWriters({ directory: params.source, keys: /^database-/, purpose: 'choosing the newest backups', waitMs, log, signal: context.signal });
  }
  // A database cannot be restored while the connection uses it: work from master.
  const connection = await openSqlConnection(params.connectionString, context, { database: 'master' });
  context.onCleanup(() => connection.close());
  const facts = await connection.serverFacts();
  const against = sqlSourceProblemsForServer(locations, facts.pathSeparator);
  if (against.length > 0) throw new ParameterError(against);

  // Reading headers and RESTORE VERIFYONLY report no progress of their own: the phase keeps the log alive.
  const planning = context.phase('Reading and verifying the backup', 0);
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
    },
    reportingThrough(context, planning),
  ).finally(() => planning.stop());
  for (const warning of plan.warnings) log.warn(warning);
  log.info(formatRestorePlan(plan));
  const keyId = masterKeyIdOf(plan);
  if (keyId) context.setOutput('MasterKeyId', keyId);
  // A backup from a newer Octopus than the standby's is refused here, before anything is restored.
  await enforceStandbyVersion(params, () => chainOctopusVersion(plan), context);

  if (params.dryRun) {
    const message = `Dry run: the plan above was checked (files present, verified, chain complete) and nothing was changed.`;
    log.highlight(message);
    context.setOutput('RestoredDatabase', plan.targetDatabase);
    context.setOutput('PointInTime', plan.chain.pointInTime);
    context.result(message);
    return;
  }

  context.progress(0, `Restoring ${plan.targetDatabase}`);
  const result = await restoreWithRecovery(connection, plan, { connectionString: params.connectionString, rollBackOnFailure: params.rollBackOnFailure }, context);
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

