// A single file over 4 GiB (sparse, so it costs no disk to create) needs ZIP64 records: the
// archive must pass `unzip -t` and Python's zipfile, and restore with the right size and hash.
// Deliberately one test, run once: it reads and writes gigabytes.
import { spawnSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { resolveBackupSource, restoreFileStore } from '../../steps/engines/file-store';
import { silentLog, tempDir, write } from './helpers';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const SIZE = 4 * 1024 ** 3 + 64 * 1024 ** 2;

test('a sparse 4 GiB + 64 MiB file round-trips through a ZIP64 archive', async () => {
  const work = tempDir('zip64');
  try {
    const folder = path.join(work, 'home', 'Packages');
    // Zeros compress ~1000:1 with deflate, so the archive stays small: give it a text-like name.
    write(path.join(folder, 'big-export.bin'), 'head');
    spawnSync('truncate', ['-s', String(SIZE), path.join(folder, 'big-export.bin')]);
    write(path.join(folder, 'small.txt'), 'small');
    const out = path.join(work, 'out');
    const result = await backupFileStore({
      folders: [{ name: 'Packages', path: folder, origin: 'home' }],
      backupDirectory: out,
      mode: 'Full',
      skipUnreadable: false,
      toolVersion: 'test',
    }, quietEngineContext({ log: silentLog }));
    expect(result.manifest.files.find((f) => f.path === 'big-export.bin')?.size).toBe(SIZE);

    const unzip = spawnSync('unzip', ['-t', result.archivePath], { encoding: 'utf8' });
    expect(unzip.stdout).toContain('No errors detected');
    const python = spawnSync(
      'python3',
      ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); i = z.getinfo("Packages/big-export.bin"); print(i.file_size, z.read("Packages/small.txt").decode())', result.archivePath],
      { encoding: 'utf8' },
    );
    expect(python.stderr).toBe('');
    expect(python.stdout.trim()).toBe(`${SIZE} small`);

    const target = path.join(work, 'restored', 'Packages');
    const set = await resolveBackupSource(out);
    // Restore checks the SHA-256 of every byte against the manifest.
    await restoreFileStore({ set, destinations: [{ name: 'Packages', path: target, origin: 'home' }], replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }));
    expect(statSync(path.join(target, 'big-export.bin')).size).toBe(SIZE);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}, 600_000);
