import { copyOffsite as template } from '../../templates/copy-offsite';
import type { ParameterValues } from '../../templates/model';
import { acquireOffsiteLock, applyOffsiteRetention, copyOffsite, databaseSets, decrypterFrom, encryptionFrom, fileStoreSets, type LocalSet, offsiteTargetFrom, openOffsiteStore, secretPartsOf } from '../engines/offsite';
import { CancelledError, ParameterError, StepFailure } from '../runtime/errors';
import { formatBytes, formatDuration } from '../runtime/format';
import type { StepContext } from '../runtime/step-context';
import { toolVersion } from '../runtime/version';
import { promises as fs } from 'node:fs';
import { isNativeError } from 'node:util/types';

type Params = ParameterValues<typeof template.params>;

async function checkFolder(folder: string, label: string, name: string): Promise<string | undefined> {
  const stat = await fs.stat(folder).catch((e: NodeJS.ErrnoException) => e);
  // isNativeError, not instanceof: an fs error may come from another realm (a test's sandbox).
  if (isNativeError(stat)) return `"${label}" (${name}) ${folder} cannot be read (${stat.code ?? stat.message}): give the folder the backups are written to, as this worker sees it.`;
  if (!stat.isDirectory()) return `"${label}" (${name}) ${folder} is not a folder.`;
  return undefined;
}

