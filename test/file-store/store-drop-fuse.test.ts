// A real file store that stops answering partway through a backup: the store is a FUSE mount
// (bindfs) whose daemon is killed once part of it is stored, so every later open, read and stat
// gets the kernel's own ENOTCONN (ECONNABORTED for a request in flight when it died), on the main
// thread, in the small-file workers and in the large-file thread alike. With "Skip unreadable files" the backup skipped the rest of the store
// with warnings and exited 0; it must fail, say the store stopped answering, and keep nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import type { FileStoreProgress } from '../../steps/engines/file-store/progress';
import { BUFFERED_FILE_LIMIT } from '../../steps/engines/file-store/small-file-workers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { logText, pseudoRandomBytes, silentLog, tempDir, write } from './helpers';

const hasBindfs = spawnSync('bindfs', ['--version']).status === 0;
const canMount = hasBindfs && existsSync('/dev/fuse') && process.getuid?.() === 0;
const withFuse = canMount ? describe : describe.skip;

const work = tempDir('store-drop');
const t = new Date('2026-11-20T08:00:00.000Z');
const mounts: string[] = [];
afterAll(() => {
  for (const mount of mounts) spawnSync('umount', ['-l', mount]);
  rmSync(work, { recursive: true, force: true });
});

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Packages'];
let seq = 0;

/** A store of 200 task logs and 3 large packages, seen through a bindfs mount; returns the mount and its daemon's pid. */
function mountedStore(): { mount: string; pid: number; out: string } {
  const source = path.join(work, `source-${++seq}`);
  for (let i = 0; i < 200; i++) write(path.join(source, 'TaskLogs', `servertasks-${String(i).padStart(3, '0')}.log.txt`), logText(40 + (i % 30), i), undefined, t);
  for (let i = 0; i < 3; i++) write(path.join(source, 'Packages', `Acme.${i}.1.0.0.nupkg`), pseudoRandomBytes(BUFFERED_FILE_LIMIT + 1024 * 1024 + i, 60 + i), undefined, t);
  const mount = path.join(work, `mount-${seq}`);
  mkdirSync(mount);
  execFileSync('bindfs', [source, mount]);
  mounts.push(mount);
  const pid = Number(execFileSync('pgrep', ['-n', '-f', `bindfs ${source} ${mount}`], { encoding: 'utf8' }).trim());
  return { mount, pid, out: path.join(work, `out-${seq}`) };
}

/** Kills the mount's daemon and waits until the kernel answers ENOTCONN for it. */
function dropStore(pid: number, mount: string): void {
  process.kill(pid, 'SIGKILL');
  const until = Date.now() + 5000;
  for (;;) {
    try {
      statSync(mount);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTCONN') return;
      // A request in flight when the daemon died: the connection is being torn down.
      if (code !== 'ECONNABORTED') throw error;
    }
    if (Date.now() > until) throw new Error(`${mount} still answers 5 s after its daemon was killed`);
  }
}

