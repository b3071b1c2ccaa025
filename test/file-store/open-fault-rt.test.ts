// Red team of stop 24 (any open failure of a large file is skippable; I/O-error advice): failures
// that are the backup's own or the machine's (too many open files, no memory) must not be skipped
// as "unreadable files" nor advise read access; a dead share's codes get the disk-or-share advice;
// the scan's access check gives the same advice as the open; a large file skipped after it was
// opened does not leave its descriptor open.
import { promises as fs, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore, listBackupSets, restoreFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName } from '../../steps/engines/file-store/folders';
import { NOW_THROUGH_A_LINK } from '../../steps/engines/file-store/opened-path';
import { BUFFERED_FILE_LIMIT } from '../../steps/engines/file-store/small-file-workers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { pseudoRandomBytes, silentLog, tempDir, write } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsModule = require('node:fs') as typeof import('node:fs');
const work = tempDir('open-fault-rt');
const t = new Date('2026-11-20T08:00:00.000Z');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const MESSAGES: Record<string, string> = {
  EMFILE: 'too many open files',
  ENFILE: 'file table overflow',
  ENOMEM: 'not enough memory',
  ENOTCONN: 'socket is not connected',
  EHOSTDOWN: 'host is down',
  ETIMEDOUT: 'connection timed out',
  EIO: 'i/o error',
};
const failure = (code: string, syscall: string, file: string) =>
  Object.assign(new Error(`${code}: ${MESSAGES[code] ?? 'failed'}, ${syscall} '${file}'`), { code, syscall, path: file });

let seq = 0;
function storeWith(folder: FileStoreFolderName, failing: string, size: number): { home: string; file: string; out: string } {
  const home = path.join(work, `store-${++seq}`);
  write(path.join(home, folder, 'a-fine.txt'), 'fine\n', undefined, t);
  const file = path.join(home, folder, failing);
  write(file, pseudoRandomBytes(size, 5), undefined, t);
  return { home, file, out: path.join(work, `out-${seq}`) };
}

function failOpensOf(file: string, code: string): () => void {
  const open = fs.open;
  const openSync = fsModule.openSync;
  const a = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    if (args[0] === file) throw failure(code, 'open', file);
    return open(...args);
  });
  const s = jest.spyOn(fsModule, 'openSync').mockImplementation((...args: Parameters<typeof fsModule.openSync>) => {
    if (args[0] === file) throw failure(code, 'open', file);
    return openSync(...args);
  });
  return () => {
    a.mockRestore();
    s.mockRestore();
  };
}

