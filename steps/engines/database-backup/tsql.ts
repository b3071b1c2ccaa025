// The T-SQL the backup and restore steps send. Every name, path and time travels as a typed
// sp_executesql parameter; the only text we compose is our own parameter names and keywords
// (and STATS, a validated integer, which T-SQL takes only as a literal). ALTER DATABASE takes no
// variable, so its name is quoted server-side with QUOTENAME from the typed parameter.
import { param, type SqlParams } from '../sql';
import type { BackupKind } from './naming';

export interface Statement {
  /** What the statement does, for the plan and the log. */
  purpose: string;
  sql: string;
  params: SqlParams;
}

/** A name as QUOTENAME writes it, for T-SQL shown to a person (statements sent take names as parameters). */
export function quoteName(name: string): string {
  return `[${name.replace(/]/g, ']]')}]`;
}

const name128 = (value: string) => param.nvarchar(value, 128);
const path4000 = (value: string) => param.nvarchar(value, 4000);

function devices(paths: readonly string[], params: SqlParams, prefix = 'file'): string {
  if (paths.length === 0 || paths.length > 64) throw new Error(`A backup uses 1 to 64 files, not ${paths.length}.`);
  return paths
    .map((p, i) => {
      params[`${prefix}${i + 1}`] = path4000(p);
      return `DISK = @${prefix}${i + 1}`;
    })
    .join(', ');
}

function stats(percent: number): string {
  if (!Number.isInteger(percent) || percent < 1 || percent > 100) throw new Error(`STATS must be 1 to 100, not ${percent}.`);
  return `STATS = ${percent}`;
}

/** Facts about the database to back up: recovery model, whether a differential/log base exists. */
export function backupPreflightStatement(database: string): Statement {
  return {
    purpose: 'Read the recovery model and backup bases of the database',
    sql: [
      'SELECT d.name, d.recovery_model_desc AS recoveryModel, d.state_desc AS state,',
      '  CONVERT(varchar(30), mf.differential_base_lsn) AS differentialBaseLsn,',
      '  CONVERT(varchar(30), rs.last_log_backup_lsn) AS lastLogBackupLsn,',
      // The same on every replica of an availability group (SQL Server 2012 and later): origin.ts.
      '  CONVERT(varchar(36), d.group_database_id) AS groupDatabaseId, d.is_encrypted AS isEncrypted',
      'FROM sys.databases AS d',
      'JOIN sys.master_files AS mf ON mf.database_id = d.database_id AND mf.file_id = 1',
      'JOIN sys.database_recovery_status AS rs ON rs.database_id = d.database_id',
      'WHERE d.name = @database;',
    ].join('\n'),
    params: { database: name128(database) },
  };
}

/**
 * TDE: the certificate in master that protects the database's encryption key (a restore elsewhere
 * needs it). A statement of its own: the DMV needs VIEW SERVER STATE (VIEW SERVER SECURITY STATE
 * from 2022), which a backup operator's login may lack, and then only this read fails.
 */
export function tdeCertificateStatement(database: string): Statement {
  return {
    purpose: "Read the certificate protecting the database's encryption key",
    sql: [
      'SELECT CONVERT(varchar(64), k.encryptor_thumbprint, 2) AS tdeThumbprint, c.name AS tdeCertificate',
      'FROM sys.databases AS d',
      'JOIN sys.dm_database_encryption_keys AS k ON k.database_id = d.database_id',
      'LEFT JOIN master.sys.certificates AS c ON c.thumbprint = k.encryptor_thumbprint',
      'WHERE d.name = @database;',
    ].join('\n'),
    params: { database: name128(database) },
  };
}

