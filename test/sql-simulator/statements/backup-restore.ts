// BACKUP DATABASE/LOG and RESTORE HEADERONLY/FILELISTONLY/VERIFYONLY/DATABASE/LOG, with the
// messages and errors SQL Server sends (STATS progress over time, 4035/3014, 3201+3013, ...).
// Backup files are written to the local disk in the simulator's own format (engine/backup-file.ts).
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { decodeFile, encodeRecord, type BackupBody, type BackupRecord, type BackupSetHeader } from '../engine/backup-file';
import { SESSION_DISCONNECTED, SqlServerError, type ResultColumn, type StatementContext, type StatementHandler } from '../engine/executor';
import { applyContent, contentOf, type Database } from '../engine/model';
import { Cursor, SqlSyntaxError, type Expr } from '../engine/sql';
import { parseType, T, type SqlValue } from '../engine/types';

interface Options {
  flags: Set<string>;
  values: Map<string, Expr | undefined>;
  moves: { logical: Expr; physical: Expr }[];
}

/** WITH a, b = expr, MOVE x TO y, STATS [= n] ... */
function parseWith(c: Cursor): Options {
  const options: Options = { flags: new Set(), values: new Map(), moves: [] };
  if (!c.acceptWord('WITH')) return options;
  do {
    const word = c.identifier().toUpperCase();
    if (word === 'MOVE') {
      const logical = c.expression();
      c.expectWord('TO');
      options.moves.push({ logical, physical: c.expression() });
    } else if (c.acceptPunct('=')) {
      options.values.set(word, c.expression());
    } else if (word === 'STATS') {
      options.values.set(word, undefined);
    } else options.flags.add(word);
  } while (c.acceptPunct(','));
  return options;
}

function parseDevices(c: Cursor, ctx: StatementContext): string[] {
  const devices: string[] = [];
  do {
    const kind = c.identifier().toUpperCase();
    if (kind !== 'DISK') throw new SqlServerError(3206, `Backup device type ${kind} is not supported by the SQL Server simulator (use DISK).`);
    c.expectPunct('=');
    devices.push(String(ctx.evaluate(c.expression()).value));
  } while (c.acceptPunct(','));
  return devices;
}


/** `BACKUP DATABASE [Octopus]`, `BACKUP DATABASE Octopus` (a name) or `BACKUP DATABASE @db` / `N'Octopus'` (an expression). */
function databaseNameArgument(ctx: Parameters<StatementHandler['run']>[0], c: Parameters<StatementHandler['run']>[1]): string {
  if (c.peek()?.kind === 'word') return c.identifier();
  return String(ctx.evaluate(c.expression()).value);
}

const value = (ctx: StatementContext, o: Options, name: string): SqlValue => {
  const e = o.values.get(name);
  return e ? ctx.evaluate(e).value : null;
};

function stats(ctx: StatementContext, o: Options): number | undefined {
  if (!o.values.has('STATS')) return undefined;
  const e = o.values.get('STATS');
  return e ? Number(ctx.evaluate(e).value) : 10;
}

/** "N percent processed." messages spread over the operation's time, each sent at once. */
async function progress(ctx: StatementContext, step: number | undefined): Promise<void> {
  const total = ctx.model.operationMs;
  if (!step) {
    await ctx.sleep(total);
    return;
  }
  for (let p = step; p <= 100; p += step) {
    await ctx.sleep((total * step) / 100);
    ctx.sink.info(3211, `${p} percent processed.`, 10, 1);
    await ctx.sink.flush();
  }
}

const PAGE = 8192;
const elapsed = (start: number) => Math.max(0.001, (Date.now() - start) / 1000);
function processedMessage(verb: string, pages: number, start: number): string {
  const seconds = elapsed(start);
  return `${verb} successfully processed ${pages} pages in ${seconds.toFixed(3)} seconds (${((pages * PAGE) / 1048576 / seconds).toFixed(3)} MB/sec).`;
}

