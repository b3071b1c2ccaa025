// Integrated Security against a real SQL Server, signed in as the identity running the tests: the
// proof that the SqlClient transport works where it is meant to (a domain-joined Windows worker).
// Skipped unless OCTOPUS_DR_LIVE_SQL_INTEGRATED holds a connection string with Integrated
// Security=SSPI (or Trusted_Connection=True) and no Database; the identity needs sysadmin (the
// test creates and drops a scratch database). How to run it: docs/testing.md, "Live Integrated Security suite".
import { openSqlConnection, param, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { expectSqlError } from '../sql/access-layer-suite';

const live = process.env.OCTOPUS_DR_LIVE_SQL_INTEGRATED;
const describeLive = live ? describe : describe.skip;

describeLive('Integrated Security against a real SQL Server (OCTOPUS_DR_LIVE_SQL_INTEGRATED)', () => {
  let sql: SqlConnection;
  const scratch = `odr-integrated-${process.pid}`;

  beforeAll(async () => {
    sql = await openSqlConnection(`${live};Database=master`, quietEngineContext());
  }, 120_000);
  afterAll(async () => {
    await sql?.query('IF DB_ID(@db) IS NOT NULL EXEC (N\'DROP DATABASE \' + QUOTENAME(@db))', { db: param.nvarchar(scratch, 128) }).catch(() => undefined);
    await sql?.close();
  });

  test('signs in through .NET SqlClient as this process\'s Windows identity, no password anywhere', async () => {
    expect(sql.transportName).toBe('sqlclient');
    const { rows } = await sql.query<{ login: string; scheme: string }>(
      'SELECT SUSER_SNAME() AS login, auth_scheme AS scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID',
    );
    if (process.platform === 'win32' && process.env.USERDOMAIN && process.env.USERNAME) {
      expect(rows[0].login.toLowerCase()).toBe(`${process.env.USERDOMAIN}\\${process.env.USERNAME}`.toLowerCase());
    }
    expect(['KERBEROS', 'NTLM']).toContain(rows[0].scheme);
  });

  test('a session for the whole step: SINGLE_USER and back on the same connection', async () => {
    await sql.query('CREATE DATABASE {{db}}', {}, { identifiers: { db: scratch } });
    await sql.query('ALTER DATABASE {{db}} SET SINGLE_USER WITH ROLLBACK IMMEDIATE', {}, { identifiers: { db: scratch } });
    expect((await sql.databaseFacts(scratch))?.userAccess).toBe('SINGLE_USER');
    await sql.query('ALTER DATABASE {{db}} SET MULTI_USER', {}, { identifiers: { db: scratch } });
  });

  test('STATS progress streams, and a cancel is acknowledged with the connection still usable', async () => {
    const seen: number[] = [];
    await sql.runLong(
      [10, 20, 30].map((p) => `RAISERROR(N'%d percent processed.', 0, 1, ${p}) WITH NOWAIT; WAITFOR DELAY '00:00:00.300';`).join(' '),
      {},
      { onProgress: (percent) => seen.push(percent) },
    );
    expect(seen).toEqual([10, 20, 30]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const error = await expectSqlError(sql.runLong("WAITFOR DELAY '00:00:30'", {}, { signal: controller.signal }));
    expect(error.kind).toBe('cancelled');
    expect((await sql.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  test('server errors keep their numbers through SqlClient', async () => {
    const error = await expectSqlError(sql.runLong('BACKUP DATABASE @db TO DISK = @file', { db: scratch, file: 'Z:\\octopus-dr-no-such-folder\\x.bak' }));
    expect(error.serverMessages.map((m) => m.number)).toEqual([3201, 3013]);
  });
});