/** The Octopus Server version that last upgraded the database (null when the table is absent). */
export function octopusVersionStatement(database: string): Statement {
  return {
    purpose: 'Read the Octopus version recorded in the database',
    sql: [
      "DECLARE @procedure nvarchar(300) = QUOTENAME(@database) + N'.sys.sp_executesql';",
      'EXEC @procedure',
      "  N'IF OBJECT_ID(N''dbo.OctopusServerInstallationHistory'', N''U'') IS NOT NULL",
      '      SELECT TOP (1) [Version] AS version FROM dbo.OctopusServerInstallationHistory ORDER BY Installed DESC',
      "    ELSE SELECT CAST(NULL AS nvarchar(200)) AS version;';",
    ].join('\n'),
    params: { database: name128(database) },
  };
}

export interface BackupOptions {
  database: string;
  kind: BackupKind;
  files: readonly string[];
  copyOnly: boolean;
  /** true = COMPRESSION, false = NO_COMPRESSION, undefined = the server's default. */
  compression: boolean | undefined;
  statsPercent: number;
  name: string;
  description: string;
}

export function backupStatement(o: BackupOptions): Statement {
  const params: SqlParams = { database: name128(o.database) };
  const to = devices(o.files, params);
  params.backupName = param.nvarchar(o.name, 128);
  params.description = param.nvarchar(o.description, 255);
  const withOptions = [
    o.kind === 'Differential' ? 'DIFFERENTIAL' : null,
    // COPY_ONLY with DIFFERENTIAL is ignored by SQL Server; leave it out rather than mislead.
    o.copyOnly && o.kind !== 'Differential' ? 'COPY_ONLY' : null,
    'CHECKSUM',
    o.compression === true ? 'COMPRESSION' : o.compression === false ? 'NO_COMPRESSION' : null,
    'FORMAT',
    'INIT',
    'NAME = @backupName',
    'DESCRIPTION = @description',
    stats(o.statsPercent),
  ].filter((x): x is string => x !== null);
  const verb = o.kind === 'Log' ? 'BACKUP LOG' : 'BACKUP DATABASE';
  return {
    purpose: `${o.kind === 'Log' ? 'Back up the log' : o.kind === 'Differential' ? 'Take a differential backup' : 'Take a full backup'} to ${o.files.length} file${o.files.length === 1 ? '' : 's'}`,
    sql: `${verb} @database TO ${to}\n  WITH ${withOptions.join(', ')};`,
    params,
  };
}

export function verifyStatement(files: readonly string[], position: number, withChecksum = true): Statement {
  const params: SqlParams = {};
  const from = devices(files, params);
  params.position = param.int(position);
  return {
    purpose: 'Verify the backup is complete and readable (RESTORE VERIFYONLY)',
    sql: `RESTORE VERIFYONLY FROM ${from}\n  WITH FILE = @position${withChecksum ? ', CHECKSUM' : ''};`,
    params,
  };
}

// RESTORE HEADERONLY returns LSNs as numeric(25,0), which the driver turns into doubles (digits
// lost). Capturing the result in a temporary table lets SQL Server convert them to text; its
// columns must match the server's HEADERONLY layout exactly (documented per version).
const HEADER_COLUMNS_2016 = [
  'BackupName nvarchar(128)', 'BackupDescription nvarchar(255)', 'BackupType smallint', 'ExpirationDate datetime',
  'Compressed tinyint', 'Position smallint', 'DeviceType tinyint', 'UserName nvarchar(128)', 'ServerName nvarchar(128)',
  'DatabaseName nvarchar(128)', 'DatabaseVersion int', 'DatabaseCreationDate datetime', 'BackupSize numeric(20,0)',
  'FirstLSN numeric(25,0)', 'LastLSN numeric(25,0)', 'CheckpointLSN numeric(25,0)', 'DatabaseBackupLSN numeric(25,0)',
  'BackupStartDate datetime', 'BackupFinishDate datetime', 'SortOrder smallint', 'CodePage smallint',
  'UnicodeLocaleId int', 'UnicodeComparisonStyle int', 'CompatibilityLevel tinyint', 'SoftwareVendorId int',
  'SoftwareVersionMajor int', 'SoftwareVersionMinor int', 'SoftwareVersionBuild int', 'MachineName nvarchar(128)',
  'Flags int', 'BindingID uniqueidentifier', 'RecoveryForkID uniqueidentifier', 'Collation nvarchar(128)',
  'FamilyGUID uniqueidentifier', 'HasBulkLoggedData bit', 'IsSnapshot bit', 'IsReadOnly bit', 'IsSingleUser bit',
  'HasBackupChecksums bit', 'IsDamaged bit', 'BeginsLogChain bit', 'HasIncompleteMetaData bit', 'IsForceOffline bit',
  'IsCopyOnly bit', 'FirstRecoveryForkID uniqueidentifier', 'ForkPointLSN numeric(25,0)', 'RecoveryModel nvarchar(60)',
  'DifferentialBaseLSN numeric(25,0)', 'DifferentialBaseGUID uniqueidentifier', 'BackupTypeDescription nvarchar(60)',
  'BackupSetGUID uniqueidentifier', 'CompressedBackupSize bigint', 'Containment tinyint', 'KeyAlgorithm nvarchar(32)',
  'EncryptorThumbprint varbinary(20)', 'EncryptorType nvarchar(32)',
] as const;
/** SQL Server 2022 added three columns. */
const HEADER_COLUMNS_2022 = [...HEADER_COLUMNS_2016, 'LastValidRestoreTime datetime', 'TimeZone nvarchar(32)', 'CompressionAlgorithm nvarchar(32)'];

