// "Skip unreadable files" skips a file, never the file store itself: a share (SMB, NFS) or disk
// that stops answering partway (ENOTCONN, EHOSTDOWN, ETIMEDOUT, ...) made every remaining file
// "unreadable", so the backup skipped them all with warnings and exited 0 with whatever it had
// stored. Such codes always fail the backup, wherever a file is classified (the scan, the
// readability check, the main thread's open, the small-file workers, the large-file thread),
// with a last line that names the file, gives the code once and says what to do; per-file codes
// (permissions, a lock, EIO, ESTALE, EREMOTEIO) are still skipped with the opt-in. Also: a read
// error names the right side (the source file or the backup folder's disk), and the progress
// ends at its total when files were skipped.
import { existsSync, mkdirSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName } from '../../steps/engines/file-store/folders';
import type { FileStoreProgress } from '../../steps/engines/file-store/progress';
import { largeFileThreadCanRun, SLOT_BYTES } from '../../steps/engines/file-store/large-file-thread';
import { BUFFERED_FILE_LIMIT, workersCanRun } from '../../steps/engines/file-store/small-file-workers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { logText, pseudoRandomBytes, silentLog, tempDir, write } from './helpers';
import { runStepInProcess } from '../helpers/in-process';

// The module objects themselves (a namespace import's properties cannot be replaced by a spy).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsModule = require('node:fs') as typeof import('node:fs');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const workerThreads = require('node:worker_threads') as typeof import('node:worker_threads');

const work = tempDir('store-fault');
const t = new Date('2026-11-20T08:00:00.000Z');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Node's own wording of each code (libuv's strerror). */
const TEXT: Record<string, string> = {
  ENOTCONN: 'socket is not connected',
  EHOSTDOWN: 'host is down',
  EHOSTUNREACH: 'host is unreachable',
  ENETDOWN: 'network is down',
  ENETUNREACH: 'network is unreachable',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset by peer',
  ECONNABORTED: 'software caused connection abort',
  ENODEV: 'no such device',
  EIO: 'i/o error',
  ESTALE: 'stale file handle',
  EREMOTEIO: 'remote I/O error',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EBUSY: 'resource busy or locked',
  EMFILE: 'too many open files',
};
const STORE_GONE = ['ENOTCONN', 'EHOSTDOWN', 'EHOSTUNREACH', 'ENETDOWN', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'ECONNABORTED', 'ENODEV'];
const PER_FILE = ['EACCES', 'EPERM', 'EBUSY', 'EIO', 'ESTALE', 'EREMOTEIO'];

const osError = (code: string, syscall: string, file?: string) =>
  Object.assign(new Error(`${code}: ${TEXT[code]}, ${syscall}${file ? ` '${file}'` : ''}`), { code, syscall, ...(file ? { path: file } : {}) });

let seq = 0;
interface Store {
  home: string;
  out: string;
  small: string;
  large: string;
}
/** A TaskLogs folder of a few small logs and one large (stored) file, and a fresh backup folder. */
function makeStoreWith(): Store {
  const home = path.join(work, `store-${++seq}`);
  for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `a-${i}.log.txt`), logText(30 + i, i), undefined, t);
  const small = path.join(home, 'TaskLogs', 'b-failing.log.txt');
  write(small, logText(40, 9), undefined, t);
  const large = path.join(home, 'TaskLogs', 'c-failing.zip');
  write(large, pseudoRandomBytes(BUFFERED_FILE_LIMIT + 3 * SLOT_BYTES + 11, 7), undefined, t);
  for (let i = 0; i < 3; i++) write(path.join(home, 'TaskLogs', `d-${i}.log.txt`), logText(20 + i, 20 + i), undefined, t);
  return { home, out: path.join(work, `out-${seq}`), small, large };
}

const options = (store: Store, skipUnreadable: boolean, smallFileWorkers: number, out = store.out, onProgress?: (p: FileStoreProgress) => void) => ({
  folders: [{ name: 'TaskLogs' as FileStoreFolderName, path: path.join(store.home, 'TaskLogs'), origin: 'home' as const }],
  backupDirectory: out,
  mode: 'Full' as const,
  skipUnreadable,
  toolVersion: 'test',
  smallFileWorkers,
  ...(onProgress ? { onProgress } : {}),
});
const backUp = (store: Store, skipUnreadable: boolean, smallFileWorkers = 0, out = store.out, onProgress?: (p: FileStoreProgress) => void) =>
  backupFileStore(options(store, skipUnreadable, smallFileWorkers, out, onProgress), quietEngineContext({ log: silentLog }));