export async function copyOffsiteStep(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  const started = Date.now();
  const target = offsiteTargetFrom(params);
  for (const part of secretPartsOf(target)) context.setSecret(part);
  const encryption = encryptionFrom(params);
  const retentionDays = params.retentionDays ?? 0;
  if (retentionDays > 0 && encryption?.record.method === 'recipient') {
    throw new ParameterError([
      '"Offsite retention (days)" (OctopusDr.Offsite.RetentionDays) cannot be used with "Encryption recipient": retention reads each set\'s manifest to keep chains whole, ' +
        'and only the identity (kept offline) can decrypt it. Use a passphrase, or apply retention with the store\'s lifecycle rules.',
    ]);
  }

  const databaseFolder = params.databaseBackupDirectoryOnWorker || params.databaseBackupDirectory;
  const fileStoreFolder = params.fileStoreBackupDirectory;
  const problems: string[] = [];
  if (!databaseFolder && !fileStoreFolder) {
    problems.push(
      'Nothing to copy: set "Backup directory" (OctopusDr.Sql.BackupDirectory, --backup-directory) and/or "File store backup directory" ' +
        '(OctopusDr.FileStore.BackupDirectory, --file-store-backup-directory).',
    );
  }
  const databaseLabel = params.databaseBackupDirectoryOnWorker ? ['Backup directory on this worker', 'OctopusDr.Sql.BackupDirectoryOnWorker'] : ['Backup directory', 'OctopusDr.Sql.BackupDirectory'];
  const fileStoreLabel = ['File store backup directory', 'OctopusDr.FileStore.BackupDirectory'];
  if (databaseFolder) {
    const problem = await checkFolder(databaseFolder, databaseLabel[0], databaseLabel[1]);
    if (problem) problems.push(problem);
  }
  if (fileStoreFolder) {
    const problem = await checkFolder(fileStoreFolder, fileStoreLabel[0], fileStoreLabel[1]);
    if (problem) problems.push(problem);
  }
  if (problems.length) throw new ParameterError(problems);

  // A folder given that holds no set at all is most likely a share that is not mounted (its mount point
  // is an empty folder): copying the other folder's sets and exiting 0 would hide that. Leaving the
  // parameter empty is how to say there is nothing to copy from there.
  const sets: LocalSet[] = [];
  const empty: string[] = [];
  // With manifests there that cannot be read, the folder is mounted: those manifests are the problem.
  const noSet = (folder: string, [label, name]: string[], unreadable: string[]) =>
    unreadable.length
      ? `"${label}" (${name}) ${folder} holds ${unreadable.length} manifest(s), none readable: ${unreadable.join(', ')} (the warnings above say why). ` +
        'Put back an intact copy of each (Fetch Backups from Offsite brings back a set copied earlier), or move them out of the folder; ' +
        'or leave the parameter empty to copy only the other backups.'
      : `"${label}" (${name}) ${folder} holds no backup set. If it is a share or another disk, check that it is mounted on this worker ` +
        '(an unmounted share leaves an empty folder); otherwise correct the folder, or leave the parameter empty to copy only the other backups.';
  if (databaseFolder) {
    const skipped: string[] = [];
    const found = await databaseSets(databaseFolder, (m) => log.warn(m), skipped);
    if (found.length === 0) empty.push(noSet(databaseFolder, databaseLabel, skipped));
    sets.push(...found);
  }
  if (fileStoreFolder) {
    const found = await fileStoreSets(fileStoreFolder);
    for (const ignored of found.ignored) log.warn(`Ignored in the file-store backup directory: ${ignored}`);
    if (found.sets.length === 0) empty.push(noSet(fileStoreFolder, fileStoreLabel, found.unreadable));
    sets.push(...found.sets);
  }
  if (empty.length) throw new StepFailure(`${empty.join('\n')} Nothing was copied.`);
  const ready = sets.filter((s) => !s.notReady);
  if (ready.length === 0) {
    throw new StepFailure(
      `No complete, verified backup set was found in ${[databaseFolder, fileStoreFolder].filter(Boolean).join(' or ')}, so nothing can be copied offsite. ` +
        'Run the backup steps first (or point the folders at where they write).',
    );
  }
  log.info(
    `Offsite: ${target.display}; ${ready.length} complete set(s) here${encryption ? `; encrypted with age (${encryption.record.method}${encryption.record.recipients.length ? ` for ${encryption.record.recipients.join(', ')}` : ''})` : ''}` +
      `${params.immutabilityDays ? `; every new object locked for ${params.immutabilityDays} day(s) (${params.immutabilityMode} mode)` : ''}.`,
  );

  const store = openOffsiteStore(target);
  context.onCleanup(() => store.close());
  // One copy at a time per target: a second run waits, then fails naming the first. Released on every exit path.
  const lock = await acquireOffsiteLock({ store, step: template.stepId, waitMs: (params.lockWaitMinutes ?? 0) * 60_000, log, signal: context.signal });
  context.onCleanup(() => lock.release());
  const startedAt = Date.now();
  // One retention, asked before the copy (which sets it would delete at once are not sent) and applied after it.
  const retention = retentionDays > 0
    ? {
        retentionDays,
        keepAtLeast: params.keepAtLeast ?? 3,
        now: new Date(),
        decrypt: encryption ? decrypterFrom({ encryptionPassphrase: params.encryptionPassphrase, decryptionIdentity: '' }) : undefined,
      }
    : undefined;
  const result = await copyOffsite({
    store,
    sets,
    toolVersion,
    verifyByDownload: params.verifyByDownload,
    encryption,
    retention,
    beforeWrite: () => lock.assertHeld(),
    immutability: params.immutabilityDays ? { days: params.immutabilityDays, mode: params.immutabilityMode === 'Compliance' ? 'Compliance' : 'Governance' } : undefined,
    onProgress: (done, total) => {
      const seconds = (Date.now() - startedAt) / 1000;
      const rate = seconds > 0 ? done / seconds : 0;
      context.progress(total > 0 ? (done / total) * 100 : 100, `Uploaded ${formatBytes(done)} of ${formatBytes(total)}, ${formatBytes(rate)}/s${done < total && rate > 0 ? `, about ${formatDuration((total - done) / rate)} left` : ''}`);
    },
  }, context);
  // The copy's outputs first: retention that fails must not hide what was copied.
  context.setOutput('Copied', result.copied.join('\n'));
  context.setOutput('CopiedSets', result.copied.length);
  context.setOutput('AlreadyOffsite', result.alreadyOffsite.length);
  context.setOutput('NotCopied', result.skipped.join('\n'));
  context.setOutput('UploadedBytes', result.uploadedBytes);
  context.setOutput('ResumedFiles', result.resumedFiles);
  context.setOutput('VerifiedObjects', result.verifiedObjects);
  let retentionDeleted: string[] = [];
  if (retention) {
    try {
      retentionDeleted = await applyOffsiteRetention({ store, ...retention, beforeDelete: () => lock.assertHeld() }, context);
    } catch (error) {
      if (!(error instanceof StepFailure) || error instanceof CancelledError || context.signal.aborted) throw error;
      throw new StepFailure(
        `Offsite retention failed after the copy succeeded (${result.copied.length} set(s) copied, ${result.alreadyOffsite.length} already offsite): ${error.message}\n` +
          `Offsite retention did not finish; the copy is done. Fix what is named above, or set "Offsite retention (days)" (OctopusDr.Offsite.RetentionDays) to 0, and run the copy again.`,
        { exitCode: error.exitCode, cause: error },
      );
    }
    if (retentionDeleted.length) log.info(`Offsite retention (${retentionDays} days): deleted ${retentionDeleted.join(', ')}.`);
  }
  context.setOutput('RetentionDeleted', retentionDeleted.join('\n'));
  const seconds = (Date.now() - started) / 1000;
  context.setOutput('DurationSeconds', seconds.toFixed(1));
  const summary =
    `Offsite copy to ${target.display}: ${result.copied.length} set(s) copied (${formatBytes(result.uploadedBytes)} uploaded` +
    `${result.resumedFiles ? `, ${result.resumedFiles} file(s) already there from an earlier run` : ''}), ` +
    `${result.alreadyOffsite.length} already offsite, ${result.verifiedObjects} object(s) verified, in ${seconds.toFixed(1)} s` +
    `${result.skipped.length ? `; ${result.skipped.length} set(s) not copied (NotCopied says why)` : ''}.`;
  log.highlight(summary);
  context.result(summary);
}