function osError(device: string, code: 2 | 3 | 5): { number: number; message: string } {
  const text = { 2: 'The system cannot find the file specified.', 3: 'The system cannot find the path specified.', 5: 'Access is denied.' }[code];
  return { number: 3201, message: `Cannot open backup device '${device}'. Operating system error ${code}(${text}).` };
}

function terminating(verb: string, ...preceding: { number: number; message: string }[]): SqlServerError {
  return new SqlServerError(3013, `${verb} is terminating abnormally.`, 16, 1, preceding);
}

// ---- BACKUP ----

const backup: StatementHandler = {
  name: 'BACKUP DATABASE|LOG <db> TO DISK = <path> [, ...] [WITH DIFFERENTIAL, COPY_ONLY, CHECKSUM, [NO_]COMPRESSION, FORMAT, INIT, NOINIT, NAME =, DESCRIPTION =, STATS [= n]]',
  matches: (c) => c.isWord('BACKUP') && (c.isWord('DATABASE', 1) || c.isWord('LOG', 1)),
  async run(ctx, c) {
    c.expectWord('BACKUP');
    const isLog = c.acceptWord('LOG');
    if (!isLog) c.expectWord('DATABASE');
    const dbName = databaseNameArgument(ctx, c);
    c.expectWord('TO');
    const devices = parseDevices(c, ctx);
    const o = parseWith(c);
    c.expectEnd();
    const differential = o.flags.has('DIFFERENTIAL');
    const verb = isLog ? 'BACKUP LOG' : 'BACKUP DATABASE';
    const model = ctx.model;
    // Azure SQL Database runs no BACKUP statement (40510). Managed Instance backs up only TO URL
    // ("FILE, TAPE, and backup devices aren't supported", Microsoft's T-SQL differences page); the
    // number it raises for TO DISK is not documented, so the simulator answers the generic one.
    if (model.properties.engineEdition === 5 || model.properties.engineEdition === 8) {
      throw terminating(verb, { number: 40510, message: `Statement '${verb}' is not supported in this version of SQL Server.` });
    }
    const db = model.database(dbName);
    if (!db) throw terminating(verb, { number: 911, message: `Database '${dbName}' does not exist. Make sure that the name is entered correctly.` });
    if (db.state !== 'ONLINE') throw terminating(verb, { number: 927, message: `Database '${db.name}' cannot be opened. It is in the middle of a restore.` });
    const compressed = o.flags.has('COMPRESSION');
    if (compressed && (model.properties.engineEdition === 4 || /\bweb\b|express/i.test(model.properties.edition))) {
      throw terminating(verb, { number: 1844, message: `${verb} WITH COMPRESSION is not supported on ${model.properties.edition}.` });
    }
    if (isLog && db.recoveryModel === 'SIMPLE') {
      throw terminating(verb, { number: 4208, message: 'The statement BACKUP LOG is not allowed while the recovery model is SIMPLE. Use BACKUP DATABASE or change the recovery model using ALTER DATABASE.' });
    }
    if (isLog && db.lastFullBackupLsn === null) {
      throw terminating(verb, { number: 4214, message: 'BACKUP LOG cannot be performed because there is no current database backup.' });
    }
    if (differential && db.lastFullBackupLsn === null) {
      throw terminating(verb, { number: 3035, message: `Cannot perform a differential backup for database "${db.name}", because a current database backup does not exist. Perform a full database backup by reissuing BACKUP DATABASE, omitting the WITH DIFFERENTIAL option.` });
    }
    for (const d of devices) {
      if (!existsSync(path.dirname(d)) || !statSync(path.dirname(d)).isDirectory()) throw terminating(verb, osError(d, 3));
      if (existsSync(d) && statSync(d).isDirectory()) throw terminating(verb, osError(d, 5));
    }
    const overwrite = o.flags.has('INIT') || o.flags.has('FORMAT');
    const existing: BackupRecord[][] = devices.map((d) => {
      if (overwrite || !existsSync(d)) return [];
      try {
        return decodeFile(readFileSync(d));
      } catch {
        throw terminating(verb, { number: 3241, message: `The media family on device '${d}' is incorrectly formed. SQL Server cannot process this media family.` });
      }
    });

    const start = Date.now();
    const startDate = ctx.model.localNow();
    try {
      await progress(ctx, stats(ctx, o));
    } catch (error) {
      // A session that dies mid-BACKUP (its connection dropped) leaves the file it had begun
      // behind, unreadable; a cancel (attention) writes none.
      if (ctx.signal.reason === SESSION_DISCONNECTED) {
        for (const d of devices) if (overwrite || !existsSync(d)) writeFileSync(d, Buffer.concat([Buffer.from('SQLSIMBK'), Buffer.alloc(4096)]));
      }
      throw error;
    }

    // The backup itself: LSNs, content, header.
    const firstLsn = isLog ? (db.lastLogBackupLsn ?? db.lastFullBackupLsn!) : db.lsn;
    db.lsn += 1000n;
    const lastLsn = db.lsn;
    const checkpointLsn = isLog ? (db.lastFullBackupLsn ?? firstLsn) : firstLsn;
    const copyOnly = o.flags.has('COPY_ONLY') && !differential;
    const body: BackupBody = { content: contentOf(db) };
    if (isLog) {
      body.log = db.log.map((r) => ({ lsn: r.lsn.toString(), at: r.at.toISOString(), content: r.content }));
      if (!copyOnly) {
        db.log = [];
        db.lastLogBackupLsn = lastLsn;
      }
    } else if (!copyOnly && !differential) {
      db.lastFullBackupLsn = checkpointLsn;
    }
    const bodyBytes = Buffer.from(JSON.stringify(body), 'utf8');
    const pages = Math.max(1, Math.ceil(bodyBytes.length / PAGE)) + 2;
    const [major, minor, build] = model.properties.productVersion.split('.').map(Number);
    const position = Math.max(0, ...existing.flat().map((r) => r.header.position)) + 1;
    const mediaSetId = existing[0]?.[0]?.header.mediaSetId ?? randomUUID();
    const header = (familySequence: number): BackupSetHeader => ({
      position,
      familyCount: devices.length,
      familySequence,
      mediaSetId,
      backupName: (value(ctx, o, 'NAME') as string | null) ?? null,
      backupDescription: (value(ctx, o, 'DESCRIPTION') as string | null) ?? null,
      backupType: isLog ? 2 : differential ? 5 : 1,
      compressed,
      serverName: model.properties.serverName,
      machineName: model.properties.machineName,
      databaseName: db.name,
      databaseCreationDate: db.createDate.toISOString(),
      backupSize: pages * PAGE,
      compressedBackupSize: compressed ? Math.ceil((pages * PAGE) / 3) : pages * PAGE,
      firstLsn: firstLsn.toString(),
      lastLsn: lastLsn.toString(),
      checkpointLsn: checkpointLsn.toString(),
      databaseBackupLsn: (db.lastFullBackupLsn ?? 0n).toString(),
      differentialBaseLsn: differential ? (db.lastFullBackupLsn ?? 0n).toString() : null,
      backupStartDate: startDate.toISOString(),
      backupFinishDate: ctx.model.localNow().toISOString(),
      softwareVersionMajor: major,
      softwareVersionMinor: minor,
      softwareVersionBuild: build,
      recoveryForkId: forkOf(db),
      familyGuid: forkOf(db),
      backupSetGuid: randomUUID(),
      collation: model.properties.collation,
      hasBackupChecksums: o.flags.has('CHECKSUM'),
      isCopyOnly: copyOnly,
      recoveryModel: db.recoveryModel,
      files: db.files,
      tdeThumbprint: db.tdeThumbprint ?? null,
    });
    const slice = Math.ceil(bodyBytes.length / devices.length);
    devices.forEach((d, i) => {
      const record = encodeRecord(header(i + 1), bodyBytes.subarray(i * slice, (i + 1) * slice));
      const previous = existing[i].map((r) => encodeRecord(r.header, r.body));
      const temporary = `${d}.${process.pid}.tmp`;
      writeFileSync(temporary, Buffer.concat([...previous, record]));
      renameSync(temporary, d);
    });
    model.backupHistory.push({
      backupSetId: model.backupHistory.length + 1,
      mediaSetId: new Set(model.backupHistory.map((h) => h.mediaSetId)).size + 1,
      databaseName: db.name,
      type: isLog ? 'L' : differential ? 'I' : 'D',
      isCopyOnly: copyOnly,
      name: header(1).backupName,
      description: header(1).backupDescription,
      backupStartDate: startDate,
      backupFinishDate: ctx.model.localNow(),
      firstLsn,
      lastLsn,
      checkpointLsn,
      databaseBackupLsn: db.lastFullBackupLsn ?? 0n,
      hasBackupChecksums: o.flags.has('CHECKSUM'),
      backupSize: pages * PAGE,
      compressedBackupSize: header(1).compressedBackupSize,
      position,
      recoveryModel: db.recoveryModel,
      devices,
    });
    for (const f of db.files.filter((f) => (isLog ? f.type === 'L' : f.type === 'D'))) {
      ctx.sink.info(4035, `Processed ${pages} pages for database '${db.name}', file '${f.logicalName}' on file ${position}.`, 10);
    }
    ctx.sink.info(3014, processedMessage(verb, pages, start), 10);
    ctx.sink.statementDone();
  },
};

