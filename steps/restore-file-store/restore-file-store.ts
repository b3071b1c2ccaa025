import type { ParameterValues } from '../../templates/model';
import { restoreFileStore as template } from '../../templates/restore-file-store';
import { ParameterError, StepFailure } from '../runtime/errors';
import { isDirectory, workerPathProblem } from '../runtime/locations';
import { waitForWriters } from '../runtime/lock';
import type { StepContext } from '../runtime/step-context';
import { formatBytes } from '../runtime/format';
import { enforceStandbyVersion } from '../engines/standby';
import {
  cleanRestoreLeftovers,
  parseFolderNames,
  resolveBackupSource,
  resolveFolders,
  restoreFileStore,
  verificationFailure,
  verifyFileStoreBackup,
} from '../engines/file-store';
import { localSourceFrom } from '../engines/offsite/url-source';

type Params = ParameterValues<typeof template.params>;

/**
 * File-store sets record no Octopus version (their backup has no SQL connection to read it): the gate
 * compares only a set whose manifest records one; otherwise it says the comparison is left to the
 * database restore, which refuses a backup from a newer Octopus.
 */
async function fileStoreVersionGate(params: Params, manifest: { archive: string; octopusVersion?: unknown }, context: StepContext): Promise<void> {
  if (!params.standbyServerUrl.trim() && !params.standbyOctopusVersion.trim()) return;
  if (typeof manifest.octopusVersion === 'string' && manifest.octopusVersion.trim()) {
    await enforceStandbyVersion(params, async () => ({ version: manifest.octopusVersion as string, label: manifest.archive }), context);
    return;
  }
  context.log.warn(
    `${manifest.archive} records no Octopus version (a file-store backup cannot read it), so it was not compared with the standby's. ` +
      'Restore SQL Database with the same standby parameters compares the database backup of the same time, and refuses one from a newer Octopus.',
  );
}

export async function restoreFileStoreStep(input: Params, context: StepContext): Promise<void> {
  const { log } = context;
  // An offsite URL becomes a local folder first (its chain downloaded, decrypted and checked); from here on it is an ordinary restore.
  // Bad input is refused before anything is downloaded from offsite or read.
  const { homeDirectory, folders, include } = template.params;
  const included = parseFolderNames(input.include, include.label);
  if (included.problems.length > 0) throw new ParameterError(included.problems);
  const params = { ...input, source: (await localSourceFrom(input, context, 'file-store')).source };
  const started = Date.now();
  const sourceProblem = await workerPathProblem(params.source, template.params.source, 'file or directory');
  if (sourceProblem) throw new ParameterError([sourceProblem]);
  if (await isDirectory(params.source)) {
    const waitMs = (params.lockWaitMinutes ?? 0) * 60_000;
    await waitForWriters({ directory: params.source, keys: /^file-store$/, purpose: 'choosing the newest set', waitMs, log, signal: context.signal });
  }

  if (params.verifyOnly) {
    const result = await verifyFileStoreBackup(params.source, included.names.length ? { include: included.names } : {}, context);
    context.setOutput('Verified', result.ok ? 'True' : 'False');
    context.setOutput('ManifestPath', result.set.manifestPath);
    context.setOutput('Files', result.files);
    context.setOutput('Bytes', result.bytes);
    if (!result.ok) throw verificationFailure(result);
    const summary = `Verified ${result.set.archivePath} (chain of ${result.set.manifest.chain.length}): ${result.files} files, ${formatBytes(result.bytes)}, every SHA-256 matches.`;
    log.highlight(summary);
    context.result(summary);
    return;
  }

  const set = await resolveBackupSource(params.source);
  log.info(`Backup set: ${set.archivePath} (${set.manifest.mode}, ${set.manifest.createdAt}, chain ${set.manifest.chain.join(' + ')})`);
  await fileStoreVersionGate(params, set.manifest, context);
  const inBackup = set.manifest.folders.map((f) => f.name);
  const missing = included.names.filter((n) => !inBackup.includes(n));
  if (missing.length > 0) {
    throw new ParameterError([`"${include.label}" names ${missing.join(', ')}, which this backup does not hold (it holds ${inBackup.join(', ')}).`]);
  }
  const resolved = resolveFolders({
    homeDirectory: params.homeDirectory,
    overrides: params.folders,
    include: included.names.length ? included.names : inBackup,
    labels: { homeDirectory: homeDirectory.label, overrides: folders.label, include: include.label },
  });
  if (resolved.problems.length > 0) throw new ParameterError(resolved.problems);

  if (!params.dryRun) await cleanRestoreLeftovers(resolved.folders, new Date(), log);
  const result = await restoreFileStore({
    set,
    destinations: resolved.folders,
    replaceExisting: params.replaceExisting,
    rollBackOnFailure: params.rollBackOnFailure,
    dryRun: params.dryRun,
  }, context);
  if (context.signal.aborted && !result.dryRun) {
    // The cancel came as the last folder was swapped in: say it finished, not just "cancelled".
    const exitCode = context.signal.reason instanceof StepFailure ? context.signal.reason.exitCode : 143;
    const aside = result.folders.flatMap((f) => (f.movedAsideTo ? [f.movedAsideTo] : []));
    throw new StepFailure(
      `Cancelled (${exitCode === 130 ? 'SIGINT' : 'SIGTERM'}) as the restore finished: every folder was restored (${result.folders.map((f) => f.destination).join(', ')})` +
        `${aside.length ? `; the previous content is kept in ${aside.join(', ')}` : ''}.`,
      { exitCode },
    );
  }
  const seconds = (Date.now() - started) / 1000;
  context.setOutput('Files', result.files);
  context.setOutput('Bytes', result.bytes);
  context.setOutput('DurationSeconds', seconds.toFixed(1));
  context.setOutput('Folders', result.folders.map((f) => `${f.name}=${f.destination}`).join('\n'));
  context.setOutput('MovedAside', result.folders.flatMap((f) => (f.movedAsideTo ? [f.movedAsideTo] : [])).join('\n'));
  const summary = result.dryRun
    ? `Dry run: would restore ${result.files} files (${formatBytes(result.bytes)}) into ${result.folders.length} folder(s); nothing was changed.`
    : `Restored ${result.files} files (${formatBytes(result.bytes)}) into ${result.folders.map((f) => f.destination).join(', ')} in ${seconds.toFixed(1)} s` +
      (result.folders.some((f) => f.movedAsideTo) ? `; previous content moved aside to ${result.folders.flatMap((f) => (f.movedAsideTo ? [f.movedAsideTo] : [])).join(', ')}` : '') +
      '.';
  log.highlight(summary);
  context.result(summary);
}
