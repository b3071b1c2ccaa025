// The simulated SQL Server's state: server properties, logins, databases (recovery model, files,
// tables of rows, log sequence numbers), sessions and msdb backup history. Seed/state files are
// JSON (format in test/README.md).
import { collationKey, fromJson, parseType, toJson, typeText, type SqlType, type SqlValue } from './types';

export type RecoveryModel = 'FULL' | 'BULK_LOGGED' | 'SIMPLE';

export interface Column {
  name: string;
  type: SqlType;
  nullable: boolean;
}

export interface Table {
  schema: string;
  name: string;
  columns: Column[];
  rows: SqlValue[][];
}

export interface DatabaseFile {
  logicalName: string;
  physicalName: string;
  type: 'D' | 'L';
  sizeBytes: number;
}

/** A committed change, kept for log backups (STOPAT restores the content as of a time). */
export interface LogRecord {
  lsn: bigint;
  at: Date;
  content: DatabaseContent;
}

/** What a backup holds and a restore brings back. */
export interface DatabaseContent {
  tables: { schema: string; name: string; columns: { name: string; type: string; nullable: boolean }[]; rows: unknown[][] }[];
}

export interface Database {
  id: number;
  name: string;
  recoveryModel: RecoveryModel;
  state: 'ONLINE' | 'RESTORING' | 'OFFLINE' | 'RECOVERY_PENDING' | 'SUSPECT';
  userAccess: 'MULTI_USER' | 'SINGLE_USER' | 'RESTRICTED_USER';
  createDate: Date;
  files: DatabaseFile[];
  tables: Map<string, Table>;
  /** Current log sequence number; every change and backup moves it on. */
  lsn: bigint;
  /** LSN up to which the log has been backed up (the tail after it is "not backed up"). */
  lastLogBackupLsn: bigint | null;
  /** CheckpointLSN of the last non-copy-only full backup (base of differentials and the log chain). */
  lastFullBackupLsn: bigint | null;
  /** Changes since the last log backup. */
  log: LogRecord[];
  /** While RESTORING: the LastLSN restored so far, and the recovery fork. */
  restoredLsn?: bigint;
  /** sys.databases.group_database_id: set while the database is in an availability group (the same on every replica). */
  groupDatabaseId?: string | null;
  /** TDE: the thumbprint (hex) of the master certificate protecting its encryption key; null when not encrypted. */
  tdeThumbprint?: string | null;
}

export interface Login {
  name: string;
  password: string;
  disabled: boolean;
  /** False: server-state DMVs (sys.dm_database_encryption_keys) refuse it with error 300, as for a backup operator's login. */
  viewServerState?: boolean;
}

export interface ServerProperties {
  serverName: string;
  machineName: string;
  edition: string;
  engineEdition: number;
  productVersion: string;
  /** null = SERVERPROPERTY returns NULL (pre-2019): the registry value is used instead. */
  defaultBackupPath: string | null;
  defaultDataPath: string;
  defaultLogPath: string;
  pathSeparator: '\\' | '/';
  /** Registry values for xp_instance_regread, keyed 'key\\value'. */
  registry: Record<string, string>;
  collation: string;
}

export interface Session {
  id: number;
  login: string;
  database: string;
  /** Closes the client's connection (ROLLBACK IMMEDIATE, KILL). */
  kill(): void;
}

/** msdb.dbo.backupset joined with its media family, one row per device. */
export interface BackupHistory {
  backupSetId: number;
  mediaSetId: number;
  databaseName: string;
  type: 'D' | 'I' | 'L';
  isCopyOnly: boolean;
  name: string | null;
  description: string | null;
  backupStartDate: Date;
  backupFinishDate: Date;
  firstLsn: bigint;
  lastLsn: bigint;
  checkpointLsn: bigint;
  databaseBackupLsn: bigint;
  hasBackupChecksums: boolean;
  backupSize: number;
  compressedBackupSize: number;
  position: number;
  recoveryModel: RecoveryModel;
  devices: string[];
}

export interface SeedTable {
  schema?: string;
  name: string;
  columns: { name: string; type: string; nullable?: boolean }[];
  rows?: unknown[][];
}

export interface SeedDatabase {
  name: string;
  recoveryModel?: RecoveryModel;
  state?: Database['state'];
  tables?: SeedTable[];
  files?: DatabaseFile[];
  /** In an availability group: its group database ID (a GUID). */
  groupDatabaseId?: string;
  /** Encrypted with TDE by this certificate (its name in Seed.certificates). */
  tdeCertificate?: string;
}

