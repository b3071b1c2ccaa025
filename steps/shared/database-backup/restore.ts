// The restore as a library: find the backups, choose and check the chain, plan the statements
// (printed for a dry run), then run them. The restore step and the test-restore step both use it:
//
//   const plan = await planRestore(connection, { source, targetDatabase: 'scratch', ... }, log);
//   log.info(formatRestorePlan(plan));
//   const result = await restoreDatabase(connection, plan, { signal, onProgress, log });
//
// The connection must be to master (openSqlConnection(..., { database: 'master' })): SQL Server
// cannot restore a database the connection is using.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SqlError, type SqlConnection, type ServerFacts } from '../sql';
import { kindOf, normaliseLocalTime, type BackupFile, type BackupSet } from './backup-set';
import { ChainError, selectChain, type RestoreChain } from './chain';
import { loadManifestSets, looseBackupFiles, setFromManifest, type FolderLocation } from './discovery';
import { compareLsn } from './lsn';
import { readManifest } from './manifest';
import { backupTimestamp, fileNamePart, isManifestName, joinServerPath, parseBackupFileName, relocatedFileName } from './naming';
import { readFileList, readHeaders, runStatement, type DatabaseFile } from './server-reads';
import {
  backupStatement,
  checkDbStatement,
  databaseExistsStatement,
  formatStatement,
  multiUserStatement,
  octopusTablesStatement,
  OCTOPUS_CORE_TABLES,
  restoreStatement,
  verifyStatement,
  type Relocation,
  type Statement,
} from './tsql';

const STATS_PERCENT = 5;

export interface RestoreLog {
  info(message: string): void;
  verbose(message: string): void;
  warn(message: string): void;
}

