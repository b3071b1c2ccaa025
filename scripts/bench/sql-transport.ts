// Time to first query through each SQL transport: open a connection to the TDS simulator and run
// `SELECT 1`, in a fresh Node process each time (so the SqlClient run includes starting PowerShell
// and loading System.Data.SqlClient, as a step pays it once per run), then a warm query on the same
// connection. `npm run bench -- sql-transport [--runs=N]`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqlSimulator } from '../../test/sql-simulator/server';

const ROOT = path.resolve(__dirname, '../..');

const PROBE = `
const started = process.hrtime.bigint();
const { openSqlConnection } = require(${JSON.stringify(path.join(ROOT, 'steps/engines/sql'))});
const { quietEngineContext } = require(${JSON.stringify(path.join(ROOT, 'steps/runtime/engine-context'))});
(async () => {
  const sql = await openSqlConnection(process.env.BENCH_CS, quietEngineContext());
  await sql.query('SELECT 1 AS ok');
  const first = Number(process.hrtime.bigint() - started) / 1e6;
  const t = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) await sql.query('SELECT @i AS i', { i });
  const warm = Number(process.hrtime.bigint() - t) / 1e6 / 20;
  await sql.close();
  process.stdout.write(JSON.stringify({ first, warm }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

function probe(file: string, transport: string, cs: string): Promise<{ first: number; warm: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.cjs'), file], {
      env: { ...process.env, BENCH_CS: cs, OCTOPUSDR_SQL_TRANSPORT: transport },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${transport} probe exited with ${code}`))));
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export async function run(args: string[]): Promise<void> {
  const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice(7) ?? 7);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-bench-sql-'));
  const file = path.join(dir, 'probe.ts');
  writeFileSync(file, PROBE);
  const sim = await SqlSimulator.start({});
  try {
    const cs = sim.connectionString({ database: 'master' });
    const results: Record<string, { first: number[]; warm: number[] }> = { tedious: { first: [], warm: [] }, sqlclient: { first: [], warm: [] } };
    for (let i = 0; i < runs; i++) {
      for (const transport of ['tedious', 'sqlclient']) {
        const r = await probe(file, transport, cs);
        results[transport].first.push(r.first);
        results[transport].warm.push(r.warm);
      }
    }
    const t = { first: median(results.tedious.first), warm: median(results.tedious.warm) };
    const s = { first: median(results.sqlclient.first), warm: median(results.sqlclient.warm) };
    process.stdout.write(`SQL transports against the TDS simulator, median of ${runs} fresh processes (load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs)\n`);
    process.stdout.write('| transport | open + first query (ms) | warm query (ms) |\n|---|---|---|\n');
    process.stdout.write(`| tedious | ${t.first.toFixed(0)} | ${t.warm.toFixed(1)} |\n`);
    process.stdout.write(`| sqlclient (PowerShell helper) | ${s.first.toFixed(0)} | ${s.warm.toFixed(1)} |\n`);
    process.stdout.write(`Added time to first query with SqlClient: ${(s.first - t.first).toFixed(0)} ms (once per step run: one helper serves every connection).\n`);
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
