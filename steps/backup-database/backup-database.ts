import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ParameterValues } from '../../templates/model';
import { backupDatabase as template } from '../../templates/backup-database';
import { kindOf } from '../shared/database-backup/backup-set';
import { cleanBackupLeftovers, loadManifestSets, type FolderLocation } from '../shared/database-backup/discovery';
import { findKeyDrift, keyDriftOutputs } from '../shared/standby';
import { writeManifestAtomically, MANIFEST_FORMAT, type BackupManifest } from '../shared/database-backup/manifest';
import { backupSetNames, fileNamePart, joinServerPath, parseBackupFileName, type BackupKind } from '../shared/database-backup/naming';
import { planRetention } from '../shared/database-backup/retention';
import { readHeaders, runStatement } from '../shared/database-backup/server-reads';
import { backupPreflightStatement, backupStatement, octopusVersionStatement, verifyStatement } from '../shared/database-backup/tsql';
import { ParameterError, StepFailure } from '../shared/runtime/errors';
import { fileFailure } from '../shared/runtime/failure';
import { pathSyntaxProblem, serverFlavour, serverPathSyntaxProblem, workerFlavour, workerPathProblem, type PathFlavour } from '../shared/runtime/locations';
import { acquireLock } from '../shared/runtime/lock';
import { howToSet, quoteValue } from '../shared/runtime/parameters';
import type { StepContext } from '../shared/runtime/step-context';
import { toolVersion } from '../shared/runtime/version';
import { openSqlConnection, SqlError, type SqlConnection } from '../shared/sql';
import { formatBytes } from '../shared/runtime/format';

type Params = ParameterValues<typeof template.params>;

const STATS_PERCENT = 5;
const SYSTEM_DATABASES = new Set(['master', 'model', 'msdb', 'tempdb']);

interface PreflightRow {
  name: string;
  recoveryModel: string;
  state: string;
  differentialBaseLsn: string | null;
  lastLogBackupLsn: string | null;
}

function sqlFailure(error: unknown, what: string): never {
  if (error instanceof SqlError) throw new StepFailure(`${what}: ${error.message}`, { cause: error });
  throw error;
}

/**
 * The connection was lost mid-BACKUP: SQL Server stopped the backup, and may have left a partial
 * file. It is deleted here (where this worker sees it) and the message names it either way.
 */
async function droppedMidBackup(error: SqlError, workerFiles: readonly string[], serverFiles: readonly string[], what: string): Promise<StepFailure> {
  const deleted: string[] = [];
  const left: string[] = [];
  for (const [i, file] of workerFiles.entries()) {
    const present = await fs.stat(file).then(() => true, () => false);
    if (!present) continue;
    if (await fs.rm(file, { force: true }).then(() => true, () => false)) deleted.push(serverFiles[i]);
    else left.push(serverFiles[i]);
  }
  const files = [
    deleted.length ? `The partial backup file${deleted.length > 1 ? 's' : ''} ${deleted.join(', ')} ${deleted.length > 1 ? 'were' : 'was'} deleted` : '',
    left.length ? `The partial backup file${left.length > 1 ? 's' : ''} ${left.join(', ')} could not be deleted: delete ${left.length > 1 ? 'them' : 'it'} (not a usable backup)` : '',
    !deleted.length && !left.length ? `SQL Server left no partial file at ${serverFiles.join(', ')}` : '',
  ].filter(Boolean);
  return new StepFailure(
    `${what} is incomplete: the connection to SQL Server was lost during BACKUP (${error.code ?? 'connection closed'}), so SQL Server stopped it. ` +
      `${files.join('; ')}; ` +
      'nothing was recorded (no manifest was written), so no restore or retention will use it.\n' +
      'Check the network to SQL Server and its error log (a killed session shows there), then run the backup again.',
    { cause: error },
  );
}

/** The directory checks that need no server: syntax of both paths, and the worker's folder exists. */
async function checkDirectoriesBeforeConnecting(params: Params): Promise<void> {
  const problems: string[] = [];
  const { backupDirectory, backupDirectoryOnWorker } = template.params;
  if (params.backupDirectory) {
    const syntax = serverPathSyntaxProblem(params.backupDirectory, backupDirectory);
    if (syntax) problems.push(syntax);
  }
  if (params.backupDirectoryOnWorker) {
    const problem = await workerPathProblem(params.backupDirectoryOnWorker, backupDirectoryOnWorker);
    if (problem) problems.push(problem);
  } else if (params.backupDirectory && problems.length === 0) {
    problems.push(...(await sharedDirectoryProblems(params.backupDirectory)));
  }
  if (problems.length > 0) throw new ParameterError(problems);
}

