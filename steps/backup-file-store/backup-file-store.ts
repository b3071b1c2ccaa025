import { backupFileStore as template } from '../../templates/backup-file-store';
import type { ParameterValues } from '../../templates/model';
import { ParameterError, StepFailure } from '../runtime/errors';
import { workerPathProblem } from '../runtime/locations';
import { acquireLock } from '../runtime/lock';
import type { StepContext } from '../runtime/step-context';
import { toolVersion } from '../runtime/version';
import { applyRetention, backupFileStore, DEFAULT_INCLUDED_FOLDERS, parseFolderNames, resolveFolders, verifyFileStoreBackup } from '../engines/file-store';
import { counted, formatBytes } from '../runtime/format';

type Params = ParameterValues<typeof template.params>;

export async function backupFileStoreStep(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  const { homeDirectory, folders, include } = template.params;
  const labels = { homeDirectory: homeDirectory.label, overrides: folders.label, include: include.label };
  const included = parseFolderNames(params.include, include.label);
  const resolved = resolveFolders({
    homeDirectory: params.homeDirectory,
    overrides: params.folders,
    include: included.names.length > 0 ? included.names : DEFAULT_INCLUDED_FOLDERS,
    labels,
  });
  const directoryProblem = await workerPathProblem(params.backupDirectory, template.params.backupDirectory);
  const problems = [...included.problems, ...resolved.problems, ...(directoryProblem ? [directoryProblem] : [])];
  if (problems.length > 0) throw new ParameterError(problems);
  for (const folder of resolved.folders) log.info(`${folder.name}: ${folder.path}`);

  // One file-store backup at a time in this folder: a second run waits, then fails naming the first.
  const lock = await acquireLock({
    directory: params.backupDirectory,
    key: 'file-store',
    resource: 'file-store backups',
    step: template.stepId,
    waitMs: (params.lockWaitMinutes ?? 0) * 60_000,
    log,
    signal: context.signal,
  });
  context.onCleanup(() => lock.release());

  const result = await backupFileStore({
    folders: resolved.folders,
    backupDirectory: params.backupDirectory,
    mode: params.mode === 'Incremental' ? 'Incremental' : 'Full',
    skipUnreadable: params.skipUnreadable,
    allowEmpty: params.allowEmpty,
    toolVersion,
  }, context);
  const { manifest } = result;
  const seconds = result.durationMs / 1000;
  const kept = `The new set ${result.archivePath} and its manifest were complete and read back before the cancel, so they are kept`;
  context.finished(`${kept}; retention may not have run (the next backup applies it) and the output variables may not have been set.`);

  // Retention deletes nothing before the new set has proved itself: every hash, and its manifests agree.
  const retention = await applyRetention(params.backupDirectory, params.retentionDays, new Date(), log, {
    minimumSets: params.retentionMinimumSets,
    // Only this store's sets: another server's in the same directory are kept.
    origin: manifest,
    beforeDeleting: async () => {
      // Quietly: the step's progress bar stays at the backup's 100 %.
      const check = await verifyFileStoreBackup(result.manifestPath, { onProgress: () => undefined }, context);
      if (!check.ok) {
        throw new StepFailure(
          `The new backup ${result.archivePath} failed verification, so retention deleted nothing: ${check.problems.slice(0, 5).join('; ')}. ` +
            'Check the backup directory\'s storage and run the backup again.',
        );
      }
      log.info(`Verified the new set before retention: ${check.files} files, every SHA-256 matches.`);
    },
  });
  context.finished(`${kept}; retention had run (${retention.deleted.length ? `deleted ${retention.deleted.join(', ')}` : 'nothing deleted'}); the output variables may not have been set.`);
  if (params.retentionDays) {
    log.info(`Retention (${counted(params.retentionDays, 'day')}, at least ${counted(params.retentionMinimumSets ?? 1, 'set')} kept): ${retention.deleted.length ? `deleted ${retention.deleted.join(', ')}` : 'nothing to delete'}.`);
  }

  context.setOutput('ArchivePath', result.archivePath);
  context.setOutput('ManifestPath', result.manifestPath);
  context.setOutput('Archives', result.chainPaths.join('\n'));
  context.setOutput('Mode', manifest.mode);
  context.setOutput('Files', manifest.totals.files);
  context.setOutput('Bytes', manifest.totals.bytes);
  context.setOutput('StoredFiles', manifest.totals.storedFiles);
  context.setOutput('StoredBytes', manifest.totals.storedBytes);
  context.setOutput('DurationSeconds', seconds.toFixed(1));
  context.setOutput('Warnings', result.warnings.length);
  context.setOutput('RetentionDeleted', retention.deleted.join('\n'));

  const summary =
    `${manifest.mode} backup of ${manifest.totals.files} files (${formatBytes(manifest.totals.bytes)}) written to ${result.archivePath}: ` +
    `${manifest.totals.storedFiles} files (${formatBytes(manifest.totals.storedBytes)}) stored in ${seconds.toFixed(1)} s` +
    (result.warnings.length ? `, ${result.warnings.length} warning(s)` : '') +
    '.';
  log.highlight(summary);
  context.result(summary);
}
