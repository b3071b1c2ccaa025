// The database backup as a pipeline of stages, each a function a caller can stop after:
//
//   checkBackup   the request against the server: database, recovery model, compression, folders
//   planBackup    the folder locked, leftovers cleaned, fresh file names recorded as started, the BACKUP statement
//   runBackup     BACKUP ... WITH CHECKSUM (a dropped connection deletes the partial files)
//   verifyBackup  its header read back (RESTORE HEADERONLY), RESTORE VERIFYONLY WITH CHECKSUM
//   recordBackup  the manifest, written atomically: only now is the backup complete
//
// takeDatabaseBackup runs them in order; retention (apply-retention.ts) runs after it, once the new set is verified.
// Until recordBackup has written the manifest, a failure or cancel deletes the backup files.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { backupDatabase as template } from '../../../templates/backup-database';
import { ParameterError, StepFailure } from '../../runtime/errors';
import type { EngineContext } from '../../runtime/engine-context';
import { fileFailure } from '../../runtime/failure';
import { pathSyntaxProblem, serverFlavour, serverPathSyntaxProblem, workerFlavour, workerPathProblem, type PathFlavour } from '../../runtime/locations';
import { acquireLock } from '../../runtime/lock';
import { howToSet } from '../../runtime/parameters';
import { startPhase } from '../../runtime/phase';
import { toolVersion } from '../../runtime/version';
import { noBackupFilesOn, openSqlConnection, SqlError, sqlErrorWhile, type ServerFacts, type SqlConnection } from '../sql';
import type { BackupHeader } from './backup-set';
import { cleanBackupLeftovers, type FolderLocation } from './discovery';
import { MANIFEST_FORMAT, writeManifestAtomically, type BackupManifest } from './manifest';
import { STARTED_MARKER_FORMAT, writeStartedMarker } from './started-marker';
import { backupSetNames, fileNamePart, joinServerPath, type BackupKind, type BackupSetNames } from './naming';
import { readHeaders, runStatement } from './server-reads';
import { backupPreflightStatement, backupStatement, octopusVersionStatement, quoteName, tdeCertificateStatement, verifyStatement, type Statement } from './tsql';

const STATS_PERCENT = 5;
const SYSTEM_DATABASES = new Set(['master', 'model', 'msdb', 'tempdb']);
const labels = template.params;

export interface DatabaseBackupRequest {
  connectionString: string;
  kind: BackupKind;
  /** Ignored for a differential (which is never copy-only). */
  copyOnly: boolean;
  compression: 'Auto' | 'On' | 'Off';
  /** The backup folder as SQL Server sees it; empty: the server's default backup folder. */
  serverDirectory?: string;
  /** The same folder as this worker sees it; empty: the server's path. */
  workerDirectory?: string;
  stripes: number;
  verify: boolean;
  /** The verified master key ID to record in the manifest (lower-cased). */
  masterKeyId?: string;
  /** How long to wait for another backup of this database in this folder. */
  lockWaitMs: number;
}

/** What SQL Server reports about the database to back up (sys.databases). */
export interface SourceDatabaseState {
  name: string;
  recoveryModel: string;
  state: string;
  differentialBaseLsn: string | null;
  lastLogBackupLsn: string | null;
  /** Its availability-group database ID; null when in no group. */
  groupDatabaseId: string | null;
  /** sys.databases.is_encrypted: TDE is on. */
  isEncrypted?: boolean;
  /** TDE: the thumbprint (hex) and name of the certificate in master protecting its encryption key, when readable. */
  tdeThumbprint?: string | null;
  tdeCertificate?: string | null;
}

export interface CheckedBackup {
  request: DatabaseBackupRequest;
  connection: SqlConnection;
  database: string;
  facts: ServerFacts;
  state: SourceDatabaseState;
  copyOnly: boolean;
  /** undefined: the server's default. */
  compression: boolean | undefined;
  location: FolderLocation;
  started: number;
}

export interface PlannedBackup extends CheckedBackup {
  names: BackupSetNames;
  takenAt: Date;
  workerFiles: string[];
  serverFiles: string[];
  manifestPath: string;
  /** The record that this run started the files (started-marker.ts), removed once the manifest is written. */
  startedMarkerPath: string;
  statement: Statement;
  /** The backup is complete (its manifest is written): the cleanup keeps its files. */
  markComplete(): void;
}

export interface VerifiedBackup extends PlannedBackup {
  backupSeconds: number;
  header: BackupHeader;
  verification: BackupManifest['verification'];
}