withFuse('a FUSE file store whose daemon dies partway (real ENOTCONN)', () => {
  test.each([0, 2])('with "Skip unreadable files" the backup fails, says the store stopped answering, and keeps nothing (%i worker threads)', async (workers) => {
    const { mount, pid, out } = mountedStore();
    const folders: ResolvedFolder[] = FOLDERS.map((name) => ({ name, path: path.join(mount, name), origin: 'home' }));
    let dropped = false;
    // Once 50 files are stored: the rest of the logs and every package are still to come.
    const onProgress = (p: FileStoreProgress) => {
      if (dropped || p.filesDone < 50) return;
      dropped = true;
      dropStore(pid, mount);
    };
    const run = backupFileStore(
      { folders, backupDirectory: out, mode: 'Full', skipUnreadable: true, toolVersion: 'test', smallFileWorkers: workers, onProgress },
      quietEngineContext({ log: silentLog }),
    );
    const message = await run.then(
      (result) => `resolved: ${result.manifest.files.length} files stored, ${result.manifest.skipped.length} skipped`,
      (error: Error) => `${error.name}: ${error.message}`,
    );
    expect(dropped).toBe(true);
    expect(message).toMatch(
      /^FileStoreError: The share or disk that holds the file store stopped answering \((ENOTCONN: socket is not connected|ECONNABORTED: software caused connection abort), [a-z]+[^)]*\) while reading (TaskLogs|Packages)\/[^ ]+\. Nothing was kept: check the connection to it .*then run the backup again\.$/,
    );
    expect(readdirSync(out)).toEqual([]);
  });

  test.each([0, 2])('in the middle of a large package (%i worker threads: on the large-file thread, or the main thread): fails naming it, keeps nothing', async (workers) => {
    const { mount, pid, out } = mountedStore();
    const folders: ResolvedFolder[] = FOLDERS.map((name) => ({ name, path: path.join(mount, name), origin: 'home' }));
    let dropped = false;
    // Every log is stored (200 files) and at least 1 MiB of the first package streamed.
    let logBytes = -1;
    const onProgress = (p: FileStoreProgress) => {
      if (dropped || p.filesDone < 200) return;
      if (logBytes < 0) logBytes = p.bytesDone;
      if (p.bytesDone - logBytes < 1024 * 1024) return;
      dropped = true;
      dropStore(pid, mount);
    };
    const message = await backupFileStore(
      { folders, backupDirectory: out, mode: 'Full', skipUnreadable: true, toolVersion: 'test', smallFileWorkers: workers, onProgress },
      quietEngineContext({ log: silentLog }),
    ).then(
      () => 'resolved',
      (error: Error) => `${error.name}: ${error.message}`,
    );
    expect(dropped).toBe(true);
    // That package, or a later one opened ahead of its turn (the main thread opens them early).
    expect(message).toMatch(/^FileStoreError: The share or disk that holds the file store stopped answering \((ENOTCONN|ECONNABORTED): [^)]*\) while reading Packages\/Acme\.\d\.1\.0\.0\.nupkg\. Nothing was kept/);
    expect(readdirSync(out)).toEqual([]);
  });

  test('before the backup starts: the store folder itself does not answer, with the opt-in', async () => {
    const { mount, pid, out } = mountedStore();
    dropStore(pid, mount);
    const folders: ResolvedFolder[] = FOLDERS.map((name) => ({ name, path: path.join(mount, name), origin: 'home' }));
    const message = await backupFileStore({ folders, backupDirectory: out, mode: 'Full', skipUnreadable: true, toolVersion: 'test' }, quietEngineContext({ log: silentLog })).then(
      () => 'resolved',
      (error: Error) => `${error.name}: ${error.message}`,
    );
    expect(message).toBe(
      `FileStoreError: The share or disk that holds the file store stopped answering (ENOTCONN: socket is not connected, stat '${path.join(mount, 'TaskLogs')}') while reading the TaskLogs folder ${path.join(mount, 'TaskLogs')}. ` +
        'Nothing was kept: check the connection to it (is it still mounted and reachable from this worker?), then run the backup again.',
    );
    expect(existsSync(out)).toBe(false);
  });

  // Unmounted outright (umount -l: what an admin or an automounter does), the share's files look
  // deleted: each was a "vanished" warning and the set was kept, exit 0, as if complete.
  test.each([
    ['folders inside the share (they are gone from the path)', (mount: string) => FOLDERS.map((name) => ({ name, path: path.join(mount, name) }))],
    ['a folder that is the mount point itself (the path is now the empty folder under it)', (mount: string) => [{ name: 'TaskLogs' as const, path: path.join(mount) }]],
  ])('a share unmounted partway, %s: the backup fails saying so, and keeps nothing', async (_label, foldersOf) => {
    const { mount, out } = mountedStore();
    // The mount point as its own folder: TaskLogs' logs at its top.
    const folders: ResolvedFolder[] = foldersOf(mount).map((f) => ({ ...f, origin: 'home' as const }));
    if (folders.length === 1) for (let i = 0; i < 60; i++) write(path.join(mount, `top-${i}.log.txt`), logText(10, i), undefined, t);
    let unmounted = false;
    const onProgress = (p: FileStoreProgress) => {
      if (unmounted || p.filesDone < 20) return;
      unmounted = true;
      execFileSync('umount', ['-l', mount]);
    };
    const message = await backupFileStore(
      { folders, backupDirectory: out, mode: 'Full', skipUnreadable: true, toolVersion: 'test', smallFileWorkers: 0, onProgress },
      quietEngineContext({ log: silentLog }),
    ).then(
      (result) => `resolved: ${result.manifest.files.length} files, ${result.warnings.length} warnings`,
      (error: Error) => `${error.name}: ${error.message}`,
    );
    expect(unmounted).toBe(true);
    expect(message).toMatch(
      new RegExp(
        `^FileStoreError: The TaskLogs folder ${escapeRegExp(folders[0].path)} is no longer where the backup scanned it \\((it is now on device \\d+, it was on device \\d+|ENOENT: no such file or directory, stat '[^']+')\\): ` +
          'the disk or share holding it was unmounted or remounted while the backup ran, so files that look deleted may only be out of reach\\. Nothing was kept: .*then run the backup again\\.$',
      ),
    );
    expect(readdirSync(out)).toEqual([]);
  });
});

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

