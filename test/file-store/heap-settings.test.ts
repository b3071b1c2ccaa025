// The V8 flags of the file-store runs (heap.ts): chosen once per process by its first file-store
// run, before any thread starts, and never changed afterwards (not by later runs of another kind,
// not when a run ends, not by a thread as it starts). Each probe runs in a fresh Node process (the
// jest worker's may be chosen already): it records every V8 flag change and every thread started,
// in order; V8 would print a flag it does not know on stderr, which must stay empty.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { makeStore, tempDir, write } from './helpers';

const HEAP = path.join(__dirname, '../../steps/engines/file-store/heap');
/** The name V8 knows in the Node running the tests (stderr, checked empty, would say if it did not). */
const NO_TURBOFAN = Number(process.versions.v8.split('.')[0]) >= 11 ? '--no-turbofan' : '--no-opt';

const PROBE = `
const v8 = require('node:v8');
const threads = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const events = [];
const setFlags = v8.setFlagsFromString;
v8.setFlagsFromString = (flag) => { events.push(flag); setFlags(flag); };
const OriginalWorker = threads.Worker;
// A thread's source that sets a flag itself (as every thread did until stop 22) is recorded as such.
threads.Worker = class extends OriginalWorker {
  constructor(...args) {
    events.push(/setFlagsFromString/.test(String(args[0])) ? 'thread that sets a flag' : 'thread');
    super(...args);
  }
};

const { allowFullBackupToTurnOffOptimizingCompiler, backupFileStore, verifyFileStoreBackup, restoreFileStore, resolveBackupSource } = require(${JSON.stringify(path.join(__dirname, '../../steps/engines/file-store'))});
const { quietEngineContext } = require(${JSON.stringify(path.join(__dirname, '../../steps/runtime/engine-context'))});

(async () => {
  const [work, backups, runs, asStep] = process.argv.slice(2);
  // As the backup step's program does (its main.ts), or not, as engines in a shared process.
  if (asStep === 'step') allowFullBackupToTurnOffOptimizingCompiler();
  const home = path.join(work, 'home');
  const folders = (root) => ['TaskLogs', 'Packages'].map((name) => ({ name, path: path.join(root, name), origin: 'home' }));
  let restores = 0;
  const run = {
    backup: () => backupFileStore({ folders: folders(home), backupDirectory: backups, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext()),
    incremental: () => backupFileStore({ folders: folders(home), backupDirectory: backups, mode: 'Incremental', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext()),
    verify: async () => {
      const result = await verifyFileStoreBackup(backups, {}, quietEngineContext());
      if (!result.ok) throw new Error(result.problems.join('; '));
    },
    restore: async () => restoreFileStore({ set: await resolveBackupSource(backups), destinations: folders(path.join(work, 'restored-' + process.pid + '-' + restores++)), replaceExisting: false, dryRun: false }, quietEngineContext()),
  };
  // A thread started after the runs finds gc (the workers' young-generation collections need it).
  const threadSeesGc = () => new Promise((resolve, reject) => {
    const probeThread = new OriginalWorker("require('node:worker_threads').parentPort.postMessage(typeof gc)", { eval: true });
    probeThread.once('message', (kind) => { resolve(kind); void probeThread.terminate(); }).once('error', reject);
  });
  for (const kind of runs.split(',').filter(Boolean)) {
    await run[kind]();
    events.push(kind + ' ended');
  }
  console.log(JSON.stringify({ events, threadSeesGc: await threadSeesGc() }));
})().catch((error) => { console.error(error); process.exit(1); });
`;

const work = tempDir('heap-settings');
const backups = path.join(work, 'backups');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const probeFile = path.join(work, 'probe.js');
function probe(runs: string[], asStep = false): { events: string[]; threadSeesGc: string } {
  if (!existsSync(probeFile)) buildSync({ stdin: { contents: PROBE, resolveDir: __dirname, loader: 'js' }, bundle: true, platform: 'node', format: 'cjs', outfile: probeFile });
  const run = spawnSync(process.execPath, [probeFile, work, backups, runs.join(','), asStep ? 'step' : 'shared'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, OCTOPUSDR_FILE_STORE_WORKERS: '2' },
  });
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  return JSON.parse(run.stdout) as { events: string[]; threadSeesGc: string };
}

/** Flag changes before the first thread, the ones after it (there must be none), and the threads started. */
function inOrder(events: string[]) {
  const firstThread = events.findIndex((e) => e.startsWith('thread'));
  const isFlag = (e: string) => e.startsWith('--');
  return {
    flagsBeforeThreads: events.slice(0, firstThread).filter(isFlag),
    flagsAfterFirstThread: events.slice(firstThread).filter(isFlag),
    threads: events.filter((e) => e === 'thread').length,
    threadsThatSetFlags: events.filter((e) => e === 'thread that sets a flag').length,
    ended: events.filter((e) => e.endsWith(' ended')),
  };
}

