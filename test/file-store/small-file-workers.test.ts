// The small files of a backup read, hashed and deflated on worker threads: the archive must be
// the one the main thread writes (same entries, CRCs, methods and sizes), readable by Info-ZIP
// and Python, restorable; a worker that stops must never cost a file; a cancel must leave nothing.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import * as path from 'node:path';
import { backupFileStore, resolveBackupSource, restoreFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { BUFFERED_FILE_LIMIT, SmallFileWorkers, WorkerUnavailable } from '../../steps/engines/file-store/small-file-workers';
import { DEFLATE_MEM_LEVEL } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { collectingLog, expectSigtermMidBackup, logText, makeStore, pseudoRandomBytes, runBundle, silentLog, snapshot, tempDir, write, zipEntries as entries } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

const work = tempDir('workers');
const home = path.join(work, 'home');

/** makeStore, plus enough task logs for several batches, and files at the size limits. */
function makeBusyStore(): void {
  makeStore(home);
  const t = new Date('2026-10-02T12:00:00.000Z');
  for (let i = 0; i < 90; i++) write(path.join(home, 'TaskLogs', 'busy', `task-${i}.log.txt`), logText(40 + i * 37, i + 100), undefined, t);
  const limitText = Buffer.alloc(BUFFERED_FILE_LIMIT, logText(200, 7));
  write(path.join(home, 'TaskLogs', 'at-the-limit.log.txt'), limitText, undefined, t);
  write(path.join(home, 'TaskLogs', 'one-byte-over.log.txt'), Buffer.concat([limitText, Buffer.from('x')]), undefined, t);
  write(path.join(home, 'Packages', 'feeds-builtin', 'Acme.Small.1.0.0.nupkg'), pseudoRandomBytes(150_000, 3), undefined, t);
  write(path.join(home, 'Artifacts', 'Spaces-1', 'empty-too.txt'), '', undefined, t);
}

async function backup(out: string, smallFileWorkers: number, log: ReturnType<typeof collectingLog>['log'] | typeof silentLog = silentLog) {
  return backupFileStore({ folders: at(home), backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers }, quietEngineContext({ log }));
}

beforeAll(() => makeBusyStore());
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('small files prepared by worker threads', () => {
  let onMain: string;
  let onWorkers: string;
  beforeAll(async () => {
    onMain = (await backup(path.join(work, 'main'), 0)).archivePath;
    onWorkers = (await backup(path.join(work, 'workers'), 2)).archivePath;
  });

  test('give the same entries as the main thread: CRC, method, sizes, mode and time of every one', () => {
    const expected = entries(onMain);
    expect(Object.keys(expected).length).toBeGreaterThan(140);
    expect(entries(onWorkers)).toEqual(expected);
  });

  test('deflate text, store packages, and leave a file one byte over the limit to the streaming path', () => {
    const all = entries(onWorkers);
    expect(all['TaskLogs/busy/task-3.log.txt'][1]).toBe(8);
    expect(all['TaskLogs/at-the-limit.log.txt'][1]).toBe(8);
    expect(all['TaskLogs/one-byte-over.log.txt'][1]).toBe(8);
    expect(all['Packages/feeds-builtin/Acme.Small.1.0.0.nupkg'][1]).toBe(0);
    expect(all['Artifacts/Spaces-1/empty-too.txt'][2]).toBe(0);
  });

  test('a text file over the limit, streamed through yazl\'s own deflate stream, is deflated at the same memLevel as the small ones', () => {
    const content = readFileSync(path.join(home, 'TaskLogs', 'one-byte-over.log.txt'));
    const atOurs = deflateRawSync(content, { level: 1, memLevel: DEFLATE_MEM_LEVEL }).length;
    // Otherwise this test could not tell the two apart.
    expect(deflateRawSync(content, { level: 1, memLevel: 8 }).length).not.toBe(atOurs);
    for (const archive of [onMain, onWorkers]) expect(entries(archive)['TaskLogs/one-byte-over.log.txt'].slice(1, 4)).toEqual([8, content.length, atOurs]);
  });

  test('the built bundle (workers run from a source string) writes the same entries', async () => {
    const out = path.join(work, 'bundle');
    mkdirSync(out);
    const run = await runBundle('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out], { env: { OCTOPUSDR_FILE_STORE_WORKERS: '2' } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(entries(path.join(out, readdirSync(out).find((n) => n.endsWith('.zip'))!))).toEqual(entries(onMain));
  });

  test('Info-ZIP unzip -t accepts the archive', () => {
    const run = spawnSync('unzip', ['-t', onWorkers], { encoding: 'utf8' });
    expect(run.stdout).toContain('No errors detected');
    expect(run.status).toBe(0);
  });

  test('verify passes and a restore reproduces the store', async () => {
    expect(await verifyFileStoreBackup(onWorkers)).toMatchObject({ ok: true, problems: [] });
    const restored = path.join(work, 'restored');
    const set = await resolveBackupSource(onWorkers);
    await restoreFileStore({ set, destinations: at(restored), replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }));
    expect(snapshot(restored)).toEqual(snapshot(home));
  });
});

test('when the workers stop mid-backup, the rest is read on the main thread and nothing is missing', async () => {
  const prepare = SmallFileWorkers.prototype.prepare;
  let calls = 0;
  const spy = jest.spyOn(SmallFileWorkers.prototype, 'prepare').mockImplementation(function (this: SmallFileWorkers, jobs) {
    calls += 1;
    return calls <= 2 ? prepare.call(this, jobs) : Promise.reject(new WorkerUnavailable('a worker thread exited (code 1)'));
  });
  try {
    const { log, infos, warnings } = collectingLog();
    const result = await backup(path.join(work, 'fallback'), 2, log);
    expect(calls).toBeGreaterThan(3);
    expect(infos.join('\n')).toContain('The worker threads stopped (a worker thread exited (code 1)); the rest of the small files are read on the main thread.');
    expect(warnings).toEqual([]);
    expect(entries(result.archivePath)).toEqual(entries((await backup(path.join(work, 'fallback-main'), 0)).archivePath));
  } finally {
    spy.mockRestore();
  }
});

test('a worker that dies fails its batch as WorkerUnavailable, and the pool closes', async () => {
  const pool = new SmallFileWorkers(1, 'process.exit(3)');
  await expect(pool.prepare([{ localPath: path.join(home, 'TaskLogs', 'servertasks-1.log.txt'), size: 1, level: 1 }])).rejects.toThrow(WorkerUnavailable);
  await expect(pool.prepare([])).rejects.toThrow(/exited \(code 3\)/);
  await pool.close();
});

test('a worker reports a vanished file and an unreadable path as the main thread does', async () => {
  const pool = new SmallFileWorkers(1);
  try {
    const folder = path.join(work, 'a-folder');
    mkdirSync(folder, { recursive: true });
    const [vanished, unreadable, read] = await pool.prepare([
      { localPath: path.join(work, 'no-such-file.txt'), size: 1, level: 1 },
      { localPath: folder, size: 1, level: 1 },
      { localPath: path.join(home, 'Artifacts', 'Spaces-1', 'deploy.sh'), size: 18, level: 0 },
    ]);
    expect(vanished).toEqual({ kind: 'vanished' });
    expect(unreadable).toMatchObject({ kind: 'unreadable', message: 'not a regular file any more (replaced since the scan)' });
    expect(read).toMatchObject({ kind: 'read', size: 18, level: 0, mode: 0o755 });
    expect(read.kind === 'read' && read.content.toString()).toBe('#!/bin/sh\necho hi\n');
  } finally {
    await pool.close();
  }
});

test('SIGTERM while workers prepare small files stops the bundle with exit code 143 and no archive', async () => {
  const out = path.join(work, 'sigterm');
  mkdirSync(out);
  const many = path.join(work, 'sigterm-home');
  for (let i = 0; i < 400; i++) write(path.join(many, 'TaskLogs', `t-${i}.log.txt`), logText(400, i));
  await expectSigtermMidBackup(['--home-directory', many, '--include', 'TaskLogs'], out, { OCTOPUSDR_FILE_STORE_WORKERS: '2' });
});