export interface DatabaseBackupResult {
  manifestPath: string;
  manifest: BackupManifest;
  location: FolderLocation;
  serverFiles: string[];
  totalBytes: number;
  seconds: number;
  stripes: number;
}

/** Check, plan, back up, verify, record: a complete, verified (if asked) backup with its manifest. */
export async function takeDatabaseBackup(request: DatabaseBackupRequest, context: EngineContext): Promise<DatabaseBackupResult> {
  const checked = await checkBackup(request, context);
  const planned = await planBackup(checked, context);
  const backupSeconds = await runBackup(planned, context);
  const verified = await verifyBackup(planned, backupSeconds, context);
  return recordBackup(verified, context);
}

// ---- check -------------------------------------------------------------------------------------

/** Connects and checks everything that can be checked before anything is written. */
export async function checkBackup(request: DatabaseBackupRequest, context: EngineContext): Promise<CheckedBackup> {
  const started = Date.now();
  await checkDirectoriesBeforeConnecting(request);
  const connection = await openSqlConnection(request.connectionString, context);
  context.onCleanup(() => connection.close());
  const spelled = connection.database;
  if (SYSTEM_DATABASES.has(spelled.toLowerCase())) {
    throw new StepFailure(
      `The connection string points at the system database '${spelled}'. Set Database (Initial Catalog) to the Octopus database in "${labels.connectionString.label}".`,
      { exitCode: 2 },
    );
  }
  const facts = await connection.serverFacts();
  const noFiles = noBackupFilesOn(facts);
  if (noFiles) {
    throw new StepFailure(
      `Cannot back up '${spelled}' on ${facts.serverName}: ${noFiles}. Nothing was written. This step writes backup files to a folder; ` +
        "keep this database with the service's own backups (and its long-term retention), and use Verify Master Key and Back Up File Store for the rest of Octopus.",
      { exitCode: 2 },
    );
  }
  const state = await readSourceDatabaseState(connection, spelled);
  // The name as the server keeps it, not as this connection string spells it (`octopus` finds
  // `Octopus` under a case-insensitive collation): every set of one database is named and
  // recorded alike, so retention and restores see one database.
  const database = state.name || spelled;
  if (database !== spelled) context.log.verbose(`The connection string spells the database '${spelled}'; the server names it '${database}', and so do the backup's files.`);
  context.log.info(`Database '${database}' on ${facts.serverName} (SQL Server ${facts.productVersion}, ${facts.edition}), recovery model ${state.recoveryModel}.`);
  checkBackupKindAllowed(request.kind, state);
  const compression = compressionFor(request.compression, facts);
  const copyOnly = request.kind !== 'Differential' && request.copyOnly;
  if (request.kind === 'Log' && copyOnly) {
    context.log.warn(
      `Copy-only log backups do not truncate the log. If octopus-dr takes this database's only backups, uncheck "${labels.copyOnly.label}" ` +
        'for the full and log backups, or the transaction log will keep growing.',
    );
  }
  if (state.isEncrypted) {
    // Not readable without VIEW SERVER STATE: the warning then says the certificate is unknown.
    const tde = await runStatement<{ tdeThumbprint: string | null; tdeCertificate: string | null }>(connection, tdeCertificateStatement(database)).then(
      (r) => r.rows[0],
      (error: unknown) => {
        if (error instanceof SqlError && error.kind === 'cancelled') throw error;
        context.log.verbose(`Could not read which certificate protects '${database}' (${error instanceof Error ? error.message : String(error)}).`);
        return undefined;
      },
    );
    state.tdeThumbprint = tde?.tdeThumbprint ?? null;
    state.tdeCertificate = tde?.tdeCertificate ?? null;
    context.log.warn(tdeWarning(database, facts.serverName, state.tdeThumbprint, state.tdeCertificate));
  }
  const location = await backupLocation(request, facts);
  return { request, connection, database, facts, state, copyOnly, compression, location, started };
}

/**
 * A TDE database's backups restore only where master holds its certificate with the private key: as
 * with the Octopus master key, a backup without it is useless, and a drill on this server (which
 * has it) cannot show that. Said on every backup, since nothing here can check the certificate's copy.
 */
