// Fidelity: a second, independent TDS client (FreeTDS tsql, SQL batches) gets the same answers
// from the simulator as the mssql driver (RPC sp_executesql). If the simulator only "worked" for
// tedious' quirks, this would disagree.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqlConnection, SqlError, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { SqlSimulator } from '../sql-simulator/server';

const TSQL = '/usr/bin/tsql';
const PASSWORD = 'Fidelity-Passw0rd';
const describeIfTsql = existsSync(TSQL) ? describe : describe.skip;

interface TsqlResult {
  stdout: string;
  stderr: string;
}

function tsql(port: number, sql: string, options: { password?: string; database?: string; config?: string } = {}): Promise<TsqlResult> {
  return new Promise((resolve) => {
    // With a freetds.conf, connect through its [sim] entry (e.g. to require encryption).
    const target = options.config ? ['-S', 'sim'] : ['-H', '127.0.0.1', '-p', String(port)];
    const args = [...target, '-U', 'sa', '-P', options.password ?? PASSWORD, '-o', 'q'];
    if (options.database) args.push('-D', options.database);
    const env = { ...process.env, TDSVER: '7.4', LANG: 'C.UTF-8', ...(options.config ? { FREETDSCONF: options.config } : {}) };
    const child = execFile(TSQL, args, { env, timeout: 20_000 }, (_error, stdout, stderr) =>
      resolve({ stdout: String(stdout), stderr: String(stderr) }),
    );
    child.stdin!.end(`${sql}\ngo\nexit\n`);
  });
}

/** tsql's tab-separated output (header line, then rows) as objects of strings. */
function parseTable(stdout: string): Record<string, string>[] {
  const lines = stdout.split('\n').filter((l) => l.length > 0);
  const header = lines[0].split('\t');
  return lines.slice(1).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [header[i], v])));
}

/** A driver value as tsql prints it. */
function asText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return String(v);
}

function sameValue(driver: unknown, text: string): boolean {
  const mine = asText(driver);
  if (mine === text) return true;
  return typeof driver === 'number' && Number(text) === driver; // numeric(10,2): 1.5 vs 1.50
}

const seed = {
  logins: [{ name: 'sa', password: PASSWORD }],
  databases: [
    {
      name: 'Octopus',
      tables: [
        {
          name: 'Thing',
          columns: [
            { name: 'Id', type: 'nvarchar(50)', nullable: false },
            { name: 'Number', type: 'int' },
            { name: 'Big', type: 'bigint' },
            { name: 'Flag', type: 'bit' },
            { name: 'Blob', type: 'varbinary(max)' },
            { name: 'Json', type: 'nvarchar(max)' },
          ],
          rows: [
            ['Things-1', 1, '9007199254740993', true, { base64: 'AAEC/w==' }, '{"Name":"Überprüfung データ"}'],
            ['Things-2', -5, '-1', false, null, null],
          ],
        },
      ],
    },
  ],
};