const backUp = (home: string, folder: FileStoreFolderName, out: string, skipUnreadable: boolean) =>
  backupFileStore(
    { folders: [{ name: folder, path: path.join(home, folder), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable, toolVersion: 'test', smallFileWorkers: 0 },
    quietEngineContext({ log: silentLog }),
  );

const messageOf = (run: Promise<unknown>) => run.then(() => 'resolved: the backup succeeded', (error: Error) => error.message);

const sizes: [string, FileStoreFolderName, string, number][] = [
  ['a large package', 'Packages', 'Acme.Big.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 7],
  ['a small log', 'TaskLogs', 'ServerTasks-2.log.txt', 2000],
];

describe.each(sizes)('%s whose open fails because the backup or the machine is out of a resource', (_what, folder, name, size) => {
  test.each(['EMFILE', 'ENFILE', 'ENOMEM'])('%s with "Skip unreadable files" fails the backup (the file is fine: skipping it would exit 0 without it)', async (code) => {
    const { home, file, out } = storeWith(folder, name, size);
    const restore = failOpensOf(file, code);
    try {
      const message = await messageOf(backUp(home, folder, out, true));
      expect(message).toContain(code);
      expect(message).not.toMatch(/read access/);
      expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toEqual([]);
    } finally {
      restore();
    }
  });

  test('EMFILE without the opt-in does not advise read access nor "Skip unreadable files"', async () => {
    const { home, file, out } = storeWith(folder, name, size);
    const restore = failOpensOf(file, 'EMFILE');
    try {
      const message = await messageOf(backUp(home, folder, out, false));
      expect(message).toContain('EMFILE');
      expect(message).not.toMatch(/read access/);
      expect(message).not.toContain('Skip unreadable files');
    } finally {
      restore();
    }
  });
});

// The file store of an Octopus HA cluster is a share: a share that drops answers with these.
// (Since stop 25 a store that stopped answering always fails the backup: store-fault.test.ts.)
test.each(['ENOTCONN', 'EHOSTDOWN', 'ETIMEDOUT'])('a large file whose open fails with %s (a dead share) says to check the connection to the share, not read access', async (code) => {
  const { home, file, out } = storeWith('Packages', 'Acme.Share.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 1);
  const restore = failOpensOf(file, code);
  try {
    const message = await messageOf(backUp(home, 'Packages', out, false));
    expect(message).toContain(`stopped answering (${code}:`);
    expect(message).toMatch(/check the connection to it/);
    expect(message).not.toMatch(/read access|Skip unreadable/);
  } finally {
    restore();
  }
});

test("a file whose scan-time access check fails with EIO says to check the disk or share, as its open would (not read access)", async () => {
  const { home, file, out } = storeWith('TaskLogs', 'ServerTasks-3.log.txt', 100);
  const accessSync = fsModule.accessSync;
  const spy = jest.spyOn(fsModule, 'accessSync').mockImplementation((...args: Parameters<typeof fsModule.accessSync>) => {
    if (args[0] === file) throw failure('EIO', 'access', file);
    return accessSync(...args);
  });
  try {
    const message = await messageOf(backUp(home, 'TaskLogs', out, false));
    expect(message).toContain('TaskLogs/ServerTasks-3.log.txt (EIO: i/o error, access');
    expect(message).toMatch(/Check the disk or share/i);
    expect(message).not.toMatch(/read access/);
  } finally {
    spy.mockRestore();
  }
});

test('a large file skipped because its stat fails after the open (EIO) has its descriptor closed', async () => {
  const { home, file, out } = storeWith('Packages', 'Acme.Stat.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 3);
  const open = fs.open;
  let opened: Awaited<ReturnType<typeof fs.open>> | undefined;
  const spy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    const handle = await open(...args);
    if (args[0] === file) {
      opened = handle;
      Object.defineProperty(handle, 'stat', { value: async () => Promise.reject(failure('EIO', 'fstat', file)) });
    }
    return handle;
  });
  try {
    const result = await backUp(home, 'Packages', out, true);
    expect(result.manifest.skipped).toEqual([{ folder: 'Packages', path: 'Acme.Stat.1.0.0.nupkg', reason: `EIO: i/o error, fstat '${file}'` }]);
    expect(result.manifest.files.map((f) => f.path)).toEqual(['a-fine.txt']);
    expect(opened).toBeDefined();
    // A FileHandle's fd is -1 once closed; left open, Node closes it on garbage collection with a
    // warning on stderr, after the step's last line.
    expect(opened!.fd).toBe(-1);
  } finally {
    spy.mockRestore();
    if (opened && opened.fd !== -1) await opened.close();
  }
});

test('a large file now reached through a link, without the opt-in, fails with one clear message (not wrapped in a second "cannot be read")', async () => {
  const { home, file, out } = storeWith('Packages', 'Acme.Swapped.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 5);
  const elsewhere = path.join(work, 'elsewhere.bin');
  write(elsewhere, 'outside the store\n');
  const open = fs.open;
  // The open lands somewhere else than the scanned path: what /proc/self/fd shows when a folder on its path became a link.
  const spy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => (args[0] === file ? open(elsewhere, args[1]) : open(...args)));
  try {
    const message = await messageOf(backUp(home, 'Packages', out, false));
    expect(message).toBe(`Packages/Acme.Swapped.1.0.0.nupkg cannot be read (${NOW_THROUGH_A_LINK}). Put the folder back in place of the link, or set "Skip unreadable files".`);
  } finally {
    spy.mockRestore();
  }
});

test('a large file skipped for an I/O error is stored by the next incremental once readable, and the incremental restores it', async () => {
  const { home, file, out } = storeWith('Packages', 'Acme.Later.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 9);
  const restore = failOpensOf(file, 'EIO');
  let full;
  try {
    full = await backUp(home, 'Packages', out, true);
  } finally {
    restore();
  }
  expect(full.manifest.files.map((f) => f.path)).toEqual(['a-fine.txt']);
  expect(full.manifest.skipped.map((s) => s.path)).toEqual(['Acme.Later.1.0.0.nupkg']);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const incremental = await backupFileStore(
    { folders: [{ name: 'Packages', path: path.join(home, 'Packages'), origin: 'home' }], backupDirectory: out, mode: 'Incremental', skipUnreadable: false, toolVersion: 'test', smallFileWorkers: 0 },
    quietEngineContext({ log: silentLog }),
  );
  expect(incremental.manifest.mode).toBe('Incremental');
  expect(incremental.manifest.skipped).toEqual([]);
  expect(incremental.manifest.totals.storedFiles).toBe(1);
  expect(incremental.manifest.files.map((f) => [f.path, f.archive === incremental.manifest.archive])).toEqual([
    ['Acme.Later.1.0.0.nupkg', true],
    ['a-fine.txt', false],
  ]);
  const { sets } = await listBackupSets(out);
  const set = sets.find((s) => s.manifest.archive === incremental.manifest.archive)!;
  const target = path.join(work, `restored-${seq}`);
  await restoreFileStore({ set, destinations: [{ name: 'Packages', path: target, origin: 'home' }], replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }));
  expect(readFileSync(path.join(target, 'Acme.Later.1.0.0.nupkg')).equals(readFileSync(file))).toBe(true);
  expect(readFileSync(path.join(target, 'a-fine.txt'), 'utf8')).toBe('fine\n');
});

test('"Skip unreadable files" when every file fails to open (a share that dropped after the scan) does not succeed with an empty backup', async () => {
  const home = path.join(work, `store-${++seq}`);
  const out = path.join(work, `out-${seq}`);
  const big = path.join(home, 'Packages', 'Acme.A.1.0.0.nupkg');
  write(big, pseudoRandomBytes(BUFFERED_FILE_LIMIT + 1, 7), undefined, t);
  const restore = failOpensOf(big, 'EIO');
  try {
    // The scan saw one readable file; its open fails: 0 files would be backed up, which the scan
    // itself refuses without "Allow an empty backup" ("hold no files we can read").
    const message = await messageOf(backUp(home, 'Packages', out, true));
    expect(message).not.toBe('resolved: the backup succeeded');
    expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toEqual([]);
  } finally {
    restore();
  }
});