export interface Seed {
  server?: Partial<Omit<ServerProperties, 'registry'>> & { registry?: Record<string, string> };
  logins?: { name: string; password: string; disabled?: boolean }[];
  databases?: SeedDatabase[];
  /** Certificates in master (name, thumbprint as hex): what TDE encrypts with and a TDE restore needs. */
  certificates?: { name: string; thumbprint: string }[];
  backupHistory?: (Omit<BackupHistory, 'backupStartDate' | 'backupFinishDate' | 'firstLsn' | 'lastLsn' | 'checkpointLsn' | 'databaseBackupLsn'> & {
    backupStartDate: string; backupFinishDate: string; firstLsn: string; lastLsn: string; checkpointLsn: string; databaseBackupLsn: string;
  })[];
  /** Milliseconds a BACKUP/RESTORE takes (STATS messages are spread over it). Default 300. */
  operationMs?: number;
}

const SYSTEM_DATABASES = ['master', 'tempdb', 'model', 'msdb'];

export class ServerModel {
  readonly properties: ServerProperties;
  readonly logins = new Map<string, Login>();
  readonly databases = new Map<string, Database>();
  /** master's certificates: upper-case hex thumbprint -> name. */
  readonly certificates = new Map<string, string>();
  readonly sessions = new Map<number, Session>();
  readonly backupHistory: BackupHistory[] = [];
  /** sp_getapplock's session-owned locks, by `<database>\u0000<resource>` (resources compare binary, as in SQL Server). */
  readonly applicationLocks = new Map<string, { sessionId: number; count: number }>();
  operationMs: number;
  /** Moves the server's clock (GETDATE, backup times) ahead of the real one, e.g. to age backups. */
  clockOffsetMs = 0;
  /**
   * The server's time zone, as its offset from UTC: local times (GETDATE, SYSDATETIME, the backup
   * times in headers and msdb) are UTC plus this; SYSUTCDATETIME and GETUTCDATE are not moved.
   */
  utcOffsetMs = 0;
  private nextDatabaseId = 5;
  private nextSessionId = 51;
  /** Handlers of other areas may keep their own state here (namespaced by area). */
  readonly extensions = new Map<string, unknown>();

  constructor(seed: Seed = {}) {
    const s = seed.server ?? {};
    const sep = s.pathSeparator ?? '/';
    const base = sep === '/' ? '/var/opt/mssql' : 'C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL';
    this.properties = {
      serverName: s.serverName ?? 'SQLSIM',
      machineName: s.machineName ?? s.serverName ?? 'SQLSIM',
      edition: s.edition ?? 'Developer Edition (64-bit)',
      engineEdition: s.engineEdition ?? 3,
      productVersion: s.productVersion ?? '16.0.4135.4',
      defaultBackupPath: s.defaultBackupPath === undefined ? `${base}${sep}backup` : s.defaultBackupPath,
      defaultDataPath: s.defaultDataPath ?? `${base}${sep}data`,
      defaultLogPath: s.defaultLogPath ?? `${base}${sep}data`,
      pathSeparator: sep,
      registry: s.registry ?? {},
      collation: s.collation ?? 'SQL_Latin1_General_CP1_CI_AS',
    };
    this.operationMs = seed.operationMs ?? 300;
    for (const l of seed.logins ?? [{ name: 'sa', password: 'Sim-Passw0rd!' }]) this.logins.set(l.name.toLowerCase(), { name: l.name, password: l.password, disabled: l.disabled ?? false });
    for (const c of seed.certificates ?? []) this.certificates.set(c.thumbprint.toUpperCase(), c.name);
    for (const name of SYSTEM_DATABASES) this.addDatabase({ name, recoveryModel: name === 'model' ? 'FULL' : 'SIMPLE' });
    for (const d of seed.databases ?? []) {
      const existing = this.database(d.name);
      if (existing) this.databases.delete(collationKey(existing.name));
      this.addDatabase(d);
    }
    for (const h of seed.backupHistory ?? []) {
      this.backupHistory.push({
        ...h,
        backupStartDate: new Date(h.backupStartDate),
        backupFinishDate: new Date(h.backupFinishDate),
        firstLsn: BigInt(h.firstLsn),
        lastLsn: BigInt(h.lastLsn),
        checkpointLsn: BigInt(h.checkpointLsn),
        databaseBackupLsn: BigInt(h.databaseBackupLsn),
      });
    }
  }