/** The HEADERONLY column layouts to try, the server's own version first. */
export function headerLayoutsFor(majorVersion: number): (readonly string[])[] {
  return majorVersion >= 16 ? [HEADER_COLUMNS_2022, HEADER_COLUMNS_2016] : [HEADER_COLUMNS_2016, HEADER_COLUMNS_2022];
}

export function headerOnlyStatement(files: readonly string[], layout: readonly string[]): Statement {
  const params: SqlParams = {};
  const from = devices(files, params);
  const declarations = files.map((_, i) => `@file${i + 1} nvarchar(4000)`).join(', ');
  const passThrough = files.map((_, i) => `@file${i + 1} = @file${i + 1}`).join(', ');
  return {
    purpose: 'Read the backup header (RESTORE HEADERONLY)',
    sql: [
      `CREATE TABLE #header (${layout.join(', ')});`,
      `INSERT INTO #header EXEC sys.sp_executesql N'RESTORE HEADERONLY FROM ${from};', N'${declarations}', ${passThrough};`,
      'SELECT Position AS position, BackupType AS backupType, BackupTypeDescription AS backupTypeDescription,',
      '  DatabaseName AS databaseName, ServerName AS serverName,',
      '  CONVERT(varchar(30), FirstLSN) AS firstLsn, CONVERT(varchar(30), LastLSN) AS lastLsn,',
      '  CONVERT(varchar(30), CheckpointLSN) AS checkpointLsn, CONVERT(varchar(30), DatabaseBackupLSN) AS databaseBackupLsn,',
      '  CONVERT(varchar(30), DifferentialBaseLSN) AS differentialBaseLsn,',
      '  CONVERT(varchar(36), RecoveryForkID) AS recoveryForkId, CONVERT(varchar(36), FirstRecoveryForkID) AS firstRecoveryForkId,',
      '  CONVERT(varchar(36), FamilyGUID) AS familyGuid,',
      '  CONVERT(varchar(23), BackupStartDate, 126) AS backupStartDate, CONVERT(varchar(23), BackupFinishDate, 126) AS backupFinishDate,',
      '  CAST(IsCopyOnly AS bit) AS isCopyOnly, CAST(HasBackupChecksums AS bit) AS hasBackupChecksums,',
      '  CAST(Compressed AS bit) AS compressed, CAST(IsDamaged AS bit) AS isDamaged,',
      '  CONVERT(varchar(30), BackupSize) AS backupSize, CONVERT(varchar(30), CompressedBackupSize) AS compressedBackupSize,',
      '  RecoveryModel AS recoveryModel, SoftwareVersionMajor AS softwareVersionMajor,',
      '  SoftwareVersionMinor AS softwareVersionMinor, SoftwareVersionBuild AS softwareVersionBuild',
      'FROM #header ORDER BY Position;',
      'DROP TABLE #header;',
    ].join('\n'),
    params,
  };
}

