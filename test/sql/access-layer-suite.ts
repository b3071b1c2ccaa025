// Access-layer tests that hold for any SQL Server: run against the simulator (test/sql) and, when
// OCTOPUS_DR_LIVE_SQL is set, against a real server (test/live). Only T-SQL both understand.
import { openSqlConnection, param, SqlError, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';

export interface SuiteTarget {
  /** A sysadmin connection string (connected to master). */
  connectionString: () => string;
  /** The password inside it, to prove it never leaks. */
  password: () => string;
  /** Forces a transport (OCTOPUSDR_SQL_TRANSPORT) for the whole suite; default: auto. */
  transport?: 'tedious' | 'sqlclient';
}

/** Sets OCTOPUSDR_SQL_TRANSPORT for the enclosing describe and restores it afterwards. */
export function useTransport(transport: 'tedious' | 'sqlclient' | undefined): void {
  let before: string | undefined;
  beforeAll(() => {
    before = process.env.OCTOPUSDR_SQL_TRANSPORT;
    if (transport) process.env.OCTOPUSDR_SQL_TRANSPORT = transport;
  });
  afterAll(() => {
    if (before === undefined) delete process.env.OCTOPUSDR_SQL_TRANSPORT;
    else process.env.OCTOPUSDR_SQL_TRANSPORT = before;
  });
}

const HOSTILE_NAMES = [
  "odr]bracket",
  "odr'quote",
  'odr;semicolon',
  'odr--comment',
  'odr ]]; DROP DATABASE master; --',
  'odr-Überprüfung-データベース-😀',
  `odr${'x'.repeat(125)}`, // 128 characters: the longest name SQL Server takes
];

/** Awaits a statement that must fail, and returns its SqlError. */
export async function expectSqlError(promise: Promise<unknown>): Promise<SqlError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(SqlError);
    return e as SqlError;
  }
  throw new Error('expected the statement to fail');
}