const forks = new WeakMap<Database, string>();
function forkOf(db: Database): string {
  let f = forks.get(db);
  if (!f) forks.set(db, (f = randomUUID().toUpperCase()));
  return f;
}

// ---- reading backup files ----

interface MediaSet {
  devices: string[];
  sets: { header: BackupSetHeader; body: () => BackupBody; checksumOk: boolean }[];
}

function readMedia(devices: string[], verb: string): MediaSet {
  const perDevice = devices.map((d) => {
    if (!existsSync(d)) throw terminating(verb, osError(d, 2));
    try {
      return decodeFile(readFileSync(d));
    } catch {
      throw terminating(verb, { number: 3241, message: `The media family on device '${d}' is incorrectly formed. SQL Server cannot process this media family.` });
    }
  });
  const first = perDevice[0];
  const familyCount = first[0].header.familyCount;
  if (familyCount !== devices.length) {
    throw terminating(verb, { number: 3132, message: `The media set has ${familyCount} media families but only ${devices.length} are provided. All members must be provided.` });
  }
  const sets = first.map((record) => {
    const parts = perDevice.map((records, i) => {
      const r = records.find((x) => x.header.position === record.header.position);
      if (!r || r.header.mediaSetId !== record.header.mediaSetId) {
        throw terminating(verb, { number: 3231, message: `The media loaded on "${devices[i]}" is formatted to support ${familyCount} media families, but ${devices.length} media families are expected according to the backup device specification.` });
      }
      return r;
    });
    parts.sort((a, b) => a.header.familySequence - b.header.familySequence);
    return {
      header: record.header,
      checksumOk: parts.every((p) => p.checksumOk),
      body: () => JSON.parse(Buffer.concat(parts.map((p) => p.body)).toString('utf8')) as BackupBody,
    };
  });
  return { devices, sets };
}

