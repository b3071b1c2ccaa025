// Test Latest Backup: restore the newest backup under a scratch name, check it (DBCC CHECKDB),
// prove the master key decrypts it, verify the newest file-store archive, report the recovery
// point and the measured restore time, and drop the scratch database again, also after a
// failure or a cancel. It reuses the restore, master-key and file-store libraries.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isNativeError } from 'node:util/types';
import type { ParameterValues } from '../../templates/model';
import { fileStoreFolders, fileStoreHomeDirectory } from '../../templates/parameters';
import { testRestore as template } from '../../templates/test-restore';
import { checkDbStatement, manifestStampOf, planRestore, readManifest, restoreDatabase, RestoreError, RestorePlanError, restoreImpossibleOn, tryLockRestoreTarget, unreadableManifestsNewerThan, type RestoreLock, type RestorePlan } from '../engines/database-backup';
import { verifyFileStoreBackup } from '../engines/file-store';
import { decide, parseMasterKey, type MasterKey } from '../engines/master-key';
import { collectMasterKeyEvidence, type EvidenceReporter } from '../engines/octopus-documents';
import { databaseSourceFrom, plannedSource } from '../engines/offsite/url-source';
import { ParameterError, StepFailure } from '../runtime/errors';
import { describeFileError, fileFailure } from '../runtime/failure';
import { isDirectory, sqlSourceLocationsOf, sqlSourceProblemsBeforeConnecting, sqlSourceProblemsForServer, workerPathProblem } from '../runtime/locations';
import { waitForWriters } from '../runtime/lock';
import { howToSet } from '../runtime/parameters';
import type { StepContext } from '../runtime/step-context';
import { toolVersion } from '../runtime/version';
import type { EngineContext } from '../runtime/engine-context';
import { progressWithin, reportingThrough } from '../runtime/phase';
import { noBackupFilesOn, openSqlConnection, type SqlConnection } from '../engines/sql';
import { REPORT_FORMAT, summarise, writeReport, type TestRestoreReport } from './report';
import { cleanScratchLeftovers, databaseExists, dropScratchDatabase, scratchDatabaseName } from './scratch';
import { backupFolderOf, writeDrRecordAndPage } from './dr-record';
import { cleanDrillLeftovers } from './leftovers';
import { checkAgreement, emptyAgreement } from './agreement';
import { chainOctopusVersion, enforceStandbyVersion } from '../engines/standby';

type Params = ParameterValues<typeof template.params>;

export interface TestRestoreOptions {
  /** Random part of the scratch name (tests force a collision with it). */
  randomSuffix?: () => string;
  /** Where the JSON report goes, overriding "Report directory" (tests). */
  reportDirectory?: string;
  now?: () => Date;
}

const MASTER_KEY_SAMPLE_SIZE = 25;
const SCRATCH_NAME_ATTEMPTS = 5;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function elapsedSeconds(since: number): number {
  return Math.round((performance.now() - since) / 100) / 10;
}

/** Server-local `YYYY-MM-DDTHH:mm:ss(.mmm)` texts compared on one clock: the server's. */
function hoursBetween(earlierServerTime: string, laterServerTime: string): number {
  const parse = (text: string) => Date.parse(`${text.replace(' ', 'T')}Z`);
  return Math.round(((parse(laterServerTime) - parse(earlierServerTime)) / 3_600_000) * 10) / 10;
}

function emptyReport(params: Params, now: Date): TestRestoreReport {
  return {
    format: REPORT_FORMAT,
    tool: { name: 'octopus-dr', version: toolVersion },
    result: 'FAIL',
    startedAt: now.toISOString(),
    finishedAt: now.toISOString(),
    server: null,
    backup: {
      source: params.source,
      database: null,
      sets: [],
      finishedAtServerTime: null,
      pointInTime: null,
      ageHours: null,
      maxAgeHours: params.maxAgeHours ?? null,
      recoveryPoint: 'not run',
      manifestKeyId: null,
      bytes: null,
    },
    restore: { status: 'not run', scratchDatabase: null, durationSeconds: null, kept: false, dropped: false },
    checkDb: { status: 'not run', durationSeconds: null },
    masterKey: { status: 'not run', verdict: null, keyId: null, matchesManifest: null, valuesTested: null, valuesVerified: null },
    fileStore: { status: params.fileStoreBackupDirectory ? 'not run' : 'skipped', source: params.fileStoreBackupDirectory || null, archive: null, files: null, bytes: null, durationSeconds: null },
    agreement: emptyAgreement(Boolean(params.fileStoreBackupDirectory)),
    failures: [],
  };
}


