// Shared by the file-store tests: generated trees, tree snapshots (hash, size, mtime, mode) and
// running the steps: in this process (runInProcess), or as the built bundles where a test needs a
// process (runBundle, runCommand: to signal it, run it as another user or on another Node.js).
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { chmodSync, mkdirSync, promises as fs, mkdtempSync, readdirSync, readFileSync, lstatSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName } from '../../steps/engines/file-store/folders';
import { MANIFEST_ENTRY_NAME } from '../../steps/engines/file-store/manifest';
import { SLOT_BYTES } from '../../steps/engines/file-store/large-file-thread';
import { StreamingZipWriter } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { THREAD_STOP_SOURCE } from '../../steps/runtime/threads';
import { builtStep } from '../helpers/bundle';
import { runStepInProcess } from '../helpers/in-process';

export const ROOT = path.resolve(__dirname, '../..');

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `octopus-dr-fs-${prefix}-`));
  chmodSync(dir, 0o755);
  return dir;
}

/** Deterministic incompressible bytes (an AES-128-CTR keystream from the seed), like packages. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const key = createHash('sha256').update(`octopus-dr-test-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

export function logText(lines: number, seed: number): string {
  const levels = ['INFO', 'VERBOSE', 'WARN', 'ERROR'];
  let text = '';
  for (let i = 0; i < lines; i++) {
    text += `2026-11-27 03:${String(i % 60).padStart(2, '0')}:00.${String((i * seed) % 1000).padStart(3, '0')} ${levels[(i + seed) % 4]} Step ${seed % 7} deploying package Acme.Web.${(i * 31 + seed) % 97}.nupkg\n`;
  }
  return text;
}

export function write(file: string, content: string | Buffer, mode?: number, mtime?: Date): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  if (mode !== undefined) chmodSync(file, mode);
  if (mtime) utimesSync(file, mtime, mtime);
}

/** An Octopus-like home with the edge cases the issue lists (small). */
export function makeStore(home: string): void {
  const t = new Date('2026-10-01T12:00:00.000Z');
  for (let i = 0; i < 40; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), logText(20 + i * 10, i), undefined, t);
  write(path.join(home, 'TaskLogs', 'servertasks-2025_ab', 'c1.tl.txt'), logText(50, 99), undefined, t);
  write(path.join(home, 'Artifacts', 'Spaces-1', 'empty.txt'), '', undefined, t);
  write(path.join(home, 'Artifacts', 'Spaces-1', "Rapport d'exécution – ü 漢字.txt"), 'unicode ✓\n', undefined, t);
  write(path.join(home, 'Artifacts', 'Spaces-1', 'deploy.sh'), '#!/bin/sh\necho hi\n', 0o755, t);
  write(path.join(home, 'Artifacts', 'Spaces-1', `${'long-name-'.repeat(24)}.txt`), 'long\n', undefined, t);
  const deep = path.join(home, 'Artifacts', ...Array.from({ length: 12 }, (_, i) => `level-${i}`), 'deep.json');
  write(deep, '{"deep":true}\n', undefined, t);
  mkdirSync(path.join(home, 'Artifacts', 'empty-folder', 'nested-empty'), { recursive: true });
  write(path.join(home, 'Packages', 'feeds-builtin', 'Acme.Web.1.0.0.nupkg'), pseudoRandomBytes(300_000, 1), undefined, t);
  write(path.join(home, 'Packages', 'feeds-builtin', 'Acme.Big.2.0.0.zip'), pseudoRandomBytes(5 * 1024 * 1024 + 17, 2), undefined, t);
  write(path.join(home, 'EventExports', 'events-2026-10.json'), JSON.stringify({ events: Array.from({ length: 200 }, (_, i) => ({ id: i })) }), undefined, t);
}

export interface Snapshot {
  [relative: string]: { type: 'file' | 'dir'; sha256?: string; size?: number; mtimeMs: number; mode: number };
}

/** Every file and folder below `root` with its hash, size, mtime (ms, rounded) and mode. */
export function snapshot(root: string): Snapshot {
  const out: Snapshot = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(full);
      if (st.isDirectory()) {
        out[r] = { type: 'dir', mtimeMs: Math.round(st.mtimeMs), mode: st.mode & 0o7777 };
        walk(full, r);
      } else {
        out[r] = { type: 'file', sha256: createHash('sha256').update(readFileSync(full)).digest('hex'), size: st.size, mtimeMs: Math.round(st.mtimeMs), mode: st.mode & 0o7777 };
      }
    }
  };
  walk(root, '');
  return out;
}