export function accessLayerSuite(target: SuiteTarget): void {
  // Off Windows, System.Data.SqlClient's managed network layer cannot send the cancel (attention)
  // while it waits for a server that sends nothing; it can between messages. So there the statement
  // to cancel streams messages (as BACKUP and RESTORE do); test/sql/sqlclient-transport.test.ts
  // covers the silent case (the helper is stopped). On Windows (native SNI) both work.
  const silentCancelUnsupported = () => target.transport === 'sqlclient' && process.platform !== 'win32';
  const longStatement = () =>
    silentCancelUnsupported()
      ? Array.from({ length: 100 }, (_, i) => `RAISERROR(N'step ${i}', 0, 1) WITH NOWAIT; WAITFOR DELAY '00:00:00.200';`).join(' ')
      : "WAITFOR DELAY '00:00:20'";

  let sql: SqlConnection;
  const secrets: string[] = [];
  useTransport(target.transport);

  beforeAll(async () => {
    sql = await openSqlConnection(target.connectionString(), quietEngineContext({ setSecret: (s) => void secrets.push(s) }));
    if (target.transport) expect(sql.transportName).toBe(target.transport);
  });
  afterAll(async () => {
    await sql?.close();
  });

  test('registers the password and the connection string as secrets', () => {
    expect(secrets).toContain(target.password());
    expect(secrets).toContain(target.connectionString());
  });

  test('server facts: edition, version, default paths, separator', async () => {
    const facts = await sql.serverFacts();
    expect(facts.majorVersion).toBeGreaterThanOrEqual(13);
    expect(facts.edition).toMatch(/Edition/);
    expect(['/', '\\']).toContain(facts.pathSeparator);
    expect(facts.defaultDataPath).toBeTruthy();
    expect(facts.defaultBackupPath).toBeTruthy();
    expect(typeof facts.supportsBackupCompression).toBe('boolean');
    expect(await sql.databaseFacts('master')).toEqual({ name: 'master', recoveryModel: 'SIMPLE', state: 'ONLINE', userAccess: 'MULTI_USER' });
    expect(await sql.databaseFacts('octopus-dr-no-such-database')).toBeUndefined();
  });

  test('typed parameters round-trip', async () => {
    const when = new Date(Date.UTC(2026, 10, 27, 3, 4, 5, 678));
    const big = 9007199254740993n; // 2^53 + 1: not representable as a JS number
    const binary = Buffer.from([0, 1, 2, 250, 255]);
    const long = 'ä'.repeat(5000); // > 4000 characters: nvarchar(max)
    const { rows } = await sql.query<Record<string, unknown>>(
      'SELECT @i AS i, @b AS b, @bit AS bit, @s AS s, @long AS long, @v AS v, @vmax AS vmax, @bin AS bin, @dt AS dt, @dt2 AS dt2, @dec AS dec, @n AS n',
      {
        i: -2147483648,
        b: param.bigint(big),
        bit: true,
        s: 'plain',
        long,
        v: param.varchar('ascii text', 50),
        vmax: param.varchar('v'.repeat(9000)),
        bin: binary,
        dt: param.datetime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 0))),
        dt2: when,
        dec: param.decimal('12345.6789', 18, 4),
        n: param.nvarchar(null, 10),
      },
    );
    const row = rows[0];
    expect(row.i).toBe(-2147483648);
    expect(String(row.b)).toBe(big.toString());
    expect(row.bit).toBe(true);
    expect(row.s).toBe('plain');
    expect(row.long).toBe(long);
    expect(row.v).toBe('ascii text');
    expect(row.vmax).toBe('v'.repeat(9000));
    expect(Buffer.compare(row.bin as Buffer, binary)).toBe(0);
    expect((row.dt as Date).toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect((row.dt2 as Date).toISOString()).toBe(when.toISOString());
    expect(row.dec).toBeCloseTo(12345.6789, 4);
    expect(row.n).toBeNull();
  });

  test.each(HOSTILE_NAMES)('hostile name %j round-trips as a value and as an identifier', async (name) => {
    const { rows } = await sql.query<{ v: string; q: string }>('SELECT @v AS v, QUOTENAME(@v) AS q', { v: param.nvarchar(name, 128) });
    expect(rows[0].v).toBe(name);
    expect(rows[0].q).toBe(`[${name.replace(/]/g, ']]')}]`);
    await sql.query('CREATE DATABASE {{db}}', {}, { identifiers: { db: name } });
    try {
      const facts = await sql.databaseFacts(name);
      expect(facts?.name).toBe(name);
      await sql.query('ALTER DATABASE {{db}} SET RECOVERY SIMPLE', {}, { identifiers: { db: name } });
      expect((await sql.databaseFacts(name))?.recoveryModel).toBe('SIMPLE');
    } finally {
      await sql.query('DROP DATABASE {{db}}', {}, { identifiers: { db: name } });
    }
    expect(await sql.databaseFacts(name)).toBeUndefined();
    expect(await sql.databaseFacts('master')).toBeDefined();
  });

  test('a name longer than 128 characters is refused before anything is sent', async () => {
    const error = await expectSqlError(sql.query('ALTER DATABASE {{db}} SET MULTI_USER', {}, { identifiers: { db: 'y'.repeat(129) } }));
    expect(error.kind).toBe('identifier');
    expect(error.message).toMatch(/129 characters/);
  });

  test('INFO messages stream while the statement runs', async () => {
    const seen: { percent: number; at: number }[] = [];
    const started = Date.now();
    const statement = [10, 20, 30].map((p) => `RAISERROR(N'${p} percent processed.', 0, 1) WITH NOWAIT; WAITFOR DELAY '00:00:00.300';`).join(' ');
    const result = await sql.runLong(statement, {}, { onProgress: (percent) => seen.push({ percent, at: Date.now() - started }) });
    const finished = Date.now() - started;
    expect(seen.map((s) => s.percent)).toEqual([10, 20, 30]);
    // The first message arrived long before the statement ended: streamed, not buffered.
    expect(finished - seen[0].at).toBeGreaterThanOrEqual(500);
    expect(result.infoMessages.map((m) => m.message)).toEqual(['10 percent processed.', '20 percent processed.', '30 percent processed.']);
  });

  test('cancel sends an attention, waits for the acknowledgement, and the connection stays usable', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const error = await expectSqlError(sql.runLong(longStatement(), {}, { signal: controller.signal }));
    expect(error.kind).toBe('cancelled');
    expect(error.message).toMatch(/acknowledged the cancel/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await sql.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  test('our watchdog cancels a statement that runs too long', async () => {
    const error = await expectSqlError(sql.runLong(longStatement(), {}, { timeoutMs: 300 }));
    expect(error.kind).toBe('timeout');
    expect(error.message).toMatch(/did not finish within 300 ms/);
    if (!silentCancelUnsupported()) {
      const idle = await expectSqlError(sql.runLong("WAITFOR DELAY '00:00:20'", {}, { idleTimeoutMs: 300 }));
      expect(idle.kind).toBe('timeout');
      expect(idle.message).toMatch(/sent nothing for 300 ms/);
    }
    expect((await sql.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  test('server errors keep the number and text, root cause first, with advice', async () => {
    const error = await expectSqlError(
      sql.runLong('BACKUP DATABASE @db TO DISK = @file', { db: 'master', file: '/octopus-dr-no-such-folder/x/master.bak' }),
    );
    expect(error.kind).toBe('server');
    expect(error.number).toBe(3201);
    expect(error.serverMessages.map((m) => m.number)).toEqual([3201, 3013]);
    expect(error.message).toMatch(/SQL Server service on the server host/);
    expect(error.message).toMatch(/SQL Server error 3201: Cannot open backup device/);
  });

  test('wrong password: login error 18456, no secret in the message', async () => {
    const error = await expectSqlError(openSqlConnection(`${target.connectionString()};Password="Wrong-${target.password().replace(/"/g, '""')}-x"`, quietEngineContext()));
    expect(error.kind).toBe('login');
    expect(error.number).toBe(18456);
    expect(error.message).toMatch(/rejected the login/);
    expect(error.message).not.toContain(target.password());
  });

  test('unknown database: error 4060 names the database', async () => {
    const error = await expectSqlError(openSqlConnection(`${target.connectionString()};Database=octopus-dr-missing`, quietEngineContext()));
    expect(error.kind).toBe('login');
    expect(error.number).toBe(4060);
    expect(error.message).toMatch(/'octopus-dr-missing' .* does not exist/);
    expect(error.serverMessages.map((m) => m.number)).toContain(18456);
    expect(error.message).not.toContain(target.password());
  });

  // Off Windows (and off a domain) SqlClient finds no Kerberos ticket; test/live proves the sign-in.
  (process.platform === 'win32' ? test.skip : test)('Integrated Security goes through SqlClient; without a Windows identity the sign-in fails clearly', async () => {
    const server = /(?:server|data source)\s*=\s*([^;]+)/i.exec(target.connectionString())![1];
    const error = await expectSqlError(openSqlConnection(`Server=${server};Integrated Security=SSPI;Database=master;Encrypt=False`, quietEngineContext()));
    expect(error.kind).toBe('login');
    expect(error.message).toMatch(/Windows identity \(Integrated Security\) failed/);
    expect(error.message).toMatch(/kinit/);
    expect(error.message).not.toMatch(/^\s+at /m);
  });
}
