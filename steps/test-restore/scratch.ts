// The scratch database a test restore creates: a name that cannot collide with a real one, and
// its removal (SQL Server deletes the data and log files with the database).
import { randomBytes } from 'node:crypto';
import { param, type SqlConnection } from '../engines/sql';

/** `<prefix><UTC yyyyMMddTHHmmssZ>-<6 hex>`: sortable, unique, at most 128 characters. */
export function scratchDatabaseName(prefix: string, now: Date, random: () => string = () => randomBytes(3).toString('hex')): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return `${prefix}${stamp}-${random()}`.slice(0, 128);
}

export async function databaseExists(connection: SqlConnection, database: string, signal?: AbortSignal): Promise<boolean> {
  const { rows } = await connection.query<{ id: number | null }>('SELECT DB_ID(@database) AS id', { database: param.nvarchar(database, 128) }, { signal });
  return rows[0]?.id !== null && rows[0]?.id !== undefined;
}

/** Drops the scratch database, closing other sessions first. Only ever called with a name this step generated. */
export async function dropScratchDatabase(connection: SqlConnection, database: string): Promise<void> {
  const params = { database: param.nvarchar(database, 128) };
  // A restore that failed or was cancelled leaves it RESTORING, where ALTER DATABASE is not allowed.
  await connection.runLong(
    [
      "IF DATABASEPROPERTYEX(@database, 'Status') = N'ONLINE'",
      'BEGIN',
      "  DECLARE @singleUser nvarchar(max) = N'ALTER DATABASE ' + QUOTENAME(@database) + N' SET SINGLE_USER WITH ROLLBACK IMMEDIATE;';",
      '  EXEC sys.sp_executesql @singleUser;',
      'END',
    ].join('\n'),
    params,
  );
  await connection.runLong(
    [
      'IF DB_ID(@database) IS NOT NULL',
      'BEGIN',
      "  DECLARE @drop nvarchar(max) = N'DROP DATABASE ' + QUOTENAME(@database) + N';';",
      "  IF @drop IS NULL THROW 50000, N'The scratch database name is not a valid SQL Server name.', 1;",
      '  EXEC sys.sp_executesql @drop;',
      'END',
    ].join('\n'),
    params,
  );
}