beforeAll(() => {
  const home = path.join(work, 'home');
  makeStore(home);
  // Over the large-file threshold: read and hashed on the backup's large-file thread, copied on the restore's.
  write(path.join(home, 'Packages', 'Acme.Big.1.0.0.zip'), Buffer.alloc(12 * 1024 * 1024, 7));
  // A set for the probes that verify or restore first.
  probe(['backup']);
}, 60_000);

test('a backup first: its flags (gc for the threads; the old generation grows by 50 %) are set before its first thread; a later verify, restore or run end changes nothing', () => {
  const { events, threadSeesGc } = probe(['backup', 'verify', 'restore']);
  const order = inOrder(events);
  expect(order.ended).toEqual(['backup ended', 'verify ended', 'restore ended']);
  // Small-file workers and the large-file thread, then the two entry threads of each of verify and restore.
  expect(order.threads).toBeGreaterThanOrEqual(6);
  // A shared process (jest, the benchmarks): TurboFan stays on for whatever runs after.
  expect(order.flagsBeforeThreads).toEqual(['--expose-gc', '--heap-growing-percent=50']);
  expect(order.flagsAfterFirstThread).toEqual([]);
  expect(order.threadsThatSetFlags).toBe(0);
  expect(threadSeesGc).toBe('function');
}, 60_000);

test('in the backup step\'s own process, a full backup turns TurboFan off before its first thread, and once', () => {
  const { events } = probe(['backup', 'backup', 'verify'], true);
  expect(inOrder(events)).toMatchObject({
    flagsBeforeThreads: ['--expose-gc', '--heap-growing-percent=50', NO_TURBOFAN],
    flagsAfterFirstThread: [],
    threadsThatSetFlags: 0,
    ended: ['backup ended', 'backup ended', 'verify ended'],
  });
}, 60_000);

test('in the backup step\'s own process, an incremental that builds on a set keeps TurboFan (its work is partly JavaScript); a later full backup turns it off before its own threads', () => {
  const { events } = probe(['incremental', 'backup'], true);
  const order = inOrder(events);
  expect(order.ended).toEqual(['incremental ended', 'backup ended']);
  // The incremental of an unchanged store starts no thread: the flag comes with the full backup's.
  expect(events.indexOf(NO_TURBOFAN)).toBeGreaterThan(events.indexOf('incremental ended'));
  expect(order).toMatchObject({ flagsBeforeThreads: ['--expose-gc', '--heap-growing-percent=50', NO_TURBOFAN], flagsAfterFirstThread: [], threadsThatSetFlags: 0 });
}, 60_000);

test('a verify first: the read-only runs\' flags (a small young generation until the first thread; the old one grows by only 20 %) are set before its first thread; a later backup, restore or run end changes nothing', () => {
  const { events, threadSeesGc } = probe(['verify', 'backup', 'restore', 'verify']);
  const order = inOrder(events);
  expect(order.ended).toEqual(['verify ended', 'backup ended', 'restore ended', 'verify ended']);
  expect(order.threads).toBeGreaterThanOrEqual(8);
  expect(order.flagsBeforeThreads).toEqual(['--expose-gc', '--semi-space-growth-factor=1', '--heap-growing-percent=20']);
  expect(order.flagsAfterFirstThread).toEqual([]);
  expect(order.threadsThatSetFlags).toBe(0);
  expect(threadSeesGc).toBe('function');
}, 60_000);

test('a restore first chooses the read-only runs\' flags too', () => {
  const { events } = probe(['restore', 'backup']);
  expect(inOrder(events)).toMatchObject({ flagsBeforeThreads: ['--expose-gc', '--semi-space-growth-factor=1', '--heap-growing-percent=20'], flagsAfterFirstThread: [], threadsThatSetFlags: 0, ended: ['restore ended', 'backup ended'] });
}, 60_000);

test('each copy of heap.ts (jest loads one per test file) sees the choice of the first: a process chooses once', () => {
  const copies: { chooseHeapSettingsOnce: (kind: 'backup' | 'read') => string }[] = [];
  jest.isolateModules(() => copies.push(require(HEAP)));
  jest.isolateModules(() => copies.push(require(HEAP)));
  expect(copies[0]).not.toBe(copies[1]);
  // In this jest worker an earlier test file may have chosen already: whichever kind, the second copy keeps it.
  const chosen = copies[0].chooseHeapSettingsOnce('read');
  expect(copies[1].chooseHeapSettingsOnce(chosen === 'read' ? 'backup' : 'read')).toBe(chosen);
});
