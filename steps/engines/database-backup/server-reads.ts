// Reads that need the server: backup headers (with exact LSNs) and database file lists.
import { SqlError, type SqlConnection, type StatementOptions } from '../sql';
import { normaliseLocalTime, type BackupHeader } from './backup-set';
import { normaliseLsn } from './lsn';
import { fileListStatement, headerLayoutsFor, headerOnlyStatement, type Statement } from './tsql';

export function runStatement<Row>(connection: SqlConnection, statement: Statement, options: StatementOptions & { long?: boolean } = {}) {
  const { long, ...rest } = options;
  return long ? connection.runLong<Row>(statement.sql, statement.params, rest) : connection.query<Row>(statement.sql, statement.params, rest);
}

interface HeaderRow {
  [column: string]: unknown;
}

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const lsnOrZero = (v: unknown): string => normaliseLsn(text(v) ?? '0');

function toHeader(row: HeaderRow): BackupHeader {
  const time = (v: unknown) => normaliseLocalTime(text(v) ?? '') ?? String(v);
  return {
    position: Number(row.position),
    backupType: Number(row.backupType),
    backupTypeDescription: text(row.backupTypeDescription) ?? '',
    databaseName: text(row.databaseName) ?? '',
    serverName: text(row.serverName) ?? '',
    firstLsn: lsnOrZero(row.firstLsn),
    lastLsn: lsnOrZero(row.lastLsn),
    checkpointLsn: lsnOrZero(row.checkpointLsn),
    databaseBackupLsn: lsnOrZero(row.databaseBackupLsn),
    differentialBaseLsn: row.differentialBaseLsn === null || row.differentialBaseLsn === undefined ? null : normaliseLsn(String(row.differentialBaseLsn)),
    recoveryForkId: text(row.recoveryForkId),
    firstRecoveryForkId: text(row.firstRecoveryForkId),
    familyGuid: text(row.familyGuid),
    backupStartDate: time(row.backupStartDate),
    backupFinishDate: time(row.backupFinishDate),
    isCopyOnly: row.isCopyOnly === true || row.isCopyOnly === 1,
    hasBackupChecksums: row.hasBackupChecksums === true || row.hasBackupChecksums === 1,
    compressed: row.compressed === true || row.compressed === 1,
    isDamaged: row.isDamaged === true || row.isDamaged === 1,
    backupSize: text(row.backupSize) ?? '0',
    compressedBackupSize: text(row.compressedBackupSize),
    recoveryModel: text(row.recoveryModel) ?? '',
    softwareVersionMajor: Number(row.softwareVersionMajor),
    softwareVersionMinor: Number(row.softwareVersionMinor),
    softwareVersionBuild: Number(row.softwareVersionBuild),
  };
}

/** Column count mismatch in INSERT ... EXEC: the server's HEADERONLY layout differs from the one tried. */
const LAYOUT_MISMATCH = 213;

/** RESTORE HEADERONLY of one media set (all its stripes), one header per backup set on it. */
export async function readHeaders(connection: SqlConnection, serverPaths: readonly string[], options: StatementOptions = {}): Promise<BackupHeader[]> {
  const { majorVersion } = await connection.serverFacts();
  let lastError: unknown;
  for (const layout of headerLayoutsFor(majorVersion)) {
    try {
      const { rows } = await runStatement<HeaderRow>(connection, headerOnlyStatement(serverPaths, layout), { ...options, long: true });
      return rows.map(toHeader);
    } catch (error) {
      if (!(error instanceof SqlError && error.serverMessages.some((m) => m.number === LAYOUT_MISMATCH))) throw error;
      lastError = error;
    }
  }
  throw new SqlError(
    'server',
    `RESTORE HEADERONLY on SQL Server ${majorVersion} returned columns octopus-dr does not know (${(lastError as Error).message}). Please report this with the server's version.`,
  );
}

export interface DatabaseFile {
  logicalName: string;
  physicalName: string;
  type: 'D' | 'L' | 'S' | 'F';
  fileId: number;
}

export async function readFileList(connection: SqlConnection, serverPaths: readonly string[], position: number, options: StatementOptions = {}): Promise<DatabaseFile[]> {
  const { rows } = await runStatement<Record<string, unknown>>(connection, fileListStatement(serverPaths, position), { ...options, long: true });
  return rows.map((r) => ({
    logicalName: String(r.LogicalName),
    physicalName: String(r.PhysicalName),
    type: String(r.Type).trim().toUpperCase() as DatabaseFile['type'],
    fileId: Number(r.FileId ?? r.FileID),
  }));
}
