// The restore as a library, in the stages of dbatools' Restore-DbaDatabase pipeline
// (Get-, Select-, Test-, Format-DbaBackupInformation), each a function a caller can stop after:
//
//   getBackupSets      the sets in the source folder (manifests first, then headers of other files)
//   selectRestoreChain the full, differential and logs to restore, and the target name (pure)
//   testRestoreChain   every chosen set re-read from its files and verified (RESTORE VERIFYONLY)
//   buildRestorePlan   the target checked, files relocated, the statements in order
//
//   const plan = await planRestore(connection, { source, targetDatabase: 'scratch', ... }, context);
//   context.log.info(formatRestorePlan(plan));
//   const result = await restoreDatabase(connection, plan, context);
//
// The connection must be to master (openSqlConnection(..., { database: 'master' })): SQL Server
// cannot restore a database the connection is using. Planning changes nothing; its failures are
// RestorePlanErrors that say so.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { restoreDataDirectory, restoreLogDirectory, restoreReplaceExisting, restoreSource } from '../../../templates/parameters';
import { restoreDatabase as restoreTemplate } from '../../../templates/restore-database';
import type { EngineContext } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { formatProblem } from '../../runtime/parameters';
import { noBackupFilesOn, SqlError, type SqlConnection, type ServerFacts } from '../sql';
import { kindOf, normaliseLocalTime, type BackupFile, type BackupSet } from './backup-set';
import { ChainError, selectChain, type RestoreChain } from './chain';
import { loadManifestSets, looseBackupFiles, refuseAnotherSetsManifest, setFromManifest, type FolderLocation } from './discovery';
import { compareLsn } from './lsn';
import { compareOrigins, describeOrigin, type SetOrigin } from './origin';
import { readManifest } from './manifest';
import { backupTimestamp, fileNamePart, isManifestName, joinServerPath, parseBackupFileName, randomNamePart, relocatedFileName } from './naming';
import { readFileList, readHeaders, runStatement, type DatabaseFile } from './server-reads';
import {
  backupStatement,
  checkDbStatement,
  databaseExistsStatement,
  formatStatement,
  guardedByTarget,
  multiUserStatement,
  newestSafetyBackupStatement,
  octopusTablesStatement,
  quoteName,
  OCTOPUS_CORE_TABLES,
  restoreStatement,
  TARGET_CHANGED,
  verifyStatement,
  type Relocation,
  type Statement,
} from './tsql';

const STATS_PERCENT = 5;
const { targetDatabase: targetDatabaseParameter, pointInTime: pointInTimeParameter, safetyBackup: safetyBackupParameter } = restoreTemplate.params;

/** A problem with the backups or the request: nothing has been changed, and the message says so first. */
export class RestorePlanError extends StepFailure {
  /** When one backup set of the chosen chain failed a check: the chain, and that set and its files. */
  readonly failed?: PlanFailure;
  /** The problem alone, without "Nothing was changed.". */
  readonly reason: string;
  constructor(reason: string, failed?: PlanFailure, options: { cause?: unknown } = {}) {
    super(`Nothing was changed. ${reason}`, options);
    this.name = 'RestorePlanError';
    this.reason = reason;
    this.failed = failed;
  }
}

export interface PlanFailure {
  database: string;
  /** Labels of the chain's sets, oldest first. */
  chain: string[];
  set: string;
  files: string[];
}