/** A problem with the backups or the request: nothing has been changed. */
export class RestorePlanError extends Error {
  /** When one backup set of the chosen chain failed a check: the chain, and that set and its files. */
  readonly failed?: PlanFailure;
  constructor(message: string, failed?: PlanFailure) {
    super(message);
    this.name = 'RestorePlanError';
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
export class RestoreError extends Error {
  /** The statement that failed. */
  readonly stage?: PlannedStep['kind'];
  /** An existing database had begun to be replaced: it is no longer as it was. */
  readonly replaceStarted: boolean;
  /** The reason alone (the message adds what state the database is in). */
  readonly reason: string;
  constructor(message: string, options: { cause?: unknown; stage?: PlannedStep['kind']; replaceStarted?: boolean; reason?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RestoreError';
    this.stage = options.stage;
    this.replaceStarted = options.replaceStarted ?? false;
    this.reason = options.reason ?? message;
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
  signal?: AbortSignal;
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
  server: ServerFacts;
  relocations: Relocation[];
  /** Server path of the safety backup, when one will be taken. */
  safetyBackupFile?: string;
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

function planError(message: string, failed?: PlanFailure): never {
  throw new RestorePlanError(message, failed);
}

async function resolveSource(request: RestoreRequest, facts: ServerFacts) {
  const stat = await fs.stat(request.source).catch(() => undefined);
  if (!stat) planError(`The backup source ${request.source} does not exist (as this worker sees it). Check "Backup to restore".`);
  const workerDirectory = stat.isDirectory() ? request.source : path.dirname(request.source);
  const serverDirectory = request.sourceOnServer || workerDirectory;
  const location: FolderLocation = { workerDirectory, serverDirectory, serverSeparator: request.sourceOnServer ? facts.pathSeparator : undefined };
  return { location, file: stat.isDirectory() ? undefined : path.basename(request.source) };
}

/** Every backup set in the folder (manifests first, then other backup files, whose headers are read). */
async function discoverSets(connection: SqlConnection, location: FolderLocation, log: RestoreLog, signal?: AbortSignal): Promise<BackupSet[]> {
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

function describeSet(set: BackupSet): string {
  const h = set.header;
  const kind = kindOf(h) ?? h.backupTypeDescription;
  return `${kind.padEnd(12)} ${set.label}  finished ${h.backupFinishDate}  LSN ${h.firstLsn}..${h.lastLsn}${h.isCopyOnly ? '  copy-only' : ''}`;
}

function fileNames(files: readonly BackupFile[]): string {
  return files.map((f) => f.name).join(', ');
}

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

/** `<Database>_SAFETY_<stamp>.bak`: the copy-only backup taken before replacing a database. */
const SAFETY_BACKUP_NAME = /_SAFETY_\d{8}T\d{6}Z\.bak$/i;

/** Reads, checks and plans; changes nothing. Throws RestorePlanError naming the file or LSN gap. */
export async function planRestore(connection: SqlConnection, request: RestoreRequest, log: RestoreLog): Promise<RestorePlan> {
  const signal = request.signal;
  const facts = await connection.serverFacts();
  const warnings: string[] = [];
  let stopAt: string | undefined;
  if (request.pointInTime) {
    stopAt = normaliseLocalTime(request.pointInTime);
    if (!stopAt) {
      planError(
        `"Point in time" must be an ISO-8601 date and time without offset, in the SQL Server's local time (e.g. 2026-11-27T14:30:00), not "${request.pointInTime}".`,
      );
    }
  }

  const { location, file } = await resolveSource(request, facts);
  let endAt: BackupSet | undefined;
  let sets: BackupSet[];
  if (file && isManifestName(file)) {
    const manifestPath = path.join(location.workerDirectory, file);
    const manifest = await readManifest(manifestPath).catch((e: Error) => planError(e.message));
    sets = await discoverSets(connection, location, log, signal);
    endAt = sets.find((s) => s.manifestPath === manifestPath) ?? (await setFromManifest(manifestPath, manifest, location));
    if (!sets.includes(endAt)) sets.push(endAt);
  } else if (file) {
    sets = await discoverSets(connection, location, log, signal);
    const parsed = parseBackupFileName(file);
    // A file can hold several backup sets (appended WITH NOINIT): restore up to the newest of them.
    endAt = sets
      .filter((s) => s.files.some((f) => f.name === file) || s.missingFiles.includes(file))
      .sort((a, b) => compareLsn(b.header.lastLsn, a.header.lastLsn))[0];
    if (!endAt) {
      planError(
        parsed && parsed.stripes > 1
          ? `${file} is one of ${parsed.stripes} files of a striped backup, and not all are beside it. Copy every stripe into ${location.workerDirectory}.`
          : `${file} is not a readable SQL Server backup (see the warnings above).`,
      );
    }
  } else {
    sets = await discoverSets(connection, location, log, signal);
    if (sets.length === 0) planError(`No usable backups were found in ${location.workerDirectory} (looked for *.manifest.json, *.bak and *.trn; see any warnings above).`);
  }
  // Safety backups land in the server's default backup folder, which may be this very folder: they
  // hold the database as it was before an earlier restore, never "the newest backup" (unless named).
  const safety = sets.filter((s) => s !== endAt && s.files.some((f) => SAFETY_BACKUP_NAME.test(f.name)));
  if (safety.length > 0) {
    sets = sets.filter((s) => !safety.includes(s));
    log.info(`Not considered: ${safety.map((s) => s.label).join(', ')} (safety backups taken before earlier restores; name one as "Backup to restore" to restore it).`);
    if (sets.length === 0) planError(`${location.workerDirectory} holds only safety backups of earlier restores; name one as "Backup to restore" to restore it.`);
  }
  if (endAt && stopAt) {
    planError('Give either a specific backup (a manifest or backup file as "Backup to restore") or a "Point in time" with a folder, not both.');
  }

  // A shared folder may hold several databases' backups: the target name picks its own.
  const sourceNames = [...new Set(sets.map((s) => s.header.databaseName))];
  if (!endAt && sourceNames.length > 1 && request.targetDatabase) {
    const same = sourceNames.find((n) => n.toLowerCase() === request.targetDatabase!.toLowerCase());
    if (same) sets = sets.filter((s) => s.header.databaseName === same);
  }

  let chain: RestoreChain;
  try {
    chain = selectChain(sets, { endAt, stopAt });
  } catch (error) {
    if (error instanceof ChainError) planError(error.message);
    throw error;
  }
  const members = [chain.full, chain.differential, ...chain.logs].filter((s): s is BackupSet => s !== undefined);
  const sourceDatabase = chain.full.header.databaseName;
  const targetDatabase = request.targetDatabase || sourceDatabase;
  if (targetDatabase.length > 128 || /[\u0000-\u001f]/.test(targetDatabase)) {
    planError(`"Target database" must be 1 to 128 characters without control characters.`);
  }

  // Re-read every chosen set from its files: the manifest could describe other files than are there.
  for (const set of members) {
    log.info(`Reading the header of ${set.label} (RESTORE HEADERONLY)`);
    const headers = await readHeaders(connection, set.files.map((f) => f.serverPath), { signal }).catch((e: Error) => {
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
  if (!request.skipVerify) {
    for (const set of members) {
      const verify = verifyStatement(set.files.map((f) => f.serverPath), set.header.position, set.header.hasBackupChecksums);
      log.info(`Verifying ${set.label} (RESTORE VERIFYONLY)`);
      await runStatement(connection, verify, { long: true, signal }).catch((e: Error) => {
        if (e instanceof SqlError && e.kind === 'cancelled') throw e;
        return planError(`${set.label} (${fileNames(set.files)}) failed RESTORE VERIFYONLY: ${e.message}`, {
          database: sourceDatabase,
          chain: members.map((m) => m.label),
          set: set.label,
          files: set.files.map((f) => f.name),
        });
      });
    }
  }

  const existing = await runStatement<{ name: string; state: string }>(connection, databaseExistsStatement(targetDatabase));
  const targetExists = existing.rows.length > 0;
  const targetOnline = existing.rows[0]?.state === 'ONLINE';
  if (targetExists && !request.replaceExisting) {
    planError(
      `Database '${targetDatabase}' already exists on ${facts.serverName}, and "Replace existing" is off. ` +
        `To restore beside it, set "Target database" to a new name (e.g. '${targetDatabase}-restored'); ` +
        `to overwrite it, check "Replace existing" (a copy-only safety backup of it is taken first).`,
    );
  }

  const dataDirectory = request.dataDirectory || facts.defaultDataPath;
  const logDirectory = request.logDirectory || facts.defaultLogPath;
  if (!dataDirectory || !logDirectory) planError('SQL Server reports no default data or log folder; set "Data file directory" and "Log file directory".');
  const fileList: DatabaseFile[] = await readFileList(connection, chain.full.files.map((f) => f.serverPath), chain.full.header.position, { signal }).catch((e: Error) =>
    planError(`Cannot list the database files in ${chain.full.label}: ${e.message}`),
  );
  const relocations = relocationsFor(fileList, targetDatabase, dataDirectory, logDirectory, facts.pathSeparator);

  const steps: PlannedStep[] = [];
  let safetyBackupFile: string | undefined;
  if (targetExists && request.safetyBackup && !targetOnline) {
    warnings.push(`'${targetDatabase}' is ${existing.rows[0].state}, not ONLINE, so it cannot be backed up first; it is replaced without a safety backup.`);
  }
  if (targetExists && request.safetyBackup && targetOnline) {
    if (!facts.defaultBackupPath) planError("SQL Server reports no default backup folder for the safety backup; turn \"Safety backup\" off or configure the instance's backup folder.");
    // Not named like this tool's backups, so retention never deletes it.
    const safetyName = `${fileNamePart(targetDatabase)}_SAFETY_${backupTimestamp(new Date())}.bak`;
    safetyBackupFile = joinServerPath(facts.defaultBackupPath, safetyName, facts.pathSeparator);
    steps.push({
      kind: 'safety-backup',
      weight: 1,
      statement: {
        ...backupStatement({
          database: targetDatabase,
          kind: 'Full',
          files: [safetyBackupFile],
          copyOnly: true,
          compression: facts.supportsBackupCompression ? true : undefined,
          statsPercent: STATS_PERCENT,
          name: `octopus-dr safety backup before restore`,
          description: `Copy-only backup of '${targetDatabase}' taken by octopus-dr before replacing it`,
        }),
        purpose: `Safety backup (copy-only) of the existing '${targetDatabase}' to ${safetyBackupFile}`,
      },
    });
  }
  members.forEach((set, i) => {
    const last = i === members.length - 1;
    const kind = kindOf(set.header)!;
    steps.push({
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
    });
  });
  steps.push({ kind: 'multi-user', weight: 0.05, statement: multiUserStatement(targetDatabase) });
  steps.push({ kind: 'octopus-check', weight: 0.05, statement: octopusTablesStatement(targetDatabase) });
  if (request.checkDb) steps.push({ kind: 'checkdb', weight: 1, statement: checkDbStatement(targetDatabase) });

  return { request, chain, sourceDatabase, targetDatabase, targetExists, server: facts, relocations, safetyBackupFile, steps, warnings };
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

/** Why a statement failed; a dropped connection is said as such (SQL Server stops a statement whose session is gone). */
function reasonOf(error: unknown, statement: Statement): string {
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
}

/** The database's state as SQL Server reports it; undefined when it does not exist. */
export async function readDatabaseState(connection: SqlConnection, database: string): Promise<DatabaseState | undefined> {
  const { rows } = await runStatement<{ state: string; userAccess: string }>(connection, databaseExistsStatement(database));
  return rows[0] ? { state: rows[0].state, userAccess: rows[0].userAccess } : undefined;
}

/**
 * The way back after a replace failed: restores the safety backup the plan took over the target
 * (files placed as a restore of that backup through planRestore would place them), then opens it
 * to all users. Throws what failed.
 */
export async function restoreSafetyBackup(connection: SqlConnection, plan: RestorePlan, options: RestoreRunOptions): Promise<void> {
  const file = plan.safetyBackupFile;
  if (!file) throw new RestoreError(`No safety backup of '${plan.targetDatabase}' was taken.`);
  const { log, signal } = options;
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

export interface RestoreRunOptions {
  signal?: AbortSignal;
  onProgress?: (percent: number, message: string) => void;
  log: RestoreLog;
}

/** Runs a plan from planRestore. Throws RestoreError saying what state the database is in. */
export async function restoreDatabase(connection: SqlConnection, plan: RestorePlan, options: RestoreRunOptions): Promise<RestoreResult> {
  const started = Date.now();
  const { log, signal } = options;
  const total = plan.steps.reduce((sum, s) => sum + s.weight, 0);
  let done = 0;
  let restoreStarted = false;
  let octopusTablesFound: string[] = [];
  const where = () =>
    plan.safetyBackupFile
      ? ` The previous database was backed up first to ${plan.safetyBackupFile} (on the SQL Server): restore that to get it back.`
      : '';
  for (const step of plan.steps) {
    const { statement } = step;
    log.info(statement.purpose);
    log.verbose(formatStatement(statement));
    const base = done;
    try {
      const result = await runStatement<{ name: string }>(connection, statement, {
        long: true,
        signal,
        onProgress: (percent, message) => options.onProgress?.(((base + (step.weight * percent) / 100) / total) * 100, `${statement.purpose}: ${message}`),
      });
      if (step.kind === 'octopus-check') octopusTablesFound = result.rows.map((r) => r.name);
    } catch (error) {
      const reason = reasonOf(error, statement);
      const details = { cause: error, stage: step.kind, replaceStarted: plan.targetExists && step.kind !== 'safety-backup', reason };
      if (step.kind === 'safety-backup') {
        throw new RestoreError(`The safety backup of '${plan.targetDatabase}' failed, so nothing was restored and the database is unchanged: ${reason}`, details);
      }
      if (step.kind === 'restore') {
        const state = restoreStarted
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
    options.onProgress?.((done / total) * 100, statement.purpose);
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