export function tdeWarning(database: string, serverName: string, thumbprint: string | null, certificate: string | null): string {
  const quoted = certificate ? quoteName(certificate) : '<certificate>';
  const which = certificate
    ? `certificate '${certificate}'${thumbprint ? ` (thumbprint 0x${thumbprint.toUpperCase()})` : ''}`
    : thumbprint
      ? `the certificate with thumbprint 0x${thumbprint.toUpperCase()}`
      : "a certificate this login cannot name (reading it needs VIEW SERVER STATE; sys.dm_database_encryption_keys names it)";
  return (
    `'${database}' is encrypted with TDE by ${which} in master on ${serverName}: ` +
    'its backups restore only on a SQL Server that holds that certificate with its private key, and Test Latest Backup on this server cannot show that. ' +
    `Back up the certificate (BACKUP CERTIFICATE ${quoted} TO FILE = '...' WITH PRIVATE KEY (FILE = '...', ENCRYPTION BY PASSWORD = '...')) and keep it, and its password, with the Octopus master key.`
  );
}

async function readSourceDatabaseState(connection: SqlConnection, database: string): Promise<SourceDatabaseState> {
  const preflight = await runStatement<SourceDatabaseState>(connection, backupPreflightStatement(database)).catch((error: unknown) => {
    throw error instanceof SqlError ? sqlErrorWhile('Cannot read the database state', error) : error;
  });
  const state = preflight.rows[0];
  if (!state) throw new StepFailure(`Database '${database}' does not exist on ${connection.server}. Check Database in the connection string.`);
  return state;
}

/** Whether the database's state and recovery model allow this kind of backup; throws why not. Pure. */
export function checkBackupKindAllowed(kind: BackupKind, db: SourceDatabaseState): void {
  const database = db.name;
  if (db.state !== 'ONLINE') throw new StepFailure(`Database '${database}' is ${db.state}, not ONLINE; it cannot be backed up now.`);
  if (kind === 'Log' && db.recoveryModel === 'SIMPLE') {
    throw new StepFailure(
      `Database '${database}' uses the SIMPLE recovery model, which keeps no log to back up. Nothing was changed. ` +
        'SIMPLE gives restore points at your full and differential backups only (e.g. daily or weekly); for point-in-time restore ' +
        `switch to FULL (ALTER DATABASE ... SET RECOVERY FULL), take a full backup, then schedule log backups. Or set "${labels.backupType.label}" to Full or Differential.`,
    );
  }
  if (kind === 'Log' && !db.lastLogBackupLsn) {
    throw new StepFailure(
      `Database '${database}' has no full backup that started its log chain (copy-only full backups do not), so a log backup is impossible. Take a Full backup with "${labels.copyOnly.label}" unchecked first, or let your DBA's full backups start the chain.`,
    );
  }
  if (kind === 'Differential' && (!db.differentialBaseLsn || db.differentialBaseLsn === '0')) {
    throw new StepFailure(
      `Database '${database}' has no full backup a differential could be based on (copy-only full backups are no base). Nothing was changed. ` +
        `Take a Full backup with "${labels.copyOnly.label}" unchecked first, or let your DBA's full backups be the base.`,
    );
  }
}

/** true/false: WITH (NO_)COMPRESSION; undefined: the server's default. Pure. */
export function compressionFor(setting: DatabaseBackupRequest['compression'], facts: Pick<ServerFacts, 'edition' | 'supportsBackupCompression'>): boolean | undefined {
  if (setting === 'On') {
    if (!facts.supportsBackupCompression) {
      throw new StepFailure(`${facts.edition} cannot compress backups. Set "${labels.compression.label}" to Auto or Off.`, { exitCode: 2 });
    }
    return true;
  }
  if (setting === 'Off') return false;
  return facts.supportsBackupCompression ? true : undefined;
}

/** The directory checks that need no server: syntax of both paths, and the worker's folder exists. */
async function checkDirectoriesBeforeConnecting(request: DatabaseBackupRequest): Promise<void> {
  const problems: string[] = [];
  if (request.serverDirectory) {
    const syntax = serverPathSyntaxProblem(request.serverDirectory, labels.backupDirectory);
    if (syntax) problems.push(syntax);
  }
  if (request.workerDirectory) {
    const problem = await workerPathProblem(request.workerDirectory, labels.backupDirectoryOnWorker);
    if (problem) problems.push(problem);
  } else if (request.serverDirectory && problems.length === 0) {
    problems.push(...(await sharedDirectoryProblems(request.serverDirectory)));
  }
  if (problems.length > 0) throw new ParameterError(problems);
}

