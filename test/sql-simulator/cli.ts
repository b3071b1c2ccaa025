// Standalone simulator: `npm run sql-simulator -- --port 14330 --seed seed.json [--state-out state.json]`
// [--tls-key key.pem --tls-cert cert.pem [--tls-mode strict|prelogin]]. Runs until SIGINT/SIGTERM, then writes the model's state.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Seed } from './engine/model';
import { SqlSimulator } from './server';

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '14330' },
      seed: { type: 'string' },
      'state-out': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-mode': { type: 'string', default: 'strict' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: npm run sql-simulator -- [--port 14330] [--seed seed.json] [--state-out state.json] [--tls-key key.pem --tls-cert cert.pem [--tls-mode strict|prelogin]]\nSeed format: test/README.md.\n');
    return;
  }
  const seed = values.seed ? (JSON.parse(readFileSync(values.seed, 'utf8')) as Seed) : {};
  const mode = values['tls-mode'];
  if (mode !== 'strict' && mode !== 'prelogin') throw new Error(`--tls-mode must be strict (Encrypt=Strict) or prelogin (Encrypt=True), not '${mode}'.`);
  const tls = values['tls-key'] && values['tls-cert'] ? { key: readFileSync(values['tls-key']), cert: readFileSync(values['tls-cert']), mode: mode as 'strict' | 'prelogin' } : undefined;
  const sim = await SqlSimulator.start({ seed, port: Number(values.port), tls });
  const login = sim.model.logins.values().next().value;
  process.stdout.write(
    `SQL Server simulator listening on 127.0.0.1:${sim.port}${tls ? ` (TLS, ${tls.mode === 'strict' ? 'Encrypt=Strict' : 'Encrypt=True'})` : ''}\n` +
      `Connection string: Server=127.0.0.1,${sim.port};Database=master;User ID=${login?.name ?? 'sa'};Password=${seed.logins ? '<from the seed>' : 'Sim-Passw0rd!'};Encrypt=${tls ? (tls.mode === 'strict' ? 'Strict' : 'True') : 'False'}\n`,
  );
  const stop = async (signal: string) => {
    process.stdout.write(`${signal}: stopping\n`);
    await sim.stop();
    const out = values['state-out'];
    if (out) {
      const temporary = `${out}.tmp`;
      writeFileSync(temporary, JSON.stringify(sim.model.toSeed(), null, 2));
      renameSync(temporary, out);
      process.stdout.write(`State written to ${out}\n`);
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

run().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
