// What happens when things go wrong: cancel mid-backup and mid-restore, the disk filling up,
// files changing or vanishing while the backup reads them. Every case must leave no partial
// archive and no half-restored folder.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { DAMAGED_BACKUP_ADVICE, resolveBackupSource, restoreFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import {
  collectingLog,
  corruptDeflatedEntry,
  cutEntryShort,
  flipStoredEntryByte,
  listAll,
  logText,
  makeStore,
  pseudoRandomBytes,
  runBundle,
  expectSigtermMidBackup,
  silentLog,
  snapshot,
  tempDir,
  write,
} from './helpers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { CancelledError } from '../../steps/runtime/errors';
import { runStepInProcess } from '../helpers/in-process';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

const work = tempDir('failures');
const home = path.join(work, 'home');
beforeAll(() => makeStore(home));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('cancel mid-backup leaves no archive, partial or manifest', async () => {
  const out = path.join(work, 'cancelled-backup');
  const controller = new AbortController();
  let aborted = false;
  await expect(
    backupFileStore({
      folders: at(home),
      backupDirectory: out,
      mode: 'Full',
      skipUnreadable: false,
      toolVersion: 'test',
      onProgress: (p) => {
        if (!aborted && p.filesDone >= 10) {
          aborted = true;
          controller.abort(new Error('cancelled by test'));
        }
      },
    }, quietEngineContext({ log: silentLog, signal: controller.signal })),
  ).rejects.toThrow('cancelled by test');
  expect(aborted).toBe(true);
  // Let the aborted write stream finish closing before looking.
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(readdirSync(out)).toEqual([]);
});

test('cancel mid-restore leaves the destination as it was and no staging folder', async () => {
  const out = path.join(work, 'for-cancel');
  await backupFileStore({ folders: at(home), backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  const target = path.join(work, 'cancel-target');
  write(path.join(target, 'Packages', 'existing.nupkg'), 'existing');
  const before = snapshot(target);
  const controller = new AbortController();
  const set = await resolveBackupSource(out);
  await expect(
    restoreFileStore({
      set,
      destinations: at(target),
      replaceExisting: true,
      dryRun: false,
      onProgress: (p) => {
        if (p.filesDone >= 5) controller.abort(new Error('cancelled by test'));
      },
    }, quietEngineContext({ log: silentLog, signal: controller.signal })),
  ).rejects.toThrow('cancelled by test');
  expect(snapshot(target)).toEqual(before);
  expect(readdirSync(work).filter((n) => n.startsWith('cancel-target.'))).toEqual([]);
  expect(readdirSync(target).filter((n) => /staging|before-restore/.test(n))).toEqual([]);
});

test('SIGTERM mid-backup (Octopus cancel) stops the bundle with exit code 143 and no archive', async () => {
  const out = path.join(work, 'sigterm');
  mkdirSync(out);
  const big = path.join(work, 'sigterm-home');
  // Enough data that the backup is still running when the signal arrives.
  for (let i = 0; i < 6; i++) write(path.join(big, 'Packages', `p${i}.nupkg`), pseudoRandomBytes(6 * 1024 * 1024, i));
  await expectSigtermMidBackup(['--home-directory', big, '--include', 'Packages'], out);
});

test('a cancel after the set was renamed into place: exit 143, the set is kept and whole, and the last line says so and what did not run', async () => {
  const out = path.join(work, 'cancel-after-commit');
  mkdirSync(out);
  const controller = new AbortController();
  const run = await runStepInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out, '--retention-days', '30'], {
    signal: controller.signal,
    // Retention's line is the first after the set is complete; the cancel lands before the outputs.
    onStdout: (stdout) => {
      if (!controller.signal.aborted && /Retention \(30 days/.test(stdout)) controller.abort(new CancelledError('SIGTERM'));
    },
  });
  expect(run.code).toBe(143);
  const left = readdirSync(out).filter((f) => !f.startsWith('.')).sort();
  expect(left).toEqual([expect.stringMatching(/-full\.manifest\.json$/), expect.stringMatching(/-full\.zip$/)]);
  const last = run.stderr.trim().split('\n').pop() as string;
  expect(last).toBe(
    `ERROR: Cancelled (SIGTERM); cleanup has run. The new set ${path.join(out, left[1])} and its manifest were complete and read back before the cancel, so they are kept; ` +
      'retention had run (nothing deleted); the output variables may not have been set.',
  );
  expect((await verifyFileStoreBackup(path.join(out, left[0]), {}, quietEngineContext({ log: silentLog }))).ok).toBe(true);
});

test('SIGTERM mid-restore (Octopus cancel) stops the bundle with exit code 143; the destination is as it was, no staging is left, no thread keeps it alive', async () => {
  const source = path.join(work, 'sigterm-restore-home');
  makeStore(source);
  // Large stored entries (copied on a thread) and many small ones, so the restore is still running when the signal arrives.
  for (let i = 0; i < 8; i++) write(path.join(source, 'Packages', `p${i}.nupkg`), pseudoRandomBytes(6 * 1024 * 1024, 100 + i));
  for (let i = 0; i < 400; i++) write(path.join(source, 'TaskLogs', `many-${i}.log.txt`), logText(40, i));
  const out = path.join(work, 'sigterm-restore-backups');
  await backupFileStore({ folders: at(source), backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  const target = path.join(work, 'sigterm-restore-target');
  write(path.join(target, 'TaskLogs', 'current.log.txt'), 'what the server wrote since\n');
  const before = snapshot(target);
  let sent = false;
  const run = await runBundle('restore-file-store', ['--source', out, '--home-directory', target, '--replace-existing'], {
    onStdout: (chunk, kill) => {
      if (!sent && /Packages: \d+ files/.test(chunk)) {
        sent = true;
        kill('SIGTERM');
      }
    },
  });
  expect(sent).toBe(true);
  if (run.code === 0) {
    // The machine was fast enough to finish first; then the restore must be complete.
    expect(snapshot(path.join(target, 'Packages'))).toEqual(snapshot(path.join(source, 'Packages')));
  } else {
    expect(run.code).toBe(143);
    expect(run.stderr).toContain('SIGTERM received');
    expect(run.stderr).not.toMatch(/internal error/i);
    expect(snapshot(target)).toEqual(before);
  }
  expect(listAll(work).filter((n) => /sigterm-restore-target.*(staging|before-restore)/.test(n))).toEqual([]);
}, 60_000);

/** A small tmpfs when this machine allows mounts (root in CI), else a file-size limit. */
function smallFilesystem(dir: string): 'tmpfs' | 'fsize' {
  mkdirSync(dir, { recursive: true });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { encoding: 'utf8' });
  return mount.status === 0 ? 'tmpfs' : 'fsize';
}

test('disk full while writing fails clearly and leaves no partial archive', async () => {
  const full = path.join(work, 'full-disk');
  const kind = smallFilesystem(full);
  try {
    if (kind === 'tmpfs') {
      await expect(
        backupFileStore({ folders: at(home), backupDirectory: full, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog })),
      ).rejects.toThrow(/is full \(ENOSPC\) while writing the archive .* \(the partial archive was deleted\).*: free .* there or choose another directory/);
    } else {
      // No mount here: RLIMIT_FSIZE makes writes past 1 MB fail with EFBIG (Node ignores SIGXFSZ).
      const run = await runBundle('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', full]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/is full|largest file size allowed/);
    }
    expect(readdirSync(full)).toEqual([]);
  } finally {
    if (kind === 'tmpfs') spawnSync('umount', [full]);
  }
});

