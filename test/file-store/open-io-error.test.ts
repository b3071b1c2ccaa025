// A file whose open fails with an I/O error (a failing disk or share), small or large: the backup
// names it and says to check the disk, not to give read access; with "Skip unreadable files" it is
// skipped like any other unreadable file (a large one failed the backup while advising that very
// setting).
import { promises as fs, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName } from '../../steps/engines/file-store/folders';
import { BUFFERED_FILE_LIMIT } from '../../steps/engines/file-store/small-file-workers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { pseudoRandomBytes, silentLog, tempDir, write } from './helpers';

// The module object itself (a namespace import's properties cannot be replaced by a spy).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fsModule = require('node:fs') as typeof import('node:fs');
const work = tempDir('open-eio');
const t = new Date('2026-11-20T08:00:00.000Z');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const failure = (code: string, syscall = 'open') => Object.assign(new Error(`${code}: ${code === 'EIO' ? 'i/o error' : 'permission denied'}, ${syscall}`), { code, syscall });

/** A store of two files in one folder, the second of which fails to open with `code`. */
function storeWith(name: string, folder: FileStoreFolderName, failing: string, size: number): { home: string; file: string } {
  const home = path.join(work, name);
  write(path.join(home, folder, 'a-fine.txt'), 'fine\n', undefined, t);
  const file = path.join(home, folder, failing);
  write(file, pseudoRandomBytes(size, 5), undefined, t);
  return { home, file };
}

/** Fails every open of `file` (both the main thread's paths: promises.open for large files, openSync for small ones). */
function failOpensOf(file: string, code: string): () => void {
  const open = fs.open;
  const openSync = fsModule.openSync;
  const asyncSpy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    if (args[0] === file) throw failure(code);
    return open(...args);
  });
  const syncSpy = jest.spyOn(fsModule, 'openSync').mockImplementation((...args: Parameters<typeof fsModule.openSync>) => {
    if (args[0] === file) throw failure(code);
    return openSync(...args);
  });
  return () => {
    asyncSpy.mockRestore();
    syncSpy.mockRestore();
  };
}

const cases: [string, FileStoreFolderName, string, number][] = [
  ['a large package', 'Packages', 'Acme.Big.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 7],
  ['a small log', 'TaskLogs', 'ServerTasks-2.log.txt', 2000],
];

describe.each(cases)('%s whose open fails with EIO', (what, folder, name, size) => {
  const backUp = (home: string, out: string, skipUnreadable: boolean) =>
    backupFileStore(
      { folders: [{ name: folder, path: path.join(home, folder), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable, toolVersion: 'test', smallFileWorkers: 0 },
      quietEngineContext({ log: silentLog }),
    );

  test('fails, names the file, says to check the disk (not read access), and keeps nothing', async () => {
    const { home, file } = storeWith(`${folder}-strict`, folder, name, size);
    const out = path.join(work, `${folder}-strict-out`);
    const restore = failOpensOf(file, 'EIO');
    try {
      const run = backUp(home, out, false);
      await expect(run).rejects.toHaveProperty('name', 'FileStoreError');
      const message = await run.then(() => '', (error: Error) => error.message);
      expect(message).toMatch(new RegExp(`${folder}/${name.replace(/\./g, '\\.')} cannot be read \\(EIO: i/o error, open\\)\\. Check the disk or share that holds it \\(an I/O error\\), then run the backup again, or set "Skip unreadable files"`));
      expect(message).not.toMatch(/read access/);
      expect(readdirSync(out).filter((n) => !n.startsWith('.octopus-dr'))).toEqual([]);
    } finally {
      restore();
    }
  });

  test(`with "Skip unreadable files" the backup skips ${what} with a warning and keeps the rest`, async () => {
    const { home, file } = storeWith(`${folder}-skip`, folder, name, size);
    const out = path.join(work, `${folder}-skip-out`);
    const restore = failOpensOf(file, 'EIO');
    try {
      const result = await backUp(home, out, true);
      expect(result.manifest.files.map((f) => f.path)).toEqual(['a-fine.txt']);
      expect(result.manifest.skipped).toEqual([{ folder, path: name, reason: 'EIO: i/o error, open' }]);
      expect(result.warnings).toEqual([`${folder}/${name} cannot be read (EIO: i/o error, open); skipped.`]);
    } finally {
      restore();
    }
  });
});

test('a large file the worker may not open still says to give read access, and is skipped with the opt-in', async () => {
  const { home, file } = storeWith('eacces', 'Packages', 'Acme.Locked.1.0.0.nupkg', BUFFERED_FILE_LIMIT + 1);
  const restore = failOpensOf(file, 'EACCES');
  try {
    const options = (out: string, skipUnreadable: boolean) => ({
      folders: [{ name: 'Packages' as const, path: path.join(home, 'Packages'), origin: 'home' as const }],
      backupDirectory: out,
      mode: 'Full' as const,
      skipUnreadable,
      toolVersion: 'test',
      smallFileWorkers: 0,
    });
    await expect(backupFileStore(options(path.join(work, 'eacces-strict'), false), quietEngineContext({ log: silentLog }))).rejects.toThrow(
      /Packages\/Acme\.Locked\.1\.0\.0\.nupkg cannot be read \(EACCES: permission denied, open\)\. Give the worker's account read access, or set "Skip unreadable files"/,
    );
    const skipped = await backupFileStore(options(path.join(work, 'eacces-skip'), true), quietEngineContext({ log: silentLog }));
    expect(skipped.manifest.skipped).toEqual([{ folder: 'Packages', path: 'Acme.Locked.1.0.0.nupkg', reason: 'EACCES: permission denied, open' }]);
  } finally {
    restore();
  }
});
