// File-store backup and restore against native tools on the same generated data, in one run.
//
//   npm run bench -- file-store [--scale=0.1] [--big-gib=0.45] [--rounds=1] [--dir=/tmp/x] [--keep]
//
// Generates a deterministic Octopus-like store (the shape of shared/reference/file-store.md at
// --scale=1: 20,000 task logs, ~300 artifacts, 20 packages of 20-180 MB and one package over
// 4 GiB), builds the step bundles, then times octopus-dr against `tar | zstd -T0` and Info-ZIP
// zip/unzip: wall time, MB/s, peak RSS (GNU time) and the ratio to the fastest native tool.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

interface Options {
  scale: number;
  bigGiB: number;
  rounds: number;
  dir: string;
  keep: boolean;
}

function parseOptions(args: string[]): Options {
  const value = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const scale = Number(value('scale') ?? '0.1');
  return {
    scale,
    bigGiB: Number(value('big-gib') ?? String(4.5 * scale)),
    rounds: Number(value('rounds') ?? '1'),
    dir: value('dir') ?? path.join(os.tmpdir(), 'octopus-dr-bench-file-store'),
    keep: args.includes('--keep'),
  };
}

/** mulberry32: a small deterministic generator for sizes and choices. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Incompressible bytes, like packages: an AES-128-CTR keystream. */
function incompressible(length: number, seed: number): Buffer {
  const key = createHash('sha256').update(`bench-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

function writeIncompressible(file: string, length: number, seed: number): void {
  const chunk = 64 * 1024 * 1024;
  writeFileSync(file, Buffer.alloc(0));
  for (let offset = 0, n = 0; offset < length; offset += chunk, n++) {
    writeFileSync(file, incompressible(Math.min(chunk, length - offset), seed * 1000 + n), { flag: 'a' });
  }
}

const LEVELS = ['Info   ', 'Verbose', 'Warning', 'Error  '];
const STEPS = ['Deploy Acme.Web', 'Run database migrations', 'Smoke test', 'Acquire packages', 'Apply retention policy'];
function logLines(size: number, next: () => number): string {
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const r = next();
    const guid = createHash('md5').update(String(r)).digest('hex');
    let line = `2026-11-${String(1 + Math.floor(r * 27)).padStart(2, '0')} 0${Math.floor(r * 9)}:${String(Math.floor(r * 60)).padStart(2, '0')}:${String(Math.floor(r * 3600) % 60).padStart(2, '0')}.${String(Math.floor(r * 1e7) % 10000).padStart(4, '0')}  ${LEVELS[Math.floor(r * 4)]}  ${STEPS[Math.floor(r * 97) % 5]}: package Acme.Web.${Math.floor(r * 300)}.nupkg (${guid.slice(0, 8)}-${guid.slice(8, 12)}-${guid.slice(12, 16)}) on worker-${Math.floor(r * 12)}\n`;
    if (r < 0.02) line += '   at Octopus.Tentacle.Commands.Execute(IScriptWorkspace workspace) in C:\\build\\Tentacle\\Commands.cs:line 42\n'.repeat(6);
    parts.push(line);
    length += line.length;
  }
  return parts.join('').slice(0, size);
}

function generate(storeDir: string, options: Options): { files: number; bytes: number } {
  const next = random(20261127);
  let files = 0;
  let bytes = 0;
  const mtime = new Date('2026-10-01T00:00:00Z');
  const put = (file: string, data: string | Buffer) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
    utimesSync(file, mtime, mtime);
    files += 1;
    bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  };
  const logs = Math.round(20000 * options.scale);
  for (let i = 0; i < logs; i++) {
    // Skewed toward small: 1 KB to 200 KB, mean about 52 KB.
    const size = Math.round(1024 + Math.pow(next(), 2.2) * 199 * 1024);
    put(path.join(storeDir, 'TaskLogs', `servertasks-${i}.log.txt`), logLines(size, next));
  }
  const artifacts = Math.max(6, Math.round(304 * options.scale));
  const kinds = ['txt', 'log', 'json', 'xml', 'html', 'zip', 'png', 'bin'];
  for (let i = 0; i < artifacts; i++) {
    const kind = kinds[Math.floor(next() * kinds.length)];
    const size = Math.round(1024 * Math.pow(4096, next()));
    const file = path.join(storeDir, 'Artifacts', `ServerTasks-${i % 61}`, `artifact-${i}.${kind}`);
    put(file, ['zip', 'png', 'bin'].includes(kind) ? incompressible(size, 5000 + i) : logLines(size, next));
  }
  put(path.join(storeDir, 'Artifacts', 'ServerTasks-0', 'empty.txt'), '');
  put(path.join(storeDir, 'Artifacts', 'ServerTasks-0', "Rapport d'exécution – ü 漢字.txt"), 'unicode\n');
  put(path.join(storeDir, 'Artifacts', ...Array.from({ length: 8 }, (_, i) => `d${i}`), 'deep.txt'), 'deep\n');
  const extensions = ['nupkg', 'zip', 'tar.gz'];
  for (let i = 0; i < 20; i++) {
    const size = Math.round((20 + next() * 160) * 1e6 * options.scale);
    const file = path.join(storeDir, 'Packages', 'feeds-builtin', `Acme.Package${i}.1.0.${i}.${extensions[i % 3]}`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeIncompressible(file, size, i);
    utimesSync(file, mtime, mtime);
    files += 1;
    bytes += size;
  }
  const big = Math.round(options.bigGiB * 1024 ** 3);
  if (big > 0) {
    const file = path.join(storeDir, 'Packages', 'feeds-builtin', 'Acme.Huge.9.9.9.zip');
    writeIncompressible(file, big, 999);
    utimesSync(file, mtime, mtime);
    files += 1;
    bytes += big;
  }
  return { files, bytes };
}

interface Measurement {
  wall: number;
  rssMiB: number | undefined;
}

const HAS_GNU_TIME = existsSync('/usr/bin/time');

/** Runs a shell command under GNU time: wall seconds and the peak RSS of the largest process. */
function measure(command: string, cwd: string): Measurement {
  const started = process.hrtime.bigint();
  const run = HAS_GNU_TIME
    ? spawnSync('/usr/bin/time', ['-f', '%M', 'bash', '-o', 'pipefail', '-c', command], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    : spawnSync('bash', ['-o', 'pipefail', '-c', command], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.status !== 0) throw new Error(`${command} failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  const rssLine = HAS_GNU_TIME ? run.stderr.trim().split('\n').at(-1) : undefined;
  return { wall, rssMiB: rssLine && /^\d+$/.test(rssLine) ? Number(rssLine) / 1024 : undefined };
}

function sizeOf(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((sum, name) => sum + sizeOf(path.join(p, name)), 0);
}

interface Row {
  operation: 'backup' | 'restore' | 'incremental' | 'verify';
  tool: string;
  native: boolean;
  runs: Measurement[];
  archiveBytes?: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const store = path.join(options.dir, 'store');
  const out = path.join(options.dir, 'out');
  const node = process.execPath;
  const backupJs = path.join(ROOT, 'build/steps/backup-file-store.js');
  const restoreJs = path.join(ROOT, 'build/steps/restore-file-store.js');
  if (!existsSync(backupJs) || !existsSync(restoreJs)) {
    process.stdout.write('Building the bundles (npm run build)...\n');
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }

  rmSync(options.dir, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  process.stdout.write(`Generating the store (scale ${options.scale}, big package ${options.bigGiB.toFixed(2)} GiB) in ${store}...\n`);
  const t0 = Date.now();
  const data = generate(store, options);
  process.stdout.write(`  ${data.files} files, ${(data.bytes / 1e9).toFixed(3)} GB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const folders = ['TaskLogs', 'Artifacts', 'Packages'];
  const folderArgs = folders.map((f) => `--folders '${f}=${path.join(store, f)}'`).join(' ');

  const rows: Row[] = [
    { operation: 'backup', tool: 'octopus-dr backup (zip)', native: false, runs: [] },
    { operation: 'backup', tool: 'tar | zstd -T0', native: true, runs: [] },
    { operation: 'backup', tool: 'Info-ZIP zip -1', native: true, runs: [] },
    { operation: 'incremental', tool: 'octopus-dr incremental, unchanged store', native: false, runs: [] },
    { operation: 'verify', tool: 'octopus-dr verify (hash every file)', native: false, runs: [] },
    { operation: 'restore', tool: 'octopus-dr restore (+ SHA-256 check)', native: false, runs: [] },
    { operation: 'restore', tool: 'zstd -d | tar x', native: true, runs: [] },
    { operation: 'restore', tool: 'Info-ZIP unzip', native: true, runs: [] },
  ];
  const row = (tool: string) => rows.find((r) => r.tool === tool)!;

  for (let round = 1; round <= options.rounds; round++) {
    process.stdout.write(`Round ${round}/${options.rounds}\n`);
    const ours = path.join(out, 'ours');
    rmSync(out, { recursive: true, force: true });
    mkdirSync(ours, { recursive: true });
    const step = (tool: string, command: string, cwd = store) => {
      const m = measure(command, cwd);
      row(tool).runs.push(m);
      process.stdout.write(`  ${tool.padEnd(42)} ${m.wall.toFixed(2)} s\n`);
    };

    step('octopus-dr backup (zip)', `${node} ${backupJs} ${folderArgs} --include TaskLogs,Artifacts,Packages --file-store-backup-directory ${ours} > /dev/null`);
    const full = readdirSync(ours).find((n) => n.endsWith('-full.zip'))!;
    row('octopus-dr backup (zip)').archiveBytes = sizeOf(path.join(ours, full));
    step('tar | zstd -T0', `tar -cf - ${folders.join(' ')} | zstd -q -T0 -o ${out}/native.tar.zst`);
    row('tar | zstd -T0').archiveBytes = sizeOf(`${out}/native.tar.zst`);
    step('Info-ZIP zip -1', `zip -q -r -1 ${out}/native.zip ${folders.join(' ')}`);
    row('Info-ZIP zip -1').archiveBytes = sizeOf(`${out}/native.zip`);
    // Incremental right after the full: nothing changed (mtimes are in the past, so no hashing).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    step('octopus-dr incremental, unchanged store', `${node} ${backupJs} ${folderArgs} --include TaskLogs,Artifacts,Packages --file-store-backup-directory ${ours} --mode Incremental > /dev/null`);
    const incremental = readdirSync(ours).find((n) => n.endsWith('-incremental.zip'));
    row('octopus-dr incremental, unchanged store').archiveBytes = incremental ? sizeOf(path.join(ours, incremental)) : undefined;
    step('octopus-dr verify (hash every file)', `${node} ${restoreJs} --source ${path.join(ours, full)} --verify-only > /dev/null`);

    const target = path.join(out, 'restore-ours');
    step('octopus-dr restore (+ SHA-256 check)', `${node} ${restoreJs} --source ${path.join(ours, full)} ${folders.map((f) => `--folders '${f}=${path.join(target, f)}'`).join(' ')} > /dev/null`);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(path.join(out, 'restore-tar'));
    step('zstd -d | tar x', `zstd -q -d -T0 -c ${out}/native.tar.zst | tar -xf - -C ${out}/restore-tar`);
    rmSync(path.join(out, 'restore-tar'), { recursive: true, force: true });
    step('Info-ZIP unzip', `unzip -q ${out}/native.zip -d ${out}/restore-unzip`);
    rmSync(path.join(out, 'restore-unzip'), { recursive: true, force: true });
  }

  const fastestNative = (operation: Row['operation']) =>
    Math.min(...rows.filter((r) => r.native && r.operation === operation).map((r) => median(r.runs.map((m) => m.wall))));
  const mb = data.bytes / 1e6;
  const lines = [
    `Data: ${data.files} files, ${(data.bytes / 1e9).toFixed(3)} GB (scale ${options.scale}); ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}; ${options.rounds} round(s), median; warm page cache.`,
    '',
    '| operation | tool | wall s | MB/s | peak RSS MiB | archive MB | wall ÷ fastest native |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const wall = median(r.runs.map((m) => m.wall));
    const rss = r.runs.map((m) => m.rssMiB).filter((v): v is number => v !== undefined);
    const full = median(row('octopus-dr backup (zip)').runs.map((m) => m.wall));
    const ratio =
      r.operation === 'incremental' ? `${((wall / full) * 100).toFixed(1)}% of our full` : r.operation === 'verify' ? '' : (wall / fastestNative(r.operation)).toFixed(2);
    lines.push(
      `| ${r.operation} | ${r.tool.replace(/\|/g, "\\|")} | ${wall.toFixed(2)} | ${(mb / wall).toFixed(0)} | ${rss.length ? Math.max(...rss).toFixed(0) : 'n/a'} | ${r.archiveBytes === undefined ? '' : (r.archiveBytes / 1e6).toFixed(1)} | ${ratio} |`,
    );
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
  if (!options.keep) rmSync(options.dir, { recursive: true, force: true });
}
