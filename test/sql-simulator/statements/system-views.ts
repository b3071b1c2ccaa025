// Catalog views computed from the model: sys.databases, sys.master_files, sys.tables,
// INFORMATION_SCHEMA.TABLES/COLUMNS, msdb.dbo.backupset/backupmediafamily/backupmediaset.
import { SqlServerError, virtualTables, type StatementHandler } from '../engine/executor';
import { T, typeText } from '../engine/types';

const ACCESS = { MULTI_USER: 0, SINGLE_USER: 1, RESTRICTED_USER: 2 } as const;
const STATE = { ONLINE: 0, RESTORING: 1, RECOVERY_PENDING: 3, SUSPECT: 4, OFFLINE: 6 } as const;
const RECOVERY = { FULL: 1, BULK_LOGGED: 2, SIMPLE: 3 } as const;

virtualTables.set('sys.databases', {
  columns: [
    { name: 'name', type: T.nvarchar(128) },
    { name: 'database_id', type: T.int },
    { name: 'create_date', type: T.datetime },
    { name: 'state', type: T.tinyint },
    { name: 'state_desc', type: T.nvarchar(60) },
    { name: 'user_access', type: T.tinyint },
    { name: 'user_access_desc', type: T.nvarchar(60) },
    { name: 'recovery_model', type: T.tinyint },
    { name: 'recovery_model_desc', type: T.nvarchar(60) },
    { name: 'collation_name', type: T.nvarchar(128) },
    { name: 'group_database_id', type: { name: 'uniqueidentifier' } },
    { name: 'is_encrypted', type: T.bit },
  ],
  rows: (ctx) =>
    [...ctx.model.databases.values()].map((d) => [
      d.name, d.id, d.createDate, STATE[d.state], d.state, ACCESS[d.userAccess], d.userAccess, RECOVERY[d.recoveryModel], d.recoveryModel, ctx.model.properties.collation,
      d.groupDatabaseId ?? null, Boolean(d.tdeThumbprint),
    ]),
});

// TDE: the database encryption keys (encryption_state 3 = encrypted) and master's certificates.
virtualTables.set('sys.dm_database_encryption_keys', {
  columns: [
    { name: 'database_id', type: T.int },
    { name: 'encryption_state', type: T.int },
    { name: 'encryptor_thumbprint', type: T.varbinary(20) },
  ],
  rows: (ctx) => {
    if (ctx.model.logins.get(ctx.session.login.toLowerCase())?.viewServerState === false) {
      throw new SqlServerError(300, "VIEW SERVER STATE permission was denied on object 'server', database 'master'.", 14);
    }
    return [...ctx.model.databases.values()].filter((d) => d.tdeThumbprint).map((d) => [d.id, 3, Buffer.from(d.tdeThumbprint!, 'hex')]);
  },
});

virtualTables.set('sys.certificates', {
  columns: [
    { name: 'name', type: T.nvarchar(128) },
    { name: 'thumbprint', type: T.varbinary(32) },
  ],
  rows: (ctx, database) => (database.toLowerCase() === 'master' ? [...ctx.model.certificates].map(([thumbprint, name]) => [name, Buffer.from(thumbprint, 'hex')]) : []),
});

virtualTables.set('sys.master_files', {
  columns: [
    { name: 'database_id', type: T.int },
    { name: 'file_id', type: T.int },
    { name: 'type', type: T.tinyint },
    { name: 'type_desc', type: T.nvarchar(60) },
    { name: 'name', type: T.nvarchar(128) },
    { name: 'physical_name', type: T.nvarchar(260) },
    { name: 'size', type: T.int },
    { name: 'differential_base_lsn', type: T.numeric(25, 0) },
  ],
  rows: (ctx) =>
    [...ctx.model.databases.values()].flatMap((d) =>
      d.files.map((f, i) => [d.id, i + 1, f.type === 'D' ? 0 : 1, f.type === 'D' ? 'ROWS' : 'LOG', f.logicalName, f.physicalName, Math.ceil(f.sizeBytes / 8192), f.type === 'D' ? d.lastFullBackupLsn : null]),
    ),
});

virtualTables.set('sys.tables', {
  columns: [
    { name: 'name', type: T.nvarchar(128) },
    { name: 'schema_id', type: T.int },
    { name: 'schema_name', type: T.nvarchar(128) },
  ],
  rows: (ctx, database) => [...(ctx.model.database(database)?.tables.values() ?? [])].map((t) => [t.name, t.schema.toLowerCase() === 'dbo' ? 1 : 5, t.schema]),
});

