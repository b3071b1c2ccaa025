// Runs the backup/restore steps against an in-process SQL Server simulator: in this process through
// runStep() (test/helpers/in-process.ts), or as the built bundle (build/steps/*.js, from
// `npm run build`) in a child process where a test needs one: to signal it, or to give it a
// working directory.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseServiceMessages, outputVariablesIn } from '../../steps/runtime/service-messages';
import { builtStep } from '../helpers/bundle';
import { runStepInProcess } from '../helpers/in-process';
import { SqlSimulator } from '../sql-simulator/server';
import type { Seed, SeedDatabase } from '../sql-simulator/engine/model';

export const ROOT = path.resolve(__dirname, '../..');
export const PASSWORD = 'Sim-Passw0rd!';

export interface StepRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  progress: number[];
  artifacts: string[];
  result: string | undefined;
}

export function octopusTables(extraRows: unknown[][] = []): SeedDatabase['tables'] {
  return [
    { name: 'Project', columns: [{ name: 'Id', type: 'nvarchar(50)' }, { name: 'Name', type: 'nvarchar(200)' }], rows: [['Projects-1', 'Web'], ...extraRows] },
    { name: 'VariableSet', columns: [{ name: 'Id', type: 'nvarchar(50)' }, { name: 'JSON', type: 'nvarchar(max)' }], rows: [['variableset-Projects-1', '{}']] },
    { name: 'OctopusServerNode', columns: [{ name: 'Id', type: 'nvarchar(50)' }], rows: [['OctopusServerNodes-1']] },
    { name: 'ServerTask', columns: [{ name: 'Id', type: 'nvarchar(50)' }], rows: [] },
    {
      name: 'OctopusServerInstallationHistory',
      columns: [{ name: 'Id', type: 'nvarchar(50)' }, { name: 'Node', type: 'nvarchar(200)' }, { name: 'Version', type: 'nvarchar(200)' }, { name: 'Installed', type: 'datetime2' }],
      rows: [
        ['h-1', 'NODE1', '2025.4.100', '2026-01-01T00:00:00Z'],
        ['h-2', 'NODE1', '2026.1.5021', '2026-06-01T00:00:00Z'],
      ],
    },
  ];
}

/** Passes OCTOPUSDR_SQL_TRANSPORT on to the step, so the suites can run through SqlClient too. */
export function transportEnv(): NodeJS.ProcessEnv {
  return process.env.OCTOPUSDR_SQL_TRANSPORT ? { OCTOPUSDR_SQL_TRANSPORT: process.env.OCTOPUSDR_SQL_TRANSPORT } : {};
}

export class Lab {
  readonly root = mkdtempSync(path.join(tmpdir(), 'octopus-dr-db-'));
  readonly backups = path.join(this.root, 'backups');
  readonly data = path.join(this.root, 'data');
  sim!: SqlSimulator;

  async start(seed: Partial<Seed> = {}, databases: SeedDatabase[] = []): Promise<void> {
    mkdirSync(this.backups, { recursive: true });
    mkdirSync(this.data, { recursive: true });
    this.sim = await SqlSimulator.start({
      seed: {
        operationMs: 200,
        ...seed,
        server: { serverName: 'SQLSIM', pathSeparator: '/', defaultBackupPath: this.backups, defaultDataPath: this.data, defaultLogPath: this.data, ...seed.server },
        databases,
      },
    });
  }

  async stop(): Promise<void> {
    await this.sim?.stop();
    rmSync(this.root, { recursive: true, force: true });
  }

  /** An ADO.NET connection string; the database name is quoted as ADO.NET quotes values. */
  connectionString(database: string): string {
    const quoted = `"${database.replace(/"/g, '""')}"`;
    return `Server=127.0.0.1,${this.sim.port};Database=${quoted};User ID=sa;Password=${PASSWORD};Encrypt=False`;
  }

  files(directory = this.backups): string[] {
    return readdirSync(directory).sort();
  }

  manifests(directory = this.backups): string[] {
    return this.files(directory).filter((f) => f.endsWith('.manifest.json'));
  }

  readManifest(name: string, directory = this.backups): Record<string, any> {
    return JSON.parse(readFileSync(path.join(directory, name), 'utf8'));
  }

  /**
   * Runs a database step (backup-database, restore-database, test-restore, ...) against the simulator:
   * in this process, unless the test signals it (`killAfter` sends SIGTERM), gives it a working
   * directory (`cwd`) or asks for the built bundle (`bundle`, the smoke tests): then as a child process.
   * In-process, the SQL transport follows this process's OCTOPUSDR_SQL_TRANSPORT (the sqlclient project sets it).
   */
  async run(step: string, database: string, args: string[], options: { killAfter?: (stdout: string) => boolean; env?: NodeJS.ProcessEnv; cwd?: string; plain?: boolean; bundle?: boolean } = {}): Promise<StepRun> {
    const argv = [...(options.plain ? [] : ['--service-messages']), ...args];
    const env = { OCTOPUSDR_SQL_CONNECTIONSTRING: this.connectionString(database), ...options.env };
    const needsProcess = options.bundle || options.killAfter !== undefined || options.cwd !== undefined;
    const { code, stdout, stderr } = needsProcess
      ? await runBundle(step, argv, { env: { PATH: process.env.PATH, ...transportEnv(), ...env }, cwd: options.cwd, killAfter: options.killAfter })
      : await runStepInProcess(step, argv, { env });
    const messages = parseServiceMessages(stdout);
    return {
      code,
      stdout,
      stderr,
      outputs: outputVariablesIn(stdout),
      progress: messages.filter((m) => m.name === 'progress').map((m) => Number(m.attributes.percentage)),
      artifacts: messages.filter((m) => m.name === 'createArtifact').map((m) => m.attributes.path),
      result: messages.find((m) => m.name === 'resultMessage')?.attributes.message,
    };
  }

  /** Changes a row now (moves the LSN on and logs the change, as a committed transaction would). */
  insertProject(database: string, id: string, at = new Date()): void {
    const db = this.sim.model.database(database)!;
    db.tables.get('dbo.project')!.rows.push([id, `Project ${id}`]);
    this.sim.model.recordChange(db, at);
  }

  projectIds(database: string): string[] {
    const db = this.sim.model.database(database);
    return (db?.tables.get('dbo.project')?.rows ?? []).map((r) => String(r[0])).sort();
  }
}

export const backup = (lab: Lab, database: string, ...args: string[]) => lab.run('backup-database', database, args);
export const restore = (lab: Lab, ...args: string[]) => lab.run('restore-database', 'master', args);

/** Runs a built step in a child process; `killAfter` sends SIGTERM once the output so far satisfies it. */
function runBundle(step: string, argv: string[], options: { env: NodeJS.ProcessEnv; cwd?: string; killAfter?: (stdout: string) => boolean }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [builtStep(step), ...argv], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!killed && options.killAfter?.(stdout)) {
        killed = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