/** Without a worker path, the server's path is the worker's too: it must open it, and it must exist. */
async function sharedDirectoryProblems(serverDirectory: string, serverSide?: PathFlavour): Promise<string[]> {
  const worker = workerFlavour();
  const { backupDirectory, backupDirectoryOnWorker } = template.params;
  const openableHere = !pathSyntaxProblem(serverDirectory, worker, backupDirectory, 'worker');
  if (!openableHere || (serverSide !== undefined && serverSide !== worker)) {
    return [
      `This worker runs ${worker === 'windows' ? 'Windows' : 'Linux'} and cannot open the backup folder ${serverDirectory} as SQL Server names it` +
        `${serverSide !== undefined && serverSide !== worker ? ` (the SQL Server runs on ${serverSide === 'windows' ? 'Windows' : 'Linux'})` : ''}: ` +
        `set "${backupDirectoryOnWorker.label}" to where this worker sees that folder (e.g. the share mounted at /mnt/octopus-dr): ${howToSet(backupDirectoryOnWorker)}.`,
    ];
  }
  const problem = await workerPathProblem(serverDirectory, backupDirectory);
  return problem ? [`${problem} (If this worker sees that folder under another path, set "${backupDirectoryOnWorker.label}".)`] : [];
}

/** Once the server's platform is known: its path in its own syntax, and a worker path where needed. */
async function checkDirectoriesAgainstServer(params: Params, serverDirectory: string, separator: string | undefined): Promise<string[]> {
  const server = serverFlavour(separator);
  const syntax = pathSyntaxProblem(serverDirectory, server, template.params.backupDirectory, 'server');
  if (syntax) {
    return [params.backupDirectory ? syntax : `SQL Server's default backup folder ${serverDirectory} is not an absolute path; set "Backup directory": ${howToSet(template.params.backupDirectory)}.`];
  }
  if (params.backupDirectoryOnWorker) return [];
  const problems = await sharedDirectoryProblems(serverDirectory, server);
  return params.backupDirectory ? problems : problems.map((p) => `"${template.params.backupDirectory.label}" is empty, so SQL Server's default backup folder is used: ${p}`);
}

