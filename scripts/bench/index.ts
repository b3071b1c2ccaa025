// `npm run bench [-- <name>...]`: runs the named benchmarks (default: all). Each benchmark is a
// module in this folder exporting `run(args)`; it measures ratios against native tools run in
// the same process tree and prints a table. Benchmarks are never part of `npm test`.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

interface Benchmark {
  run(args: string[]): Promise<void>;
}

async function main(): Promise<void> {
  const available = readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
    .map((f) => path.basename(f, '.ts'))
    .sort();
  const args = process.argv.slice(2);
  const names = args.filter((a) => !a.startsWith('-'));
  const options = args.filter((a) => a.startsWith('-'));
  const selected = names.length > 0 ? names : available;
  for (const name of selected) {
    if (!available.includes(name)) throw new Error(`No benchmark "${name}"; available: ${available.join(', ')}`);
    process.stdout.write(`\n== ${name} ==\n`);
    const benchmark = require(path.join(__dirname, `${name}.ts`)) as Benchmark;
    await benchmark.run(options);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