export function fileListStatement(files: readonly string[], position: number): Statement {
  const params: SqlParams = {};
  const from = devices(files, params);
  params.position = param.int(position);
  return {
    purpose: 'List the database files in the backup (RESTORE FILELISTONLY)',
    sql: `RESTORE FILELISTONLY FROM ${from}\n  WITH FILE = @position;`,
    params,
  };
}

/**
 * A database as sys.databases shows it, in one text: state, user access, and what changes when it
 * is dropped and created again, or restored over (database_id, create_date). Read by the plan and
 * compared, in the same words, by the guard in every RESTORE batch.
 */
const TARGET_IDENTITY =
  "d.state_desc + N', ' + d.user_access_desc + N' (database_id ' + CONVERT(nvarchar(11), d.database_id) + N', created ' + CONVERT(nvarchar(23), d.create_date, 126) + N')'";

export function databaseExistsStatement(database: string): Statement {
  return {
    purpose: 'Check whether the target database exists',
    sql: `SELECT d.name, d.state_desc AS state, d.user_access_desc AS userAccess, ${TARGET_IDENTITY} AS identity FROM sys.databases AS d WHERE d.name = @database;`,
    params: { database: name128(database) },
  };
}

/** The error number the guard THROWs when the target is no longer as this restore last saw it. */
export const TARGET_CHANGED = 50037;

/**
 * A RESTORE batch (one with @database) that first checks, in the same batch, that the target is
 * still as this restore last saw it (`expected`: its identity, or null for "does not exist"), and
 * THROWs TARGET_CHANGED before anything is changed if not; and that returns, after its work, the
 * identity it left (`targetIdentity`), which the next batch expects. Restores run outside
 * octopus-dr take no lock, so only this check in the batch itself sees what they did.
 */
export function guardedByTarget(statement: Statement, expected: string | null): Statement {
  const sql = [
    `DECLARE @targetNow nvarchar(400) = (SELECT ${TARGET_IDENTITY} FROM sys.databases AS d WHERE d.name = @database);`,
    "IF ISNULL(@targetNow, N'') <> ISNULL(@targetExpected, N'')",
    'BEGIN',
    "  DECLARE @targetChanged nvarchar(2048) = N'it is ' + ISNULL(@targetNow, N'gone') + N' now, not ' + ISNULL(@targetExpected, N'absent') + N' as this restore last saw it';",
    `  THROW ${TARGET_CHANGED}, @targetChanged, 1;`,
    'END;',
    statement.sql,
    `SELECT ${TARGET_IDENTITY} AS targetIdentity FROM sys.databases AS d WHERE d.name = @database;`,
  ].join('\n');
  return { ...statement, sql, params: { ...statement.params, targetExpected: param.nvarchar(expected, 400) } };
}

export interface Relocation {
  logicalName: string;
  physicalPath: string;
}

export interface RestoreStepOptions {
  database: string;
  kind: BackupKind;
  files: readonly string[];
  position: number;
  checksum: boolean;
  recovery: boolean;
  statsPercent: number;
  /** Only for the first (full) restore. */
  replace?: boolean;
  /** Take exclusive access in the same batch, right before the restore (replacing an existing database). */
  exclusive?: boolean;
  move?: readonly Relocation[];
  /** Only for the last log: `YYYY-MM-DDTHH:mm:ss.mmm`, server local time. */
  stopAt?: string;
}