const messageOf = (run: Promise<unknown>) => run.then(() => 'resolved: the backup succeeded', (error: Error) => `${error.name}: ${error.message}`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The last line for a store that stopped answering (`during`: what it was doing to `name`). */
const storeGone = (code: string, reason: string, during: string) =>
  new RegExp(
    `^FileStoreError: The share or disk that holds the file store stopped answering \\(${escape(reason)}\\) while ${escape(during)}\\. ` +
      'Nothing was kept: check the connection to it \\(is it still mounted and reachable from this worker\\?\\), then run the backup again\\.$',
  );

/** What a failed backup may leave in its backup folder: nothing (no archive, manifest or partial under any name). */
const leftIn = (out: string) => (existsSync(out) ? readdirSync(out) : []);

const occurrences = (text: string, word: string) => text.split(word).length - 1;

/** The main thread's opens of each file (promises.open for large files, openSync for small ones) fail with its code. */
function failOpens(codes: Record<string, string>): () => void {
  const open = fs.open;
  const openSync = fsModule.openSync;
  const a = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    const code = codes[String(args[0])];
    if (code) throw osError(code, 'open', String(args[0]));
    return open(...args);
  });
  const s = jest.spyOn(fsModule, 'openSync').mockImplementation((...args: Parameters<typeof fsModule.openSync>) => {
    const code = codes[String(args[0])];
    if (code) throw osError(code, 'open', String(args[0]));
    return openSync(...args);
  });
  return () => {
    a.mockRestore();
    s.mockRestore();
  };
}
const failOpensOf = (file: string, code: string) => failOpens({ [file]: code });

/**
 * Threads started during the backup run `preamble(source)` before their own code: the way to make
 * a worker's or the large-file thread's own fs calls fail (a spy in this thread does not reach them).
 */
function withThreadPreamble(preamble: (source: string) => string): () => void {
  const RealWorker = workerThreads.Worker;
  const withPreamble = (source: string, opts?: import('node:worker_threads').WorkerOptions) => new RealWorker(opts?.eval ? `${preamble(source)}\n${source}` : source, opts);
  const spy = jest.spyOn(workerThreads as unknown as { Worker: typeof withPreamble }, 'Worker').mockImplementation(withPreamble);
  return () => spy.mockRestore();
}

const isSmallFileWorker = (source: string) => source.includes('freeBatchBuffers');
const isLargeFileThread = (source: string) => source.includes('function pump(');

/** For the small-file workers: opens (or reads) of `file` fail with `code`, as the kernel would fail them. */
const workerFails = (file: string, code: string, at: 'open' | 'read') => (source: string) =>
  !isSmallFileWorker(source)
    ? ''
    : `{
  const fs = require('node:fs');
  const openSync = fs.openSync, readSync = fs.readSync, closeSync = fs.closeSync;
  const failing = new Set();
  const error = (syscall, file) => Object.assign(new Error(${JSON.stringify(`${code}: ${TEXT[code]}, `)} + syscall + (file ? " '" + file + "'" : '')), { code: ${JSON.stringify(code)}, syscall });
  fs.openSync = function (file, ...rest) {
    if (file === ${JSON.stringify(file)} && ${JSON.stringify(at)} === 'open') throw error('open', file);
    const fd = openSync.call(this, file, ...rest);
    if (file === ${JSON.stringify(file)}) failing.add(fd);
    return fd;
  };
  fs.readSync = function (fd, ...rest) {
    if (failing.has(fd)) throw error('read');
    return readSync.call(this, fd, ...rest);
  };
  fs.closeSync = function (fd) {
    failing.delete(fd);
    return closeSync.call(this, fd);
  };
}`;

/** For the large-file thread: its reads succeed `good` times, then fail with `code`. */
const threadFails = (code: string, good: number) => (source: string) =>
  !isLargeFileThread(source)
    ? ''
    : `{
  const fs = require('node:fs');
  const readSync = fs.readSync;
  let reads = 0;
  fs.readSync = function (...args) {
    if (++reads > ${good}) throw Object.assign(new Error(${JSON.stringify(`${code}: ${TEXT[code]}, read`)}), { code: ${JSON.stringify(code)}, syscall: 'read' });
    return readSync.apply(this, args);
  };
}`;