export function listAll(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      if (lstatSync(path.join(dir, name)).isDirectory()) walk(path.join(dir, name), r);
    }
  };
  walk(root, '');
  return out;
}

export const silentLog = { info: () => undefined, verbose: () => undefined, warn: () => undefined };

export function collectingLog() {
  const warnings: string[] = [];
  const infos: string[] = [];
  return { warnings, infos, log: { info: (m: string) => infos.push(m), verbose: () => undefined, warn: (m: string) => warnings.push(m) } };
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The built bundle of a step, refused when missing or older than its sources (test/helpers/bundle.ts). */
export function bundlePath(stepId: string): string {
  return builtStep(stepId);
}

/**
 * Runs a command (e.g. node + bundle), optionally as another user via setpriv, collecting output.
 * A process killed by a signal the test did not send (a crash: SIGSEGV, SIGABRT; the OOM killer's
 * SIGKILL) fails the test here, naming the signal and the end of its stderr: an exit-code
 * assertion would only say "Received: null".
 */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; onStdout?: (chunk: string, kill: (s: NodeJS.Signals) => void) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const sent = new Set<NodeJS.Signals>();
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      options.onStdout?.(d, (s) => {
        sent.add(s);
        child.kill(s);
      });
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal && !sent.has(signal)) reject(new Error(killedBySignal([command, ...args], signal, (Date.now() - started) / 1000, stderr)));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

/** What a test failure says of a process that a signal killed: which, when, and the last lines it wrote to stderr. */
function killedBySignal(commandLine: string[], signal: NodeJS.Signals, seconds: number, stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const tail = lines.length > 0 ? `the last ${Math.min(lines.length, 20)} of its ${lines.length} stderr line(s):\n${lines.slice(-20).map((l) => `  | ${l}`).join('\n')}` : 'its stderr was empty.';
  return `${commandLine.join(' ')} was killed by ${signal} after ${seconds.toFixed(1)} s (no exit code; the test sent no ${signal}); ${tail}`;
}

export function runBundle(stepId: string, args: string[], options: Parameters<typeof runCommand>[2] = {}): Promise<Run> {
  return runCommand(process.execPath, [bundlePath(stepId), ...args], options);
}

/** Where an entry's stored data starts, and its central-directory record (sizes as 32-bit fields). */
function entryLayout(bytes: Buffer, entryName: string): { dataStart: number; compressedSize: number; method: number; centralRecord: number } {
  const name = Buffer.from(entryName, 'utf8');
  for (let at = bytes.lastIndexOf(name); at >= 46; at = bytes.lastIndexOf(name, at - 1)) {
    const record = at - 46;
    if (bytes.readUInt32LE(record) !== 0x02014b50 || bytes.readUInt16LE(record + 28) !== name.length) continue;
    const compressedSize = bytes.readUInt32LE(record + 20);
    const header = bytes.readUInt32LE(record + 42);
    if (compressedSize === 0xffffffff || header === 0xffffffff) throw new Error(`${entryName}: ZIP64 fields; use a smaller entry`);
    if (bytes.readUInt32LE(header) !== 0x04034b50) throw new Error(`${entryName}: no local header at ${header}`);
    const dataStart = header + 30 + bytes.readUInt16LE(header + 26) + bytes.readUInt16LE(header + 28);
    return { dataStart, compressedSize, method: bytes.readUInt16LE(record + 10), centralRecord: record };
  }
  throw new Error(`${entryName} is not in the archive`);
}

/**
 * Flips one byte in the middle of a deflated entry's data, headers intact, choosing the first
 * byte from the middle on whose flip zlib refuses the stream (Z_DATA_ERROR) rather than
 * inflating it to other bytes.
 */
export function corruptDeflatedEntry(archivePath: string, entryName: string): void {
  const bytes = readFileSync(archivePath);
  const { dataStart, compressedSize, method } = entryLayout(bytes, entryName);
  if (method !== 8) throw new Error(`${entryName} is not deflated (method ${method})`);
  const data = bytes.subarray(dataStart, dataStart + compressedSize);
  for (let at = Math.floor(compressedSize / 2); at < compressedSize; at++) {
    const copy = Buffer.from(data);
    copy[at] ^= 0xff;
    try {
      inflateRawSync(copy);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'Z_DATA_ERROR') continue;
      bytes[dataStart + at] ^= 0xff;
      writeFileSync(archivePath, bytes);
      return;
    }
  }
  throw new Error(`no byte of ${entryName} makes zlib refuse it`);
}

/** Halves an entry's compressed size in the central directory: the deflate stream then ends early. */
export function cutEntryShort(archivePath: string, entryName: string): void {
  const bytes = readFileSync(archivePath);
  const { compressedSize, centralRecord } = entryLayout(bytes, entryName);
  bytes.writeUInt32LE(Math.floor(compressedSize / 2), centralRecord + 20);
  writeFileSync(archivePath, bytes);
}

