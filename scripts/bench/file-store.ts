// File-store backup and restore against native tools on the same generated data, in one run.
//
//   npm run bench -- file-store [--scale=0.1] [--big-gib=0.45] [--rounds=3] [--dir=/tmp/x] [--keep]
//                               [--baseline=<folders with earlier builds' bundles, comma-separated>] [--zip] [--no-restic] [--reuse]
//
// Generates a deterministic Octopus-like store (the shape of shared/reference/file-store.md at
// --scale=1: 20,000 task logs, ~300 artifacts, 20 packages of 20-180 MB and one package over
// 4 GiB), then times octopus-dr against its peers: `tar | zstd -T0` (and the same followed by an
// fsync of its archive, as octopus-dr ends with one), restic (when installed:
// `apt-get install -y restic`; nothing else needs it) and, with --zip, Info-ZIP zip/unzip. Each
// round runs every tool once, in an order that rotates round by round, so a busy moment on a
// shared machine does not land on one tool; the table gives medians, min-max, peak RSS (GNU
// time), the load average seen at each measurement and the ratio to the fastest peer. Before every
// timed operation, `sync` runs untimed, so the dirty pages one tool leaves are not written back on
// the next tool's clock; on a VM whose balloon reports free pages to the host, the bench then also
// waits until those are reported, so no tool writes into pages another just freed (see
// free-page-reporting.ts). With
// --baseline, an earlier build runs as one more peer in the same rounds: before and after, measured
// under the same load. octopus-dr runs without NODE_EXTRA_CA_CERTS; when the environment sets it,
// the bench prints what it costs each Node.js start and times one more incremental with it.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeReporting, freePageReporting, settle } from './free-page-reporting';
import { describeProactiveReclaim, proactiveReclaim } from './proactive-reclaim';

const ROOT = path.resolve(__dirname, '../..');

interface Options {
  scale: number;
  bigGiB: number;
  rounds: number;
  dir: string;
  keep: boolean;
  baseline: string | undefined;
  zip: boolean;
  restic: boolean;
  /** Keep a store generated earlier with the same scale (with --keep), instead of generating it again. */
  reuse: boolean;
}

