// The scratch database a test restore creates: a name that cannot collide with a real one, and
// its removal (SQL Server deletes the data and log files with the database).
import { randomBytes } from 'node:crypto';
import { dropIfRestoringStatement, quoteName, tryLockRestoreTarget } from '../engines/database-backup';
import { param, type SqlConnection } from '../engines/sql';
import type { EngineContext } from '../runtime/engine-context';

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

/** `<prefix><UTC stamp>-<6 hex>`, as scratchDatabaseName makes them. */
function scratchNamePattern(prefix: string): RegExp {
  return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\d{8}T\\d{6}Z-[0-9a-f]{6}$`);
}

/**
 * Scratch databases earlier runs left: a killed run (SIGKILL, a lost worker) had no time to drop
 * its own. One whose name no restore holds (every run holds its name's restore lock until it has
 * dropped it) is not in use: RESTORING, it is a half restore and is dropped; ONLINE, it may have
 * been kept for inspection on purpose, so it is only named.
 */
export async function cleanScratchLeftovers(connection: SqlConnection, connectionString: string, prefix: string, context: EngineContext): Promise<void> {
  // Housekeeping: what fails here is said, and never decides whether the backup passes its test.
  const { rows } = await connection
    .query<{ name: string; state: string }>('SELECT d.name, d.state_desc AS state FROM sys.databases AS d', {}, { signal: context.signal })
    .catch((error: Error) => {
      context.signal.throwIfAborted();
      context.log.warn(`Could not look for scratch databases earlier test restores left (${error.message}).`);
      return { rows: [] };
    });
  const pattern = scratchNamePattern(prefix);
  for (const { name, state } of rows.filter((r) => pattern.test(r.name))) {
    await cleanScratchLeftover(connection, connectionString, name, state, context).catch((error: Error) => {
      context.signal.throwIfAborted();
      context.log.warn(`'${name}' (${state}), a scratch database an earlier test restore left, could not be dropped (${error.message}): drop it (DROP DATABASE ${quoteName(name)}).`);
    });
  }
}

async function cleanScratchLeftover(connection: SqlConnection, connectionString: string, name: string, state: string, context: EngineContext): Promise<void> {
  const lock = await tryLockRestoreTarget(connectionString, name, context);
  if (!lock) {
    context.log.verbose(`'${name}' is another test restore's scratch database, in use.`);
    return;
  }
  try {
    if (state === 'RESTORING') {
      const drop = dropIfRestoringStatement(name);
      await connection.runLong(drop.sql, drop.params, { signal: context.signal });
      context.log.warn(`Dropped '${name}', a half-restored scratch database an earlier test restore left when it was stopped before it could drop it.`);
    } else {
      context.log.warn(
        `'${name}' (${state}) is a scratch database an earlier test restore left (stopped before it could drop it, or kept with "Keep scratch database"): drop it when it is no longer needed.`,
      );
    }
  } finally {
    await lock.release();
  }
}