/** "Report directory", or beside the backups: the folder "Backup to restore" names or holds its file. */
async function reportDirectoryFor(params: Params, options: TestRestoreOptions): Promise<{ directory: string; explicit: boolean }> {
  const given = options.reportDirectory ?? params.reportDirectory;
  if (given) return { directory: path.resolve(given), explicit: true };
  const source = path.resolve(params.source);
  const stat = await fs.stat(source).catch(() => undefined);
  return { directory: stat && !stat.isDirectory() ? path.dirname(source) : source, explicit: false };
}

/** The report must be writable before an hour of restoring starts: a probe file is created and removed. */
async function checkReportDirectory(directory: string, explicit: boolean): Promise<void> {
  const { reportDirectory, source } = template.params;
  const where = explicit
    ? `"${reportDirectory.label}" ${directory}`
    : `The folder of "${source.label}", ${directory}, where the report goes by default,`;
  const fix = `Set "${reportDirectory.label}" to a writable folder: ${howToSet(reportDirectory)}.`;
  const stat = await fs.stat(directory).catch((error: NodeJS.ErrnoException) => error);
  // isNativeError, not instanceof: an fs error may come from another realm (a test's sandbox).
  if (isNativeError(stat)) {
    if (stat.code === 'ENOENT') throw new StepFailure(`${where} does not exist on this worker. ${explicit ? 'Create it, or correct the path' : `Check "${source.label}"`}. ${fix}`, { exitCode: 2 });
    throw new StepFailure(`${describeFileError(stat, { path: directory, what: 'checking the report directory' }) ?? stat.message} ${fix}`, { exitCode: 2 });
  }
  if (!stat.isDirectory()) throw new StepFailure(`${where} is not a folder. ${fix}`, { exitCode: 2 });
  const probe = path.join(directory, `.octopus-dr-write-probe-${randomBytes(4).toString('hex')}`);
  try {
    await fs.writeFile(probe, 'probe', { flag: 'wx' });
  } catch (error) {
    throw new StepFailure(`The test report cannot be written: ${describeFileError(error, { path: directory, what: 'checking that the report can be written there' }) ?? (error as Error).message} ${fix}`, {
      exitCode: 2,
    });
  } finally {
    await fs.rm(probe, { force: true }).catch(() => undefined);
  }
}

/**
 * Plans the restore under a scratch name no database has yet, holding octopus-dr's restore lock on
 * that name (so no other restore, or test restore that chose the same name, creates or drops it
 * meanwhile). The lock is closed by the step's cleanup, after the scratch database is dropped.
 */
async function planScratchRestore(
  connection: SqlConnection,
  params: Params,
  context: StepContext,
  options: TestRestoreOptions,
  now: Date,
  planning: EngineContext = context,
): Promise<{ plan: RestorePlan; lock: RestoreLock }> {
  for (let attempt = 1; attempt <= SCRATCH_NAME_ATTEMPTS; attempt++) {
    const scratch = scratchDatabaseName(params.scratchPrefix, now, options.randomSuffix);
    const lock = await tryLockRestoreTarget(params.connectionString, scratch, context);
    if (!lock) {
      context.log.warn(`Another restore holds the name '${scratch}'; choosing another scratch name.`);
      continue;
    }
    if (await databaseExists(connection, scratch, context.signal)) {
      await lock.release();
      context.log.warn(`A database named '${scratch}' already exists; choosing another scratch name.`);
      continue;
    }
    const plan = await planRestore(
      connection,
      {
        source: params.source,
        sourceOnServer: params.sourceOnServer || undefined,
        targetDatabase: scratch,
        replaceExisting: false,
        safetyBackup: false,
        dataDirectory: params.dataDirectory || undefined,
        logDirectory: params.logDirectory || undefined,
        checkDb: false,
      },
      planning,
    ).catch(async (error: unknown) => {
      await lock.release();
      throw error;
    });
    return { plan, lock };
  }
  throw new StepFailure(`Could not find a free scratch database name after ${SCRATCH_NAME_ATTEMPTS} attempts; change "${template.params.scratchPrefix.label}".`);
}