export function restoreStatement(o: RestoreStepOptions): Statement {
  const params: SqlParams = { database: name128(o.database) };
  const from = devices(o.files, params);
  params.position = param.int(o.position);
  const moves = (o.move ?? []).map((m, i) => {
    params[`logical${i + 1}`] = name128(m.logicalName);
    params[`physical${i + 1}`] = path4000(m.physicalPath);
    return `MOVE @logical${i + 1} TO @physical${i + 1}`;
  });
  // STOPAT takes a datetime: converted server-side from ISO-8601 text (style 126), so neither the
  // driver's UTC handling nor SET DATEFORMAT can shift it.
  if (o.stopAt !== undefined) params.stopAt = param.nvarchar(o.stopAt, 30);
  const withOptions = [
    'FILE = @position',
    o.checksum ? 'CHECKSUM' : null,
    o.replace ? 'REPLACE' : null,
    ...moves,
    o.stopAt !== undefined ? 'STOPAT = @stopAtTime' : null,
    o.recovery ? 'RECOVERY' : 'NORECOVERY',
    stats(o.statsPercent),
  ].filter((x): x is string => x !== null);
  const verb = o.kind === 'Log' ? 'RESTORE LOG' : 'RESTORE DATABASE';
  const lines: string[] = [];
  if (o.exclusive) {
    lines.push(
      // Only an ONLINE database can be altered; one left RESTORING by a failed restore is simply replaced.
      "IF DATABASEPROPERTYEX(@database, 'Status') = N'ONLINE'",
      'BEGIN',
      "  DECLARE @exclusive nvarchar(max) = N'ALTER DATABASE ' + QUOTENAME(@database) + N' SET SINGLE_USER WITH ROLLBACK IMMEDIATE;';",
      "  IF @exclusive IS NULL THROW 50000, N'The database name is not a valid SQL Server name.', 1;",
      '  EXEC sys.sp_executesql @exclusive;',
      'END;',
    );
  }
  if (o.stopAt !== undefined) lines.push('DECLARE @stopAtTime datetime = CONVERT(datetime, @stopAt, 126);');
  lines.push(`${verb} @database FROM ${from}\n  WITH ${withOptions.join(', ')};`);
  const what = o.kind === 'Log' ? 'log backup' : o.kind === 'Differential' ? 'differential backup' : 'full backup';
  return {
    purpose: `${o.exclusive ? 'Take exclusive access and restore' : 'Restore'} the ${what}${o.stopAt ? ` up to ${o.stopAt}` : ''} ${o.recovery ? 'WITH RECOVERY' : 'WITH NORECOVERY'}`,
    sql: lines.join('\n'),
    params,
  };
}

export function multiUserStatement(database: string): Statement {
  return {
    purpose: 'Open the database to all users again (MULTI_USER)',
    sql: [
      "DECLARE @multiUser nvarchar(max) = N'ALTER DATABASE ' + QUOTENAME(@database) + N' SET MULTI_USER;';",
      "IF @multiUser IS NULL THROW 50000, N'The database name is not a valid SQL Server name.', 1;",
      'EXEC sys.sp_executesql @multiUser;',
    ].join('\n'),
    params: { database: name128(database) },
  };
}

/** Tables every Octopus Server database has; their presence says "this is an Octopus database". */
export const OCTOPUS_CORE_TABLES = ['Project', 'VariableSet', 'OctopusServerNode', 'ServerTask'] as const;

export function octopusTablesStatement(database: string): Statement {
  return {
    purpose: 'Check the restored database is an Octopus database (core tables exist)',
    sql: [
      "DECLARE @procedure nvarchar(300) = QUOTENAME(@database) + N'.sys.sp_executesql';",
      'EXEC @procedure',
      "  N'SELECT t.name FROM sys.tables AS t",
      `    WHERE SCHEMA_NAME(t.schema_id) = N''dbo'' AND t.name IN (${OCTOPUS_CORE_TABLES.map((t) => `N''${t}''`).join(', ')});';`,
    ].join('\n'),
    params: { database: name128(database) },
  };
}

/** Removes a database a failed or cancelled restore created and left RESTORING (never an ONLINE one). */
export function dropIfRestoringStatement(database: string): Statement {
  return {
    purpose: 'Drop the partly restored database (it did not exist before this restore)',
    sql: [
      "IF DATABASEPROPERTYEX(@database, 'Status') = N'RESTORING'",
      'BEGIN',
      "  DECLARE @drop nvarchar(max) = N'DROP DATABASE ' + QUOTENAME(@database) + N';';",
      "  IF @drop IS NULL THROW 50000, N'The database name is not a valid SQL Server name.', 1;",
      '  EXEC sys.sp_executesql @drop;',
      '  SELECT 1 AS dropped;',
      'END',
    ].join('\n'),
    params: { database: name128(database) },
  };
}