export async function backupDatabase(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  const started = Date.now();
  const kind = params.backupType as BackupKind;
  if (params.masterKeyId && !/^[0-9a-f]{16}$/i.test(params.masterKeyId)) {
    throw new StepFailure(
      `"Master key ID" must be 16 hexadecimal characters (the KeyId output of Octopus DR - Verify Master Key), not ${quoteValue(params.masterKeyId)}: ` +
        `${howToSet(template.params.masterKeyId)}.`,
      { exitCode: 2 },
    );
  }

  await checkDirectoriesBeforeConnecting(params);

  let connection: SqlConnection;
  try {
    connection = await openSqlConnection(params.connectionString, { setSecret: (s) => context.setSecret(s), log });
  } catch (error) {
    sqlFailure(error, 'Cannot connect to SQL Server');
  }
  context.onCleanup(() => connection.close());
  const database = connection.database;
  if (SYSTEM_DATABASES.has(database.toLowerCase())) {
    throw new StepFailure(
      `The connection string points at the system database '${database}'. Set Database (Initial Catalog) to the Octopus database in "SQL connection string".`,
      { exitCode: 2 },
    );
  }

  const facts = await connection.serverFacts().catch((e) => sqlFailure(e, 'Cannot read the SQL Server facts'));
  const preflight = await runStatement<PreflightRow>(connection, backupPreflightStatement(database)).catch((e) => sqlFailure(e, 'Cannot read the database state'));
  const db = preflight.rows[0];
  if (!db) throw new StepFailure(`Database '${database}' does not exist on ${connection.server}. Check Database in the connection string.`);
  log.info(`Database '${database}' on ${facts.serverName} (SQL Server ${facts.productVersion}, ${facts.edition}), recovery model ${db.recoveryModel}.`);
  if (db.state !== 'ONLINE') throw new StepFailure(`Database '${database}' is ${db.state}, not ONLINE; it cannot be backed up now.`);

  if (kind === 'Log' && db.recoveryModel === 'SIMPLE') {
    throw new StepFailure(
      `Database '${database}' uses the SIMPLE recovery model, which keeps no log to back up. Nothing was changed. ` +
        'SIMPLE gives restore points at your full and differential backups only (e.g. daily or weekly); for point-in-time restore ' +
        `switch to FULL (ALTER DATABASE ... SET RECOVERY FULL), take a full backup, then schedule log backups. Or set "Backup type" to Full or Differential.`,
    );
  }
  if (kind === 'Log' && !db.lastLogBackupLsn) {
    throw new StepFailure(
      `Database '${database}' has no full backup that started its log chain (copy-only full backups do not), so a log backup is impossible. Take a Full backup with "Copy-only" unchecked first, or let your DBA's full backups start the chain.`,
    );
  }
  if (kind === 'Differential' && (!db.differentialBaseLsn || db.differentialBaseLsn === '0')) {
    throw new StepFailure(
      `Database '${database}' has no full backup a differential could be based on (copy-only full backups are no base). Nothing was changed. ` +
        'Take a Full backup with "Copy-only" unchecked first, or let your DBA\'s full backups be the base.',
    );
  }
  let compression: boolean | undefined;
  if (params.compression === 'On') {
    if (!facts.supportsBackupCompression) {
      throw new StepFailure(`${facts.edition} cannot compress backups. Set "Compression" to Auto or Off.`, { exitCode: 2 });
    }
    compression = true;
  } else if (params.compression === 'Off') compression = false;
  else compression = facts.supportsBackupCompression ? true : undefined;
  const copyOnly = kind !== 'Differential' && params.copyOnly;
  if (kind === 'Log' && copyOnly) {
    log.warn(
      'Copy-only log backups do not truncate the log. If octopus-dr takes this database\'s only backups, uncheck "Copy-only" ' +
        'for the full and log backups, or the transaction log will keep growing.',
    );
  }

  const serverDirectory = params.backupDirectory || facts.defaultBackupPath;
  if (!serverDirectory) {
    throw new StepFailure(`SQL Server reports no default backup folder; set "Backup directory": ${howToSet(template.params.backupDirectory)}.`, { exitCode: 2 });
  }
  const workerDirectory = params.backupDirectoryOnWorker || serverDirectory;
  const directoryProblems = await checkDirectoriesAgainstServer(params, serverDirectory, facts.pathSeparator);
  if (directoryProblems.length > 0) throw new ParameterError(directoryProblems);
  const location: FolderLocation = { workerDirectory, serverDirectory, serverSeparator: facts.pathSeparator };
  await cleanBackupLeftovers(workerDirectory, new Date(), log);

  // One backup of this database at a time in this folder: a second run waits, then fails naming the first.
  const lock = await acquireLock({
    directory: workerDirectory,
    key: `database-${fileNamePart(database).toLowerCase()}`,
    resource: `backups of database '${database}'`,
    step: template.stepId,
    waitMs: (params.lockWaitMinutes ?? 0) * 60_000,
    log,
    signal: context.signal,
  });
  context.onCleanup(() => lock.release());

  // Fresh, unique names (a random part beside the time); BACKUP ... FORMAT, INIT never meets an existing file.
  const stripes = params.stripes ?? 1;
  const when = new Date();
  let names = backupSetNames(database, kind, when, stripes);
  for (let attempt = 0; ; attempt++) {
    const taken = await Promise.all([...names.files, names.manifest].map((n) => fs.lstat(path.join(workerDirectory, n)).then(() => true, () => false)));
    if (!taken.some(Boolean)) break;
    if (attempt >= 3) throw new StepFailure(`Backup files named ${names.stem} already exist in ${workerDirectory}; refusing to overwrite them.`);
    names = backupSetNames(database, kind, when, stripes);
  }
  const workerFiles = names.files.map((n) => path.join(workerDirectory, n));
  const serverFiles = names.files.map((n) => joinServerPath(serverDirectory, n, facts.pathSeparator));
  const manifestPath = path.join(workerDirectory, names.manifest);

  // Until the manifest is written, a failure or cancel leaves no backup files behind.
  let complete = false;
  context.onCleanup(async () => {
    if (complete) return;
    for (const file of workerFiles) await fs.rm(file, { force: true }).catch(() => undefined);
  });

  const statement = backupStatement({
    database,
    kind,
    files: serverFiles,
    copyOnly,
    compression,
    statsPercent: STATS_PERCENT,
    name: `octopus-dr ${names.stem}`.slice(0, 128),
    description: `octopus-dr ${toolVersion} ${kind}${copyOnly ? ' copy-only' : ''} backup`,
  });
  log.info(
    `${statement.purpose}${copyOnly ? ' (copy-only)' : ''}, compression ${compression === undefined ? 'server default' : compression ? 'on' : 'off'}, into ${serverDirectory}:`,
  );
  for (const f of names.files) log.info(`  ${f}`);
  log.verbose(statement.sql);
  const verifyShare = params.verify ? 20 : 0;
  context.progress(0, `Backing up ${database}`);
  await runStatement(connection, statement, {
    long: true,
    signal: context.signal,
    onProgress: (percent) => context.progress((percent * (100 - verifyShare)) / 100, `Backing up ${database}: ${percent}%`),
  }).catch(async (e) => {
    context.throwIfCancelled();
    if (e instanceof SqlError && e.kind === 'connection') throw await droppedMidBackup(e, workerFiles, serverFiles, `${kind} backup of '${database}'`);
    sqlFailure(e, `${kind} backup of '${database}' failed`);
  });
  context.throwIfCancelled();
  const backupSeconds = (Date.now() - started) / 1000;

  const reading = context.phase("Reading the new backup's header (RESTORE HEADERONLY)", 100 - verifyShare);
  const headers = await readHeaders(connection, serverFiles, { signal: context.signal })
    .catch((e) => {
      context.throwIfCancelled();
      sqlFailure(e, "Cannot read the new backup's header");
    })
    .finally(() => reading.stop());
  const header = headers[0];
  if (!header) throw new StepFailure('RESTORE HEADERONLY returned no backup set for the new backup.');

  let verification: BackupManifest['verification'] = { method: 'none', passed: false };
  if (params.verify) {
    const verify = verifyStatement(serverFiles, header.position);
    log.verbose(verify.sql);
    const verifying = context.phase('Verifying the backup (RESTORE VERIFYONLY WITH CHECKSUM)', 100 - verifyShare);
    try {
      await runStatement(connection, verify, {
        long: true,
        signal: context.signal,
        onProgress: (percent) => context.progress(100 - verifyShare + (percent * verifyShare) / 100, `Verifying the backup: ${percent}%`),
      });
    } catch (error) {
      context.throwIfCancelled();
      sqlFailure(error, `The new backup failed RESTORE VERIFYONLY WITH CHECKSUM and was deleted (it could not be restored)`);
    } finally {
      verifying.stop();
    }
    verification = { method: 'RESTORE VERIFYONLY WITH CHECKSUM', passed: true, at: new Date().toISOString() };
    log.info('Verified: RESTORE VERIFYONLY WITH CHECKSUM passed.');
  } else {
    log.warn('The backup was not verified ("Verify" is off); retention does not run after an unverified backup.');
  }

  let octopusVersion: string | null = null;
  try {
    const { rows } = await runStatement<{ version: string | null }>(connection, octopusVersionStatement(database));
    octopusVersion = rows[0]?.version ?? null;
  } catch (error) {
    log.verbose(`The Octopus version could not be read from the database (${(error as Error).message}).`);
  }

  const files = await Promise.all(
    names.files.map(async (name, i) => ({
      name,
      serverPath: serverFiles[i],
      sizeBytes: await fs.stat(workerFiles[i]).then((s) => s.size, () => null),
      stripe: i + 1,
    })),
  );
  const missing = files.filter((f) => f.sizeBytes === null).map((f) => f.name);
  if (missing.length > 0) {
    throw new StepFailure(
      `SQL Server reports the backup done, but this worker does not see ${missing.join(', ')} in ${workerDirectory}. ` +
        'Check that "Backup directory on this worker" is the same folder as "Backup directory".',
    );
  }
  const manifest: BackupManifest = {
    format: MANIFEST_FORMAT,
    tool: { name: 'octopus-dr', version: toolVersion },
    database,
    server: { name: facts.serverName, version: facts.productVersion, majorVersion: facts.majorVersion, edition: facts.edition },
    recoveryModel: db.recoveryModel,
    backupType: kind,
    copyOnly,
    compression: header.compressed,
    takenAt: when.toISOString(),
    durationSeconds: Math.round(backupSeconds * 10) / 10,
    files,
    header,
    verification,
    octopusVersion,
    masterKeyId: params.masterKeyId ? params.masterKeyId.toLowerCase() : null,
  };
  await writeManifestAtomically(manifestPath, manifest).catch((error: unknown) => {
    // Without its manifest the backup is not complete: the cleanup deletes its files.
    throw fileFailure(error, { path: workerDirectory, what: `writing the manifest ${manifestPath} (the backup files were deleted)`, neededBytes: Buffer.byteLength(JSON.stringify(manifest, null, 2)) });
  });
  complete = true;
  context.createArtifact(manifestPath);

  const totalBytes = files.reduce((sum, f) => sum + (f.sizeBytes ?? 0), 0);
  const seconds = (Date.now() - started) / 1000;
  context.progress(100, 'Backup complete');
  context.setOutput('ManifestPath', manifestPath);
  context.setOutput('BackupFiles', serverFiles.join('\n'));
  context.setOutput('SizeBytes', totalBytes);
  context.setOutput('DurationSeconds', seconds.toFixed(1));
  context.setOutput('Verified', verification.passed ? 'True' : 'False');
  context.setOutput('FirstLsn', header.firstLsn);
  context.setOutput('LastLsn', header.lastLsn);
  if (manifest.masterKeyId) await reportKeyDrift(database, manifest.masterKeyId, when, location, context);

  // Empty or 0 days: no retention (the same rule as the file-store step's).
  if (params.retentionDays) {
    if (!verification.passed) log.warn('Retention skipped: the new backup was not verified.');
    else {
      try {
        await applyRetention(database, location, params.retentionDays, params.retentionMinimumSets ?? 1, context);
      } catch (error) {
        throw new StepFailure(
          `The backup succeeded (${manifestPath}), but retention failed: ${(error as Error).message}. Check the worker account may delete files in ${workerDirectory}.`,
          { cause: error },
        );
      }
    }
  }

  const summary = `${kind} backup of '${database}' (${formatBytes(totalBytes)} in ${stripes} file${stripes === 1 ? '' : 's'}, ${seconds.toFixed(1)} s${verification.passed ? ', verified' : ''}): ${manifestPath}`;
  log.highlight(summary);
  context.result(summary);
}