virtualTables.set('information_schema.tables', {
  columns: [
    { name: 'TABLE_CATALOG', type: T.nvarchar(128) },
    { name: 'TABLE_SCHEMA', type: T.nvarchar(128) },
    { name: 'TABLE_NAME', type: T.nvarchar(128) },
    { name: 'TABLE_TYPE', type: T.varchar(10) },
  ],
  rows: (ctx, database) => {
    const db = ctx.model.database(database);
    return [...(db?.tables.values() ?? [])].map((t) => [db!.name, t.schema, t.name, 'BASE TABLE']);
  },
});

virtualTables.set('information_schema.columns', {
  columns: [
    { name: 'TABLE_CATALOG', type: T.nvarchar(128) },
    { name: 'TABLE_SCHEMA', type: T.nvarchar(128) },
    { name: 'TABLE_NAME', type: T.nvarchar(128) },
    { name: 'COLUMN_NAME', type: T.nvarchar(128) },
    { name: 'ORDINAL_POSITION', type: T.int },
    { name: 'IS_NULLABLE', type: T.varchar(3) },
    { name: 'DATA_TYPE', type: T.nvarchar(128) },
    { name: 'CHARACTER_MAXIMUM_LENGTH', type: T.int },
  ],
  rows: (ctx, database) => {
    const db = ctx.model.database(database);
    return [...(db?.tables.values() ?? [])].flatMap((t) =>
      t.columns.map((c, i) => [db!.name, t.schema, t.name, c.name, i + 1, c.nullable ? 'YES' : 'NO', c.type.name, c.type.length === 'max' ? -1 : (c.type.length ?? null)]),
    );
  },
});

const TYPE_DESC = { D: 'Database', I: 'Differential database', L: 'Log' } as const;
void TYPE_DESC;

virtualTables.set('msdb.dbo.backupset', {
  columns: [
    { name: 'backup_set_id', type: T.int },
    { name: 'media_set_id', type: T.int },
    { name: 'database_name', type: T.nvarchar(128) },
    { name: 'type', type: { name: 'char', length: 1 } },
    { name: 'is_copy_only', type: T.bit },
    { name: 'name', type: T.nvarchar(128) },
    { name: 'description', type: T.nvarchar(255) },
    { name: 'backup_start_date', type: T.datetime },
    { name: 'backup_finish_date', type: T.datetime },
    { name: 'first_lsn', type: T.numeric(25, 0) },
    { name: 'last_lsn', type: T.numeric(25, 0) },
    { name: 'checkpoint_lsn', type: T.numeric(25, 0) },
    { name: 'database_backup_lsn', type: T.numeric(25, 0) },
    { name: 'has_backup_checksums', type: T.bit },
    { name: 'backup_size', type: T.numeric(20, 0) },
    { name: 'compressed_backup_size', type: T.numeric(20, 0) },
    { name: 'position', type: T.int },
    { name: 'recovery_model', type: T.nvarchar(60) },
    { name: 'server_name', type: T.nvarchar(128) },
  ],
  rows: (ctx) =>
    ctx.model.backupHistory.map((h) => [
      h.backupSetId, h.mediaSetId, h.databaseName, h.type, h.isCopyOnly, h.name, h.description, h.backupStartDate, h.backupFinishDate,
      h.firstLsn, h.lastLsn, h.checkpointLsn, h.databaseBackupLsn, h.hasBackupChecksums, BigInt(h.backupSize), BigInt(h.compressedBackupSize),
      h.position, h.recoveryModel, ctx.model.properties.serverName,
    ]),
});

virtualTables.set('msdb.dbo.backupmediafamily', {
  columns: [
    { name: 'media_set_id', type: T.int },
    { name: 'family_sequence_number', type: T.tinyint },
    { name: 'mirror', type: T.tinyint },
    { name: 'physical_device_name', type: T.nvarchar(260) },
    { name: 'device_type', type: T.tinyint },
  ],
  rows: (ctx) => {
    const seen = new Set<number>();
    return ctx.model.backupHistory.flatMap((h) => {
      if (seen.has(h.mediaSetId)) return [];
      seen.add(h.mediaSetId);
      return h.devices.map((d, i) => [h.mediaSetId, i + 1, 0, d, 2]);
    });
  },
});

virtualTables.set('msdb.dbo.backupmediaset', {
  columns: [
    { name: 'media_set_id', type: T.int },
    { name: 'media_family_count', type: T.tinyint },
    { name: 'is_compressed', type: T.bit },
  ],
  rows: (ctx) => {
    const seen = new Map<number, { count: number; compressed: boolean }>();
    for (const h of ctx.model.backupHistory) seen.set(h.mediaSetId, { count: h.devices.length, compressed: h.compressedBackupSize < h.backupSize });
    return [...seen].map(([id, v]) => [id, v.count, v.compressed]);
  },
});

void typeText;
export const handlers: StatementHandler[] = [];
