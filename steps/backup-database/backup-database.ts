// Back Up Database: the step over the database-backup engine. It reads the parameters, asks the
// engine for a backup (and retention after it), and reports outputs and the result.
import type { ParameterValues } from '../../templates/model';
import { backupDatabase as template } from '../../templates/backup-database';
import {
  applyRetention,
  loadManifestSets,
  takeDatabaseBackup,
  type BackupKind,
  type DatabaseBackupRequest,
  type DatabaseBackupResult,
} from '../engines/database-backup';
import { findKeyDrift, keyDriftOutputs } from '../engines/standby';
import { formatBytes } from '../runtime/format';
import type { StepContext } from '../runtime/step-context';

type Params = ParameterValues<typeof template.params>;

function backupRequestOf(params: Params): DatabaseBackupRequest {
  return {
    connectionString: params.connectionString,
    kind: params.backupType as BackupKind,
    copyOnly: params.copyOnly,
    compression: params.compression as DatabaseBackupRequest['compression'],
    serverDirectory: params.backupDirectory || undefined,
    workerDirectory: params.backupDirectoryOnWorker || undefined,
    stripes: params.stripes ?? 1,
    verify: params.verify,
    masterKeyId: params.masterKeyId || undefined,
    lockWaitMs: (params.lockWaitMinutes ?? 0) * 60_000,
  };
}

function setBackupOutputs(backup: DatabaseBackupResult, context: StepContext): void {
  const { manifest } = backup;
  context.setOutput('ManifestPath', backup.manifestPath);
  context.setOutput('BackupFiles', backup.serverFiles.join('\n'));
  context.setOutput('SizeBytes', backup.totalBytes);
  context.setOutput('DurationSeconds', backup.seconds.toFixed(1));
  context.setOutput('Verified', manifest.verification.passed ? 'True' : 'False');
  context.setOutput('FirstLsn', manifest.header.firstLsn);
  context.setOutput('LastLsn', manifest.header.lastLsn);
}

export async function backupDatabase(params: Params, context: StepContext): Promise<void> {
  const backup = await takeDatabaseBackup(backupRequestOf(params), context);
  const { manifest, manifestPath } = backup;
  context.finished(
    `The backup ${manifestPath} was complete before the cancel, so it is kept; retention may not have run (the next backup applies it) and some output variables may not have been set.`,
  );
  context.createArtifact(manifestPath);
  setBackupOutputs(backup, context);
  if (manifest.masterKeyId) await reportKeyDrift(backup, context);

  const retention = await applyRetention(
    { database: manifest.header.databaseName, location: backup.location, manifestPath, verified: manifest.verification.passed },
    { days: params.retentionDays ?? 0, minimumVerifiedSets: params.retentionMinimumSets ?? 1 },
    context,
  );
  if (retention) context.setOutput('RetentionDeleted', retention.deleted);

  const summary =
    `${manifest.backupType} backup of '${manifest.database}' (${formatBytes(backup.totalBytes)} in ${backup.stripes} file${backup.stripes === 1 ? '' : 's'}, ` +
    `${backup.seconds.toFixed(1)} s${manifest.verification.passed ? ', verified' : ''}): ${manifestPath}`;
  context.log.highlight(summary);
  context.result(summary);
}

/** A key ID other than the previous backup's: every earlier backup needs the old key, which must be kept. */
async function reportKeyDrift(backup: DatabaseBackupResult, context: StepContext): Promise<void> {
  const { log } = context;
  const { manifest } = backup;
  try {
    const manifests = await loadManifestSets(backup.location, (m) => log.verbose(m));
    const drift = findKeyDrift({ database: manifest.header.databaseName, verifiedKeyId: manifest.masterKeyId!, takenAt: new Date(manifest.takenAt), manifests });
    for (const [name, value] of Object.entries(keyDriftOutputs(drift))) context.setOutput(name, value);
    if (drift) log.warn(drift.warning);
  } catch (error) {
    // The backup is complete; the comparison is advice, so its failure is a warning.
    log.warn(`The backup is complete, but its master key ID could not be compared with earlier backups' (${(error as Error).message}).`);
  }
}