test('a read-only destination fails the restore clearly (EROFS) and leaves it as it was', async () => {
  const out = path.join(work, 'for-read-only');
  await backupFileStore({ folders: at(home), backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  const target = path.join(work, 'read-only-target');
  mkdirSync(target, { recursive: true });
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,ro', 'tmpfs', target]).status !== 0) return; // no mounts here (not root)
  try {
    const before = snapshot(target);
    const run = await runBundle('restore-file-store', ['--source', out, '--home-directory', target, '--include', 'TaskLogs']);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toMatch(/internal error/i);
    expect(run.stderr.trim().split('\n').pop()).toMatch(/read-only file system \(EROFS\).*choose a directory on a writable disk, or mount that disk read-write\.$/);
    expect(snapshot(target)).toEqual(before);
  } finally {
    spawnSync('umount', [target]);
  }
});

test.each([0, 2])('files that vanish, or keep changing, while read are warnings naming them, not a failed backup (%i worker threads)', async (smallFileWorkers) => {
  const live = path.join(work, `live-${smallFileWorkers}`);
  const out = path.join(work, `live-out-${smallFileWorkers}`);
  for (let i = 0; i < 30; i++) write(path.join(live, 'TaskLogs', `t${String(i).padStart(2, '0')}.log.txt`), `task ${i}\n`.repeat(2000));
  const busy = path.join(live, 'TaskLogs', 't29.log.txt');
  // A running task: its log is appended to continuously.
  const writer = spawn('sh', ['-c', `while :; do echo "line from a running task" >> '${busy}'; done`], { stdio: 'ignore' });
  const { log, warnings } = collectingLog();
  try {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const result = await backupFileStore({
      folders: [{ name: 'TaskLogs', path: path.join(live, 'TaskLogs'), origin: 'home' }],
      backupDirectory: out,
      mode: 'Full',
      skipUnreadable: false,
      toolVersion: 'test',
      smallFileWorkers,
      onProgress: (p) => {
        // Right after the scan, before any file is read: a task log is deleted.
        if (p.filesDone === 0) rmSync(path.join(live, 'TaskLogs', 't05.log.txt'), { force: true });
      },
    }, quietEngineContext({ log }));
    expect(warnings).toContain('TaskLogs/t05.log.txt vanished during the backup; not backed up.');
    expect(result.manifest.files.map((f) => f.path)).not.toContain('t05.log.txt');
    expect(result.manifest.skipped).toEqual([{ folder: 'TaskLogs', path: 't05.log.txt', reason: 'vanished during the backup' }]);
    // The busy log is in the archive with a hash that matches what was stored.
    const record = result.manifest.files.find((f) => f.path === 't29.log.txt')!;
    expect(record).toBeDefined();
    for (const w of warnings.filter((m) => !m.includes('t05'))) expect(w).toContain('TaskLogs/t29.log.txt');
  } finally {
    writer.kill('SIGKILL');
  }
  const restored = path.join(work, `live-restored-${smallFileWorkers}`);
  const set = await resolveBackupSource(out);
  await restoreFileStore({ set, destinations: [{ name: 'TaskLogs', path: path.join(restored, 'TaskLogs'), origin: 'home' }], replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }));
  expect(readFileSync(path.join(restored, 'TaskLogs', 't00.log.txt'), 'utf8')).toBe('task 0\n'.repeat(2000));
  expect(existsSync(path.join(restored, 'TaskLogs', 't05.log.txt'))).toBe(false);
  expect(listAll(restored)).toContain('TaskLogs/t29.log.txt');
});

test('restore onto mount points (the Linux container volumes) swaps inside them and keeps the old content aside', async () => {
  const out = path.join(work, 'for-volumes');
  await backupFileStore({ folders: at(home), backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  const volumes = path.join(work, 'volumes');
  const packages = path.join(volumes, 'repository');
  const taskLogs = path.join(volumes, 'taskLogs');
  mkdirSync(packages, { recursive: true });
  mkdirSync(taskLogs, { recursive: true });
  const mounted = [packages, taskLogs].filter((dir) => spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', dir]).status === 0);
  if (mounted.length < 2) {
    mounted.forEach((dir) => spawnSync('umount', [dir]));
    console.warn('mount is not available here; the mount-point restore was not exercised');
    return;
  }
  try {
    write(path.join(packages, 'old.nupkg'), 'what the volume held');
    mkdirSync(path.join(packages, 'lost+found'));
    const set = await resolveBackupSource(out);
    const destinations: ResolvedFolder[] = [
      { name: 'Packages', path: packages, origin: 'override' },
      { name: 'TaskLogs', path: taskLogs, origin: 'override' },
    ];
    await expect(restoreFileStore({ set, destinations, replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }))).rejects.toThrow(/repository is not empty/);
    const { log, warnings } = collectingLog();
    const result = await restoreFileStore({ set, destinations, replaceExisting: true, dryRun: false }, quietEngineContext({ log }));
    const aside = result.folders.find((f) => f.name === 'Packages')!.movedAsideTo!;
    expect(path.dirname(aside)).toBe(packages);
    expect(readFileSync(path.join(aside, 'old.nupkg'), 'utf8')).toBe('what the volume held');
    expect(warnings.join('\n')).toContain('move it off the volume');
    const restored = snapshot(packages);
    for (const name of Object.keys(restored)) if (name.startsWith('.octopus-dr-before-restore-') || name === 'lost+found') delete restored[name];
    const original = snapshot(path.join(home, 'Packages'));
    expect(Object.keys(restored)).toEqual(Object.keys(original));
    for (const [name, entry] of Object.entries(original)) if (entry.type === 'file') expect(restored[name]).toEqual(entry);
    expect(snapshot(taskLogs)['servertasks-1.log.txt']).toEqual(snapshot(path.join(home, 'TaskLogs'))['servertasks-1.log.txt']);
    expect(readdirSync(packages).filter((n) => n.includes('staging'))).toEqual([]);
  } finally {
    mounted.forEach((dir) => spawnSync('umount', [dir]));
  }
});

describe('an archive whose entry data is damaged (headers intact)', () => {
  const damagedHome = path.join(work, 'damaged-home');
  const good = path.join(work, 'damaged-good');
  let archiveName: string;
  // Small entries are inflated in one go, entries over 4 MiB streamed: both paths are exercised.
  const SMALL = 'TaskLogs/servertasks-39.log.txt';
  const LARGE = 'TaskLogs/huge.log.txt';
  const STORED = 'Packages/feeds-builtin/Acme.Web.1.0.0.nupkg';
  const LARGE_STORED = 'Packages/feeds-builtin/Acme.Big.2.0.0.zip';

  beforeAll(async () => {
    makeStore(damagedHome);
    write(path.join(damagedHome, 'TaskLogs', 'huge.log.txt'), logText(80_000, 7));
    mkdirSync(good);
    const run = await runBundle('backup-file-store', ['--home-directory', damagedHome, '--file-store-backup-directory', good]);
    expect(run.code).toBe(0);
    archiveName = readdirSync(good).find((n) => n.endsWith('.zip'))!;
  }, 60_000);

  /** A copy of the good set with `damage` done to its archive. */
  function damagedCopy(label: string, damage: (archivePath: string) => void): string {
    const copy = path.join(work, `damaged-${label}`);
    mkdirSync(copy);
    for (const name of readdirSync(good)) writeFileSync(path.join(copy, name), readFileSync(path.join(good, name)));
    damage(path.join(copy, archiveName));
    return copy;
  }

  const lastLine = (stderr: string) => stderr.split('\n').filter((l) => l.trim() !== '').pop() ?? '';

  const cases: [string, string, (archivePath: string) => void, RegExp][] = [
    ['a flipped byte in a small deflated entry', SMALL, (a) => corruptDeflatedEntry(a, SMALL), /cannot be read: its compressed data is corrupt \(zlib: [^)]+\)/],
    ['a flipped byte in a large (streamed) deflated entry', LARGE, (a) => corruptDeflatedEntry(a, LARGE), /cannot be read: its compressed data is corrupt \(zlib: [^)]+\)/],
    ['a deflated entry cut short', SMALL, (a) => cutEntryShort(a, SMALL), /cannot be read: its compressed data is cut short \(zlib: unexpected end of file\)/],
    ['a flipped byte in a stored entry (CRC-32 and SHA-256 no longer match)', STORED, (a) => flipStoredEntryByte(a, STORED), /does not match its manifest \(\d+ bytes, SHA-256 [0-9a-f]{12}…, expected [0-9a-f]{12}…\)/],
    ['a flipped byte in a large stored entry (copied on a thread)', LARGE_STORED, (a) => flipStoredEntryByte(a, LARGE_STORED), /does not match its manifest \(\d+ bytes, SHA-256 [0-9a-f]{12}…, expected [0-9a-f]{12}…\)/],
  ];

  test.each(cases)('%s: verify and restore fail (exit 1) naming the archive and entry; nothing is changed', async (label, entry, damage, reason) => {
    const backups = damagedCopy(label.replace(/\W+/g, '-'), damage);
    const problem = new RegExp(`${archiveName.replace(/\./g, '\\.')}: ${entry.replace(/\./g, '\\.')} ${reason.source}`);

    const verify = await runBundle('restore-file-store', ['--source', backups, '--verify-only']);
    expect(verify.code).toBe(1);
    expect(verify.stderr).not.toMatch(/internal error/i);
    expect(verify.stderr).toMatch(new RegExp(`failed verification \\(1 problem\\(s\\)\\):\\n {2}- ${problem.source}\\n`));
    expect(lastLine(verify.stderr)).toBe(DAMAGED_BACKUP_ADVICE);

    // Restoring over existing content: the destination keeps it, untouched, and no staging is left.
    const target = path.join(work, `damaged-target-${label.replace(/\W+/g, '-')}`);
    write(path.join(target, 'TaskLogs', 'current.log.txt'), 'what the server wrote since\n');
    const before = snapshot(target);
    const restore = await runBundle('restore-file-store', ['--source', backups, '--home-directory', target, '--replace-existing']);
    expect(restore.code).toBe(1);
    expect(restore.stderr).not.toMatch(/internal error/i);
    expect(restore.stderr).toMatch(new RegExp(`The backup is damaged: ${problem.source}\\.\\nNothing was changed: `));
    expect(lastLine(restore.stderr)).toBe(DAMAGED_BACKUP_ADVICE);
    expect(snapshot(target)).toEqual(before);
    expect(listAll(work).filter((n) => /staging|before-restore/.test(n))).toEqual([]);
  });

  test('in process, verify lists every damaged entry and goes on past the first', async () => {
    const backups = damagedCopy('two-entries', (a) => {
      corruptDeflatedEntry(a, SMALL);
      corruptDeflatedEntry(a, LARGE);
    });
    const result = await verifyFileStoreBackup(backups);
    expect(result.ok).toBe(false);
    expect(result.problems.sort()).toEqual([
      expect.stringMatching(new RegExp(`^${archiveName}: ${LARGE} cannot be read: its compressed data is corrupt`)),
      expect.stringMatching(new RegExp(`^${archiveName}: ${SMALL} cannot be read: its compressed data is corrupt`)),
    ]);
  });
});