function selectSet(media: MediaSet, position: number, verb: string): MediaSet['sets'][number] {
  const set = media.sets.find((s) => s.header.position === position);
  if (!set) throw terminating(verb, { number: 4038, message: `Cannot find file ID ${position} on device '${media.devices[0]}'.` });
  return set;
}

/** A TDE backup reads only where master holds the certificate its encryption key was protected by (error 33111). */
function needsCertificate(ctx: StatementContext, set: MediaSet['sets'][number], verb: string): void {
  const thumbprint = set.header.tdeThumbprint;
  if (thumbprint && !ctx.model.certificates.has(thumbprint.toUpperCase())) {
    throw terminating(verb, { number: 33111, message: `Cannot find server certificate with thumbprint '0x${thumbprint.toUpperCase()}'.` });
  }
}

function damaged(set: MediaSet['sets'][number], verb: string): SqlServerError {
  return terminating(verb, { number: 3183, message: `RESTORE detected an error on page (1:${(set.header.position * 37) % 1000}) in database "${set.header.databaseName}" as read from the backup set.` });
}

const HEADER_COLUMNS = [
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
];
const HEADER_COLUMNS_2022 = ['LastValidRestoreTime datetime', 'TimeZone nvarchar(32)', 'CompressionAlgorithm nvarchar(32)'];

