// The SqlClient transport (PowerShell helper around .NET System.Data.SqlClient): how it is chosen,
// how it fails, what it exposes, and the helper script itself. The shared access-layer suite runs
// through it too (test/sql/access-layer.test.ts), and so do the database suites (jest project "sqlclient").
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqlConnection, param, parseSqlConnectionString, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { findPowerShell, sqlClientHelperPid } from '../../steps/engines/sql/sqlclient-transport';
import { chooseTransport } from '../../steps/engines/sql/transport';
import { builtStep } from '../helpers/bundle';
import { findPwsh } from '../helpers/runners';
import { SqlSimulator } from '../sql-simulator/server';
import { expectSqlError, useTransport } from './access-layer-suite';

const ROOT = path.resolve(__dirname, '../..');
const HELPER = path.join(ROOT, 'steps/engines/sql/sqlclient-helper.ps1');
const PASSWORD = 'Helper;Secret=Passw0rd"x';

describe('which transport serves a connection string', () => {
  const sqlLogin = parseSqlConnectionString('Server=s;User ID=u;Password=p');
  const integrated = parseSqlConnectionString('Server=s;Integrated Security=SSPI');
  test('auto (the default): SqlClient only for Integrated Security', () => {
    expect(chooseTransport(sqlLogin, {})).toBe('tedious');
    expect(chooseTransport(integrated, {})).toBe('sqlclient');
    expect(chooseTransport(integrated, { OCTOPUSDR_SQL_TRANSPORT: ' Auto ' })).toBe('sqlclient');
  });
  test('OCTOPUSDR_SQL_TRANSPORT forces one; anything else is refused', () => {
    expect(chooseTransport(sqlLogin, { OCTOPUSDR_SQL_TRANSPORT: 'sqlclient' })).toBe('sqlclient');
    expect(chooseTransport(integrated, { OCTOPUSDR_SQL_TRANSPORT: 'TEDIOUS' })).toBe('tedious');
    expect(() => chooseTransport(sqlLogin, { OCTOPUSDR_SQL_TRANSPORT: 'odbc' })).toThrow(/auto \(the default\), tedious or sqlclient/);
  });
  test('Windows PowerShell 5.1 on Windows, else pwsh', () => {
    expect(findPowerShell({ PATH: '/nowhere' }, 'linux')).toBeUndefined();
    const pwsh = findPwsh();
    if (pwsh) expect(findPowerShell({ PATH: path.dirname(pwsh) }, 'linux')).toBe(pwsh);
  });
});