function parseOptions(args: string[]): Options {
  const value = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const scale = Number(value('scale') ?? '0.1');
  return {
    scale,
    bigGiB: Number(value('big-gib') ?? String(4.5 * scale)),
    rounds: Number(value('rounds') ?? '3'),
    dir: value('dir') ?? path.join(os.tmpdir(), 'octopus-dr-bench-file-store'),
    keep: args.includes('--keep'),
    baseline: value('baseline'),
    zip: args.includes('--zip'),
    reuse: args.includes('--reuse'),
    restic: !args.includes('--no-restic') && spawnSync('restic', ['version'], { encoding: 'utf8' }).status === 0,
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
  /** User + system CPU seconds of the command and its children: unlike wall time, barely moved by a busy machine. */
  cpu: number | undefined;
  /** One-minute load average just before the run: the machine is shared. */
  load: number;
}

const HAS_GNU_TIME = existsSync('/usr/bin/time');

/**
 * Writes back every dirty page, untimed: what one operation left in the page cache would
 * otherwise be written back during the next one, on that tool's clock.
 */
function flushDirtyPages(): void {
  const flushed = spawnSync('sync', [], { stdio: 'ignore' });
  if (flushed.status !== 0) throw new Error(`sync failed (${flushed.status ?? flushed.error?.message})`);
}

/** Free page reporting on this machine, and how long the bench waited for it before each timed operation (see free-page-reporting.ts). */
const reporting = freePageReporting();
/** DAMON's proactive reclaim, as the run starts: when on, "warm page cache" does not hold (proactive-reclaim.ts). */
const reclaimAtStart = proactiveReclaim();
const settleWaits: number[] = [];
let settlesNotQuiet = 0;

/** Runs a shell command under GNU time: wall seconds and the peak RSS of the largest process. */
function measure(command: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Measurement {
  flushDirtyPages();
  if (reporting.kind === 'active') {
    const { waitedMs, quiet } = settle();
    settleWaits.push(waitedMs);
    if (!quiet) settlesNotQuiet += 1;
  }
  const load = os.loadavg()[0];
  const started = process.hrtime.bigint();
  // stdin on /dev/null, as a scheduler gives it: with a pipe from this process, and this process
  // detached (nohup ... &), an unchanged incremental took 0.20 s instead of 0.10 s, reproducibly
  // and only then (not understood: its JavaScript took the same time; docs/benchmarks.md, stop 34).
  const options = { cwd, env, encoding: 'utf8' as const, maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const run = HAS_GNU_TIME
    ? spawnSync('/usr/bin/time', ['-f', '%M %U %S', 'bash', '-o', 'pipefail', '-c', command], options)
    : spawnSync('bash', ['-o', 'pipefail', '-c', command], options);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.status !== 0) throw new Error(`${command} failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  const timeLine = HAS_GNU_TIME ? /^(\d+) ([\d.]+) ([\d.]+)$/.exec(run.stderr.trim().split('\n').at(-1) ?? '') : null;
  return { wall, rssMiB: timeLine ? Number(timeLine[1]) / 1024 : undefined, cpu: timeLine ? Number(timeLine[2]) + Number(timeLine[3]) : undefined, load };
}

/**
 * The environment octopus-dr's runs get: this one without NODE_EXTRA_CA_CERTS. Node.js 20 loads
 * its whole CA store at every start when that variable is set (nodejs/node#40524; loaded only
 * with the tls module from Node.js 24), which this machine's environment does: 40-85 ms a start
 * here, more than a third of an unchanged incremental at scale 0.3. A worker's Tentacle does
 * not set it unless told to, and the file-store steps never open a TLS connection. When it is
 * set, the bench says what it costs and times one more incremental with it (its own row).
 */
function withoutExtraCaCertificates(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** The median wall time of `node -e 0`, in ms, in an environment. */
function nodeStartMs(env: NodeJS.ProcessEnv): number {
  const runs: number[] = [];
  for (let i = 0; i < 11; i++) {
    const started = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0'], { env, stdio: 'ignore' });
    runs.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return median(runs);
}

function sizeOf(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((sum, name) => sum + sizeOf(path.join(p, name)), 0);
}

type Operation = 'backup' | 'incremental' | 'incremental-as-set' | 'verify' | 'restore';

interface Row {
  operation: Operation;
  tool: string;
  runs: Measurement[];
  archiveBytes?: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** One tool's work in a round: its backup, unchanged incremental, verify and restore, each timed. */
interface Peer {
  name: string;
  /** Runs one round in `out`, timing each operation through `time`. */
  round(out: string, time: (operation: Operation, command: string, options?: { cwd?: string; env?: NodeJS.ProcessEnv; archive?: () => string }) => void): Promise<void>;
}

function octopusDr(name: string, bundles: string, store: string, folders: string[], timeAsSet = false): Peer {
  const node = process.execPath;
  const backupJs = path.join(bundles, 'backup-file-store.js');
  const restoreJs = path.join(bundles, 'restore-file-store.js');
  const folderArgs = folders.map((f) => `--folders '${f}=${path.join(store, f)}'`).join(' ');
  const backup = `${node} ${backupJs} ${folderArgs} --include ${folders.join(',')}`;
  const env = withoutExtraCaCertificates();
  return {
    name,
    async round(out, time) {
      const backups = path.join(out, 'backups');
      mkdirSync(backups, { recursive: true });
      const archive = (suffix: string) => () => path.join(backups, readdirSync(backups).find((n) => n.endsWith(suffix))!);
      time('backup', `${backup} --file-store-backup-directory ${backups} > /dev/null`, { env, archive: archive('-full.zip') });
      // Right after the full: nothing changed (mtimes are in the past, so no hashing).
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const incremental = `${backup} --file-store-backup-directory ${backups} --backup-type Incremental > /dev/null`;
      time('incremental', incremental, { env, archive: archive('-incremental.zip') });
      if (timeAsSet) time('incremental-as-set', incremental);
      const full = archive('-full.zip')();
      time('verify', `${node} ${restoreJs} --source ${full} --verify-only > /dev/null`, { env });
      const target = path.join(out, 'restored');
      time('restore', `${node} ${restoreJs} --source ${full} ${folders.map((f) => `--folders '${f}=${path.join(target, f)}'`).join(' ')} > /dev/null`, { env });
    },
  };
}

function tarZstd(store: string, folders: string[]): Peer {
  return {
    name: 'tar | zstd -T0',
    async round(out, time) {
      const archive = path.join(out, 'native.tar.zst');
      time('backup', `tar -cf - ${folders.join(' ')} | zstd -q -T0 -o ${archive}`, { cwd: store, archive: () => archive });
      mkdirSync(path.join(out, 'restored'));
      time('restore', `zstd -q -d -T0 -c ${archive} | tar -xf - -C ${out}/restored`);
    },
  };
}

/**
 * The same, with the archive flushed to disk before the clock stops (`sync FILE` is an fsync):
 * octopus-dr's backup ends only once its archive is durable, `tar | zstd` leaves it in the page cache.
 */
function tarZstdDurable(store: string, folders: string[]): Peer {
  return {
    name: 'tar | zstd -T0, then sync',
    async round(out, time) {
      const archive = path.join(out, 'native-synced.tar.zst');
      time('backup', `tar -cf - ${folders.join(' ')} | zstd -q -T0 -o ${archive} && sync ${archive}`, { cwd: store, archive: () => archive });
    },
  };
}

function infoZip(store: string, folders: string[]): Peer {
  return {
    name: 'Info-ZIP zip -1 / unzip',
    async round(out, time) {
      const archive = path.join(out, 'native.zip');
      time('backup', `zip -q -r -1 ${archive} ${folders.join(' ')}`, { cwd: store, archive: () => archive });
      time('restore', `unzip -q ${archive} -d ${out}/restored`);
    },
  };
}

/** restic with its defaults (repository v2, compression auto), a fresh repository per round. */
function restic(store: string, folders: string[]): Peer {
  return {
    name: 'restic',
    async round(out, time) {
      const repository = path.join(out, 'repository');
      const env = { ...process.env, RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: 'bench-only', RESTIC_CACHE_DIR: path.join(out, 'cache') };
      const init = spawnSync('restic', ['init', '--quiet'], { env, encoding: 'utf8' });
      if (init.status !== 0) throw new Error(`restic init failed: ${init.stderr}`);
      time('backup', `restic backup --quiet ${folders.join(' ')}`, { cwd: store, env, archive: () => repository });
      await new Promise((resolve) => setTimeout(resolve, 1100));
      time('incremental', `restic backup --quiet ${folders.join(' ')}`, { cwd: store, env });
      time('restore', `restic restore latest --quiet --target ${out}/restored`, { env });
    },
  };
}

const OPERATIONS: { operation: Operation; title: string }[] = [
  { operation: 'backup', title: 'backup' },
  { operation: 'incremental', title: 'incremental, unchanged store' },
  { operation: 'incremental-as-set', title: 'incremental, unchanged store, NODE_EXTRA_CA_CERTS as set here' },
  { operation: 'verify', title: 'verify (hash every file)' },
  { operation: 'restore', title: 'restore (octopus-dr checks every SHA-256)' },
];

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const store = path.join(options.dir, 'store');
  const out = path.join(options.dir, 'out');
  const builtBundles = path.join(ROOT, 'build/steps');
  if (!existsSync(path.join(builtBundles, 'backup-file-store.js')) || !existsSync(path.join(builtBundles, 'restore-file-store.js'))) {
    process.stdout.write('Building the bundles (npm run build)...\n');
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }

  const marker = path.join(options.dir, 'store.json');
  const storeKey = JSON.stringify({ scale: options.scale, bigGiB: options.bigGiB });
  const reuse = options.reuse && existsSync(marker) && readFileSync(marker, 'utf8').startsWith(storeKey.slice(0, -1));
  if (!reuse) rmSync(options.dir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
  rmSync(path.join(options.dir, 'bundles'), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // A copy of the bundles: a rebuild while the benchmark runs does not change what it measures.
  const bundles = path.join(options.dir, 'bundles');
  mkdirSync(bundles);
  for (const name of ['backup-file-store.js', 'restore-file-store.js']) copyFileSync(path.join(builtBundles, name), path.join(bundles, name));
  let data: { files: number; bytes: number };
  if (reuse) {
    data = JSON.parse(readFileSync(marker, 'utf8')).data as typeof data;
    process.stdout.write(`Reusing the store in ${store}: ${data.files} files, ${(data.bytes / 1e9).toFixed(3)} GB\n`);
  } else {
    process.stdout.write(`Generating the store (scale ${options.scale}, big package ${options.bigGiB.toFixed(2)} GiB) in ${store}...\n`);
    const t0 = Date.now();
    data = generate(store, options);
    writeFileSync(marker, `${storeKey.slice(0, -1)},"data":${JSON.stringify(data)}}`);
    process.stdout.write(`  ${data.files} files, ${(data.bytes / 1e9).toFixed(3)} GB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const folders = ['TaskLogs', 'Artifacts', 'Packages'];

  const extraCaCertificates = process.env.NODE_EXTRA_CA_CERTS;
  if (extraCaCertificates) {
    process.stdout.write(
      `NODE_EXTRA_CA_CERTS is set here (${extraCaCertificates}): a bare \`node -e 0\` takes ${nodeStartMs(process.env).toFixed(0)} ms with it and ` +
        `${nodeStartMs(withoutExtraCaCertificates()).toFixed(0)} ms without (median of 11). octopus-dr runs without it, as on a worker that does not set it; ` +
        'the row "NODE_EXTRA_CA_CERTS as set here" times one more unchanged incremental with it.\n',
    );
  }
  const peers: Peer[] = [octopusDr('octopus-dr', bundles, store, folders, extraCaCertificates !== undefined)];
  // --baseline=a,b: earlier builds, each one more peer.
  for (const baseline of options.baseline?.split(',') ?? []) peers.push(octopusDr(`octopus-dr (${path.basename(path.resolve(baseline))})`, path.resolve(baseline), store, folders));
  peers.push(tarZstd(store, folders));
  peers.push(tarZstdDurable(store, folders));
  if (options.restic) peers.push(restic(store, folders));
  else process.stdout.write('restic is not installed (apt-get install -y restic), so it is left out.\n');
  if (options.zip) peers.push(infoZip(store, folders));

  const rows: Row[] = [];
  const rowOf = (operation: Operation, tool: string) => {
    let row = rows.find((r) => r.operation === operation && r.tool === tool);
    if (!row) rows.push((row = { operation, tool, runs: [] }));
    return row;
  };
  process.stdout.write('Before every timed operation of every tool, `sync` runs untimed (dirty pages are written back off the clock).\n');
  if (reporting.kind === 'active') process.stdout.write('Free page reporting is active here: before every timed operation the bench also waits until the guest has reported its free memory to the host (see free-page-reporting.ts).\n');
  if (reclaimAtStart.kind === 'on') process.stdout.write(`Warning: ${describeProactiveReclaim(reclaimAtStart)}.\n`);
  for (let round = 1; round <= options.rounds; round++) {
    // Rotate who goes first, so no tool always runs right after the busiest one.
    const order = peers.map((_, i) => peers[(i + round - 1) % peers.length]);
    process.stdout.write(`Round ${round}/${options.rounds}: ${order.map((p) => p.name).join(', ')}\n`);
    for (const peer of order) {
      const peerOut = path.join(out, 'peer');
      rmSync(peerOut, { recursive: true, force: true });
      mkdirSync(peerOut, { recursive: true });
      await peer.round(peerOut, (operation, command, opts = {}) => {
        const m = measure(command, opts.cwd ?? store, opts.env);
        const row = rowOf(operation, peer.name);
        row.runs.push(m);
        if (opts.archive) row.archiveBytes = sizeOf(opts.archive());
        process.stdout.write(`  ${`${operation}: ${peer.name}`.padEnd(52)} ${m.wall.toFixed(2)} s, CPU ${m.cpu?.toFixed(2) ?? '?'} s  (load ${m.load.toFixed(2)})\n`);
      });
      rmSync(peerOut, { recursive: true, force: true });
    }
  }

  const mb = data.bytes / 1e6;
  const loads = rows.flatMap((r) => r.runs.map((m) => m.load));
  const lines = [
    `Data: ${data.files} files, ${(data.bytes / 1e9).toFixed(3)} GB (scale ${options.scale}); ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}; ` +
      `${options.rounds} alternating round(s), median (min-max); warm page cache, \`sync\` (untimed) before every timed operation; load average ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)} (median ${median(loads).toFixed(2)}); ` +
      `${describeReporting(reporting, settleWaits, settlesNotQuiet)}; ${describeProactiveReclaim(reclaimAtStart)}` +
      (proactiveReclaim().kind !== reclaimAtStart.kind ? ' (at the start; it changed during the run)' : '') +
      '; every tool with its stdin on /dev/null.',
    '',
    '| operation | tool | wall s, median (min-max) | CPU s (user+sys), median | MB/s | peak RSS MiB | archive MB | ÷ fastest peer | load |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { operation, title } of OPERATIONS) {
    const group = rows.filter((r) => r.operation === operation);
    if (group.length === 0) continue;
    // The extra incremental is compared with the peers' unchanged incrementals.
    const peersOf = operation === 'incremental-as-set' ? rows.filter((r) => r.operation === 'incremental') : group;
    const fastest = Math.min(...peersOf.map((r) => median(r.runs.map((m) => m.wall))));
    for (const r of group) {
      const walls = r.runs.map((m) => m.wall);
      const wall = median(walls);
      const rss = r.runs.map((m) => m.rssMiB).filter((v): v is number => v !== undefined);
      const fullRow = rows.find((x) => x.operation === 'backup' && x.tool === r.tool);
      const ofFull = operation.startsWith('incremental') && fullRow ? `; ${((wall / median(fullRow.runs.map((m) => m.wall))) * 100).toFixed(1)} % of its full` : '';
      const runLoads = r.runs.map((m) => m.load);
      const cpus = r.runs.map((m) => m.cpu).filter((v): v is number => v !== undefined);
      lines.push(
        `| ${title} | ${r.tool.replace(/\|/g, '\\|')} | ${wall.toFixed(2)} (${Math.min(...walls).toFixed(2)}-${Math.max(...walls).toFixed(2)}) | ${cpus.length ? median(cpus).toFixed(2) : 'n/a'} | ` +
          `${operation.startsWith('incremental') ? '' : (mb / wall).toFixed(0)} | ${rss.length ? Math.max(...rss).toFixed(0) : 'n/a'} | ` +
          `${r.archiveBytes === undefined ? '' : (r.archiveBytes / 1e6).toFixed(1)} | ${(wall / fastest).toFixed(2)}${ofFull} | ${Math.min(...runLoads).toFixed(1)}-${Math.max(...runLoads).toFixed(1)} |`,
      );
    }
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
  if (!options.keep) rmSync(options.dir, { recursive: true, force: true });
  else rmSync(out, { recursive: true, force: true });
}