/** The newest set's manifest may record the key ID of the master key the backup needs. */
async function manifestKeyId(plan: RestorePlan): Promise<string | null> {
  const newest = plan.chain.logs.at(-1) ?? plan.chain.differential ?? plan.chain.full;
  for (const set of [newest, plan.chain.full]) {
    if (!set.manifestPath) continue;
    const manifest = await readManifest(set.manifestPath).catch(() => undefined);
    if (manifest?.masterKeyId) return manifest.masterKeyId;
  }
  return null;
}

/**
 * When the newest set finished, in UTC, or undefined when its manifest does not say. SQL Server records
 * a backup's start and finish in its own local time, without the offset, so they cannot be compared with
 * another server's clock: the manifest's takenAt (UTC, taken as the backup started) plus the server's own
 * start-to-finish time can. Never later than the real finish, so the age is never understated.
 */
async function finishedUtcOf(set: { manifestPath?: string; header: { backupStartDate: string; backupFinishDate: string } }): Promise<number | undefined> {
  if (!set.manifestPath) return undefined;
  const manifest = await readManifest(set.manifestPath).catch(() => undefined);
  const takenAt = manifest ? Date.parse(manifest.takenAt) : NaN;
  if (Number.isNaN(takenAt)) return undefined;
  const parse = (text: string) => Date.parse(`${text.replace(' ', 'T')}Z`);
  const duration = parse(set.header.backupFinishDate) - parse(set.header.backupStartDate);
  return takenAt + (Number.isFinite(duration) && duration > 0 ? duration : 0);
}

/** The size of the restored chain's backup files, as this worker sees them; null when one cannot be read. */
async function backupBytes(sets: readonly { files: readonly { workerPath: string }[] }[]): Promise<number | null> {
  const sizes = await Promise.all(sets.flatMap((s) => s.files.map((f) => fs.stat(f.workerPath).then((st) => st.size, () => null))));
  return sizes.some((size) => size === null) ? null : sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0);
}

async function verifyKeyAgainst(
  connectionString: string,
  database: string,
  key: MasterKey,
  report: TestRestoreReport,
  context: StepContext,
): Promise<void> {
  const sql = await openSqlConnection(connectionString, context, { database });
  try {
    // The collection reports 0-100 %; here it is the 70-85 % stretch of this step's progress.
    const reporter: EvidenceReporter = {
      log: context.log,
      signal: context.signal,
      progress: (percent, message) => context.progress(70 + percent * 0.15, message),
    };
    const collected = await collectMasterKeyEvidence(sql, key, MASTER_KEY_SAMPLE_SIZE, reporter);
    const verdict = decide(collected.evidence);
    report.masterKey.verdict = verdict.status;
    report.masterKey.valuesTested = verdict.counts.valuesTested;
    report.masterKey.valuesVerified = verdict.counts.valuesVerified;
    if (verdict.status === 'PASS') {
      report.masterKey.status = 'passed';
      context.log.info(verdict.summary);
    } else {
      report.masterKey.status = 'failed';
      report.failures.push(`Master key ${verdict.status}: ${verdict.summary}${verdict.hints.length ? ` ${verdict.hints.join(' ')}` : ''}`);
      for (const finding of verdict.findings) context.log.warn(finding);
    }
  } finally {
    await sql.close();
  }
}