/** The main thread's reads of `file` after its `good` first ones fail with `code` (a large file streamed on the main thread). */
function failMainThreadReadsOf(file: string, code: string, good: number): () => void {
  const open = fs.open;
  const spy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    const handle = await open(...args);
    if (args[0] === file) {
      const read = handle.read.bind(handle) as (...a: unknown[]) => unknown;
      let reads = 0;
      handle.read = ((...a: unknown[]) => (++reads > good ? Promise.reject(osError(code, 'read')) : read(...a))) as typeof handle.read;
    }
    return handle;
  });
  return () => spy.mockRestore();
}

const withWorkers = workersCanRun() ? describe : describe.skip;
const onThread = largeFileThreadCanRun() ? test : test.skip;

describe('a store that stops answering when a file is opened fails the backup, even with "Skip unreadable files"', () => {
  test.each(STORE_GONE)('%s opening a small file (main thread), with the opt-in', async (code) => {
    const store = makeStoreWith();
    const restore = failOpensOf(store.small, code);
    try {
      const message = await messageOf(backUp(store, true));
      expect(message).toMatch(storeGone(code, `${code}: ${TEXT[code]}, open '${store.small}'`, 'reading TaskLogs/b-failing.log.txt'));
      expect(occurrences(message, code)).toBe(1);
      expect(message).not.toMatch(/read access|Skip unreadable/);
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      restore();
    }
  });

  test.each([
    ['a small file', 'small', true],
    ['a small file', 'small', false],
    ['a large file', 'large', true],
    ['a large file', 'large', false],
  ] as const)('ENOTCONN opening %s (main thread; skip unreadable %s): the same message either way', async (_what, which, skipUnreadable) => {
    const store = makeStoreWith();
    const file = store[which];
    const restore = failOpensOf(file, 'ENOTCONN');
    try {
      const message = await messageOf(backUp(store, skipUnreadable));
      const name = `TaskLogs/${path.basename(file)}`;
      expect(message).toMatch(storeGone('ENOTCONN', `ENOTCONN: socket is not connected, open '${file}'`, `reading ${name}`));
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      restore();
    }
  });

  test('through runStep: exit code 1 and the last line says what happened and what to do', async () => {
    const store = makeStoreWith();
    const restore = failOpensOf(store.large, 'EHOSTDOWN');
    mkdirSync(store.out);
    try {
      const run = await runStepInProcess(
        'backup-file-store',
        ['--folders', `TaskLogs=${path.join(store.home, 'TaskLogs')}`, '--include', 'TaskLogs', '--file-store-backup-directory', store.out, '--skip-unreadable'],
        { env: { OCTOPUSDR_FILE_STORE_WORKERS: '0' } },
      );
      expect(`${run.code}\n${run.stdout}\n${run.stderr}`).toMatch(/^1\n/);
      const lines = `${run.stdout}\n${run.stderr}`.trim().split('\n');
      expect(lines.at(-1)).toMatch(/The share or disk that holds the file store stopped answering \(EHOSTDOWN: host is down, open '.*c-failing\.zip'\) while reading TaskLogs\/c-failing\.zip\. Nothing was kept: check the connection to it .*then run the backup again\.$/);
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      restore();
    }
  });
});

withWorkers('the small-file workers classify and word each reason as the main thread does', () => {
  test.each([
    ['ENOTCONN', 'open'],
    ['EHOSTDOWN', 'read'],
    ['ETIMEDOUT', 'read'],
  ] as const)('%s on %s in a worker fails the backup with the opt-in, with the main thread\'s message', async (code, at) => {
    const store = makeStoreWith();
    const restoreWorkers = withThreadPreamble(workerFails(store.small, code, at));
    let onWorkers: string;
    try {
      onWorkers = await messageOf(backUp(store, true, 2));
    } finally {
      restoreWorkers();
    }
    expect(onWorkers).toMatch(storeGone(code, at === 'open' ? `${code}: ${TEXT[code]}, open '${store.small}'` : `${code}: ${TEXT[code]}, read`, 'reading TaskLogs/b-failing.log.txt'));
    expect(leftIn(store.out)).toEqual([]);
    // The same failure on the main thread: the same words.
    const restoreMain = at === 'open' ? failOpensOf(store.small, code) : failSmallReadsOnMainThread(store.small, code);
    try {
      expect(await messageOf(backUp(store, true, 0, `${store.out}-main`))).toBe(onWorkers);
    } finally {
      restoreMain();
    }
  });

  test.each(['EIO', 'ESTALE', 'EACCES'])('%s in a worker is still skipped with the opt-in, listed as the main thread lists it', async (code) => {
    const store = makeStoreWith();
    const restore = withThreadPreamble(workerFails(store.small, code, 'open'));
    try {
      const result = await backUp(store, true, 2);
      expect(result.manifest.skipped).toEqual([{ folder: 'TaskLogs', path: 'b-failing.log.txt', reason: `${code}: ${TEXT[code]}, open '${store.small}'` }]);
      expect(result.warnings).toEqual([`TaskLogs/b-failing.log.txt cannot be read (${code}: ${TEXT[code]}, open '${store.small}'); skipped.`]);
    } finally {
      restore();
    }
  });
});