  /** The server's clock, in UTC. */
  now(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  /** The server's clock in its own time zone (what SQL Server stores as local times). */
  localNow(): Date {
    return new Date(this.now().getTime() + this.utcOffsetMs);
  }

  get majorVersion(): number {
    return Number(this.properties.productVersion.split('.')[0]);
  }

  /** By name as the server's collation compares names (collationKey: case, trailing spaces, `ß` = `ss`). */
  database(name: string): Database | undefined {
    return this.databases.get(collationKey(name));
  }

  addDatabase(seed: SeedDatabase): Database {
    const p = this.properties;
    const sep = p.pathSeparator;
    const id = SYSTEM_DATABASES.indexOf(seed.name) >= 0 ? SYSTEM_DATABASES.indexOf(seed.name) + 1 : this.nextDatabaseId++;
    const db: Database = {
      id,
      name: seed.name,
      recoveryModel: seed.recoveryModel ?? 'FULL',
      state: seed.state ?? 'ONLINE',
      userAccess: 'MULTI_USER',
      createDate: this.now(),
      files: seed.files ?? [
        { logicalName: seed.name, physicalName: `${p.defaultDataPath}${sep}${seed.name}.mdf`, type: 'D', sizeBytes: 8 * 1024 * 1024 },
        { logicalName: `${seed.name}_log`, physicalName: `${p.defaultLogPath}${sep}${seed.name}_log.ldf`, type: 'L', sizeBytes: 8 * 1024 * 1024 },
      ],
      tables: new Map(),
      lsn: (BigInt(id) + 36n) * 10n ** 17n + 1_600_001n,
      lastLogBackupLsn: null,
      lastFullBackupLsn: null,
      log: [],
      groupDatabaseId: seed.groupDatabaseId ?? null,
      tdeThumbprint: seed.tdeCertificate ? [...this.certificates].find(([, name]) => name === seed.tdeCertificate)?.[0] ?? null : null,
    };
    for (const t of seed.tables ?? []) {
      const columns = t.columns.map((c) => ({ name: c.name, type: parseType(c.type), nullable: c.nullable ?? true }));
      db.tables.set(tableKey(t.schema ?? 'dbo', t.name), {
        schema: t.schema ?? 'dbo',
        name: t.name,
        columns,
        rows: (t.rows ?? []).map((r) => columns.map((c, i) => fromJson(r[i], c.type))),
      });
    }
    this.databases.set(collationKey(seed.name), db);
    return db;
  }

  table(database: string, schema: string, name: string): Table | undefined {
    return this.database(database)?.tables.get(tableKey(schema || 'dbo', name));
  }

  /** Call after any change to a database's rows: moves the LSN on and keeps the change for log backups. */
  recordChange(db: Database, at = this.now()): void {
    db.lsn += 100n;
    if (db.recoveryModel !== 'SIMPLE') db.log.push({ lsn: db.lsn, at, content: contentOf(db) });
  }

  openSession(login: string, database: string, kill: () => void): Session {
    const session: Session = { id: this.nextSessionId++, login, database, kill };
    this.sessions.set(session.id, session);
    return session;
  }

  closeSession(id: number): void {
    this.sessions.delete(id);
    // A session's application locks end with it.
    for (const [key, lock] of this.applicationLocks) if (lock.sessionId === id) this.applicationLocks.delete(key);
  }

  /** Sessions other than `exceptId` using the database. */
  usersOf(database: string, exceptId: number): Session[] {
    return [...this.sessions.values()].filter((s) => s.id !== exceptId && collationKey(s.database) === collationKey(database));
  }

  toSeed(): Seed {
    return {
      server: { ...this.properties },
      logins: [...this.logins.values()].map((l) => ({ name: l.name, password: l.password, disabled: l.disabled })),
      databases: [...this.databases.values()]
        .filter((d) => !SYSTEM_DATABASES.includes(d.name))
        .map((d) => ({ name: d.name, recoveryModel: d.recoveryModel, state: d.state, files: d.files, tables: contentOf(d).tables })),
      backupHistory: this.backupHistory.map((h) => ({
        ...h,
        backupStartDate: h.backupStartDate.toISOString(),
        backupFinishDate: h.backupFinishDate.toISOString(),
        firstLsn: h.firstLsn.toString(),
        lastLsn: h.lastLsn.toString(),
        checkpointLsn: h.checkpointLsn.toString(),
        databaseBackupLsn: h.databaseBackupLsn.toString(),
      })),
      operationMs: this.operationMs,
    };
  }
}

export function tableKey(schema: string, name: string): string {
  return `${schema.toLowerCase()}.${name.toLowerCase()}`;
}

export function contentOf(db: Database): DatabaseContent {
  return {
    tables: [...db.tables.values()].map((t) => ({
      schema: t.schema,
      name: t.name,
      columns: t.columns.map((c) => ({ name: c.name, type: typeText(c.type), nullable: c.nullable })),
      rows: t.rows.map((r) => r.map(toJson)),
    })),
  };
}

export function applyContent(db: Database, content: DatabaseContent): void {
  db.tables.clear();
  for (const t of content.tables) {
    const columns = t.columns.map((c) => ({ name: c.name, type: parseType(c.type), nullable: c.nullable }));
    db.tables.set(tableKey(t.schema, t.name), { schema: t.schema, name: t.name, columns, rows: t.rows.map((r) => columns.map((c, i) => fromJson(r[i], c.type))) });
  }
}