function columnsOf(definitions: string[]): ResultColumn[] {
  return definitions.map((d) => {
    const [name, ...type] = d.split(' ');
    return { name, type: parseType(type.join(' ')) };
  });
}

function headerRow(h: BackupSetHeader, withRecent: boolean): SqlValue[] {
  const big = (s: string | null) => (s === null ? null : BigInt(s));
  const row: SqlValue[] = [
    h.backupName, h.backupDescription, h.backupType, null, h.compressed ? 1 : 0, h.position, 2, 'sa', h.serverName,
    h.databaseName, 904, new Date(h.databaseCreationDate), BigInt(h.backupSize),
    big(h.firstLsn), big(h.lastLsn), big(h.checkpointLsn), big(h.databaseBackupLsn),
    new Date(h.backupStartDate), new Date(h.backupFinishDate), 52, 0,
    1033, 196609, 160, 4608,
    h.softwareVersionMajor, h.softwareVersionMinor, h.softwareVersionBuild, h.machineName,
    512, h.familyGuid, h.recoveryForkId, h.collation,
    h.familyGuid, false, false, false, false,
    h.hasBackupChecksums, false, h.backupType === 1, false, false,
    h.isCopyOnly, h.recoveryForkId, null, h.recoveryModel,
    big(h.differentialBaseLsn), null, h.backupType === 2 ? 'Transaction Log' : h.backupType === 5 ? 'Database Differential' : 'Database',
    h.backupSetGuid, BigInt(h.compressedBackupSize), 0, null,
    null, null,
  ];
  if (withRecent) row.push(new Date(h.backupFinishDate), 'UTC', h.compressed ? 'MS_XPRESS' : null);
  return row;
}

const FILELIST_COLUMNS = [
  'LogicalName nvarchar(128)', 'PhysicalName nvarchar(260)', 'Type char(1)', 'FileGroupName nvarchar(128)', 'Size numeric(20,0)',
  'MaxSize numeric(20,0)', 'FileId bigint', 'CreateLSN numeric(25,0)', 'DropLSN numeric(25,0)', 'UniqueId uniqueidentifier',
  'ReadOnlyLSN numeric(25,0)', 'ReadWriteLSN numeric(25,0)', 'BackupSizeInBytes bigint', 'SourceBlockSize int', 'FileGroupId int',
  'LogGroupGUID uniqueidentifier', 'DifferentialBaseLSN numeric(25,0)', 'DifferentialBaseGUID uniqueidentifier', 'IsReadOnly bit',
  'IsPresent bit', 'TDEThumbprint varbinary(32)', 'SnapshotUrl nvarchar(360)',
];

function fromClause(c: Cursor, ctx: StatementContext): string[] {
  c.expectWord('FROM');
  return parseDevices(c, ctx);
}

const headerOnly: StatementHandler = {
  name: 'RESTORE HEADERONLY FROM DISK = <path> [, ...]',
  matches: (c) => c.isWord('RESTORE') && c.isWord('HEADERONLY', 1),
  run(ctx, c) {
    c.expectWord('RESTORE', 'HEADERONLY');
    const devices = fromClause(c, ctx);
    parseWith(c);
    c.expectEnd();
    const media = readMedia(devices, 'RESTORE HEADERONLY');
    const recent = ctx.model.majorVersion >= 16;
    ctx.sink.resultSet(columnsOf(recent ? [...HEADER_COLUMNS, ...HEADER_COLUMNS_2022] : HEADER_COLUMNS), media.sets.map((s) => headerRow(s.header, recent)));
    ctx.sink.statementDone(media.sets.length);
  },
};