async function testDatabaseBackup(params: Params, key: MasterKey, report: TestRestoreReport, context: StepContext, options: TestRestoreOptions, now: Date): Promise<void> {
  const { log } = context;
  const connection = await openSqlConnection(params.connectionString, context, { database: 'master' });
  context.onCleanup(() => connection.close());
  report.server = connection.server;
  const facts = await connection.serverFacts();
  const noFiles = noBackupFilesOn(facts);
  if (noFiles) throw new StepFailure(restoreImpossibleOn(facts.serverName, noFiles), { exitCode: 2 });
  const against = sqlSourceProblemsForServer(sqlSourceLocationsOf(params), facts.pathSeparator);
  if (against.length > 0) throw new ParameterError(against);
  await cleanScratchLeftovers(connection, params.connectionString, params.scratchPrefix, context);

  // Reading headers and RESTORE VERIFYONLY report no progress of their own: a phase keeps the log alive.
  const planning = context.phase('Finding, reading and verifying the newest backup', 2);
  const { plan, lock } = await planScratchRestore(connection, params, context, options, now, reportingThrough(context, planning)).finally(() => planning.stop());
  const chainSets = [plan.chain.full, plan.chain.differential, ...plan.chain.logs].filter((s) => s !== undefined);
  const newest = chainSets[chainSets.length - 1];
  report.backup.database = plan.sourceDatabase;
  report.backup.sets = chainSets.map((s) => s.label);
  report.backup.finishedAtServerTime = newest.header.backupFinishDate;
  report.backup.pointInTime = plan.chain.pointInTime;
  report.backup.manifestKeyId = await manifestKeyId(plan);
  report.backup.bytes = await backupBytes(chainSets);
  log.info(`Newest backup of '${plan.sourceDatabase}': ${report.backup.sets.join(' + ')}, finished ${newest.header.backupFinishDate} (server time).`);
  for (const warning of plan.warnings) log.warn(warning);
  // A newer backup whose manifest cannot be read was passed over: the test must not pass an older one in its place.
  const newestStamp = newest.manifestPath ? manifestStampOf(path.basename(newest.manifestPath)) : undefined;
  const sourceIsFolder = await fs.stat(params.source).then((s) => s.isDirectory(), () => false);
  if (newestStamp && sourceIsFolder) {
    const passedOver = await unreadableManifestsNewerThan(params.source, plan.sourceDatabase, newestStamp);
    if (passedOver.length > 0) {
      report.failures.push(
        `A newer backup of '${plan.sourceDatabase}' than the one tested cannot be read: ${passedOver.join(' ')} ` +
          'Repair or move away that manifest and its backup files, and run the backup again.',
      );
    }
  }

  // The recovery point: how old the newest backup is. In UTC when its manifest says when it was taken (the
  // drill's server may be in another time zone than the one that took it); else on this server's own clock.
  const { rows } = await connection.query<{ now: string; utcNow: string }>(
    'SELECT CONVERT(varchar(23), SYSDATETIME(), 126) AS now, CONVERT(varchar(23), SYSUTCDATETIME(), 126) AS utcNow',
    {},
    { signal: context.signal },
  );
  const finishedUtc = await finishedUtcOf(newest);
  report.backup.ageHours =
    finishedUtc === undefined
      ? hoursBetween(newest.header.backupFinishDate, rows[0].now)
      : Math.round(((Date.parse(`${rows[0].utcNow.replace(' ', 'T')}Z`) - finishedUtc) / 3_600_000) * 10) / 10;
  const tooOld = params.maxAgeHours !== undefined && report.backup.ageHours > params.maxAgeHours;
  report.backup.recoveryPoint = tooOld ? 'failed' : 'passed';
  if (tooOld) {
    report.failures.push(
      `The newest backup is ${report.backup.ageHours} hours old, older than the ${params.maxAgeHours}-hour limit ("${template.params.maxAgeHours.label}"): check that the backup runbook runs and succeeds.`,
    );
  }

  // The master key can be checked against the manifest before restoring anything.
  report.masterKey.keyId = key.keyId;
  if (report.backup.manifestKeyId) {
    report.masterKey.matchesManifest = report.backup.manifestKeyId === key.keyId;
    if (!report.masterKey.matchesManifest) {
      // Restoring and checking a copy no key can open would prove nothing and take an hour: stop here.
      report.masterKey.status = 'failed';
      report.failures.push(
        `The master key has key ID ${key.keyId}, but the backup manifest records ${report.backup.manifestKeyId}: this backup needs another key ` +
          '(after a rotate-master-key, older backups need the older key). Nothing was restored: give the master key with key ID ' +
          `${report.backup.manifestKeyId} and run the test again.`,
      );
      return;
    }
  }

  // A backup from a newer Octopus than the standby's could not take over there: refused before restoring.
  await enforceStandbyVersion(params, () => chainOctopusVersion(plan), context);

  const scratch = plan.targetDatabase;
  report.restore.scratchDatabase = scratch;
  report.restore.kept = params.keepDatabase;
  const dropScratch = async () => {
    const cleanup = await openSqlConnection(params.connectionString, context, { database: 'master' });
    try {
      await dropScratchDatabase(cleanup, scratch);
      report.restore.dropped = true;
      log.info(`Dropped the scratch database '${scratch}' and its files.`);
    } finally {
      await cleanup.close();
    }
  };
  // Registered before the restore starts, so that whatever happens the scratch database goes.
  const unregisterDrop = params.keepDatabase ? () => undefined : context.onCleanup(dropScratch);
  let othersNow = false;
  try {
    othersNow = (await restoreAndCheck(connection, plan, params, key, report, context)) === 'not-ours';
  } finally {
    if (!params.keepDatabase) {
      unregisterDrop();
      if (othersNow) log.warn(`'${scratch}' was not dropped: another session created, restored over or dropped it during this test restore, so it is not this run's.`);
      else
        await dropScratch().catch((error: unknown) => {
          report.failures.push(`Could not drop the scratch database '${scratch}': ${messageOf(error)}. Drop it by hand.`);
        });
      await lock.release();
    } else {
      log.warn(`The scratch database '${scratch}' is kept ("${template.params.keepDatabase.label}"); drop it when you are done.`);
    }
  }
}

