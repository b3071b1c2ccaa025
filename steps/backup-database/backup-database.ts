// Back Up Database: the step over the database-backup engine. It reads the parameters, asks the
// engine for a backup (and retention after it), and reports outputs and the result.
import type { ParameterValues } from '../../templates/model';
import { backupDatabase as template } from '../../templates/backup-database';
import {
  applyRetention,
  loadManifestSets,
  missingBaseOf,
  originOf as originOfSet,
  originWarnings,
  splitByOrigin,
  type ManifestSet,
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
  const review = await reviewFolder(backup, context);

  const retention = await applyRetention(
    { database: manifest.header.databaseName, location: backup.location, manifestPath, verified: manifest.verification.passed, origin: originOf(backup) },
    { days: params.retentionDays ?? 0, minimumVerifiedSets: params.retentionMinimumSets ?? 1 },
    context,
  );
  if (retention) context.setOutput('RetentionDeleted', retention.deleted);

  const summary =
    `${manifest.backupType} backup of '${manifest.database}' (${formatBytes(backup.totalBytes)} in ${backup.stripes} file${backup.stripes === 1 ? '' : 's'}, ` +
    `${backup.seconds.toFixed(1)} s${manifest.verification.passed ? ', verified' : ''}): ${manifestPath}`;
  context.log.highlight(summary);
  context.result(review.missingBase ? `${summary}. WARNING: ${review.missingBase}` : summary);
}

/**
 * After the backup, what the folder says about it (advice: a failure to read it is a warning): sets
 * of other servers or databases of the same name, whether the new set restores from this folder's
 * sets alone (a differential's base, a log's chain), and a master key ID other than the previous
 * backup's. Only sets of the new backup's origin (server and database family) are compared.
 */
async function reviewFolder(backup: DatabaseBackupResult, context: StepContext): Promise<{ missingBase?: string }> {
  const { log } = context;
  const { manifest, manifestPath, location } = backup;
  const database = manifest.header.databaseName;
  let sets;
  try {
    sets = await loadManifestSets(location, (m) => log.verbose(m));
  } catch (error) {
    log.warn(`The backup is complete, but the backup folder could not be read to compare it with earlier backups (${(error as Error).message}).`);
    return {};
  }
  const origin = originOf(backup);
  for (const warning of originWarnings(sets, database, origin, location.workerDirectory)) log.warn(warning);
  const ours = splitByOrigin(sets, database, origin).ours;
  const own = ours.find((s) => s.manifestPath === manifestPath);
  const missing = own && missingBaseOf(own, ours);
  let missingBase: string | undefined;
  if (missing) {
    missingBase =
      `this ${manifest.backupType.toLowerCase()} backup restores only together with backups that are not in ${location.workerDirectory}: ${missing} ` +
      (manifest.backupType === 'Differential'
        ? "Its base is a full backup taken elsewhere (your DBA's, not copy-only, say): a restore from this folder alone passes over this backup and restores an older point. "
        : 'Its log chain runs through backups taken elsewhere (log backups that are not copy-only, by your DBA, say): a restore from this folder alone cannot reach it. ') +
      `Restore from both folders, or take a Full backup here with "${template.params.copyOnly.label}" unchecked so that this folder holds its own chain.`;
    log.warn(missingBase.charAt(0).toUpperCase() + missingBase.slice(1));
  }
  if (manifest.masterKeyId) reportKeyDrift(backup, ours, context);
  return { missingBase };
}

/** The new backup's origin: the server and database family its header records. */
function originOf(backup: DatabaseBackupResult) {
  return originOfSet({ manifest: backup.manifest });
}

/** A key ID other than the previous backup's (of this server and database): every earlier backup needs the old key, which must be kept. */
function reportKeyDrift(backup: DatabaseBackupResult, manifests: ManifestSet[], context: StepContext): void {
  const { log } = context;
  const { manifest } = backup;
  try {
    const drift = findKeyDrift({ database: manifest.header.databaseName, verifiedKeyId: manifest.masterKeyId!, takenAt: new Date(manifest.takenAt), manifests });
    for (const [name, value] of Object.entries(keyDriftOutputs(drift))) context.setOutput(name, value);
    if (drift) log.warn(drift.warning);
  } catch (error) {
    // The backup is complete; the comparison is advice, so its failure is a warning.
    log.warn(`The backup is complete, but its master key ID could not be compared with earlier backups' (${(error as Error).message}).`);
  }
}