export function checkDbStatement(database: string): Statement {
  return {
    purpose: 'Check the restored database for corruption (DBCC CHECKDB)',
    sql: 'DBCC CHECKDB (@database) WITH NO_INFOMSGS, ALL_ERRORMSGS;',
    params: { database: name128(database) },
  };
}

/** Shows a statement for a dry run or the log: the T-SQL, then each parameter by name with its value. */
export function formatStatement(statement: Statement): string {
  const lines = [`-- ${statement.purpose}`, statement.sql];
  for (const [name, value] of Object.entries(statement.params)) {
    const v = typeof value === 'object' && value !== null && 'kind' in value ? value.value : value;
    const shown = typeof v === 'string' ? `N'${v.replace(/'/g, "''")}'` : v === null ? 'NULL' : String(v);
    lines.push(`--   @${name} = ${shown}`);
  }
  return lines.join('\n');
}

/**
 * Takes octopus-dr's session-owned restore lock on the target without waiting: result 0 when
 * granted, -1 when another session holds it; `resource` is the lock's name. Lock names compare
 * binary, database names by the server's collation (which may equate `ß` and `ss`, or not `I` and
 * `i`), so the name is the server's own: `sys.databases.name` of the database the name finds, else
 * the name as given without trailing spaces, lower-cased by the server (LOWER). Two spellings of
 * one existing database take one lock; two of a database not created yet may take two, and the
 * guard in the first RESTORE batch (guardedByTarget) refuses the one that finds it created.
 */
export function takeRestoreLockStatement(database: string): Statement {
  return {
    purpose: `Take octopus-dr's restore lock on '${database}'`,
    sql: [
      "DECLARE @result int, @resource nvarchar(255) = N'octopus-dr restore ' + LOWER(ISNULL((SELECT d.name FROM sys.databases AS d WHERE d.name = @database), RTRIM(@database)));",
      "EXEC @result = sys.sp_getapplock @Resource = @resource, @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = 0;",
      'SELECT @result AS result, @resource AS resource;',
    ].join('\n'),
    params: { database: name128(database) },
  };
}

/** Whether this session still holds the restore lock `resource` ('Exclusive'), e.g. before rolling back. */
export function restoreLockModeStatement(resource: string): Statement {
  return {
    purpose: `Check that octopus-dr's restore lock '${resource}' is still held`,
    sql: "SELECT APPLOCK_MODE(N'public', @resource, N'Session') AS mode;",
    params: { resource: param.nvarchar(resource, 255) },
  };
}

export function releaseRestoreLockStatement(resource: string): Statement {
  return {
    purpose: `Release octopus-dr's restore lock '${resource}'`,
    sql: ['DECLARE @result int;', "EXEC @result = sys.sp_releaseapplock @Resource = @resource, @LockOwner = N'Session';", 'SELECT @result AS result;'].join('\n'),
    params: { resource: param.nvarchar(resource, 255) },
  };
}

/** The newest backup of the database with the given set name in msdb's history, and its file. */
export function newestSafetyBackupStatement(database: string, setName: string): Statement {
  return {
    purpose: `Find the newest safety backup of '${database}' in msdb's backup history`,
    sql: [
      'SELECT TOP (1) f.physical_device_name AS [file], CONVERT(varchar(23), s.backup_finish_date, 126) AS finished',
      'FROM msdb.dbo.backupset AS s INNER JOIN msdb.dbo.backupmediafamily AS f ON f.media_set_id = s.media_set_id',
      'WHERE s.database_name = @database AND s.name = @setName',
      'ORDER BY s.backup_finish_date DESC;',
    ].join('\n'),
    params: { database: name128(database), setName: name128(setName) },
  };
}