/** 'not-ours' when another session took the scratch name from this run (the RESTORE batch's guard refused). */
async function restoreAndCheck(connection: SqlConnection, plan: RestorePlan, params: Params, key: MasterKey, report: TestRestoreReport, context: StepContext): Promise<'not-ours' | undefined> {
  const { log } = context;
  const scratch = plan.targetDatabase;
  log.info(`Restoring under the scratch name '${scratch}' (files relocated; the original database is not touched).`);
  const restoreStarted = performance.now();
  try {
    // The restore reports 0-100 %; here it is the 5-60 % stretch of this step's progress.
    await restoreDatabase(connection, plan, progressWithin(context, 5, 55));
    report.restore.status = 'passed';
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    report.restore.status = 'failed';
    report.failures.push(`Restore: ${messageOf(error)}`);
    return error instanceof RestoreError && error.targetChanged ? 'not-ours' : undefined;
  } finally {
    report.restore.durationSeconds = elapsedSeconds(restoreStarted);
  }

  const checkStarted = performance.now();
  const check = checkDbStatement(scratch);
  const checking = context.phase(`Checking '${scratch}' with DBCC CHECKDB`, 60);
  try {
    await connection.runLong(check.sql, check.params, { signal: context.signal }).finally(() => checking.stop());
    report.checkDb.status = 'passed';
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    report.checkDb.status = 'failed';
    report.failures.push(`DBCC CHECKDB: ${messageOf(error)}`);
  } finally {
    report.checkDb.durationSeconds = elapsedSeconds(checkStarted);
  }

  context.progress(70, 'Verifying the master key against the restored copy');
  try {
    await verifyKeyAgainst(params.connectionString, scratch, key, report, context);
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    report.masterKey.status = 'failed';
    report.failures.push(`Master key: could not read the restored database: ${messageOf(error)}`);
  }

  if (!params.fileStoreBackupDirectory) return;
  context.progress(85, 'Comparing the restored database with the file-store backup');
  try {
    await checkAgreement(
      {
        connectionString: params.connectionString,
        scratchDatabase: scratch,
        fileStoreBackupDirectory: params.fileStoreBackupDirectory,
        days: params.agreementDays ?? 7,
        failAbovePercent: params.missingFilesFailPercent ?? 10,
      },
      plan,
      report,
      context,
    );
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    report.agreement!.status = 'failed';
    report.failures.push(`Database and file store: could not be compared: ${messageOf(error)}`);
  }
}