/** Without a worker path, the server's path is the worker's too: it must open it, and it must exist. */
async function sharedDirectoryProblems(serverDirectory: string, serverSide?: PathFlavour): Promise<string[]> {
  const worker = workerFlavour();
  const { backupDirectory, backupDirectoryOnWorker } = labels;
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
async function checkDirectoriesAgainstServer(request: DatabaseBackupRequest, serverDirectory: string, separator: string | undefined): Promise<string[]> {
  const server = serverFlavour(separator);
  const { backupDirectory } = labels;
  const syntax = pathSyntaxProblem(serverDirectory, server, backupDirectory, 'server');
  if (syntax) {
    return [request.serverDirectory ? syntax : `SQL Server's default backup folder ${serverDirectory} is not an absolute path; set "${backupDirectory.label}": ${howToSet(backupDirectory)}.`];
  }
  if (request.workerDirectory) return [];
  const problems = await sharedDirectoryProblems(serverDirectory, server);
  return request.serverDirectory ? problems : problems.map((p) => `"${backupDirectory.label}" is empty, so SQL Server's default backup folder is used: ${p}`);
}

/** The backup folder as the server and this worker see it, checked against the server's platform. */
async function backupLocation(request: DatabaseBackupRequest, facts: ServerFacts): Promise<FolderLocation> {
  const serverDirectory = request.serverDirectory || facts.defaultBackupPath;
  if (!serverDirectory) {
    throw new StepFailure(`SQL Server reports no default backup folder; set "${labels.backupDirectory.label}": ${howToSet(labels.backupDirectory)}.`, { exitCode: 2 });
  }
  const problems = await checkDirectoriesAgainstServer(request, serverDirectory, facts.pathSeparator);
  if (problems.length > 0) throw new ParameterError(problems);
  return { workerDirectory: request.workerDirectory || serverDirectory, serverDirectory, serverSeparator: facts.pathSeparator };
}

// ---- plan --------------------------------------------------------------------------------------

/**
 * Takes the folder's lock, cleans what killed runs left, chooses fresh names and records that the
 * backup starts (started-marker.ts); deletes the files on failure until recorded.
 */
export async function planBackup(checked: CheckedBackup, context: EngineContext): Promise<PlannedBackup> {
  const { request, database, facts, location } = checked;
  const { workerDirectory, serverDirectory } = location;

  // One backup of this database at a time in this folder: a second run waits, then fails naming the first.
  const lockKey = `database-${fileNamePart(database).toLowerCase()}`;
  const lock = await acquireLock({
    directory: workerDirectory,
    key: lockKey,
    resource: `backups of database '${database}'`,
    step: template.stepId,
    waitMs: request.lockWaitMs,
    log: context.log,
    signal: context.signal,
  });
  context.onCleanup(() => lock.release());
  // Holding the lock, no other run of this database writes here: a record of a start under this
  // lock whose run is gone names a killed run's files.
  await cleanBackupLeftovers(workerDirectory, new Date(), context.log, { lockKey, token: lock.holder.token, host: lock.holder.host });

  const takenAt = new Date();
  const names = await unusedNames(database, request.kind, takenAt, request.stripes, workerDirectory);
  const workerFiles = names.files.map((n) => path.join(workerDirectory, n));
  const serverFiles = names.files.map((n) => joinServerPath(serverDirectory, n, facts.pathSeparator));

  // Before SQL Server creates a file: the record that this run starts these files, so that only
  // they (and never a backup file someone put here) are deleted if the run is killed.
  const startedMarkerPath = await writeStartedMarker(workerDirectory, { format: STARTED_MARKER_FORMAT, stem: names.stem, lockKey, holder: lock.holder, files: names.files }).catch(
    (error: unknown) => {
      throw fileFailure(error, { path: workerDirectory, what: `recording the start of the backup ${names.stem} (nothing was backed up)`, neededBytes: 4096 });
    },
  );

  // Until the manifest is written, a failure or cancel leaves no backup files behind (and then no record).
  let complete = false;
  context.onCleanup(async () => {
    if (complete) return;
    let left = false;
    for (const file of workerFiles) {
      await fs.rm(file, { force: true }).catch(() => void (left = true));
    }
    // A file that could not be deleted keeps its record: the next backup deletes both.
    if (!left) await fs.rm(startedMarkerPath, { force: true }).catch(() => undefined);
  });

  const statement = backupStatement({
    database,
    kind: request.kind,
    files: serverFiles,
    copyOnly: checked.copyOnly,
    compression: checked.compression,
    statsPercent: STATS_PERCENT,
    name: `octopus-dr ${names.stem}`.slice(0, 128),
    description: `octopus-dr ${toolVersion} ${request.kind}${checked.copyOnly ? ' copy-only' : ''} backup`,
  });
  return {
    ...checked,
    names,
    takenAt,
    workerFiles,
    serverFiles,
    manifestPath: path.join(workerDirectory, names.manifest),
    startedMarkerPath,
    statement,
    markComplete: () => void (complete = true),
  };
}

/** Fresh, unique names (a random part beside the time): BACKUP ... FORMAT, INIT never meets an existing file. */
async function unusedNames(database: string, kind: BackupKind, when: Date, stripes: number, workerDirectory: string): Promise<BackupSetNames> {
  for (let attempt = 0; ; attempt++) {
    const names = backupSetNames(database, kind, when, stripes);
    const taken = await Promise.all([...names.files, names.manifest].map((n) => fs.lstat(path.join(workerDirectory, n)).then(() => true, () => false)));
    if (!taken.some(Boolean)) return names;
    if (attempt >= 3) throw new StepFailure(`Backup files named ${names.stem} already exist in ${workerDirectory}; refusing to overwrite them.`);
  }
}

// ---- back up -----------------------------------------------------------------------------------

/** The share of the progress bar RESTORE VERIFYONLY takes. */
function verifyShareOf(planned: PlannedBackup): number {
  return planned.request.verify ? 20 : 0;
}

/** Runs BACKUP; returns how long it took, in seconds (from the start of the check). */
export async function runBackup(planned: PlannedBackup, context: EngineContext): Promise<number> {
  const { statement, database, compression, copyOnly, names, location } = planned;
  const kind = planned.request.kind;
  context.log.info(
    `${statement.purpose}${copyOnly ? ' (copy-only)' : ''}, compression ${compression === undefined ? 'server default' : compression ? 'on' : 'off'}, into ${location.serverDirectory}:`,
  );
  for (const f of names.files) context.log.info(`  ${f}`);
  context.log.verbose(statement.sql);
  const verifyShare = verifyShareOf(planned);
  context.progress(0, `Backing up ${database}`);
  await runStatement(planned.connection, statement, {
    long: true,
    signal: context.signal,
    onProgress: (percent) => context.progress((percent * (100 - verifyShare)) / 100, `Backing up ${database}: ${percent}%`),
  }).catch(async (error: unknown) => {
    context.signal.throwIfAborted();
    if (error instanceof SqlError && error.kind === 'connection') throw await droppedMidBackup(error, planned, `${kind} backup of '${database}'`);
    throw error instanceof SqlError ? sqlErrorWhile(`${kind} backup of '${database}' failed`, error) : error;
  });
  context.signal.throwIfAborted();
  return (Date.now() - planned.started) / 1000;
}

/**
 * The connection was lost mid-BACKUP: SQL Server stopped the backup, and may have left a partial
 * file. It is deleted here (where this worker sees it) and the message names it either way.
 */
async function droppedMidBackup(error: SqlError, planned: PlannedBackup, what: string): Promise<StepFailure> {
  const { workerFiles, serverFiles } = planned;
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

// ---- verify ------------------------------------------------------------------------------------

/** Reads the new backup's header back and, if asked, runs RESTORE VERIFYONLY WITH CHECKSUM. */
export async function verifyBackup(planned: PlannedBackup, backupSeconds: number, context: EngineContext): Promise<VerifiedBackup> {
  const header = await readNewHeader(planned, context);
  let verification: BackupManifest['verification'] = { method: 'none', passed: false };
  if (planned.request.verify) {
    await verifyOnly(planned, header, context);
    verification = { method: 'RESTORE VERIFYONLY WITH CHECKSUM', passed: true, at: new Date().toISOString() };
    context.log.info('Verified: RESTORE VERIFYONLY WITH CHECKSUM passed.');
  } else {
    context.log.warn(`The backup was not verified ("${labels.verify.label}" is off); retention does not run after an unverified backup.`);
  }
  return { ...planned, backupSeconds, header, verification };
}

async function readNewHeader(planned: PlannedBackup, context: EngineContext): Promise<BackupHeader> {
  const reading = startPhase(context, "Reading the new backup's header (RESTORE HEADERONLY)", 100 - verifyShareOf(planned));
  const headers = await readHeaders(planned.connection, planned.serverFiles, { signal: context.signal })
    .catch((error: unknown) => {
      context.signal.throwIfAborted();
      throw error instanceof SqlError ? sqlErrorWhile("Cannot read the new backup's header", error) : error;
    })
    .finally(() => reading.stop());
  const header = headers[0];
  if (!header) throw new StepFailure('RESTORE HEADERONLY returned no backup set for the new backup.');
  return header;
}

async function verifyOnly(planned: PlannedBackup, header: BackupHeader, context: EngineContext): Promise<void> {
  const verifyShare = verifyShareOf(planned);
  const verify = verifyStatement(planned.serverFiles, header.position);
  context.log.verbose(verify.sql);
  const verifying = startPhase(context, 'Verifying the backup (RESTORE VERIFYONLY WITH CHECKSUM)', 100 - verifyShare);
  try {
    await runStatement(planned.connection, verify, {
      long: true,
      signal: context.signal,
      onProgress: (percent) => context.progress(100 - verifyShare + (percent * verifyShare) / 100, `Verifying the backup: ${percent}%`),
    });
  } catch (error) {
    context.signal.throwIfAborted();
    // The files are deleted by the cleanup: the set was never recorded.
    throw error instanceof SqlError ? sqlErrorWhile('The new backup failed RESTORE VERIFYONLY WITH CHECKSUM and was deleted (it could not be restored)', error) : error;
  } finally {
    verifying.stop();
  }
}

// ---- record ------------------------------------------------------------------------------------

/** Writes the manifest (temporary name, then rename): from now on the backup is complete. */
export async function recordBackup(verified: VerifiedBackup, context: EngineContext): Promise<DatabaseBackupResult> {
  const { request, database, facts, location, names, serverFiles, workerFiles, manifestPath } = verified;
  const octopusVersion = await readOctopusVersion(verified.connection, database, context);
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
      `SQL Server reports the backup done, but this worker does not see ${missing.join(', ')} in ${location.workerDirectory}. ` +
        `Check that "${labels.backupDirectoryOnWorker.label}" is the same folder as "${labels.backupDirectory.label}".`,
    );
  }
  const manifest: BackupManifest = {
    format: MANIFEST_FORMAT,
    tool: { name: 'octopus-dr', version: toolVersion },
    database,
    server: { name: facts.serverName, version: facts.productVersion, majorVersion: facts.majorVersion, edition: facts.edition },
    recoveryModel: verified.state.recoveryModel,
    backupType: request.kind,
    copyOnly: verified.copyOnly,
    compression: verified.header.compressed,
    takenAt: verified.takenAt.toISOString(),
    durationSeconds: Math.round(verified.backupSeconds * 10) / 10,
    files,
    header: verified.header,
    verification: verified.verification,
    octopusVersion,
    masterKeyId: request.masterKeyId ? request.masterKeyId.toLowerCase() : null,
    groupDatabaseId: verified.state.groupDatabaseId?.toLowerCase() ?? null,
    tde: verified.state.tdeThumbprint ? { thumbprint: verified.state.tdeThumbprint.toUpperCase(), certificate: verified.state.tdeCertificate ?? null } : verified.state.isEncrypted ? { thumbprint: null, certificate: null } : null,
  };
  await writeManifestAtomically(manifestPath, manifest).catch((error: unknown) => {
    // Without its manifest the backup is not complete: the cleanup deletes its files.
    throw fileFailure(error, {
      path: location.workerDirectory,
      what: `writing the manifest ${manifestPath} (the backup files were deleted)`,
      neededBytes: Buffer.byteLength(JSON.stringify(manifest, null, 2)),
    });
  });
  verified.markComplete();
  // The manifest is in place (renamed and flushed): the record of the start has done its work.
  await fs.rm(verified.startedMarkerPath, { force: true }).catch((error: NodeJS.ErrnoException) => {
    context.log.verbose(`Could not remove ${verified.startedMarkerPath} (${error.code ?? error.message}); the next backup removes it (its set is complete).`);
  });
  context.progress(100, 'Backup complete');
  return {
    manifestPath,
    manifest,
    location,
    serverFiles,
    totalBytes: files.reduce((sum, f) => sum + (f.sizeBytes ?? 0), 0),
    seconds: (Date.now() - verified.started) / 1000,
    stripes: request.stripes,
  };
}

/** The Octopus version the database records, for the manifest; null when it cannot be read. */
async function readOctopusVersion(connection: SqlConnection, database: string, context: EngineContext): Promise<string | null> {
  try {
    const { rows } = await runStatement<{ version: string | null }>(connection, octopusVersionStatement(database));
    return rows[0]?.version ?? null;
  } catch (error) {
    context.log.verbose(`The Octopus version could not be read from the database (${(error as Error).message}).`);
    return null;
  }
}