const fileListOnly: StatementHandler = {
  name: 'RESTORE FILELISTONLY FROM DISK = <path> [, ...] [WITH FILE = n]',
  matches: (c) => c.isWord('RESTORE') && c.isWord('FILELISTONLY', 1),
  run(ctx, c) {
    c.expectWord('RESTORE', 'FILELISTONLY');
    const devices = fromClause(c, ctx);
    const o = parseWith(c);
    c.expectEnd();
    const media = readMedia(devices, 'RESTORE FILELISTONLY');
    const set = selectSet(media, Number(value(ctx, o, 'FILE') ?? 1), 'RESTORE FILELISTONLY');
    const h = set.header;
    const rows = h.files.map((f, i) => [
      f.logicalName, f.physicalName, f.type, f.type === 'D' ? 'PRIMARY' : null, BigInt(f.sizeBytes), 35184372080640n, BigInt(i + 1), 0n, 0n,
      randomUUID(), 0n, 0n, BigInt(Math.ceil(h.backupSize / Math.max(1, h.files.length))), 4096, f.type === 'D' ? 1 : 0, null,
      h.differentialBaseLsn === null ? null : BigInt(h.differentialBaseLsn), null, false, true, h.tdeThumbprint ? Buffer.from(h.tdeThumbprint, 'hex') : null, null,
    ] as SqlValue[]);
    ctx.sink.resultSet(columnsOf(FILELIST_COLUMNS), rows);
    ctx.sink.statementDone(rows.length);
  },
};

const verifyOnly: StatementHandler = {
  name: 'RESTORE VERIFYONLY FROM DISK = <path> [, ...] [WITH FILE = n, CHECKSUM]',
  matches: (c) => c.isWord('RESTORE') && c.isWord('VERIFYONLY', 1),
  async run(ctx, c) {
    c.expectWord('RESTORE', 'VERIFYONLY');
    const devices = fromClause(c, ctx);
    const o = parseWith(c);
    c.expectEnd();
    const verb = 'VERIFY DATABASE';
    const media = readMedia(devices, verb);
    const position = value(ctx, o, 'FILE');
    const sets = position === null ? media.sets : [selectSet(media, Number(position), verb)];
    await progress(ctx, stats(ctx, o));
    for (const set of sets) {
      if (o.flags.has('CHECKSUM') && !set.header.hasBackupChecksums) {
        throw terminating(verb, { number: 3187, message: 'RESTORE WITH CHECKSUM cannot be specified because the backup set does not contain checksum information.' });
      }
      needsCertificate(ctx, set, verb);
      if (!set.checksumOk) throw damaged(set, verb);
      ctx.sink.info(3262, `The backup set on file ${set.header.position} is valid.`, 10);
    }
    ctx.sink.statementDone();
  },
};