async function testFileStoreBackup(directory: string, report: TestRestoreReport, context: StepContext): Promise<void> {
  const started = performance.now();
  try {
    const result = await verifyFileStoreBackup(directory, {
      onProgress: (p) => context.progress(85 + (p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 0) * 14, 'Verifying the file-store backup'),
    }, context);
    report.fileStore.archive = result.set.archivePath;
    report.fileStore.files = result.files;
    report.fileStore.bytes = result.bytes;
    // A set of 0 files proves nothing about a file store (a wrong path backs up nothing, "successfully").
    const empty = result.ok && result.files === 0;
    report.fileStore.status = result.ok && !empty ? 'passed' : 'failed';
    if (empty) {
      report.failures.push(
        `File store: the newest set ${result.set.archivePath} holds 0 files. Check "${fileStoreHomeDirectory.label}" and "${fileStoreFolders.label}" of the file-store backup, and back up again.`,
      );
    }
    if (!result.ok) report.failures.push(`File store: ${result.problems.slice(0, 10).join('; ')}${result.problems.length > 10 ? `; and ${result.problems.length - 10} more` : ''}`);
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    report.fileStore.status = 'failed';
    report.failures.push(`File store: ${messageOf(error)}`);
  } finally {
    report.fileStore.durationSeconds = elapsedSeconds(started);
  }
}

function setOutputs(report: TestRestoreReport, context: StepContext): void {
  context.setOutput('Result', report.result);
  context.setOutput('Passed', report.result === 'PASS' ? 'True' : 'False');
  context.setOutput('BackupSets', report.backup.sets.join('\n'));
  context.setOutput('RecoveryPoint', report.backup.pointInTime ?? '');
  context.setOutput('BackupAgeHours', report.backup.ageHours ?? '');
  context.setOutput('RestoreSeconds', report.restore.durationSeconds ?? '');
  context.setOutput('ScratchDatabase', report.restore.scratchDatabase ?? '');
  context.setOutput('CheckDb', report.checkDb.status);
  context.setOutput('MasterKey', report.masterKey.status);
  context.setOutput('KeyId', report.masterKey.keyId ?? '');
  context.setOutput('FileStore', report.fileStore.status);
  context.setOutput('FileStoreVerifySeconds', report.fileStore.durationSeconds ?? '');
  context.setOutput('Failures', report.failures.join('\n'));
}