/** Flips one byte in the middle of a stored (uncompressed) entry's data: its CRC-32 and SHA-256 no longer match. */
export function flipStoredEntryByte(archivePath: string, entryName: string): void {
  const bytes = readFileSync(archivePath);
  const { dataStart, compressedSize, method } = entryLayout(bytes, entryName);
  if (method !== 0) throw new Error(`${entryName} is not stored (method ${method})`);
  bytes[dataStart + Math.floor(compressedSize / 2)] ^= 0xff;
  writeFileSync(archivePath, bytes);
}

const ARCHIVE_COMMENT_TAIL = /octopus-dr manifest sha256:[0-9a-f]{64}$/;

/**
 * Rewrites the SHA-256 in an archive's comment (its last 64 bytes) to that of the manifest beside
 * it now: as if the archive had been written with that manifest (another version's layout), so
 * that an incremental takes the set and what it does with those bytes can be tested.
 */
export function recordManifestBesideInComment(archivePath: string, manifestPath: string): void {
  const bytes = readFileSync(archivePath);
  if (!ARCHIVE_COMMENT_TAIL.test(bytes.subarray(-128).toString('latin1'))) throw new Error(`${archivePath} does not end with a manifest's SHA-256`);
  bytes.write(createHash('sha256').update(readFileSync(manifestPath)).digest('hex'), bytes.length - 64, 'latin1');
  writeFileSync(archivePath, bytes);
}

/** Removes an archive's comment (an archive written before archives had one): its length set to 0 and its bytes cut off. */
export function removeArchiveComment(archivePath: string): void {
  const bytes = readFileSync(archivePath);
  const eocd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const length = bytes.readUInt16LE(eocd + 20);
  if (eocd < 0 || eocd + 22 + length !== bytes.length) throw new Error(`${archivePath}: no end record found where its comment says`);
  bytes.writeUInt16LE(0, eocd + 20);
  writeFileSync(archivePath, bytes.subarray(0, eocd + 22));
}

/** Runs a step with the command line `args` in this process through runStep(); `env` is its whole environment. */
export async function runInProcess(stepId: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return { ...(await runStepInProcess(stepId, args, { env: options.env })), signal: null };
}

/**
 * Runs the backup bundle and sends SIGTERM (Octopus's cancel) once it says what it backs up: it
 * must stop with exit code 143 and leave nothing in `out`, or, on a machine fast enough to finish
 * first, leave a complete set (archive and manifest).
 */
export async function expectSigtermMidBackup(args: string[], out: string, env?: NodeJS.ProcessEnv): Promise<Run> {
  let sent = false;
  const run = await runBundle('backup-file-store', [...args, '--file-store-backup-directory', out], {
    env,
    onStdout: (chunk, kill) => {
      if (!sent && /Full backup of/.test(chunk)) {
        sent = true;
        kill('SIGTERM');
      }
    },
  });
  expect(sent).toBe(true);
  expectCancelledBackupOutcome(run, out);
  return run;
}

/**
 * What a backup sent SIGTERM may end as: 0 with a complete set (it finished first); 143 with
 * nothing left in `out`; or 143 with a complete set that its last line says was finished and kept
 * (the cancel came after the set was renamed into place). Never 143 with a set it does not mention.
 */
export function expectCancelledBackupOutcome(run: Run, out: string, context: Record<string, unknown> = {}): void {
  const left = readdirSync(out);
  if (run.code === 0) {
    expect(left).toHaveLength(2);
    return;
  }
  expect({ ...context, code: run.code }).toEqual({ ...context, code: 143 });
  expect(run.stderr).toContain('SIGTERM received');
  if (left.length === 0) return;
  expect(left.sort()).toEqual([expect.stringMatching(/-full\.manifest\.json$/), expect.stringMatching(/-full\.zip$/)]);
  const last = run.stderr.trim().split('\n').pop() as string;
  expect(last).toContain('Cancelled (SIGTERM); cleanup has run.');
  expect(last).toContain(`${left[1]} and its manifest were complete and read back before the cancel, so they are kept`);
}

/** Every entry but the manifest (it names its archive) as Python's zipfile sees it: CRC, method, sizes, mode, time; after its own CRC check. */
export function zipEntries(archive: string): Record<string, unknown[]> {
  const script = `
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: [i.CRC, i.compress_type, i.file_size, i.compress_size, i.external_attr, list(i.date_time)] for i in z.infolist() if i.filename != sys.argv[2]}))
`;
  const run = spawnSync('python3', ['-c', script, archive, MANIFEST_ENTRY_NAME], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout);
}

