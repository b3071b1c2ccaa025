// The SQL access layer through the real mssql/tedious driver, against the TDS simulator.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqlConnection, param, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { SqlSimulator } from '../sql-simulator/server';
import { accessLayerSuite, expectSqlError } from './access-layer-suite';

const PASSWORD = 'Sim;Pass=w0rd"x';
const seed = {
  logins: [{ name: 'sa', password: PASSWORD }, { name: 'octo', password: 'Octo-Passw0rd' }],
  databases: [
    {
      name: 'Octopus',
      recoveryModel: 'FULL' as const,
      tables: [{ name: 'Thing', columns: [{ name: 'Id', type: 'nvarchar(50)', nullable: false }, { name: 'Json', type: 'nvarchar(max)' }], rows: [['Things-1', '{"a":1}']] }],
    },
  ],
  operationMs: 400,
};

let sim: SqlSimulator;
let work: string;
const connectionString = (extra = '') => `Server=127.0.0.1,${sim.port};Database=master;User ID=sa;Password="${PASSWORD.replace(/"/g, '""')}";Encrypt=False${extra}`;

beforeAll(async () => {
  sim = await SqlSimulator.start({ seed });
  work = mkdtempSync(path.join(os.tmpdir(), 'odr-sql-'));
});
afterAll(async () => {
  await sim?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('access layer (shared suite) against the simulator', () => {
  accessLayerSuite({ connectionString: () => connectionString(), password: () => PASSWORD });
});

describe('access layer (shared suite) against the simulator through .NET SqlClient (OCTOPUSDR_SQL_TRANSPORT=sqlclient)', () => {
  accessLayerSuite({ connectionString: () => connectionString(), password: () => PASSWORD, transport: 'sqlclient' });
});

describe('access layer against the simulator: protocol and model details', () => {
  let sql: SqlConnection;
  beforeAll(async () => {
    sql = await openSqlConnection(connectionString(), quietEngineContext());
  });
  afterAll(async () => {
    await sql?.close();
  });

  test('verbose log lines name the server and database but never a secret', async () => {
    const lines: string[] = [];
    const c = await openSqlConnection(connectionString(';Pooling=False'), quietEngineContext({ log: { info: () => undefined, warn: () => undefined, verbose: (m) => void lines.push(m) } }));
    await c.close();
    await openSqlConnection(connectionString(';Database=NoSuchDb'), quietEngineContext({ log: { info: () => undefined, warn: () => undefined, verbose: (m) => void lines.push(m) } })).catch(() => undefined);
    expect(lines.join('\n')).toMatch(/Connecting to SQL Server 127\.0\.0\.1,\d+, database 'master' \(sql-login\) over tedious/);
    expect(lines.join('\n')).toMatch(/keywords with no effect here: pooling/);
    expect(lines.join('\n')).not.toContain(PASSWORD);
  });

  test('the database option overrides the connection string (a restore connects to master)', async () => {
    const c = await openSqlConnection(connectionString(), quietEngineContext(), { database: 'Octopus' });
    try {
      expect(c.database).toBe('Octopus');
      expect((await c.query<{ db: string }>('SELECT DB_NAME() AS db')).rows).toEqual([{ db: 'Octopus' }]);
    } finally {
      await c.close();
    }
  });

  test('values travel as typed sp_executesql parameters, never inside the statement text', async () => {
    const hostile = "x'; DROP DATABASE Octopus; --";
    await sql.query('SELECT @v AS v', { v: hostile });
    const request = sim.events.filter((e) => e.kind === 'request').pop()!;
    expect(request.detail).toBe('SELECT @v AS v');
    expect(request.params?.map((p) => [p.name, p.type.name, p.value])).toContainEqual(['@v', 'nvarchar', hostile]);
    await sql.query('ALTER DATABASE {{db}} SET MULTI_USER', {}, { identifiers: { db: 'Octopus' } });
    const alter = sim.events.filter((e) => e.kind === 'request').pop()!;
    expect(alter.detail).not.toContain('Octopus');
    expect(alter.detail).toContain('QUOTENAME(@id_db)');
  });

  test('BACKUP streams STATS progress over time, then 4035/3014; the file appears', async () => {
    const file = path.join(work, 'octopus-full.bak');
    const progress: { percent: number; at: number }[] = [];
    const started = Date.now();
    const result = await sql.runLong(
      'BACKUP DATABASE @db TO DISK = @file WITH COPY_ONLY, CHECKSUM, FORMAT, INIT, STATS = 25',
      { db: param.nvarchar('Octopus', 128), file: param.nvarchar(file, 4000) },
      { onProgress: (percent) => progress.push({ percent, at: Date.now() - started }) },
    );
    expect(progress.map((p) => p.percent)).toEqual([25, 50, 75, 100]);
    expect(progress[3].at - progress[0].at).toBeGreaterThanOrEqual(200);
    expect(result.infoMessages.map((m) => m.number)).toEqual([3211, 3211, 3211, 3211, 4035, 3014]);
    expect(existsSync(file)).toBe(true);
    const header = await sql.query<{ DatabaseName: string; BackupType: number; IsCopyOnly: boolean; HasBackupChecksums: boolean }>('RESTORE HEADERONLY FROM DISK = @file', { file });
    expect(header.rows).toMatchObject([{ DatabaseName: 'Octopus', BackupType: 1, IsCopyOnly: true, HasBackupChecksums: true }]);
    const verified = await sql.runLong('RESTORE VERIFYONLY FROM DISK = @file WITH CHECKSUM', { file });
    expect(verified.infoMessages.map((m) => m.number)).toContain(3262);
  });

  test('cancel mid-BACKUP: attention acknowledged, no backup file left, connection usable', async () => {
    const file = path.join(work, 'cancelled.bak');
    const controller = new AbortController();
    const error = await expectSqlError(
      sql.runLong('BACKUP DATABASE @db TO DISK = @file WITH STATS = 10', { db: 'Octopus', file }, {
        signal: controller.signal,
        onProgress: (percent) => percent >= 20 && controller.abort(),
      }),
    );
    expect(error.kind).toBe('cancelled');
    const kinds = sim.events.map((e) => e.kind);
    expect(kinds.lastIndexOf('attention-ack')).toBeGreaterThan(kinds.lastIndexOf('attention'));
    expect(existsSync(file)).toBe(false);
    expect((await sql.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  test('error translation by number: 3159, 3154, 3241, 3183, 3101, 3117', async () => {
    const file = path.join(work, 'for-errors.bak');
    await sql.runLong('BACKUP DATABASE @db TO DISK = @file WITH CHECKSUM, INIT', { db: 'Octopus', file });

    const tail = await expectSqlError(sql.runLong('RESTORE DATABASE @db FROM DISK = @file', { db: 'Octopus', file }));
    expect(tail.number).toBe(3159);
    expect(tail.message).toMatch(/tail of its log/);

    await sql.runLong('RESTORE DATABASE @db FROM DISK = @file WITH MOVE @d TO @dp, MOVE @l TO @lp', {
      db: 'Other', file, d: 'Octopus', dp: '/data/Other.mdf', l: 'Octopus_log', lp: '/data/Other_log.ldf',
    });
    const other = await expectSqlError(sql.runLong('RESTORE DATABASE @db FROM DISK = @file', { db: 'Other', file }));
    expect(other.number).toBe(3154);
    expect(other.message).toMatch(/different database/);

    const garbage = path.join(work, 'garbage.bak');
    writeFileSync(garbage, 'this is not a backup');
    const malformed = await expectSqlError(sql.runLong('RESTORE VERIFYONLY FROM DISK = @file', { file: garbage }));
    expect(malformed.number).toBe(3241);

    const corrupt = path.join(work, 'corrupt.bak');
    const bytes = readFileSync(file);
    bytes[bytes.length - 40] ^= 0xff; // a byte of the content, not of the framing
    writeFileSync(corrupt, bytes);
    const damaged = await expectSqlError(sql.runLong('RESTORE VERIFYONLY FROM DISK = @file WITH CHECKSUM', { file: corrupt }));
    expect(damaged.number).toBe(3183);
    expect(damaged.message).toMatch(/integrity check/);

    const busy = await openSqlConnection(connectionString(';Database=Other'), quietEngineContext());
    try {
      const inUse = await expectSqlError(sql.runLong('RESTORE DATABASE @db FROM DISK = @file WITH REPLACE', { db: 'Other', file }));
      expect(inUse.number).toBe(3101);
      expect(inUse.message).toMatch(/in use/);
    } finally {
      await busy.close();
    }

    const notRestoring = await expectSqlError(sql.runLong('RESTORE LOG @db FROM DISK = @file', { db: 'Other', file }));
    expect(notRestoring.number).toBe(3117);
  });

  test('1844: compression on Express', async () => {
    const express = await SqlSimulator.start({ seed: { ...seed, server: { edition: 'Express Edition (64-bit)', engineEdition: 4, productVersion: '14.0.3465.1', defaultBackupPath: null } } });
    try {
      const c = await openSqlConnection(`Server=127.0.0.1,${express.port};User ID=octo;Password=Octo-Passw0rd;Encrypt=False`, quietEngineContext());
      try {
        const facts = await c.serverFacts();
        expect(facts).toMatchObject({ majorVersion: 14, supportsBackupCompression: false, engineEdition: 4 });
        // SQL Server 2017: no InstanceDefaultBackupPath, so the registry value is read.
        expect(facts.defaultBackupPath).toBe('/var/opt/mssql/Backup');
        const error = await expectSqlError(c.runLong('BACKUP DATABASE @db TO DISK = @file WITH COMPRESSION', { db: 'Octopus', file: path.join(work, 'x.bak') }));
        expect(error.number).toBe(1844);
        expect(error.message).toMatch(/cannot compress/);
      } finally {
        await c.close();
      }
    } finally {
      await express.stop();
    }
  });

  test('server facts: registry fallback before 2019 (seeded value, Windows paths), none on Azure SQL', async () => {
    const old = await SqlSimulator.start({
      seed: {
        ...seed,
        server: {
          productVersion: '13.0.6300.2', edition: 'Standard Edition (64-bit)', engineEdition: 2, pathSeparator: '\\',
          defaultDataPath: 'D:\\Data', defaultLogPath: 'L:\\Logs', registry: { 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSSQLServer\\MSSQLServer\\BackupDirectory': 'E:\\Backup' },
        },
      },
    });
    const azure = await SqlSimulator.start({ seed: { ...seed, server: { productVersion: '12.0.2000.8', edition: 'SQL Azure', engineEdition: 5 } } });
    try {
      const c = await openSqlConnection(`Server=127.0.0.1,${old.port};User ID=octo;Password=Octo-Passw0rd;Encrypt=False`, quietEngineContext());
      expect(await c.serverFacts()).toMatchObject({
        majorVersion: 13, supportsBackupCompression: true, defaultBackupPath: 'E:\\Backup', defaultDataPath: 'D:\\Data', defaultLogPath: 'L:\\Logs', pathSeparator: '\\',
      });
      await c.close();
      const a = await openSqlConnection(`Server=127.0.0.1,${azure.port};User ID=octo;Password=Octo-Passw0rd;Encrypt=False`, quietEngineContext());
      expect(await a.serverFacts()).toMatchObject({ majorVersion: 12, engineEdition: 5, defaultBackupPath: null });
      await a.close();
      expect(azure.events.some((e) => e.kind === 'request' && /xp_instance_regread/.test(e.detail ?? ''))).toBe(false);
    } finally {
      await old.stop();
      await azure.stop();
    }
  });

  test('full + log chain restore WITH NORECOVERY then STOPAT brings back the rows as of that time', async () => {
    const full = path.join(work, 'chain-full.bak');
    const log1 = path.join(work, 'chain-1.trn');
    await sql.runLong('BACKUP DATABASE @db TO DISK = @file WITH INIT', { db: 'Octopus', file: full });
    await sql.query("INSERT INTO Octopus.dbo.Thing (Id, Json) VALUES (N'Things-2', N'{}')");
    await new Promise((r) => setTimeout(r, 50));
    const between = new Date();
    await new Promise((r) => setTimeout(r, 50));
    await sql.query("INSERT INTO Octopus.dbo.Thing (Id, Json) VALUES (N'Things-3', N'{}')");
    await sql.runLong('BACKUP LOG @db TO DISK = @file WITH INIT', { db: 'Octopus', file: log1 });
    const move = { d: 'Octopus', dp: '/data/Pit.mdf', l: 'Octopus_log', lp: '/data/Pit_log.ldf' };
    await sql.runLong('RESTORE DATABASE @db FROM DISK = @file WITH NORECOVERY, MOVE @d TO @dp, MOVE @l TO @lp', { db: 'Pit', file: full, ...move });
    expect((await sql.databaseFacts('Pit'))?.state).toBe('RESTORING');
    await sql.runLong('RESTORE LOG @db FROM DISK = @file WITH STOPAT = @stopAt, RECOVERY', { db: 'Pit', file: log1, stopAt: param.nvarchar(between.toISOString().slice(0, 23), 30) });
    const { rows } = await sql.query<{ Id: string }>('SELECT Id FROM Pit.dbo.Thing ORDER BY Id');
    expect(rows.map((r) => r.Id)).toEqual(['Things-1', 'Things-2']);
    const history = await sql.query<{ type: string }>("SELECT type FROM msdb.dbo.backupset WHERE database_name = @db ORDER BY backup_set_id", { db: 'Octopus' });
    expect(history.rows.map((r) => r.type)).toContain('L');
  });

  describe('TLS', () => {
    let dir: string;
    let key: Buffer;
    let cert: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'odr-tls-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      key = readFileSync(path.join(dir, 'key.pem'));
      cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const quotedPassword = `"${PASSWORD.replace(/"/g, '""')}"`;

    test('TDS 8 (Encrypt=Strict): connects when the certificate is trusted, fails clearly when not', async () => {
      const tlsSim = await SqlSimulator.start({ seed, tls: { key, cert } });
      try {
        const cs = `Server=localhost,${tlsSim.port};User ID=sa;Password=${quotedPassword};Encrypt=Strict`;
        const c = await openSqlConnection(cs, quietEngineContext(), { trustedCertificates: cert });
        expect((await c.query<{ v: string }>('SELECT @v AS v', { v: 'über TLS' })).rows[0].v).toBe('über TLS');
        await c.close();
        const error = await expectSqlError(openSqlConnection(cs, quietEngineContext()));
        expect(error.kind).toBe('connection');
        expect(error.message).toMatch(/TLS|certificate/i);
        expect(error.message).not.toContain(PASSWORD);
      } finally {
        await tlsSim.stop();
      }
    });

    test('TDS 7.4 (Encrypt=True): TLS negotiated inside PRELOGIN, with TrustServerCertificate or a trusted CA', async () => {
      const tlsSim = await SqlSimulator.start({ seed, tls: { key, cert, mode: 'prelogin' } });
      try {
        const base = `Server=localhost,${tlsSim.port};User ID=sa;Password=${quotedPassword};Encrypt=True`;
        for (const [cs, options] of [[`${base};TrustServerCertificate=True`, {}], [base, { trustedCertificates: cert }]] as const) {
          const c = await openSqlConnection(cs, quietEngineContext(), options);
          const long = 'ü'.repeat(20_000); // several TLS records and TDS packets
          expect((await c.query<{ v: string }>('SELECT @v AS v', { v: long })).rows[0].v).toBe(long);
          await c.close();
        }
        const untrusted = await expectSqlError(openSqlConnection(base, quietEngineContext()));
        expect(untrusted.kind).toBe('connection');
        expect(untrusted.message).toMatch(/certificate/i);
        expect(untrusted.message).not.toContain(PASSWORD);
      } finally {
        await tlsSim.stop();
      }
    });

    test('Encrypt=True against a server that does not negotiate TLS fails (tedious 19 would go on in plaintext)', async () => {
      const error = await expectSqlError(openSqlConnection(connectionString(';Encrypt=True'), quietEngineContext()));
      expect(error.kind).toBe('connection');
      expect(error.code).toBe('EENCRYPT');
      expect(error.message).toMatch(/did not negotiate encryption/);
    });

    test('a server that forces encryption refuses Encrypt=False with advice', async () => {
      const tlsSim = await SqlSimulator.start({ seed, tls: { key, cert, mode: 'prelogin', forceEncryption: true } });
      try {
        const error = await expectSqlError(openSqlConnection(`Server=localhost,${tlsSim.port};User ID=sa;Password=${quotedPassword};Encrypt=False`, quietEngineContext()));
        expect(error.kind).toBe('connection');
        expect(error.message).toMatch(/requires encrypted connections/);
        expect(error.message).toMatch(/set Encrypt=True/);
      } finally {
        await tlsSim.stop();
      }
    });
  });

  test('faults: a connection dropped mid-stream and a slow first packet', async () => {
    sim.faults.push({ match: /^SELECT 42/, dropMidStream: true });
    const dropped = await expectSqlError(sql.query('SELECT 42 AS answer'));
    expect(dropped.kind).toBe('connection');
    // The pool replaces the dead connection on the next statement.
    expect((await sql.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);

    sim.faults.push({ match: /^SELECT 43/, delayFirstPacketMs: 600 });
    const slow = await expectSqlError(sql.query('SELECT 43 AS answer', {}, { timeoutMs: 200 }));
    expect(slow.kind).toBe('timeout');
    sim.faults.push({ match: /^SELECT 44/, delayFirstPacketMs: 300 });
    expect((await sql.runLong<{ answer: number }>('SELECT 44 AS answer')).rows).toEqual([{ answer: 44 }]);
  });

  test('simulator SQL: LEFT JOIN, correlated scalar subquery, IF EXISTS', async () => {
    const { rows } = await sql.query<{ name: string; files: number; firstFile: string | null; history: number | null }>(
      [
        'SELECT d.name, (SELECT COUNT(*) FROM sys.master_files AS f WHERE f.database_id = d.database_id) AS files,',
        '  (SELECT f.name FROM sys.master_files AS f WHERE f.database_id = d.database_id AND f.file_id = 1) AS firstFile,',
        '  h.backup_set_id AS history',
        'FROM sys.databases AS d LEFT JOIN msdb.dbo.backupset AS h ON h.database_name = d.name AND h.backup_set_id = 0',
        'WHERE d.name IN (N\'master\', N\'Octopus\') ORDER BY d.name',
      ].join('\n'),
    );
    expect(rows).toEqual([
      { name: 'master', files: 2, firstFile: 'master', history: null },
      { name: 'Octopus', files: 2, firstFile: 'Octopus', history: null },
    ]);
    const exists = await sql.query<{ answer: string }>(
      "DECLARE @answer nvarchar(10) = N'no'; IF EXISTS (SELECT 1 FROM sys.databases WHERE name = @db) SET @answer = N'yes'; SELECT @answer AS answer;",
      { db: 'Octopus' },
    );
    expect(exists.rows).toEqual([{ answer: 'yes' }]);
    const tooMany = await expectSqlError(sql.query('SELECT (SELECT name FROM sys.databases) AS x'));
    expect(tooMany.number).toBe(512);
  });

  test('a statement the simulator does not know fails loudly, naming it', async () => {
    const error = await expectSqlError(sql.query('MERGE dbo.Thing AS t USING dbo.Other AS o ON 1 = 1 WHEN MATCHED THEN DELETE'));
    expect(error.number).toBe(50999);
    expect(error.message).toMatch(/does not understand this statement: MERGE dbo\.Thing/);
  });

  test('a Windows account the server does not trust: 18452 with advice, password not shown', async () => {
    const error = await expectSqlError(openSqlConnection(`Server=127.0.0.1,${sim.port};User ID=CORP\\svc-octo;Password=Win-Secret-987;Encrypt=False`, quietEngineContext()));
    expect(error.kind).toBe('login');
    expect(error.number).toBe(18452);
    expect(error.message).toMatch(/refused the Windows or Microsoft Entra sign-in of 'CORP\\svc-octo'/);
    expect(error.message).not.toContain('Win-Secret-987');
  });

  test('a disabled login and a wrong user are both 18456; no password in any message', async () => {
    const error = await expectSqlError(openSqlConnection(`Server=127.0.0.1,${sim.port};User ID=nobody;Password=Secret-Value-123;Encrypt=False`, quietEngineContext()));
    expect(error.number).toBe(18456);
    expect(error.message).toMatch(/'nobody'/);
    expect(JSON.stringify({ message: error.message, server: error.serverMessages })).not.toContain('Secret-Value-123');
  });
});
