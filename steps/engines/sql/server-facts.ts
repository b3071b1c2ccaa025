// What the backup/restore steps must know about the server before they act.
import type { SqlConnection } from './connection';
import { param } from './params';

export interface ServerFacts {
  serverName: string;
  /** e.g. "Express Edition (64-bit)", "Developer Edition (64-bit)". */
  edition: string;
  /** SERVERPROPERTY('EngineEdition'): 2 Standard/Web, 3 Enterprise/Developer, 4 Express, 5 Azure SQL DB, 8 Managed Instance. */
  engineEdition: number;
  /** e.g. "16.0.4135.4". */
  productVersion: string;
  /** 13 = 2016, 14 = 2017, 15 = 2019, 16 = 2022. */
  majorVersion: number;
  /** Express and Web cannot compress backups (error 1844). */
  supportsBackupCompression: boolean;
  /** The instance's default folders as the server sees them (may be on the server host only). */
  defaultBackupPath: string | null;
  defaultDataPath: string | null;
  defaultLogPath: string | null;
  /** `\` on Windows, `/` on Linux; for joining server-side paths. */
  pathSeparator: '\\' | '/';
}

export type RecoveryModel = 'FULL' | 'BULK_LOGGED' | 'SIMPLE';

export interface DatabaseFacts {
  name: string;
  recoveryModel: RecoveryModel;
  /** ONLINE, RESTORING, RECOVERING, OFFLINE, ... */
  state: string;
  /** MULTI_USER, SINGLE_USER, RESTRICTED_USER. */
  userAccess: string;
}

const FACTS_SQL = `SELECT
  CAST(SERVERPROPERTY('ServerName') AS nvarchar(256)) AS serverName,
  CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition,
  CAST(SERVERPROPERTY('EngineEdition') AS int) AS engineEdition,
  CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS productVersion,
  CAST(SERVERPROPERTY('InstanceDefaultBackupPath') AS nvarchar(4000)) AS defaultBackupPath,
  CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(4000)) AS defaultDataPath,
  CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(4000)) AS defaultLogPath,
  CAST(SERVERPROPERTY('PathSeparator') AS nvarchar(1)) AS pathSeparator`;

// Before SQL Server 2019 the default backup folder is only in the registry (as Ola Hallengren reads it).
const BACKUP_DIRECTORY_FROM_REGISTRY_SQL = `DECLARE @dir nvarchar(4000);
EXEC master.dbo.xp_instance_regread N'HKEY_LOCAL_MACHINE', N'SOFTWARE\\Microsoft\\MSSQLServer\\MSSQLServer', N'BackupDirectory', @dir OUTPUT;
SELECT @dir AS backupDirectory;`;

interface FactsRow {
  serverName: string | null;
  edition: string | null;
  engineEdition: number | null;
  productVersion: string | null;
  defaultBackupPath: string | null;
  defaultDataPath: string | null;
  defaultLogPath: string | null;
  pathSeparator: string | null;
}

const trimSeparator = (p: string | null) => (p && p.length > 3 ? p.replace(/[\\/]+$/, '') : p);

export async function readServerFacts(connection: SqlConnection): Promise<ServerFacts> {
  const { rows } = await connection.query<FactsRow>(FACTS_SQL);
  const row = rows[0];
  const productVersion = row.productVersion ?? '0';
  const majorVersion = Number(productVersion.split('.')[0]) || 0;
  let defaultBackupPath = row.defaultBackupPath;
  const azure = row.engineEdition === 5 || row.engineEdition === 8; // Azure SQL Database / Managed Instance: no registry
  if (!defaultBackupPath && majorVersion < 15 && !azure) {
    // The registry read needs rights a least-privilege login may lack; then the default is unknown (null), not an error.
    const fallback = await connection.query<{ backupDirectory: string | null }>(BACKUP_DIRECTORY_FROM_REGISTRY_SQL).catch(() => undefined);
    defaultBackupPath = fallback?.rows[0]?.backupDirectory ?? null;
  }
  const anyPath = defaultBackupPath ?? row.defaultDataPath ?? '';
  const pathSeparator: '\\' | '/' = row.pathSeparator === '/' || (!row.pathSeparator && anyPath.startsWith('/')) ? '/' : '\\';
  const edition = row.edition ?? '';
  const engineEdition = row.engineEdition ?? 0;
  return {
    serverName: row.serverName ?? '',
    edition,
    engineEdition,
    productVersion,
    majorVersion,
    supportsBackupCompression: engineEdition !== 4 && !/\b(express|web)\b/i.test(edition),
    defaultBackupPath: trimSeparator(defaultBackupPath),
    defaultDataPath: trimSeparator(row.defaultDataPath),
    defaultLogPath: trimSeparator(row.defaultLogPath),
    pathSeparator,
  };
}

/**
 * Why this server neither writes nor reads backup files in a folder (BACKUP ... TO DISK, RESTORE ...
 * FROM DISK), which every database backup and restore step needs; undefined when it does. Octopus
 * supports running on these services; their SQL errors (40510 and the like) said nothing of what to do.
 */
export function noBackupFilesOn(facts: Pick<ServerFacts, 'engineEdition'>): string | undefined {
  if (facts.engineEdition === 5) {
    return 'it is an Azure SQL Database, which takes its own backups (point-in-time restore, long-term retention) and runs no BACKUP or RESTORE statement';
  }
  if (facts.engineEdition === 8) {
    return 'it is an Azure SQL Managed Instance, which backs up and restores only through a URL (Azure Blob Storage), never a folder';
  }
  return undefined;
}

/** The database's recovery model and state, or undefined when it does not exist. */
export async function readDatabaseFacts(connection: SqlConnection, database: string): Promise<DatabaseFacts | undefined> {
  const { rows } = await connection.query<{ name: string; recoveryModel: string; state: string; userAccess: string }>(
    'SELECT name, recovery_model_desc AS recoveryModel, state_desc AS state, user_access_desc AS userAccess FROM sys.databases WHERE name = @database',
    { database: param.nvarchar(database, 128) },
  );
  const row = rows[0];
  if (!row) return undefined;
  return { name: row.name, recoveryModel: row.recoveryModel as RecoveryModel, state: row.state, userAccess: row.userAccess };
}
