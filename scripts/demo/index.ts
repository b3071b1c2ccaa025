// `npm run demo`: the whole product working, with no server of your own. Starts the SQL Server
// and Octopus API simulators on free loopback ports, seeds an Octopus-shaped database (values
// encrypted with a fresh master key) and a small file store in a temporary folder, runs the real
// built steps in the order a DR runbook does, prints one line per step, and stops what it started.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { keyIdOf } from '../../steps/engines/master-key';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { octopusTables } from '../../test/database/harness';
import { makeStore } from '../../test/file-store/helpers';
import { octopusDatabase } from '../../test/master-key/octopus-database';
import { OctopusSimulator } from '../../test/octopus-simulator/simulator';
import { SqlSimulator } from '../../test/sql-simulator/server';

const ROOT = path.resolve(__dirname, '../..');
const SQL_PASSWORD = 'Sim-Passw0rd!';
const API_KEY = 'API-DEMO0000000000000000000000';

const USAGE = `Usage: npm run demo [-- --keep]

Runs every octopus-dr step against simulators on loopback, in a temporary folder, and prints a
summary of each. Needs a build first: npm ci && npm run build.
  --keep   leave the temporary folder (backups, reports, restored copies) for you to look at
`;

interface StepOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  result: string;
}

class DemoFailure extends Error {}

function runProgram(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<StepOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, result: resultMessageIn(stdout) ?? plainLines(stdout + stderr) }));
  });
}

function plainLines(text: string): string {
  return text
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('##octopus'))
    .join('\n');
}