/** The main thread's synchronous reads of a small file fail with `code` (its open succeeds). */
function failSmallReadsOnMainThread(file: string, code: string): () => void {
  const openSync = fsModule.openSync;
  const readSync = fsModule.readSync;
  const failing = new Set<number>();
  const o = jest.spyOn(fsModule, 'openSync').mockImplementation((...args: Parameters<typeof fsModule.openSync>) => {
    const fd = openSync(...args);
    if (args[0] === file) failing.add(fd);
    return fd;
  });
  const r = jest.spyOn(fsModule, 'readSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
    if (failing.has(fd)) {
      failing.delete(fd);
      throw osError(code, 'read');
    }
    return (readSync as (...a: unknown[]) => number)(fd, ...rest);
  }) as typeof fsModule.readSync);
  return () => {
    o.mockRestore();
    r.mockRestore();
  };
}

describe('a store that stops answering while a large file streams', () => {
  onThread('on the large-file thread: fails, names the file and the store (not the backup folder), nothing kept', async () => {
    const store = makeStoreWith();
    const restore = withThreadPreamble(threadFails('ENOTCONN', 1));
    let message: string;
    try {
      message = await messageOf(backUp(store, true, 2));
    } finally {
      restore();
    }
    expect(message).toMatch(storeGone('ENOTCONN', 'ENOTCONN: socket is not connected, read', 'reading TaskLogs/c-failing.zip'));
    expect(message).not.toContain(store.out);
    expect(leftIn(store.out)).toEqual([]);
  });

  test('on the main thread: the same message', async () => {
    const store = makeStoreWith();
    const restore = failMainThreadReadsOf(store.large, 'ENOTCONN', 1);
    try {
      const message = await messageOf(backUp(store, true, 0));
      expect(message).toMatch(storeGone('ENOTCONN', 'ENOTCONN: socket is not connected, read', 'reading TaskLogs/c-failing.zip'));
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      restore();
    }
  });
});

describe('a read error names the right side', () => {
  const sourceSide = (name: string) =>
    new RegExp(
      `^FileStoreError: ${escape(name)} could not be read to its end \\(EIO: i/o error, read\\): the disk or share of the file store that holds it reported an error\\. ` +
        'Nothing was kept: check that disk or share and the system log, then run the backup again\\.$',
    );

  onThread('EIO while the large-file thread streams a source file: the source file and its store, even with the opt-in (a half-written entry cannot be taken back)', async () => {
    const store = makeStoreWith();
    const restore = withThreadPreamble(threadFails('EIO', 2));
    let message: string;
    try {
      message = await messageOf(backUp(store, true, 2));
    } finally {
      restore();
    }
    expect(message).toMatch(sourceSide('TaskLogs/c-failing.zip'));
    expect(message).not.toContain(store.out);
    expect(leftIn(store.out)).toEqual([]);
  });

  test('EIO while the main thread streams a source file: the same message', async () => {
    const store = makeStoreWith();
    const restore = failMainThreadReadsOf(store.large, 'EIO', 1);
    try {
      const message = await messageOf(backUp(store, true, 0));
      expect(message).toMatch(sourceSide('TaskLogs/c-failing.zip'));
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      restore();
    }
  });

  test('EIO writing the archive: the backup folder\'s disk, not a source file', async () => {
    const store = makeStoreWith();
    const write0 = fsModule.write;
    const writev0 = fsModule.writev;
    const fail = (...a: unknown[]) => (a.pop() as (e: Error) => void)(osError('EIO', 'write'));
    (fsModule as { write: unknown }).write = fail;
    (fsModule as { writev: unknown }).writev = fail;
    let message: string;
    try {
      message = await messageOf(backUp(store, true, 0));
    } finally {
      (fsModule as { write: unknown }).write = write0;
      (fsModule as { writev: unknown }).writev = writev0;
    }
    expect(message).toMatch(new RegExp(`^FileStoreError: The disk holding ${escape(store.out)} reported an input/output error \\(EIO\\) while writing the archive .*check the disk`));
    expect(message).not.toMatch(/failing|file store/);
    expect(leftIn(store.out)).toEqual([]);
  });
});