/** RESTORE DATABASE|LOG @db [FROM DISK = ...] [WITH ...] */
const restore: StatementHandler = {
  name: 'RESTORE DATABASE|LOG <db> [FROM DISK = <path> [, ...]] [WITH FILE =, REPLACE, MOVE <logical> TO <path>, RECOVERY|NORECOVERY, STOPAT =, CHECKSUM, STATS [= n]]',
  matches: (c) => c.isWord('RESTORE') && (c.isWord('DATABASE', 1) || c.isWord('LOG', 1)),
  async run(ctx, c) {
    c.expectWord('RESTORE');
    const isLog = c.acceptWord('LOG');
    if (!isLog) c.expectWord('DATABASE');
    const verb = isLog ? 'RESTORE LOG' : 'RESTORE DATABASE';
    const target = databaseNameArgument(ctx, c);
    const devices = c.isWord('FROM') ? fromClause(c, ctx) : [];
    const o = parseWith(c);
    c.expectEnd();
    const model = ctx.model;
    const existing = model.database(target);
    const recovery = !o.flags.has('NORECOVERY') && !o.values.has('STANDBY');

    if (ctx.session.database.toLowerCase() === target.toLowerCase()) {
      throw terminating(verb, { number: 3102, message: `RESTORE cannot process database '${target}' because it is in use by this session. It is recommended that the master database be used when performing this operation.` });
    }
    if (devices.length === 0) {
      // RESTORE DATABASE x WITH RECOVERY: finish a restore sequence.
      if (!existing) throw terminating(verb, { number: 911, message: `Database '${target}' does not exist. Make sure that the name is entered correctly.` });
      if (existing.state === 'RESTORING' && recovery) existing.state = 'ONLINE';
      else if (existing.state === 'ONLINE') throw terminating(verb, { number: 3153, message: 'The database is already fully recovered.' });
      ctx.sink.info(3014, processedMessage(verb, 0, Date.now()), 10);
      ctx.sink.statementDone();
      return;
    }

    const media = readMedia(devices, verb);
    const set = selectSet(media, Number(value(ctx, o, 'FILE') ?? 1), verb);
    const h = set.header;
    needsCertificate(ctx, set, verb);
    if (!set.checksumOk) throw damaged(set, verb);
    if (o.flags.has('CHECKSUM') && !h.hasBackupChecksums) {
      throw terminating(verb, { number: 3187, message: 'RESTORE WITH CHECKSUM cannot be specified because the backup set does not contain checksum information.' });
    }
    if (h.softwareVersionMajor > model.majorVersion) {
      throw terminating(verb, { number: 3169, message: `The database was backed up on a server running version ${h.softwareVersionMajor}.${h.softwareVersionMinor}.${h.softwareVersionBuild}. That version is incompatible with this server, which is running version ${model.properties.productVersion}. Either restore the database on a server that supports the backup, or use a backup that is compatible with this server.` });
    }
    if (existing && existing.state === 'ONLINE' && model.usersOf(existing.name, ctx.session.id).length > 0) {
      throw terminating(verb, { number: 3101, message: 'Exclusive access could not be obtained because the database is in use.' });
    }

    if (isLog || h.backupType === 5) {
      restoreOnto(existing, h, verb, target);
    } else {
      const replace = o.flags.has('REPLACE');
      if (existing && !replace && existing.state === 'ONLINE') {
        if (existing.name.toLowerCase() !== h.databaseName.toLowerCase()) {
          throw terminating(verb, { number: 3154, message: `The backup set holds a backup of a database other than the existing '${existing.name}' database.` });
        }
        if (existing.recoveryModel !== 'SIMPLE' && existing.lsn > (existing.lastLogBackupLsn ?? 0n)) {
          throw terminating(verb, { number: 3159, message: `The tail of the log for the database "${existing.name}" has not been backed up. Use BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log.` });
        }
      }
      // File placement: MOVE, else the paths in the backup; a path another database uses is refused.
      const files = h.files.map((f) => ({ ...f }));
      for (const m of o.moves) {
        const logical = String(ctx.evaluate(m.logical).value);
        const file = files.find((f) => f.logicalName.toLowerCase() === logical.toLowerCase());
        if (!file) throw terminating(verb, { number: 3234, message: `Logical file '${logical}' is not part of database '${h.databaseName}'. Use RESTORE FILELISTONLY to list the logical file names.` });
        file.physicalName = String(ctx.evaluate(m.physical).value);
      }
      for (const f of files) {
        const owner = [...model.databases.values()].find((d) => d !== existing && d.files.some((x) => x.physicalName.toLowerCase() === f.physicalName.toLowerCase()));
        if (owner) {
          throw terminating(verb,
            { number: 1834, message: `The file '${f.physicalName}' cannot be overwritten.  It is being used by database '${owner.name}'.` },
            { number: 3156, message: `File '${f.logicalName}' cannot be restored to '${f.physicalName}'. Use WITH MOVE to identify a valid location for the file.` },
            { number: 3119, message: 'Problems were identified while planning for the RESTORE statement. Previous messages provide details.' });
        }
      }
      const start = Date.now();
      // Like SQL Server: the database exists (RESTORING) from the start of the restore, so a
      // cancelled or failed restore leaves it behind in that state.
      const db = existing ?? model.addDatabase({ name: target });
      db.files = files;
      db.state = 'RESTORING';
      // sys.databases.create_date is "the date the database was created or renamed" (docs:
      // docs/relational-databases/system-catalog-views/sys-databases-transact-sql.md); a RESTORE
      // creates it anew, so a restore over an existing database sets it to the restore's time too
      // (observed, e.g. renatomsiqueira.com.br/a-verdadeira-data-de-criacao-de-um-banco-de-dados).
      db.createDate = model.now();
      await progress(ctx, stats(ctx, o));
      db.recoveryModel = h.recoveryModel;
      db.userAccess = 'MULTI_USER';
      applyContent(db, set.body().content);
      db.lsn = BigInt(h.lastLsn);
      db.lastLogBackupLsn = db.lsn;
      db.lastFullBackupLsn = BigInt(h.checkpointLsn);
      db.log = [];
      db.restoredLsn = BigInt(h.lastLsn);
      db.state = recovery ? 'ONLINE' : 'RESTORING';
      finishRestore(ctx, db, h, verb, start);
      return;
    }

    // Differential or log onto a database in RESTORING state.
    const db = existing!;
    const start = Date.now();
    await progress(ctx, stats(ctx, o));
    const body = set.body();
    if (h.backupType === 5) {
      applyContent(db, body.content);
      db.restoredLsn = BigInt(h.lastLsn);
    } else {
      const stopAtValue = value(ctx, o, 'STOPAT');
      const stopAt = stopAtValue === null ? undefined : stopAtValue instanceof Date ? stopAtValue : new Date(/[zZ]|[+-]\d\d:\d\d$/.test(String(stopAtValue)) ? String(stopAtValue) : `${String(stopAtValue)}Z`);
      if (stopAt && Number.isNaN(stopAt.getTime())) throw new SqlServerError(241, 'Conversion failed when converting date and/or time from character string.');
      const records = (body.log ?? []).filter((r) => BigInt(r.lsn) > (db.restoredLsn ?? 0n) && (!stopAt || new Date(r.at).getTime() <= stopAt.getTime()));
      const last = records[records.length - 1];
      if (last) applyContent(db, last.content);
      db.restoredLsn = stopAt && records.length < (body.log ?? []).length ? BigInt(last?.lsn ?? db.restoredLsn ?? 0n) : BigInt(h.lastLsn);
    }
    db.lsn = BigInt(h.lastLsn);
    db.lastLogBackupLsn = db.lsn;
    if (recovery) db.state = 'ONLINE';
    finishRestore(ctx, db, h, verb, start);
  },
};