/** One line of the summary: the verdict line when there is one, cut to the terminal's usual width. */
function oneLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines.find((l) => l.startsWith('Test restore:')) ?? lines.find((l) => /^(PASS|FAIL)\b/.test(l)) ?? lines.at(-1) ?? '';
  return first.length > 150 ? `${first.slice(0, 147)}...` : first;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!existsSync(path.join(ROOT, 'build/steps/backup-database.js'))) {
    process.stderr.write('The steps are not built yet: run npm run build, then npm run demo.\n');
    return 2;
  }

  const work = mkdtempSync(path.join(tmpdir(), 'octopus-dr-demo-'));
  const dirs = {
    sqlData: path.join(work, 'sql-data'),
    databaseBackups: path.join(work, 'backups', 'database'),
    fileStoreBackups: path.join(work, 'backups', 'file-store'),
    home: path.join(work, 'octopus-home'),
    restoredHome: path.join(work, 'restored-home'),
    reports: path.join(work, 'reports'),
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });

  const key = randomBytes(32);
  const octopus = octopusDatabase({ name: 'Octopus', key, variableSets: 12, frozenVariableSets: 4, certificateTable: 'Configuration' });
  const have = new Set((octopus.seed.tables ?? []).map((t) => t.name.toLowerCase()));
  const tables = [...(octopus.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
  makeStore(dirs.home);

  const sql = await SqlSimulator.start({
    seed: {
      operationMs: 100,
      server: { serverName: 'DEMO-SQL', pathSeparator: '/', defaultBackupPath: dirs.databaseBackups, defaultDataPath: dirs.sqlData, defaultLogPath: dirs.sqlData },
      databases: [{ ...octopus.seed, recoveryModel: 'FULL', tables }],
    },
  });
  const octopusServer = new OctopusSimulator();
  const octopusUrl = await octopusServer.start(0);
  const connectionString = (database: string) => `Server=127.0.0.1,${sql.port};Database=${database};User ID=sa;Password=${SQL_PASSWORD};Encrypt=False`;
  const secrets = {
    OCTOPUSDR_SQL_CONNECTIONSTRING: connectionString('Octopus'),
    OCTOPUSDR_MASTERKEY: key.toString('base64'),
    OCTOPUSDR_OCTOPUS_APIKEY: API_KEY,
  };

  process.stdout.write(
    `octopus-dr demo in ${work}\n` +
      `  SQL Server simulator  127.0.0.1:${sql.port} (database Octopus, ${octopus.plaintexts.length} encrypted values)\n` +
      `  Octopus simulator     ${octopusUrl}\n\n`,
  );

  let step = 0;
  const results: Array<{ name: string; ok: boolean }> = [];
  const run = async (name: string, program: string[], env: NodeJS.ProcessEnv = secrets, expectCode = 0): Promise<StepOutcome> => {
    step += 1;
    const started = Date.now();
    const outcome = await runProgram(program, env, work);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const ok = outcome.code === expectCode;
    results.push({ name, ok });
    process.stdout.write(`${String(step).padStart(2)}. ${ok ? 'ok  ' : 'FAIL'} ${name} (${seconds} s)\n      ${oneLine(outcome.result)}\n`);
    if (!ok) {
      process.stdout.write(`\n${name} exited ${outcome.code}; its output:\n${outcome.stdout}${outcome.stderr}\n`);
      throw new DemoFailure(`${name} failed.`);
    }
    return outcome;
  };
  const stepProgram = (stepId: string, ...args: string[]) => [path.join(ROOT, 'build/steps', `${stepId}.js`), ...args];
  const publish = (...args: string[]) => [
    '-r',
    path.join(ROOT, 'scripts/register-ts.cjs'),
    path.join(ROOT, 'scripts/publish/index.ts'),
    '--server-url',
    octopusUrl,
    '--environment',
    'Production',
    ...args,
  ];

  let code = 0;
  try {
    await run('Check Worker', stepProgram('check-worker', '--directories', dirs.databaseBackups, '--directories', dirs.fileStoreBackups, '--tcp-endpoints', `127.0.0.1:${sql.port}`, '--minimum-free-space-gb', '0'));
    await run('Maintenance mode on', stepProgram('maintenance-mode', '--server-url', octopusUrl, '--maintenance-mode', 'On'));
    await run('Verify master key', stepProgram('verify-master-key'));
    await run('Back up database', stepProgram('backup-database', '--backup-type', 'Full', '--master-key-id', keyIdOf(key)));
    await run('Back up file store', stepProgram('backup-file-store', '--home-directory', dirs.home, '--file-store-backup-directory', dirs.fileStoreBackups));
    await run('Maintenance mode off', stepProgram('maintenance-mode', '--server-url', octopusUrl, '--maintenance-mode', 'Off'));
    await run('Test latest backup', stepProgram('test-restore', '--source', dirs.databaseBackups, '--file-store-backup-directory', dirs.fileStoreBackups), {
      ...secrets,
      OCTOPUSDR_SQL_CONNECTIONSTRING: connectionString('master'),
    });
    await run('Restore database as Octopus_Restored', stepProgram('restore-database', '--source', dirs.databaseBackups, '--target-database', 'Octopus_Restored'), {
      OCTOPUSDR_SQL_CONNECTIONSTRING: connectionString('master'),
    });
    await run('Verify master key on the restored copy', stepProgram('verify-master-key'), { ...secrets, OCTOPUSDR_SQL_CONNECTIONSTRING: connectionString('Octopus_Restored') });
    await run('Restore file store to a new home', stepProgram('restore-file-store', '--source', dirs.fileStoreBackups, '--home-directory', dirs.restoredHome));
    await run('Publish DR runbooks', publish(), { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY });
    const before = octopusServer.requests.length;
    await run('Publish again (changes nothing)', publish(), { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY });
    const writes = octopusServer.requests.slice(before).filter((r) => r.method !== 'GET').length;
    if (writes !== 0) throw new DemoFailure(`The second publish made ${writes} write(s); it should make none.`);

    const reports = [work, dirs.databaseBackups, dirs.fileStoreBackups, dirs.reports].flatMap((dir) =>
      readdirSync(dir)
        .filter((f) => /^octopus-dr-test-(restore|history)/.test(f))
        .map((f) => path.join(dir, f)),
    );
    process.stdout.write(
      `\nAll ${results.length} steps passed.\n` +
        `  Backups:  ${dirs.databaseBackups}\n            ${dirs.fileStoreBackups}\n` +
        (reports.length ? `  Reports:  ${reports.join('\n            ')}\n` : ''),
    );
  } catch (error) {
    code = 1;
    process.stdout.write(`\nDemo stopped: ${error instanceof Error ? error.message : String(error)}\n`);
  } finally {
    await octopusServer.stop();
    await sql.stop();
    if (values.keep) process.stdout.write(`Kept ${work} (remove it with: rm -rf '${work}')\n`);
    else rmSync(work, { recursive: true, force: true });
    process.stdout.write('Simulators stopped.\n');
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`The demo could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