/** The restore failed part-way: the message says what state things are in. */
export class RestoreError extends StepFailure {
  /** The statement that failed. */
  readonly stage?: PlannedStep['kind'];
  /** An existing database had begun to be replaced: it is no longer as it was. */
  readonly replaceStarted: boolean;
  /** The reason alone (the message adds what state the database is in). */
  readonly reason: string;
  /**
   * Another session changed the target since this restore last saw it (the guard in the RESTORE
   * batch refused, before that batch changed anything): it is not this restore's to drop or roll back.
   */
  readonly targetChanged: boolean;
  /** With targetChanged: an earlier RESTORE of this restore had already run. */
  readonly restoreStarted: boolean;
  constructor(
    message: string,
    options: { cause?: unknown; stage?: PlannedStep['kind']; replaceStarted?: boolean; reason?: string; targetChanged?: boolean; restoreStarted?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'RestoreError';
    this.stage = options.stage;
    this.replaceStarted = options.replaceStarted ?? false;
    this.reason = options.reason ?? message;
    this.targetChanged = options.targetChanged ?? false;
    this.restoreStarted = options.restoreStarted ?? false;
  }
}

export interface RestoreRequest {
  /** Manifest, backup file or folder, as this worker sees it. */
  source: string;
  /** The same folder as SQL Server sees it; default: the worker's path. */
  sourceOnServer?: string;
  /** Default: the name the backup was taken from. */
  targetDatabase?: string;
  /** ISO-8601 without offset, server local time. */
  pointInTime?: string;
  replaceExisting: boolean;
  safetyBackup: boolean;
  dataDirectory?: string;
  logDirectory?: string;
  checkDb: boolean;
  /** Skip RESTORE VERIFYONLY (only when the caller verifies otherwise). Default false. */
  skipVerify?: boolean;
}

export interface PlannedStep {
  statement: Statement;
  /** Relative duration, for the progress bar. */
  weight: number;
  kind: 'safety-backup' | 'restore' | 'multi-user' | 'octopus-check' | 'checkdb';
}

export interface RestorePlan {
  request: RestoreRequest;
  chain: RestoreChain;
  sourceDatabase: string;
  targetDatabase: string;
  targetExists: boolean;
  /** sys.databases state_desc of the existing target when planned (ONLINE, RESTORING, ...). */
  targetState?: string;
  /** The existing target as planned: state, user access, database_id and create_date, in one text (tsql.ts). */
  targetIdentity?: string;
  server: ServerFacts;
  relocations: Relocation[];
  /** Server path of the safety backup, when one will be taken. */
  safetyBackupFile?: string;
  /** A RESTORING target's newest earlier safety backup (msdb's history): what a killed replace replaced. */
  earlierSafetyBackupFile?: string;
  steps: PlannedStep[];
  warnings: string[];
}

export interface RestoreResult {
  database: string;
  pointInTime: string;
  durationSeconds: number;
  safetyBackupFile?: string;
  octopusTablesFound: string[];
  checkDb: 'passed' | 'not run';
}

/** Why no restore from backup files can run on the server (noBackupFilesOn), and what to do instead. */
export function restoreImpossibleOn(serverName: string, why: string): string {
  return (
    `Nothing was changed. ${serverName} cannot restore from backup files: ${why}. Point "SQL connection string" at a SQL Server that can ` +
    "(on a virtual machine, or on premises), or use the service's own point-in-time restore."
  );
}

function planError(message: string, failed?: PlanFailure): never {
  throw new RestorePlanError(message, failed);
}

/** Reads, checks and plans; changes nothing. Throws RestorePlanError naming the file or LSN gap. */
export async function planRestore(connection: SqlConnection, request: RestoreRequest, context: EngineContext): Promise<RestorePlan> {
  try {
    const facts = await connection.serverFacts();
    const noFiles = noBackupFilesOn(facts);
    // The connection string's server cannot do this at all: a configuration problem (exit 2), as a system database is.
    if (noFiles) throw new StepFailure(restoreImpossibleOn(facts.serverName, noFiles), { exitCode: 2 });
    const found = await getBackupSets(connection, request, facts, context);
    const selected = selectRestoreChain(found, request);
    await testRestoreChain(connection, selected, facts, request, context);
    return await buildRestorePlan(connection, selected, facts, request, context);
  } catch (error) {
    // A cancel is reported as such (exit 130/143), not as the failure it caused.
    context.signal.throwIfAborted();
    if (error instanceof SqlError) throw new RestorePlanError(error.message, undefined, { cause: error });
    throw error;
  }
}

// ---- get the sets ------------------------------------------------------------------------------

/** The backup sets a restore may choose from, and the one the user named (if a file or manifest). */
export interface FoundBackupSets {
  location: FolderLocation;
  sets: BackupSet[];
  /** The set "Backup to restore" names: restore exactly up to its end. */
  endAt?: BackupSet;
  /** "Point in time", normalised (server local time). */
  stopAt?: string;
}

/** The backup set name (BACKUP ... WITH NAME) of every safety backup: how msdb's history finds them. */
const SAFETY_BACKUP_SET_NAME = 'octopus-dr safety backup before restore';
/** `<Database>_SAFETY_<stamp>_<6 hex>.bak` (before the random part: `<Database>_SAFETY_<stamp>.bak`): the copy-only backup taken before replacing a database. */
const SAFETY_BACKUP_NAME = /_SAFETY_\d{8}T\d{6}Z(_[0-9a-f]{6})?\.bak$/i;

/** Every set in the source's folder, the named one, and the point in time; checks the source exists. */
export async function getBackupSets(connection: SqlConnection, request: RestoreRequest, facts: ServerFacts, context: EngineContext): Promise<FoundBackupSets> {
  const stopAt = pointInTimeOf(request);
  const { location, file } = await resolveSource(request, facts);
  const discovered = await discoverSets(connection, location, context);
  const { sets, endAt } = file ? await namedSet(file, discovered, location) : { sets: discovered, endAt: undefined };
  if (!file && sets.length === 0) planError(`No usable backups were found in ${location.workerDirectory} (looked for *.manifest.json, *.bak and *.trn; see any warnings above).`);
  // Safety backups land in the server's default backup folder, which may be this very folder: they
  // hold the database as it was before an earlier restore, never "the newest backup" (unless named).
  const { kept, safety } = withoutSafetyBackups(sets, endAt);
  if (safety.length > 0) {
    context.log.info(`Not considered: ${safety.map((s) => s.label).join(', ')} (safety backups taken before earlier restores; name one as "${restoreSource.label}" to restore it).`);
    if (kept.length === 0) planError(`${location.workerDirectory} holds only safety backups of earlier restores; name one as "${restoreSource.label}" to restore it.`);
  }
  return { location, sets: kept, endAt, stopAt };
}

function pointInTimeOf(request: RestoreRequest): string | undefined {
  if (!request.pointInTime) return undefined;
  const stopAt = normaliseLocalTime(request.pointInTime);
  // The steps' parameter parsing refuses a malformed moment first; this keeps other callers of the engine
  // from restoring to the latest instead, with the definition's words.
  if (!stopAt) planError(formatProblem(pointInTimeParameter, request.pointInTime) ?? `"${pointInTimeParameter.label}" is not a date and time.`);
  return stopAt;
}

async function resolveSource(request: RestoreRequest, facts: ServerFacts) {
  const stat = await fs.stat(request.source).catch(() => undefined);
  if (!stat) planError(`The backup source ${request.source} does not exist (as this worker sees it). Check "${restoreSource.label}".`);
  const workerDirectory = stat.isDirectory() ? request.source : path.dirname(request.source);
  const serverDirectory = request.sourceOnServer || workerDirectory;
  const location: FolderLocation = { workerDirectory, serverDirectory, serverSeparator: request.sourceOnServer ? facts.pathSeparator : undefined };
  return { location, file: stat.isDirectory() ? undefined : path.basename(request.source) };
}

/** Every backup set in the folder (manifests first, then other backup files, whose headers are read). */
async function discoverSets(connection: SqlConnection, location: FolderLocation, context: EngineContext): Promise<BackupSet[]> {
  const { log, signal } = context;
  log.info(`Looking for backup sets in ${location.workerDirectory}`);
  const fromManifests = await loadManifestSets(location, (m) => log.warn(m));
  const claimed = new Set(fromManifests.flatMap((m) => m.manifest.files.map((f) => f.name)));
  const sets = fromManifests.map((m) => m.set);
  for (const group of await looseBackupFiles(location, claimed)) {
    if (group.missingFiles.length > 0) {
      log.warn(`${group.label}: ${group.missingFiles.join(', ')} missing, so its header cannot be read; it is not considered.`);
      continue;
    }
    try {
      log.info(`Reading the header of ${group.label} (RESTORE HEADERONLY)`);
      const headers = await readHeaders(connection, group.files.map((f) => f.serverPath), { signal });
      for (const header of headers) {
        sets.push({ label: headers.length > 1 ? `${group.label} #${header.position}` : group.label, files: group.files, missingFiles: [], header });
      }
    } catch (error) {
      if (error instanceof SqlError && error.kind === 'cancelled') throw error;
      log.warn(`${group.label} is not a readable SQL Server backup (${(error as Error).message}); it is not considered.`);
    }
  }
  return sets;
}

/** The set a named manifest or backup file stands for, among the folder's sets (added when missing). */
async function namedSet(file: string, discovered: BackupSet[], location: FolderLocation): Promise<{ sets: BackupSet[]; endAt: BackupSet }> {
  if (isManifestName(file)) {
    const manifestPath = path.join(location.workerDirectory, file);
    const manifest = await readManifest(manifestPath).catch((e: Error) => planError(e.message));
    // Named or not, a manifest that is not its set's (another set's copied into its place) is not restored from.
    try {
      refuseAnotherSetsManifest(file, manifest);
    } catch (error) {
      planError(`${file} cannot be restored from: ${(error as Error).message}.`);
    }
    const endAt = discovered.find((s) => s.manifestPath === manifestPath) ?? (await setFromManifest(manifestPath, manifest, location));
    return { sets: discovered.includes(endAt) ? discovered : [...discovered, endAt], endAt };
  }
  // A file can hold several backup sets (appended WITH NOINIT): restore up to the newest of them.
  const endAt = discovered
    .filter((s) => s.files.some((f) => f.name === file) || s.missingFiles.includes(file))
    .sort((a, b) => compareLsn(b.header.lastLsn, a.header.lastLsn))[0];
  if (!endAt) {
    const parsed = parseBackupFileName(file);
    planError(
      parsed && parsed.stripes > 1
        ? `${file} is one of ${parsed.stripes} files of a striped backup, and not all are beside it. Copy every stripe into ${location.workerDirectory}.`
        : `${file} is not a readable SQL Server backup (see the warnings above).`,
    );
  }
  return { sets: discovered, endAt };
}

/** Safety backups of earlier restores are set aside, unless one is the set the user named. Pure. */
export function withoutSafetyBackups(sets: readonly BackupSet[], endAt?: BackupSet): { kept: BackupSet[]; safety: BackupSet[] } {
  const safety = sets.filter((s) => s !== endAt && s.files.some((f) => SAFETY_BACKUP_NAME.test(f.name)));
  return { kept: sets.filter((s) => !safety.includes(s)), safety };
}

// ---- select the chain --------------------------------------------------------------------------

export interface SelectedChain {
  location: FolderLocation;
  chain: RestoreChain;
  /** The chain's sets in restore order: full, differential, logs. */
  members: BackupSet[];
  sourceDatabase: string;
  targetDatabase: string;
}

/** Chooses the sets to restore and the target's name; throws RestorePlanError naming the gap. Pure. */
export function selectRestoreChain(found: FoundBackupSets, request: Pick<RestoreRequest, 'targetDatabase'>): SelectedChain {
  const { endAt, stopAt } = found;
  if (endAt && stopAt) {
    planError(`Give either a specific backup (a manifest or backup file as "${restoreSource.label}") or a "${pointInTimeParameter.label}" with a folder, not both.`);
  }
  const sets = endAt ? found.sets : setsOfTargetDatabase(found.sets, request.targetDatabase);
  if (!endAt) refuseMixedOrigins(sets, found.location);
  let chain: RestoreChain;
  try {
    chain = selectChain(sets, { endAt, stopAt });
  } catch (error) {
    if (error instanceof ChainError) planError(error.message);
    throw error;
  }
  const sourceDatabase = chain.full.header.databaseName;
  const targetDatabase = request.targetDatabase || sourceDatabase;
  if (targetDatabase.length > 128 || /[\u0000-\u001f]/.test(targetDatabase)) {
    planError(`"${targetDatabaseParameter.label}" must be 1 to 128 characters without control characters.`);
  }
  return { location: found.location, chain, members: chainMembers(chain), sourceDatabase, targetDatabase };
}

/** A shared folder may hold several databases' backups: the target name picks its own. Pure. */
export function setsOfTargetDatabase(sets: BackupSet[], targetDatabase: string | undefined): BackupSet[] {
  const sourceNames = [...new Set(sets.map((s) => s.header.databaseName))];
  if (sourceNames.length <= 1 || !targetDatabase) return sets;
  // Exactly first: a case-sensitive server may hold `Case` and `case`, each with its own backups.
  const exact = sourceNames.filter((n) => n === targetDatabase);
  const loose = sourceNames.filter((n) => n.toLowerCase() === targetDatabase.toLowerCase());
  const same = exact.length === 1 ? exact[0] : loose.length === 1 ? loose[0] : undefined;
  // None, or several that differ only in case: all of them, and the chain's selection names them.
  return same ? sets.filter((s) => s.header.databaseName === same) : sets;
}

/**
 * A folder holding one database's backups from more than one server or database family (production
 * and staging on one share; a server replaced after a disaster, its backups beside the new one's):
 * the newest set may be another server's, and a differential can chain onto a full that another
 * server's copy of the database was restored from. Which to restore is the user's call: refused,
 * naming each origin's newest set. Sets that do not record both are not counted. Pure.
 */
export function refuseMixedOrigins(sets: readonly BackupSet[], location: FolderLocation): void {
  // Several databases' sets: the chain's selection refuses them first, naming the databases.
  const databases = new Set(sets.map((s) => s.header.databaseName));
  if (databases.size !== 1) return;
  // Sets whose origins compare 'same' are one origin, and so is a set the same as one of them
  // (an availability-group replica's sets, and the sets one of those servers took before the group).
  const origins: { origin: SetOrigin; members: SetOrigin[]; count: number; newest: BackupSet }[] = [];
  for (const set of sets) {
    const origin: SetOrigin = { server: set.header.serverName?.trim() || null, familyGuid: set.header.familyGuid?.trim() || null, groupDatabaseId: set.groupDatabaseId?.trim() || null };
    if (origin.server === null || origin.familyGuid === null) continue;
    const joined = origins.filter((o) => o.members.some((m) => compareOrigins(m, origin) === 'same'));
    const entry = joined[0] ?? { origin, members: [], count: 0, newest: set };
    if (joined.length === 0) origins.push(entry);
    for (const other of joined.slice(1)) {
      entry.members.push(...other.members);
      entry.count += other.count;
      if (compareLsn(other.newest.header.lastLsn, entry.newest.header.lastLsn) > 0) entry.newest = other.newest;
      origins.splice(origins.indexOf(other), 1);
    }
    entry.members.push(origin);
    entry.count += 1;
    if (compareLsn(set.header.lastLsn, entry.newest.header.lastLsn) > 0) entry.newest = set;
  }
  if (origins.length <= 1) return;
  const [database] = databases;
  const list = origins
    .map((e) => `${describeOrigin(e.origin)}: ${e.count} set${e.count === 1 ? '' : 's'}, the newest ${e.newest.label} (finished ${e.newest.header.backupFinishDate})`)
    .join('; ');
  planError(
    `${location.workerDirectory} holds backups of '${database}' from more than one server or database (${list}). ` +
      `Which of them to restore is not guessed: the newest may be another server's, and a chain could join a full of one with a differential of another. ` +
      `Name the backup to restore up to as "${restoreSource.label}" (its .manifest.json or backup file), or move each server's backups into a folder of its own.`,
  );
}

function chainMembers(chain: RestoreChain): BackupSet[] {
  return [chain.full, chain.differential, ...chain.logs].filter((s): s is BackupSet => s !== undefined);
}

// ---- test the chain ----------------------------------------------------------------------------

function fileNames(files: readonly BackupFile[]): string {
  return files.map((f) => f.name).join(', ');
}

/** Re-reads every chosen set from its files and, unless skipped, verifies it (RESTORE VERIFYONLY). */
export async function testRestoreChain(
  connection: SqlConnection,
  selected: SelectedChain,
  facts: ServerFacts,
  request: Pick<RestoreRequest, 'skipVerify'>,
  context: EngineContext,
): Promise<void> {
  for (const set of selected.members) await rereadHeader(connection, set, facts, context);
  if (request.skipVerify) return;
  for (const set of selected.members) await verifySet(connection, set, selected, context);
}

/** The manifest could describe other files than are there: the header is read from the files. */
async function rereadHeader(connection: SqlConnection, set: BackupSet, facts: ServerFacts, context: EngineContext): Promise<void> {
  context.log.info(`Reading the header of ${set.label} (RESTORE HEADERONLY)`);
  const headers = await readHeaders(connection, set.files.map((f) => f.serverPath), { signal: context.signal }).catch((e: Error) => {
    if (e instanceof SqlError && e.kind === 'cancelled') throw e;
    return planError(`${fileNames(set.files)} cannot be read by SQL Server: ${e.message}`);
  });
  const header = headers.find((h) => h.position === set.header.position);
  if (!header || compareLsn(header.firstLsn, set.header.firstLsn) !== 0 || compareLsn(header.lastLsn, set.header.lastLsn) !== 0) {
    planError(`${fileNames(set.files)} do not hold the backup ${set.label} describes (the LSNs differ). The files were replaced or renamed.`);
  }
  set.header = header;
  if (header.isDamaged) planError(`${set.label} is marked damaged (IsDamaged) in its header; it cannot be trusted.`);
  if (header.softwareVersionMajor > facts.majorVersion) {
    planError(
      `${set.label} was taken on SQL Server ${header.softwareVersionMajor}.${header.softwareVersionMinor}.${header.softwareVersionBuild}, ` +
        `newer than the target server's ${facts.productVersion}. SQL Server cannot restore a backup to an older version: restore onto SQL Server ${header.softwareVersionMajor} or newer.`,
    );
  }
}

/**
 * SQL Server's 33111 ("Cannot find server certificate with thumbprint"): the backup is of a TDE
 * database and this server's master lacks its certificate. What to do, naming the certificate
 * when the manifest recorded it; undefined for any other error.
 */
export function missingTdeCertificateAdvice(error: unknown, set: Pick<BackupSet, 'label' | 'tde'>, serverName: string): string | undefined {
  if (!(error instanceof SqlError) || error.number !== 33111) return undefined;
  const certificate = set.tde?.certificate ? `certificate '${set.tde.certificate}'` : 'the certificate';
  const thumbprint = set.tde?.thumbprint ? ` (thumbprint 0x${set.tde.thumbprint})` : '';
  const quoted = set.tde?.certificate ? quoteName(set.tde.certificate) : '<certificate>';
  return (
    `${set.label} is a backup of a database encrypted with TDE, and ${serverName} does not hold ${certificate}${thumbprint} that protects its encryption key (${error.message}). ` +
    `Create it in master from its backup, with its private key (CREATE CERTIFICATE ${quoted} FROM FILE = '...' WITH PRIVATE KEY (FILE = '...', DECRYPTION BY PASSWORD = '...')), then run this again.`
  );
}

async function verifySet(connection: SqlConnection, set: BackupSet, selected: SelectedChain, context: EngineContext): Promise<void> {
  const verify = verifyStatement(set.files.map((f) => f.serverPath), set.header.position, set.header.hasBackupChecksums);
  context.log.info(`Verifying ${set.label} (RESTORE VERIFYONLY)`);
  await runStatement(connection, verify, { long: true, signal: context.signal }).catch((e: Error) => {
    if (e instanceof SqlError && e.kind === 'cancelled') throw e;
    const certificate = missingTdeCertificateAdvice(e, set, connection.server);
    if (certificate) return planError(certificate);
    return planError(`${set.label} (${fileNames(set.files)}) failed RESTORE VERIFYONLY: ${e.message}`, {
      database: selected.sourceDatabase,
      chain: selected.members.map((m) => m.label),
      set: set.label,
      files: set.files.map((f) => f.name),
    });
  });
}

// ---- format the plan ---------------------------------------------------------------------------

/** Where each file of a restored database goes: named after the target, in the data or log folder. */
function relocationsFor(fileList: readonly DatabaseFile[], targetDatabase: string, dataDirectory: string, logDirectory: string, separator: string): Relocation[] {
  const ordinals = new Map<string, number>();
  return fileList.map((f) => {
    const group = f.type === 'L' ? 'L' : f.type === 'D' ? 'D' : f.type;
    const n = (ordinals.get(group) ?? 0) + 1;
    ordinals.set(group, n);
    const directory = f.type === 'L' ? logDirectory : dataDirectory;
    return { logicalName: f.logicalName, physicalPath: joinServerPath(directory, relocatedFileName(targetDatabase, group, n), separator) };
  });
}

/** Checks the target, places its files, and lists the statements in order (a safety backup first). */
export async function buildRestorePlan(
  connection: SqlConnection,
  selected: SelectedChain,
  facts: ServerFacts,
  request: RestoreRequest,
  context: EngineContext,
): Promise<RestorePlan> {
  const { chain, targetDatabase } = selected;
  const existing = await runStatement<{ name: string; state: string; identity: string }>(connection, databaseExistsStatement(targetDatabase));
  const targetExists = existing.rows.length > 0;
  const targetState = existing.rows[0]?.state;
  const targetIdentity = existing.rows[0]?.identity;
  if (targetExists && !request.replaceExisting) {
    planError(
      `Database '${targetDatabase}' already exists on ${facts.serverName}, and "${restoreReplaceExisting.label}" is off. ` +
        `To restore beside it, set "${targetDatabaseParameter.label}" to a new name (e.g. '${targetDatabase}-restored'); ` +
        `to overwrite it, check "${restoreReplaceExisting.label}" (a copy-only safety backup of it is taken first).`,
    );
  }
  const dataDirectory = request.dataDirectory || facts.defaultDataPath;
  const logDirectory = request.logDirectory || facts.defaultLogPath;
  if (!dataDirectory || !logDirectory) planError(`SQL Server reports no default data or log folder; set "${restoreDataDirectory.label}" and "${restoreLogDirectory.label}".`);
  const fileList: DatabaseFile[] = await readFileList(connection, chain.full.files.map((f) => f.serverPath), chain.full.header.position, { signal: context.signal }).catch((e: Error) =>
    planError(`Cannot list the database files in ${chain.full.label}: ${e.message}`),
  );
  const relocations = relocationsFor(fileList, targetDatabase, dataDirectory, logDirectory, facts.pathSeparator);

  const warnings: string[] = [];
  const steps: PlannedStep[] = [];
  let safetyBackupFile: string | undefined;
  let earlierSafetyBackupFile: string | undefined;
  if (targetExists && request.safetyBackup && targetState === 'RESTORING') {
    // Half-restored (an earlier restore that did not finish, or a standby's chain): no content to keep that its backups do not hold.
    const earlier = await earlierSafetyBackup(connection, targetDatabase);
    earlierSafetyBackupFile = earlier?.file;
    warnings.push(
      `'${targetDatabase}' is RESTORING (not usable), so it cannot be backed up first; it is replaced without a safety backup.` +
        (earlier ? ` Its content before the earlier restore may be in the safety backup ${earlier.file} (finished ${earlier.finished}, server local time): keep that file until this restore is checked.` : ''),
    );
  } else if (targetExists && request.safetyBackup && targetState !== 'ONLINE') {
    planError(
      `'${targetDatabase}' is ${targetState}, not ONLINE, so no safety backup of it can be taken, and "${safetyBackupParameter.label}" is on. ` +
        `Bring it ONLINE first (ALTER DATABASE ${quoteName(targetDatabase)} SET ONLINE) and run the restore again; ` +
        `or, to replace it with no way back, turn "${safetyBackupParameter.label}" off (copy its data and log files first if you may need them).`,
    );
  }
  if (targetExists && request.safetyBackup && targetState === 'ONLINE') {
    const safety = safetyBackupStep(targetDatabase, facts);
    safetyBackupFile = safety.file;
    steps.push(safety.step);
  }
  steps.push(...restoreSteps(selected, relocations, targetExists));
  steps.push({ kind: 'multi-user', weight: 0.05, statement: multiUserStatement(targetDatabase) });
  steps.push({ kind: 'octopus-check', weight: 0.05, statement: octopusTablesStatement(targetDatabase) });
  if (request.checkDb) steps.push({ kind: 'checkdb', weight: 1, statement: checkDbStatement(targetDatabase) });

  return {
    request,
    chain,
    sourceDatabase: selected.sourceDatabase,
    targetDatabase,
    targetExists,
    targetState,
    targetIdentity,
    server: facts,
    relocations,
    safetyBackupFile,
    earlierSafetyBackupFile,
    steps,
    warnings,
  };
}

/** The newest safety backup octopus-dr took of the database (msdb's history): e.g. what a killed replace left. */
async function earlierSafetyBackup(connection: SqlConnection, database: string): Promise<{ file: string; finished: string } | undefined> {
  const found = await runStatement<{ file: string; finished: unknown }>(connection, newestSafetyBackupStatement(database, SAFETY_BACKUP_SET_NAME)).catch(() => undefined);
  const newest = found?.rows[0];
  if (!newest) return undefined;
  return { file: newest.file, finished: normaliseLocalTime(String(newest.finished)) ?? String(newest.finished) };
}

/** The copy-only backup of the database about to be replaced, in the server's default backup folder. */
function safetyBackupStep(targetDatabase: string, facts: ServerFacts): { file: string; step: PlannedStep } {
  if (!facts.defaultBackupPath) {
    planError(`SQL Server reports no default backup folder for the safety backup; turn "${safetyBackupParameter.label}" off or configure the instance's backup folder.`);
  }
  // Not named like this tool's backups, so retention never deletes it. The random part keeps two
  // restores in the same second from writing into one file (BACKUP appends to an existing file).
  const safetyName = `${fileNamePart(targetDatabase)}_SAFETY_${backupTimestamp(new Date())}_${randomNamePart()}.bak`;
  const file = joinServerPath(facts.defaultBackupPath, safetyName, facts.pathSeparator);
  const step: PlannedStep = {
    kind: 'safety-backup',
    weight: 1,
    statement: {
      ...backupStatement({
        database: targetDatabase,
        kind: 'Full',
        files: [file],
        copyOnly: true,
        compression: facts.supportsBackupCompression ? true : undefined,
        statsPercent: STATS_PERCENT,
        name: SAFETY_BACKUP_SET_NAME,
        description: `Copy-only backup of '${targetDatabase}' taken by octopus-dr before replacing it`,
      }),
      purpose: `Safety backup (copy-only) of the existing '${targetDatabase}' to ${file}`,
    },
  };
  return { file, step };
}

/** RESTORE of each set in order: the first replaces and relocates, the last recovers (and stops at the time). */
function restoreSteps(selected: SelectedChain, relocations: Relocation[], targetExists: boolean): PlannedStep[] {
  const { members, chain, targetDatabase } = selected;
  return members.map((set, i) => {
    const last = i === members.length - 1;
    const kind = kindOf(set.header)!;
    return {
      kind: 'restore',
      weight: kind === 'Log' ? 0.3 : 1,
      statement: restoreStatement({
        database: targetDatabase,
        kind,
        files: set.files.map((f) => f.serverPath),
        position: set.header.position,
        checksum: set.header.hasBackupChecksums,
        recovery: last,
        statsPercent: STATS_PERCENT,
        replace: i === 0 && targetExists,
        exclusive: i === 0 && targetExists,
        move: i === 0 ? relocations : undefined,
        stopAt: last && chain.stopAt ? chain.stopAt : undefined,
      }),
    };
  });
}

// ---- after planning ----------------------------------------------------------------------------

function describeSet(set: BackupSet): string {
  const h = set.header;
  const kind = kindOf(h) ?? h.backupTypeDescription;
  return `${kind.padEnd(12)} ${set.label}  finished ${h.backupFinishDate}  LSN ${h.firstLsn}..${h.lastLsn}${h.isCopyOnly ? '  copy-only' : ''}`;
}

/** The master key ID the chain's manifests record (newest first), if any. */
export function masterKeyIdOf(plan: RestorePlan): string | undefined {
  const members = [plan.chain.full, plan.chain.differential, ...plan.chain.logs].filter((s): s is BackupSet => s !== undefined);
  return members.reverse().find((s) => s.masterKeyId)?.masterKeyId ?? undefined;
}

/** The plan as text: what will be restored, from which files, and the T-SQL (parameters by name and value). */
export function formatRestorePlan(plan: RestorePlan): string {
  const members = [plan.chain.full, plan.chain.differential, ...plan.chain.logs].filter((s): s is BackupSet => s !== undefined);
  const lines = [
    `Restore plan: '${plan.sourceDatabase}' -> '${plan.targetDatabase}' on ${plan.server.serverName} (SQL Server ${plan.server.productVersion})`,
    `  Point in time reached: ${plan.chain.pointInTime}${plan.chain.stopAt ? ' (STOPAT)' : ''} (server local time)`,
    `  Target database: ${plan.targetExists ? 'exists, will be REPLACED' : 'new'}${plan.safetyBackupFile ? `; safety backup first to ${plan.safetyBackupFile}` : ''}`,
    ...(masterKeyIdOf(plan) ? [`  Master key needed: key ID ${masterKeyIdOf(plan)} (check a key with Octopus DR - Verify Master Key, --expected-key-id)`] : []),
    '  Backups, in order:',
    ...members.map((s, i) => `    ${i + 1}. ${describeSet(s)}\n       ${s.files.map((f) => f.serverPath).join('\n       ')}`),
    '  Database files:',
    ...plan.relocations.map((r) => `    ${r.logicalName} -> ${r.physicalPath}`),
    '  T-SQL:',
    ...plan.steps.map((s) => formatStatement(s.statement).replace(/^/gm, '    ')),
  ];
  return lines.join('\n');
}

/** The restore lock's session ended before a statement: the statement was not sent. */
export class LockLostError extends Error {
  constructor(database: string) {
    super(`the connection holding octopus-dr's restore lock on '${database}' was lost, so another restore of it may have started`);
    this.name = 'LockLostError';
  }
}

/** Why a statement failed; a dropped connection is said as such (SQL Server stops a statement whose session is gone). */
function reasonOf(error: unknown, statement: Statement, database: string): string {
  if (error instanceof LockLostError) return `${error.message}; "${statement.purpose}" was not started.`;
  if (isTargetChanged(error)) {
    const said = error.serverMessages.find((m) => m.number === TARGET_CHANGED)?.message ?? error.message;
    return `another session changed '${database}' since this restore last checked it (${said}); "${statement.purpose}" was not started.`;
  }
  if (error instanceof SqlError && error.kind === 'connection') {
    return `the connection to SQL Server was lost during "${statement.purpose}" (${error.code ?? 'connection closed'}), so SQL Server stopped it.`;
  }
  return (error instanceof Error ? error.message : String(error)).replace(/([^.!?])$/, '$1.');
}

export interface DatabaseState {
  /** sys.databases state_desc: ONLINE, RESTORING, RECOVERY_PENDING, SUSPECT, ... */
  state: string;
  /** sys.databases user_access_desc: MULTI_USER, SINGLE_USER, RESTRICTED_USER. */
  userAccess: string;
  /** State, user access, database_id and create_date in one text, as RestorePlan.targetIdentity. */
  identity: string;
}

/** The database's state as SQL Server reports it; undefined when it does not exist. */
export async function readDatabaseState(connection: SqlConnection, database: string): Promise<DatabaseState | undefined> {
  const { rows } = await runStatement<DatabaseState>(connection, databaseExistsStatement(database));
  return rows[0] ? { state: rows[0].state, userAccess: rows[0].userAccess, identity: rows[0].identity } : undefined;
}

/** The guard in a RESTORE batch refused: the target is not as this restore last saw it (guardedByTarget). */
export function isTargetChanged(error: unknown): error is SqlError {
  return error instanceof SqlError && error.serverMessages.some((m) => m.number === TARGET_CHANGED);
}

/**
 * The way back after a replace failed: restores the safety backup the plan took over the target
 * (files placed as a restore of that backup through planRestore would place them), then opens it
 * to all users. Throws what failed.
 */
export async function restoreSafetyBackup(connection: SqlConnection, plan: RestorePlan, context: EngineContext): Promise<void> {
  const file = plan.safetyBackupFile;
  if (!file) throw new RestoreError(`No safety backup of '${plan.targetDatabase}' was taken.`);
  const { log, signal } = context;
  const header = (await readHeaders(connection, [file], { signal })).at(-1);
  if (!header) throw new RestoreError(`${file} holds no backup set.`);
  const fileList = await readFileList(connection, [file], header.position, { signal });
  const facts = plan.server;
  const dataDirectory = plan.request.dataDirectory || facts.defaultDataPath!;
  const logDirectory = plan.request.logDirectory || facts.defaultLogPath!;
  const statements = [
    restoreStatement({
      database: plan.targetDatabase,
      kind: 'Full',
      files: [file],
      position: header.position,
      checksum: header.hasBackupChecksums,
      recovery: true,
      statsPercent: STATS_PERCENT,
      replace: true,
      exclusive: true,
      move: relocationsFor(fileList, plan.targetDatabase, dataDirectory, logDirectory, facts.pathSeparator),
    }),
    multiUserStatement(plan.targetDatabase),
  ];
  for (const statement of statements) {
    log.info(`Rolling back: ${statement.purpose} (${file})`);
    log.verbose(formatStatement(statement));
    await runStatement(connection, statement, { long: true, signal });
  }
}

/** What the restore holds while it runs: checked before each statement (restore-lock.ts). */
export interface HeldLock {
  isHeld(): Promise<boolean>;
}

/**
 * Runs a plan from planRestore, reporting 0-100 % through context.progress. Throws RestoreError
 * saying what state the database is in. With a lock, each statement first checks it is still held:
 * once its session is gone, another restore of the database may be running.
 */
export async function restoreDatabase(connection: SqlConnection, plan: RestorePlan, context: EngineContext, lock?: HeldLock): Promise<RestoreResult> {
  const started = Date.now();
  const { log, signal } = context;
  const total = plan.steps.reduce((sum, s) => sum + s.weight, 0);
  let done = 0;
  let restoreStarted = false;
  let octopusTablesFound: string[] = [];
  // What each RESTORE batch checks the target still is, in the batch itself: as planned, then as the
  // previous RESTORE left it. Restores, ALTERs and DROPs run outside octopus-dr take no lock.
  let expected: string | null = plan.targetIdentity ?? null;
  const where = () =>
    plan.safetyBackupFile
      ? ` The previous database was backed up first to ${plan.safetyBackupFile} (on the SQL Server): restore that to get it back.`
      : '';
  for (const step of plan.steps) {
    const statement = step.kind === 'restore' ? guardedByTarget(step.statement, expected) : step.statement;
    log.info(statement.purpose);
    log.verbose(formatStatement(statement));
    const base = done;
    try {
      if (lock && !(await lock.isHeld())) throw new LockLostError(plan.targetDatabase);
      const result = await runStatement<{ name: string }>(connection, statement, {
        long: true,
        signal,
        onProgress: (percent, message) => context.progress(((base + (step.weight * percent) / 100) / total) * 100, `${statement.purpose}: ${message}`),
      });
      if (step.kind === 'octopus-check') octopusTablesFound = result.rows.map((r) => r.name);
      if (step.kind === 'restore') expected = (result.recordsets.at(-1)?.[0] as { targetIdentity?: string } | undefined)?.targetIdentity ?? null;
    } catch (error) {
      // A TDE backup whose certificate is gone from master since the plan verified it fails here too.
      const reason = missingTdeCertificateAdvice(error, plan.chain.full, plan.server.serverName) ?? reasonOf(error, statement, plan.targetDatabase);
      const targetChanged = isTargetChanged(error);
      const details = {
        cause: error,
        stage: step.kind,
        // Refused by the guard before its batch changed anything: replaced only if an earlier RESTORE ran.
        replaceStarted: plan.targetExists && step.kind !== 'safety-backup' && (!targetChanged || restoreStarted),
        reason,
        targetChanged,
        restoreStarted,
      };
      if (step.kind === 'safety-backup') {
        throw new RestoreError(`The safety backup of '${plan.targetDatabase}' failed, so nothing was restored and the database is unchanged: ${reason}`, details);
      }
      if (step.kind === 'restore') {
        const state = targetChanged
          ? restoreStarted
            ? `What this restore had restored of '${plan.targetDatabase}' may have been replaced, dropped or recovered by that session.`
            : `This restore changed nothing in '${plan.targetDatabase}'.`
          : restoreStarted
          ? `'${plan.targetDatabase}' is left in the RESTORING state (not usable); run the restore again.`
          : plan.targetExists
            ? `'${plan.targetDatabase}' may have been set to SINGLE_USER; run the restore again, or ALTER DATABASE ... SET MULTI_USER.`
            : `'${plan.targetDatabase}' was not created.`;
        throw new RestoreError(`Restore failed: ${reason} ${state}${where()}`, details);
      }
      throw new RestoreError(`'${plan.targetDatabase}' was restored, but ${statement.purpose.toLowerCase()} failed: ${reason}`, details);
    }
    if (step.kind === 'restore') restoreStarted = true;
    done += step.weight;
    context.progress((done / total) * 100, statement.purpose);
  }
  const missing = OCTOPUS_CORE_TABLES.filter((t) => !octopusTablesFound.some((f) => f.toLowerCase() === t.toLowerCase()));
  if (missing.length > 0) {
    throw new RestoreError(
      `'${plan.targetDatabase}' was restored, but it is not an Octopus database: table${missing.length === 1 ? '' : 's'} ${missing.map((t) => `dbo.${t}`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing. Check that the backup is of the Octopus database.`,
      { stage: 'octopus-check', replaceStarted: plan.targetExists, reason: `it is not an Octopus database (${missing.map((t) => `dbo.${t}`).join(', ')} missing).` },
    );
  }
  return {
    database: plan.targetDatabase,
    pointInTime: plan.chain.pointInTime,
    durationSeconds: (Date.now() - started) / 1000,
    safetyBackupFile: plan.safetyBackupFile,
    octopusTablesFound,
    checkDb: plan.request.checkDb ? 'passed' : 'not run',
  };
}
