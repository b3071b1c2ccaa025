// Live round trip on a real SQL Server: back up a scratch database with the built backup step,
// restore it under a new name with the built restore step, compare the rows, drop both.
// Skipped unless OCTOPUS_DR_LIVE_SQL holds a connection string WITHOUT a Database keyword (the test
// adds one) for a login that may create databases, and OCTOPUS_DR_LIVE_BACKUP_DIR names a folder
// both this machine and the SQL Server service can use (OCTOPUS_DR_LIVE_BACKUP_DIR_ON_SERVER when
// the server sees it under another path, e.g. a Docker volume: -v /tmp/dr:/var/opt/mssql/dr).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { openSqlConnection, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { builtStep } from '../helpers/bundle';

const live = process.env.OCTOPUS_DR_LIVE_SQL;
const backupDir = process.env.OCTOPUS_DR_LIVE_BACKUP_DIR;
const backupDirOnServer = process.env.OCTOPUS_DR_LIVE_BACKUP_DIR_ON_SERVER || backupDir;
const describeLive = live && backupDir ? describe : describe.skip;

function runStep(step: string, args: string[], database: string) {
  const result = spawnSync(process.execPath, [builtStep(step), ...args], {
    env: { ...process.env, OCTOPUSDR_SQL_CONNECTIONSTRING: `${live};Initial Catalog=${database}` },
    encoding: 'utf8',
    timeout: 600_000,
  });
  return { code: result.status, out: `${result.stdout}\n${result.stderr}` };
}

describeLive('live SQL Server: backup, restore to a new name, compare', () => {
  const source = `octopus-dr-live-${Date.now()}`;
  const copy = `${source}-restored`;
  let sql: SqlConnection;

  beforeAll(async () => {
    sql = await openSqlConnection(live!, quietEngineContext(), { database: 'master' });
    await sql.query('CREATE DATABASE {{db}}', {}, { identifiers: { db: source } });
    await sql.query('ALTER DATABASE {{db}} SET RECOVERY FULL', {}, { identifiers: { db: source } });
    for (const table of ['Project', 'VariableSet', 'OctopusServerNode', 'ServerTask']) {
      await sql.query(`CREATE TABLE {{db}}.dbo.${table} (Id nvarchar(50) NOT NULL PRIMARY KEY, [JSON] nvarchar(max) NULL)`, {}, { identifiers: { db: source } });
    }
    await sql.query("INSERT INTO {{db}}.dbo.Project (Id, [JSON]) VALUES (N'Projects-1', N'{\"Name\":\"Live ü\"}'), (N'Projects-2', NULL)", {}, { identifiers: { db: source } });
  }, 120_000);

  afterAll(async () => {
    for (const db of [copy, source]) {
      const { rows } = await sql.query<{ id: number | null }>('SELECT DB_ID(@name) AS id', { name: db }).catch(() => ({ rows: [] }));
      if (rows[0]?.id == null) continue;
      await sql
        .query('ALTER DATABASE {{db}} SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE {{db}};', {}, { identifiers: { db } })
        .catch(() => undefined);
    }
    await sql?.close();
  });

  test('round trip: full (not copy-only), log, restore to a new name with CHECKDB', () => {
    const common = ['--backup-directory', backupDirOnServer!, '--backup-directory-on-worker', backupDir!];
    const full = runStep('backup-database', [...common, '--backup-type', 'Full', '--no-copy-only'], source);
    expect(full.out).toContain('Verified');
    expect(full.code).toBe(0);
    const logBackup = runStep('backup-database', [...common, '--backup-type', 'Log'], source);
    expect(logBackup.code).toBe(0);
    const manifests = readdirSync(backupDir!).filter((f) => f.startsWith(source) && f.endsWith('.manifest.json'));
    expect(manifests.length).toBe(2);
    // The folder may hold other runs' databases: name this run's newest set (its chain is found beside it).
    const newest = path.join(backupDir!, manifests.filter((f) => f.includes('_LOG_')).sort().pop()!);
    const restore = runStep('restore-database', ['--source', newest, '--source-on-server', backupDirOnServer!, '--target-database', copy, '--check-db'], 'master');
    expect(restore.out).toContain(`Restored '${copy}'`);
    expect(restore.code).toBe(0);
    expect(existsSync(backupDir!)).toBe(true);
  }, 600_000);

  test('the restored copy has the same rows', async () => {
    const read = async (db: string) =>
      (await sql.query<{ Id: string; JSON: string | null }>('SELECT Id, [JSON] FROM {{db}}.dbo.Project ORDER BY Id', {}, { identifiers: { db } })).rows;
    expect(await read(copy)).toEqual(await read(source));
  });
});