describeIfTsql('simulator fidelity: FreeTDS tsql and mssql get the same answers', () => {
  let sim: SqlSimulator;
  let sql: SqlConnection;
  beforeAll(async () => {
    sim = await SqlSimulator.start({ seed });
    sql = await openSqlConnection(`Server=127.0.0.1,${sim.port};Database=Octopus;User ID=sa;Password=${PASSWORD};Encrypt=False`, quietEngineContext());
  });
  afterAll(async () => {
    await sql?.close();
    await sim?.stop();
  });

  const queries = [
    'SELECT Id, Number, Flag, Blob, Json FROM dbo.Thing ORDER BY Id',
    "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS version, CAST(SERVERPROPERTY('EngineEdition') AS int) AS engineEdition, DB_NAME() AS db, DB_ID(N'Octopus') AS id",
    "SELECT CAST(12345678901 AS bigint) AS big, CAST(1.5 AS numeric(10,2)) AS n, CONVERT(varchar(23), CAST('2026-01-02T03:04:05.123' AS datetime2(3)), 126) AS d2, 0x0102ff AS bin, CAST(N'x' AS varchar(10)) AS vc, CAST(NULL AS int) AS nul, QUOTENAME(N'a]b') AS q",
    "SELECT name, recovery_model_desc AS recovery FROM sys.databases WHERE name IN (N'master', N'Octopus') ORDER BY name",
    'SELECT COUNT(*) AS n, MAX(Number) AS highest FROM dbo.Thing',
  ];

  test.each(queries)('%s', async (query) => {
    const viaDriver = (await sql.query<Record<string, unknown>>(query)).rows;
    const viaTsql = await tsql(sim.port, query, { database: 'Octopus' });
    expect(viaTsql.stderr).toBe('');
    const rows = parseTable(viaTsql.stdout);
    expect(rows).toHaveLength(viaDriver.length);
    rows.forEach((row, i) => {
      expect(Object.keys(row)).toEqual(Object.keys(viaDriver[i]));
      for (const [column, text] of Object.entries(row)) {
        if (!sameValue(viaDriver[i][column], text)) throw new Error(`${column}: driver ${asText(viaDriver[i][column])} vs tsql ${text}`);
      }
    });
  });

  test('bigint beyond 2^53 arrives exactly in both clients', async () => {
    const viaDriver = (await sql.query<{ Big: string }>("SELECT Big FROM dbo.Thing WHERE Id = N'Things-1'")).rows[0].Big;
    const viaTsql = parseTable((await tsql(sim.port, "SELECT Big FROM dbo.Thing WHERE Id = N'Things-1'", { database: 'Octopus' })).stdout)[0].Big;
    expect(viaDriver).toBe('9007199254740993');
    expect(viaTsql).toBe('9007199254740993');
  });

  test('errors: same number and text', async () => {
    const viaDriver = await sql.query('SELECT * FROM dbo.Missing').catch((e: SqlError) => e);
    expect(viaDriver).toBeInstanceOf(SqlError);
    const viaTsql = await tsql(sim.port, 'SELECT * FROM dbo.Missing', { database: 'Octopus' });
    expect((viaDriver as SqlError).number).toBe(208);
    expect(viaTsql.stderr).toMatch(/Msg 208 \(severity 16, state 1\)/);
    expect(viaTsql.stderr).toContain((viaDriver as SqlError).serverMessages[0].message);
  });

  test('login failures: 18456 for a wrong password, 4060 for an unknown database', async () => {
    const wrong = await tsql(sim.port, 'SELECT 1', { password: 'nope' });
    expect(wrong.stderr).toMatch(/Msg 18456[\s\S]*Login failed for user 'sa'/);
    const unknown = await tsql(sim.port, 'SELECT 1', { database: 'NoSuchDb' });
    expect(unknown.stderr).toMatch(/Msg 4060[\s\S]*Cannot open database "NoSuchDb"/);
  });

  test('TLS inside PRELOGIN: FreeTDS (GnuTLS) and tedious both negotiate it with the simulator', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'odr-tds-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      const tlsSim = await SqlSimulator.start({ seed, tls: { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')), mode: 'prelogin', forceEncryption: true } });
      try {
        const config = path.join(dir, 'freetds.conf');
        writeFileSync(config, `[sim]\n\thost = 127.0.0.1\n\tport = ${tlsSim.port}\n\ttds version = 7.4\n\tencryption = require\n`);
        const query = "SELECT Id, Json FROM dbo.Thing WHERE Id = N'Things-1'";
        const viaTsql = await tsql(tlsSim.port, query, { database: 'Octopus', config });
        expect(viaTsql.stderr).toBe('');
        const c = await openSqlConnection(`Server=127.0.0.1,${tlsSim.port};Database=Octopus;User ID=sa;Password=${PASSWORD};Encrypt=True;TrustServerCertificate=True`, quietEngineContext());
        try {
          const viaDriver = (await c.query<{ Id: string; Json: string }>(query)).rows;
          expect(parseTable(viaTsql.stdout)).toEqual(viaDriver);
        } finally {
          await c.close();
        }
        // The server forces encryption, so every login above went through TLS (tsql's, and
        // mssql's two: connect() logs in once to probe, then again for the pooled connection).
        expect(tlsSim.events.filter((e) => e.kind === 'login')).toHaveLength(3);
        expect(tlsSim.events.filter((e) => e.kind === 'login-failed')).toHaveLength(0);
      } finally {
        await tlsSim.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('INFO messages (PRINT) reach tsql too', async () => {
    const printed = await tsql(sim.port, "PRINT N'hello from the simulator'");
    expect(printed.stdout + printed.stderr).toContain('hello from the simulator');
  });
});
