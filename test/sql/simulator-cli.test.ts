// The standalone SQL Server simulator (`npm run sql-simulator`) prints a connection string that
// works as printed when the seed keeps the default login, and points to the seed when it has its own.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sql from 'mssql';

const root = path.resolve(__dirname, '../..');

async function banner(seed: object): Promise<{ connectionString: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-simcli-'));
  const seedFile = path.join(dir, 'seed.json');
  writeFileSync(seedFile, JSON.stringify(seed));
  const child = spawn(process.execPath, ['-r', './scripts/register-ts.cjs', 'test/sql-simulator/cli.ts', '--port', '0', '--seed', seedFile], { cwd: root });
  let out = '';
  const connectionString = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^Connection string: (.*)$/m.exec(out);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`simulator exited with ${code}: ${out}`)));
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });
  return { connectionString, stop };
}

test('with the default login the printed connection string logs in as printed', async () => {
  const sim = await banner({});
  try {
    expect(sim.connectionString).toContain('Password=Sim-Passw0rd!;');
    const pool = await new sql.ConnectionPool(sim.connectionString).connect();
    const result = await pool.request().query('SELECT DB_NAME() AS name;');
    expect(result.recordset[0].name).toBe('master');
    await pool.close();
  } finally {
    await sim.stop();
  }
}, 30_000);

test("with the seed's own logins the password is not printed", async () => {
  const sim = await banner({ logins: [{ name: 'dr', password: 'Seeded-Passw0rd!' }] });
  try {
    expect(sim.connectionString).toContain('User ID=dr;Password=<from the seed>;');
    expect(sim.connectionString).not.toContain('Seeded-Passw0rd!');
  } finally {
    await sim.stop();
  }
}, 30_000);