/**
 * One stored (level 0) file through a StreamingZipWriter as `Packages/one.nupkg`, `size` claimed,
 * its large-file threads running `largeFileThreadSource` and `largeFileHasherSource` when given: the entry's result, or the
 * failure (the archive then abandoned).
 */
export async function writeOneStored(archive: string, file: string, size: number, largeFileThreadSource?: string, largeFileHasherSource?: string) {
  const writer = new StreamingZipWriter(archive, { largeFileThreadSource, largeFileHasherSource });
  const handle = await fs.open(file, 'r');
  try {
    const { done } = await writer.addStream('Packages/one.nupkg', { mtimeMs: Date.UTC(2026, 10, 20, 8), mode: 0o644 }, () => writer.fileReader(handle, size, 0));
    const result = await done;
    await writer.finish();
    return result;
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** A stand-in large-file thread: reads the first slot properly and hands it over, then runs `then` (`m` is the read message). */
export function oneSlotThen(then: string): string {
  // Stops when asked, as the real thread does (else each close() waits for terminate()).
  return `${THREAD_STOP_SOURCE}
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
onJobs((m) => {
  if (m.kind !== 'read') return;
  const view = Buffer.from(workerData.shared, 0, ${SLOT_BYTES});
  const length = fs.readSync(m.fd, view, 0, view.length, 0);
  parentPort.postMessage({ kind: 'chunk', id: m.id, slot: 0, length, crc: zlib.crc32(view.subarray(0, length)), before: 0 });
  ${then}
});`;
}

/**
 * A full backup of `home` as one store folder (Artifacts unless said), with `swap` run once at the
 * first progress report: after the scan, before the writes reach the files.
 */
export function backUpWithSwap(options: { home: string; backupDirectory: string; swap: () => void; skipUnreadable: boolean; smallFileWorkers: number; folder?: FileStoreFolderName }) {
  let swapped = false;
  return backupFileStore(
    {
      folders: [{ name: options.folder ?? 'Artifacts', path: options.home, origin: 'home' }],
      backupDirectory: options.backupDirectory,
      mode: 'Full',
      skipUnreadable: options.skipUnreadable,
      toolVersion: 'test',
      smallFileWorkers: options.smallFileWorkers,
      onProgress: () => {
        if (swapped) return;
        swapped = true;
        options.swap();
      },
    },
    quietEngineContext({ log: silentLog }),
  );
}

/**
 * Runs fixtures/end-threads-while-busy.ts: 10 rounds of 8 sets of threads at once, each ended
 * while busy (a restore's entry threads inflating, or a backup's small-file workers reading and
 * deflating), and checks that the process survived every end (docs/design.md, "Ending the worker
 * threads": cut off with terminate(), such runs aborted with SIGABRT at times).
 */
export function expectThreadsEndedWhileBusyWithoutAbort(kind: 'restore' | 'backup'): void {
  const run = spawnSync(process.execPath, ['-r', './scripts/register-ts.cjs', 'test/file-store/fixtures/end-threads-while-busy.ts', kind, '10', '8'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 55_000,
  });
  expect(run.stderr).not.toMatch(/Assertion failed|FATAL ERROR/);
  expect({ status: run.status, signal: run.signal }).toEqual({ status: 0, signal: null });
  expect(run.stdout).toMatch(/^ended 80 busy threads \(\d+ jobs done\)$/m);
}

/**
 * Records the manifests read whole from now on: a whole read is a readFile on the handle a
 * manifest was opened with, or a read from its start into a buffer larger than the 64 KiB chunks
 * a header read uses (manifest.ts, readManifestFileWithBytes). Paths as opened.
 */
export function spyOnWholeReads() {
  const open = fs.open;
  let paths: string[] = [];
  const spy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    const handle = await open(...args);
    const readFile = handle.readFile.bind(handle);
    handle.readFile = ((...rest: Parameters<typeof handle.readFile>) => {
      paths.push(String(args[0]));
      return readFile(...rest);
    }) as typeof handle.readFile;
    const read = handle.read.bind(handle) as (...a: unknown[]) => ReturnType<typeof handle.read>;
    handle.read = ((...rest: unknown[]) => {
      if (Buffer.isBuffer(rest[0]) && rest[0].length > 64 * 1024 && rest[3] === 0) paths.push(String(args[0]));
      return read(...rest);
    }) as typeof handle.read;
    return handle;
  });
  return {
    paths: () => paths,
    clear: () => void (paths = []),
    restore: () => spy.mockRestore(),
  };
}