function restoreOnto(existing: Database | undefined, h: BackupSetHeader, verb: string, target: string): void {
  if (!existing || existing.state !== 'RESTORING') {
    throw terminating(verb, { number: 3117, message: `The log or differential backup cannot be restored because no files are ready to rollforward.${existing ? '' : ` (database '${target}' does not exist)`}` });
  }
  const restored = existing.restoredLsn ?? 0n;
  if (h.backupType === 5) {
    if (BigInt(h.databaseBackupLsn) !== existing.lastFullBackupLsn) {
      throw terminating(verb, { number: 3136, message: 'This differential backup cannot be restored because the database has not been restored to the correct earlier state.' });
    }
    return;
  }
  if (BigInt(h.firstLsn) > restored) {
    throw terminating(verb, { number: 4305, message: `The log in this backup set begins at LSN ${h.firstLsn}, which is too recent to apply to the database. An earlier log backup that includes LSN ${restored} can be restored.` });
  }
  if (BigInt(h.lastLsn) <= restored) {
    throw terminating(verb, { number: 4326, message: `The log in this backup set terminates at LSN ${h.lastLsn}, which is too early to apply to the database. A more recent log backup that includes LSN ${restored} can be restored.` });
  }
}

function finishRestore(ctx: StatementContext, db: Database, h: BackupSetHeader, verb: string, start: number): void {
  const pages = Math.max(1, Math.ceil(h.backupSize / PAGE));
  for (const f of db.files.filter((f) => (h.backupType === 2 ? f.type === 'L' : true))) {
    ctx.sink.info(4035, `Processed ${f.type === 'D' ? pages : 2} pages for database '${db.name}', file '${f.logicalName}' on file ${h.position}.`, 10);
  }
  ctx.sink.info(3014, processedMessage(verb, pages, start), 10);
  ctx.sink.statementDone();
}

void SqlSyntaxError;
void T;
export const handlers: StatementHandler[] = [backup, headerOnly, fileListOnly, verifyOnly, restore];