describe('the scan and the readability check', () => {
  test.each([true, false])('ENOTCONN from the scan (lstat) fails the backup (skip unreadable %s), naming what it scanned', async (skipUnreadable) => {
    const store = makeStoreWith();
    const lstatSync = fsModule.lstatSync;
    const spy = jest.spyOn(fsModule, 'lstatSync').mockImplementation(((file: string, ...rest: unknown[]) => {
      if (file === store.small) throw osError('ENOTCONN', 'lstat', file);
      return (lstatSync as (...a: unknown[]) => unknown)(file, ...rest);
    }) as typeof fsModule.lstatSync);
    try {
      const message = await messageOf(backUp(store, skipUnreadable));
      expect(message).toMatch(storeGone('ENOTCONN', `ENOTCONN: socket is not connected, lstat '${store.small}'`, 'scanning TaskLogs/b-failing.log.txt'));
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  test('the scan stops at the first ENOTCONN: no later entry is looked at (each would wait out a soft mount\'s time-out)', async () => {
    const store = makeStoreWith();
    for (let i = 0; i < 50; i++) write(path.join(store.home, 'TaskLogs', `z-later-${i}.log.txt`), logText(2, i), undefined, t);
    const lstatSync = fsModule.lstatSync;
    let failed = false;
    let after = 0;
    const spy = jest.spyOn(fsModule, 'lstatSync').mockImplementation(((file: string, ...rest: unknown[]) => {
      if (failed) after += 1;
      if (file === store.small || failed) {
        failed = true;
        throw osError('ENOTCONN', 'lstat', file);
      }
      return (lstatSync as (...a: unknown[]) => unknown)(file, ...rest);
    }) as typeof fsModule.lstatSync);
    try {
      const message = await messageOf(backUp(store, true));
      expect(message).toMatch(storeGone('ENOTCONN', `ENOTCONN: socket is not connected, lstat '${store.small}'`, 'scanning TaskLogs/b-failing.log.txt'));
      expect({ failed, after }).toEqual({ failed: true, after: 0 });
      expect(leftIn(store.out)).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  test('EHOSTDOWN from the readability check fails the backup with the opt-in', async () => {
    const store = makeStoreWith();
    const accessSync = fsModule.accessSync;
    const spy = jest.spyOn(fsModule, 'accessSync').mockImplementation((...args: Parameters<typeof fsModule.accessSync>) => {
      if (args[0] === store.large) throw osError('EHOSTDOWN', 'access', store.large);
      return accessSync(...args);
    });
    try {
      const message = await messageOf(backUp(store, true));
      expect(message).toMatch(storeGone('EHOSTDOWN', `EHOSTDOWN: host is down, access '${store.large}'`, 'checking that TaskLogs/c-failing.zip can be read'));
    } finally {
      spy.mockRestore();
    }
  });

  test('ETIMEDOUT on a store folder itself: the store message, not "give read access"', async () => {
    const store = makeStoreWith();
    const folder = path.join(store.home, 'TaskLogs');
    const stat = fs.stat;
    const spy = jest.spyOn(fs, 'stat').mockImplementation((async (...args: Parameters<typeof fs.stat>) => {
      if (args[0] === folder) throw osError('ETIMEDOUT', 'stat', folder);
      return stat(...args);
    }) as typeof fs.stat);
    try {
      const message = await messageOf(backUp(store, true));
      expect(message).toMatch(storeGone('ETIMEDOUT', `ETIMEDOUT: connection timed out, stat '${folder}'`, `reading the TaskLogs folder ${folder}`));
    } finally {
      spy.mockRestore();
    }
  });

  test('EMFILE listing a subfolder (this worker out of open files) fails the backup with the opt-in, not skipping the folder', async () => {
    const store = makeStoreWith();
    const sub = path.join(store.home, 'TaskLogs', 'sub');
    write(path.join(sub, 'e.log.txt'), logText(10, 3), undefined, t);
    const readdirSync = fsModule.readdirSync;
    const spy = jest.spyOn(fsModule, 'readdirSync').mockImplementation(((dir: string, ...rest: unknown[]) => {
      if (dir === sub) throw osError('EMFILE', 'scandir', dir);
      return (readdirSync as (...a: unknown[]) => unknown)(dir, ...rest);
    }) as typeof fsModule.readdirSync);
    try {
      const message = await messageOf(backUp(store, true));
      expect(message).toBe(
        `FileStoreError: This worker ran out of open files or memory (EMFILE: too many open files, scandir '${sub}') while scanning TaskLogs/sub; the file store itself is fine. ` +
          "Nothing was kept: raise the open-file limit of the worker's account (ulimit -n) or free memory, then run the backup again.",
      );
    } finally {
      spy.mockRestore();
    }
  });

  test('EIO from the scan is still skipped with the opt-in', async () => {
    const store = makeStoreWith();
    const lstatSync = fsModule.lstatSync;
    const spy = jest.spyOn(fsModule, 'lstatSync').mockImplementation(((file: string, ...rest: unknown[]) => {
      if (file === store.small) throw osError('EIO', 'lstat', file);
      return (lstatSync as (...a: unknown[]) => unknown)(file, ...rest);
    }) as typeof fsModule.lstatSync);
    try {
      const result = await backUp(store, true);
      expect(result.manifest.skipped).toEqual([{ folder: 'TaskLogs', path: 'b-failing.log.txt', reason: `EIO: i/o error, lstat '${store.small}'` }]);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('per-file problems are still skipped with the opt-in (main thread)', () => {
  test.each(PER_FILE.flatMap((code) => [[code, 'small'] as const, [code, 'large'] as const]))('%s opening a %s file', async (code, which) => {
    const store = makeStoreWith();
    const file = store[which];
    const restore = failOpensOf(file, code);
    try {
      const result = await backUp(store, true);
      const name = path.basename(file);
      expect(result.manifest.skipped).toEqual([{ folder: 'TaskLogs', path: name, reason: `${code}: ${TEXT[code]}, open '${file}'` }]);
      expect(result.manifest.files.map((f) => f.path)).not.toContain(name);
      expect(result.manifest.files).toHaveLength(9);
    } finally {
      restore();
    }
  });
});

describe('the progress ends at its total when files were skipped', () => {
  const last = (reports: FileStoreProgress[]) => reports.at(-1)!;

  test.each([0, 2])('a small and a large file skipped (%i worker threads)', async (workers) => {
    const store = makeStoreWith();
    const restoreOpen = failOpens(workers > 0 ? { [store.large]: 'EIO' } : { [store.large]: 'EIO', [store.small]: 'EACCES' });
    const restoreSmall = workers > 0 ? withThreadPreamble(workerFails(store.small, 'EACCES', 'open')) : () => undefined;
    const reports: FileStoreProgress[] = [];
    let result;
    try {
      result = await backUp(store, true, workers, store.out, (p) => reports.push({ ...p }));
    } finally {
      restoreSmall();
      restoreOpen();
    }
    expect(result.manifest.skipped.map((s) => s.path).sort()).toEqual(['b-failing.log.txt', 'c-failing.zip']);
    const end = last(reports);
    expect(end.filesDone).toBe(end.filesTotal);
    expect(end.bytesDone).toBe(end.bytesTotal);
    expect(end.bytesDone).toBe(result.manifest.totals.storedBytes);
    for (const p of reports) expect(p.bytesDone).toBeLessThanOrEqual(p.bytesTotal);
  });

  test('a file that vanished after the scan', async () => {
    const store = makeStoreWith();
    const reports: FileStoreProgress[] = [];
    let removed = false;
    const result = await backUp(store, false, 0, store.out, (p) => {
      reports.push({ ...p });
      if (!removed) {
        removed = true;
        rmSync(store.large);
      }
    });
    expect(result.manifest.skipped).toEqual([{ folder: 'TaskLogs', path: 'c-failing.zip', reason: 'vanished during the backup' }]);
    const end = last(reports);
    expect([end.filesDone, end.bytesDone]).toEqual([end.filesTotal, end.bytesTotal]);
  });
});