/** A key ID other than the previous backup's: every earlier backup needs the old key, which must be kept. */
async function reportKeyDrift(database: string, verifiedKeyId: string, takenAt: Date, location: FolderLocation, context: StepContext): Promise<void> {
  const { log } = context;
  try {
    const drift = findKeyDrift({ database, verifiedKeyId, takenAt, manifests: await loadManifestSets(location, (m) => log.verbose(m)) });
    for (const [name, value] of Object.entries(keyDriftOutputs(drift))) context.setOutput(name, value);
    if (drift) log.warn(drift.warning);
  } catch (error) {
    // The backup is complete; the comparison is advice, so its failure is a warning.
    log.warn(`The backup is complete, but its master key ID could not be compared with earlier backups' (${(error as Error).message}).`);
  }
}

/** Deletes this tool's own old backup sets of this database that no kept set needs. */
async function applyRetention(database: string, location: FolderLocation, days: number, minimumVerifiedSets: number, context: StepContext): Promise<void> {
  const { log } = context;
  const sets = (await loadManifestSets(location, (m) => log.warn(m))).filter(
    (s) => s.manifest.database === database && kindOf(s.set.header) !== undefined,
  );
  const plan = planRetention(
    sets.map((s) => ({ set: s.set, takenAt: new Date(s.manifest.takenAt) })),
    { now: new Date(), retentionDays: days, minimumVerifiedSets },
  );
  for (const warning of plan.warnings) log.warn(warning);
  let deleted = 0;
  for (const decision of plan.remove) {
    const set = decision.candidate.set;
    // Only files named as this tool names them, in this folder.
    const ours = set.files.filter((f) => parseBackupFileName(f.name) !== undefined);
    for (const file of ours) await fs.rm(file.workerPath, { force: true });
    if (set.manifestPath) await fs.rm(set.manifestPath, { force: true });
    deleted += 1;
    log.info(`Retention: deleted ${set.label} (${decision.reason}).`);
  }
  for (const decision of plan.keep) log.verbose(`Retention: kept ${decision.candidate.set.label} (${decision.reason}).`);
  log.info(`Retention (${days} days): ${deleted} backup set${deleted === 1 ? '' : 's'} deleted, ${plan.keep.length} kept.`);
  context.setOutput('RetentionDeleted', deleted);
}