describe('the SqlClient transport against the simulator', () => {
  let sim: SqlSimulator;
  let backups: string;
  const cs = (extra = '') => `Server=127.0.0.1,${sim.port};Database=master;User ID=sa;Password="${PASSWORD.replace(/"/g, '""')}";Encrypt=False${extra}`;
  useTransport('sqlclient');

  beforeAll(async () => {
    backups = mkdtempSync(path.join(os.tmpdir(), 'odr-sqlclient-'));
    sim = await SqlSimulator.start({ seed: { logins: [{ name: 'sa', password: PASSWORD }], server: { defaultBackupPath: backups }, databases: [{ name: 'Octopus' }], operationMs: 3000 } });
  });
  afterAll(async () => {
    // A test that failed before closing its connection leaves the helper running, and jest would
    // then never exit (CI saw it): stop it, whole process group.
    const pid = sqlClientHelperPid();
    if (pid) {
      try {
        process.kill(process.platform === 'win32' ? pid : -pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sim?.stop();
    rmSync(backups, { recursive: true, force: true });
  });

  test('no PowerShell on the worker: a clear error naming the install and the parameter, before connecting', async () => {
    expect(sqlClientHelperPid()).toBeUndefined();
    const saved = process.env.PATH;
    process.env.PATH = '/nowhere';
    try {
      const error = await expectSqlError(openSqlConnection(cs(), quietEngineContext()));
      expect(error.kind).toBe('configuration');
      expect(error.message).toMatch(/no PowerShell was found/);
      expect(error.message).toMatch(/Install PowerShell 7/);
      expect(error.message).toMatch(/"SQL connection string" parameter/);
    } finally {
      process.env.PATH = saved;
    }
    expect(sim.events.filter((e) => e.kind === 'login')).toHaveLength(0);
  });

  test('Integrated Security with the transport forced to tedious: refused before connecting, saying how to fix it', async () => {
    process.env.OCTOPUSDR_SQL_TRANSPORT = 'tedious';
    try {
      const error = await expectSqlError(openSqlConnection(`Server=127.0.0.1,${sim.port};Integrated Security=SSPI;Encrypt=False`, quietEngineContext()));
      expect(error.kind).toBe('configuration');
      expect(error.message).toMatch(/OCTOPUSDR_SQL_TRANSPORT=tedious forces it/);
    } finally {
      process.env.OCTOPUSDR_SQL_TRANSPORT = 'sqlclient';
    }
  });

  describe('with connections open', () => {
    let a: SqlConnection;
    let b: SqlConnection;
    beforeAll(async () => {
      a = await openSqlConnection(cs(), quietEngineContext());
      b = await openSqlConnection(cs(), quietEngineContext(), { database: 'Octopus' });
    }, 120_000);
    afterAll(async () => {
      await a?.close();
      await b?.close();
    });

    test('one helper serves every connection of the process, each its own session', async () => {
      expect(a.transportName).toBe('sqlclient');
      expect(sqlClientHelperPid()).toBeDefined();
      expect((await a.query<{ db: string }>('SELECT DB_NAME() AS db')).rows).toEqual([{ db: 'master' }]);
      expect((await b.query<{ db: string }>('SELECT DB_NAME() AS db')).rows).toEqual([{ db: 'Octopus' }]);
      expect(sim.events.filter((e) => e.kind === 'login').length).toBeGreaterThanOrEqual(2);
    });

    (process.platform === 'linux' ? test : test.skip)('the connection string and password are on neither the helper\'s command line nor its environment', () => {
      const pid = sqlClientHelperPid()!;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      expect(cmdline).toMatch(/-File/);
      for (const text of [cmdline, environ]) {
        expect(text).not.toContain('Helper;Secret');
        expect(text).not.toContain(String(sim.port));
      }
    });

    test('cancel mid-BACKUP: the attention reaches the server, no backup file is left, the connection stays usable', async () => {
      const controller = new AbortController();
      const file = path.join(backups, 'cancelled.bak');
      const error = await expectSqlError(
        a.runLong('BACKUP DATABASE @db TO DISK = @file WITH STATS = 10', { db: 'Octopus', file: param.nvarchar(file, 4000) }, {
          signal: controller.signal,
          onProgress: (percent) => percent >= 20 && controller.abort(),
        }),
      );
      expect(error.kind).toBe('cancelled');
      expect(error.message).toMatch(/acknowledged the cancel/);
      expect(sim.events.some((e) => e.kind === 'attention-ack')).toBe(true);
      expect(existsSync(file)).toBe(false);
      expect(readdirSync(backups)).toEqual([]);
      expect((await a.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
  });

  test('a killed helper fails the statement clearly, and the next connection gets a new helper', async () => {
    const c = await openSqlConnection(cs(), quietEngineContext());
    const pid = sqlClientHelperPid()!;
    // The whole helper: its process group off Windows (a dotnet-tool pwsh is a shim with a child).
    setTimeout(() => process.kill(process.platform === 'win32' ? pid : -pid, 'SIGKILL'), 500);
    const error = await expectSqlError(c.runLong("WAITFOR DELAY '00:00:20'"));
    expect(error.kind).toBe('connection');
    expect(error.message).toMatch(/\.NET SqlClient helper \(PowerShell, process \d+\) was stopped by SIGKILL while a statement was outstanding/);
    expect(error.message).toMatch(/run the step again/);
    expect(error.message).not.toContain(PASSWORD);
    await c.close();
    const next = await openSqlConnection(cs(), quietEngineContext());
    try {
      expect(sqlClientHelperPid()).not.toBe(pid);
      expect((await next.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await next.close();
    }
  }, 120_000);

  (process.platform === 'win32' ? test.skip : test)('off Windows a silent statement is stopped within the cancel timeout, by SqlClient or by stopping the helper', async () => {
    const c = await openSqlConnection(cs(), quietEngineContext(), { cancelTimeoutMs: 500 });
    const started = Date.now();
    const error = await expectSqlError(c.runLong("WAITFOR DELAY '00:01:00'", {}, { timeoutMs: 300 }));
    expect(error.kind).toBe('timeout');
    // SqlClient off Windows usually cannot interrupt a statement that sends nothing, and then the helper
    // is stopped; on a busy machine its cancel sometimes lands first and the server acknowledges it.
    // Either way the message says which, and the step does not wait out the statement.
    expect(error.message).toMatch(
      /did not finish within 300 ms and was cancelled; SQL Server (did not acknowledge the cancel .*the connection was closed|acknowledged the cancel)\.$/,
    );
    expect(Date.now() - started).toBeLessThan(30_000); // not the minute the statement would take
    await c.close();
  }, 120_000);
});

describe('the helper script', () => {
  const source = readFileSync(HELPER, 'utf8');

  test('uses nothing Windows PowerShell 5.1 lacks', () => {
    const code = source.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
    for (const pattern of [/\?\?/, /\?\./, /\s&&\s/, /\s\|\|\s/, /\s\?\s[^:]+\s:\s/, /::new\(/, /2>&1/, /-Encoding\s+utf8NoBOM/i, /\busing\s+namespace\b/i, /\bclass\s+\w+\s*\{/, /-Parallel\b/, /ForEach-Object\s+-Parallel/i, /\$PSStyle/, /ConvertFrom-Json\s+-(AsHashtable|DateKind|Depth)/i, /Join-String/]) {
      expect(code).not.toMatch(pattern);
    }
  });

  test('is plain ASCII (Windows PowerShell 5.1 reads a file without BOM as ANSI)', () => {
    expect([...source].every((ch) => ch.charCodeAt(0) < 128)).toBe(true);
  });

  const pwsh = findPwsh();
  (pwsh ? test : test.skip)('parses without errors', () => {
    const out = execFileSync(pwsh!, ['-NoLogo', '-NoProfile', '-NonInteractive', '-Command',
      `$errors = $null; [void][System.Management.Automation.Language.Parser]::ParseFile('${HELPER}', [ref]$null, [ref]$errors); $errors.Count`], { encoding: 'utf8' });
    expect(out.trim()).toBe('0');
  });

  test('travels inside the bundles of the database steps (npm run build)', () => {
    for (const step of ['backup-database', 'restore-database', 'test-restore', 'verify-master-key']) {
      const bundle = readFileSync(builtStep(step), 'utf8');
      expect(bundle).toContain('SqlConnectionStringBuilder');
      expect(bundle).toContain('FireInfoMessageEventOnUserErrors');
    }
  });
});