export async function testLatestBackup(params: Params, context: StepContext, options: TestRestoreOptions = {}): Promise<void> {
  const now = (options.now ?? (() => new Date()))();
  // The key is parsed and masked before anything else is printed.
  const key = parseMasterKey(params.masterKey);
  for (const form of key.secretForms) context.setSecret(form);
  for (const warning of key.warnings) context.log.warn(warning);
  // Every local path is checked before anything connects or downloads; for an offsite URL, as the
  // download folder the chain will land in.
  const plannedFolder = await plannedSource(params, 'database', context);
  const before = await sqlSourceProblemsBeforeConnecting(sqlSourceLocationsOf({ ...params, source: plannedFolder }));
  if (params.fileStoreBackupDirectory) {
    const problem = await workerPathProblem(params.fileStoreBackupDirectory, template.params.fileStoreBackupDirectory);
    if (problem) before.push(problem);
  }
  if (before.length > 0) throw new ParameterError(before);
  // Before anything connects or downloads: the report must have somewhere to go.
  const { directory: reportDirectory, explicit } = await reportDirectoryFor({ ...params, source: plannedFolder }, options);
  await checkReportDirectory(reportDirectory, explicit);
  // An offsite URL becomes the download folder (its newest chain fetched, decrypted and checked); from here on it is an ordinary test.
  params = { ...params, source: await databaseSourceFrom(params, context) };
  const downloaded = await sqlSourceProblemsBeforeConnecting(sqlSourceLocationsOf(params));
  if (downloaded.length > 0) throw new ParameterError(downloaded);
  // A drill killed while writing its report, page or DR record left their temporary files: named, and removed after 6 hours.
  await cleanDrillLeftovers([reportDirectory, await backupFolderOf(params.source)], new Date(), context.log);
  const waitMs = (params.lockWaitMinutes ?? 0) * 60_000;
  if (await isDirectory(params.source)) {
    await waitForWriters({ directory: params.source, keys: /^database-/, purpose: 'choosing the newest backups', waitMs, log: context.log, signal: context.signal });
  }
  if (params.fileStoreBackupDirectory) {
    await waitForWriters({ directory: params.fileStoreBackupDirectory, keys: /^file-store$/, purpose: 'choosing the newest set', waitMs, log: context.log, signal: context.signal });
  }

  const report = emptyReport(params, now);
  let reportWritten = false;
  let reportFile = '';
  const finish = async () => {
    if (reportWritten) return;
    reportWritten = true;
    report.finishedAt = new Date().toISOString();
    report.result = report.failures.length === 0 ? 'PASS' : 'FAIL';
    // The outputs and the summary first: a report that cannot be written must not hide the result.
    context.log.info(summarise(report));
    setOutputs(report, context);
    const file = await writeReport(reportDirectory, report, (text) => context.redact(text)).catch((error: unknown) => {
      throw fileFailure(error, {
        path: reportDirectory,
        what: `writing the test report (the test itself ${report.result === 'PASS' ? 'passed' : 'failed'})`,
        neededBytes: Buffer.byteLength(JSON.stringify(report, null, 2)),
      });
    });
    reportFile = file;
    context.createArtifact(file);
    context.log.info(`Report: ${file}`);
    await writeDrRecordAndPage(report, file, await backupFolderOf(params.source), context);
  };
  // On cancel the report still records how far the test got (cleanups run last-registered first).
  context.onCleanup(async () => {
    if (!reportWritten) {
      report.failures.push('Cancelled before the test finished.');
      await finish();
    }
  });

  try {
    await testDatabaseBackup(params, key, report, context, options, now);
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    if (error instanceof ParameterError) {
      report.failures.push(error.message);
      await finish();
      throw error;
    }
    if (error instanceof RestorePlanError && error.failed) {
      // The chain was found; one set of it failed its check: the report names it, not "none found".
      report.backup.database = error.failed.database;
      report.backup.sets = error.failed.chain;
      report.backup.failedSet = { label: error.failed.set, files: error.failed.files };
    }
    if (error instanceof StepFailure) {
      report.failures.push(`Database backup: ${error.message}`);
    } else {
      throw error;
    }
  }
  if (params.fileStoreBackupDirectory) {
    context.progress(85, 'Verifying the file-store backup');
    await testFileStoreBackup(params.fileStoreBackupDirectory, report, context);
  }
  context.progress(100, 'Test restore finished');

  // The scratch database is dropped by the cleanup that follows; the report says so once it has.
  await finish();
  if (report.failures.length > 0) {
    throw new StepFailure(
      `Test restore FAILED (${report.failures.length} problem${report.failures.length === 1 ? '' : 's'}):\n${report.failures.map((f) => `  - ${f}`).join('\n')}\n` +
        `Fix the problems above (each says what to do) and run the test again; the report is ${reportFile}.`,
    );
  }
  context.result(
    `Backup of '${report.backup.database}' restored and checked in ${report.restore.durationSeconds} s; recovery point ${report.backup.pointInTime} (${report.backup.ageHours} h old).`,
  );
}
