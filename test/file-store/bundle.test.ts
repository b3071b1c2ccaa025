// End to end through the built bundles (`npm run build` first; `npm test` does): back up,
// verify, restore and refuse, as an operator would from the command line and as Octopus would
// with service messages; unreadable files as a non-root user; and the bundles on Node.js 18.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { parseServiceMessages, outputVariablesIn } from '../../steps/runtime/service-messages';
import { findNode18 } from '../helpers/node18';
import { bundlePath, makeStore, runBundle, runCommand, snapshot, tempDir, write } from './helpers';
import { asNobodyArgs } from '../helpers/unprivileged';

const work = tempDir('bundle');
const home = path.join(work, 'home');
beforeAll(() => makeStore(home));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function outputsOf(stdout: string): Record<string, string> {
  return outputVariablesIn(stdout);
}

test('back up, verify, restore, then refuse a non-empty destination, from the command line', async () => {
  const out = path.join(work, 'cli-out');
  mkdirSync(out); // a backup directory must exist: it is never created
  const backup = await runBundle('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out, '--service-messages']);
  expect(backup.stderr).toBe('');
  expect(backup.code).toBe(0);
  const outputs = outputsOf(backup.stdout);
  expect(outputs.Mode).toBe('Full');
  expect(Number(outputs.Files)).toBeGreaterThan(45);
  expect(readdirSync(out).sort()).toEqual([path.basename(outputs.ManifestPath), path.basename(outputs.ArchivePath)].sort());
  expect(parseServiceMessages(backup.stdout).some((m) => m.name === 'progress')).toBe(true);

  const verify = await runBundle('restore-file-store', ['--source', outputs.ArchivePath, '--verify-only']);
  expect(verify.code).toBe(0);
  expect(verify.stdout).toContain('every SHA-256 matches');

  const target = path.join(work, 'cli-restored');
  const restore = await runBundle('restore-file-store', ['--source', out, '--home-directory', target]);
  expect(restore.stderr).toBe('');
  expect(restore.code).toBe(0);
  expect(snapshot(target)).toEqual(snapshot(home));

  const again = await runBundle('restore-file-store', ['--source', out, '--home-directory', target]);
  expect(again.code).toBe(1);
  expect(again.stderr).toContain('is not empty. Set "Replace existing"');

  const replaced = await runBundle('restore-file-store', ['--source', out, '--home-directory', target, '--replace-existing', '--include', 'Packages']);
  expect(replaced.code).toBe(0);
  expect(readdirSync(target).filter((n) => n.startsWith('Packages.before-restore-'))).toHaveLength(1);
});

test('incremental through the bundle stores only the change', async () => {
  const out = path.join(work, 'inc-out');
  mkdirSync(out); // a backup directory must exist: it is never created
  const args = ['--home-directory', home, '--file-store-backup-directory', out, '--service-messages'];
  expect((await runBundle('backup-file-store', args)).code).toBe(0);
  write(path.join(home, 'TaskLogs', 'servertasks-new.log.txt'), 'a new task\n');
  const inc = await runBundle('backup-file-store', [...args, '--mode', 'Incremental']);
  expect(inc.code).toBe(0);
  const outputs = outputsOf(inc.stdout);
  expect(outputs).toMatchObject({ Mode: 'Incremental', StoredFiles: '1' });
  expect(outputs.Archives.split('\n')).toHaveLength(2);
  rmSync(path.join(home, 'TaskLogs', 'servertasks-new.log.txt'));
});

test('bad parameters are named by label with the fix (exit code 2)', async () => {
  const run = await runBundle('backup-file-store', ['--folders', 'Repository=/x', '--file-store-backup-directory', path.join(work, 'x'), '--include', 'Cache']);
  expect(run.code).toBe(2);
  expect(run.stderr).toContain('"Folders to back up" has an unknown folder "Cache"');
  expect(run.stderr).toContain('"File store folders" line "Repository=/x" must be Name=Path');
});

describe('permissions (as an unprivileged user: root reads everything)', () => {
  const canDropPrivileges = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', '0']).status === 0;
  const maybe = canDropPrivileges ? test : test.skip;
  const store = path.join(work, 'perm-home');
  const out = path.join(work, 'perm-out');
  const asNobody = (args: string[]) =>
    runCommand('setpriv', asNobodyArgs(bundlePath('backup-file-store'), args));

  maybe('an unreadable file fails the backup, listed by name; Skip unreadable backs up the rest', async () => {
    write(path.join(store, 'Artifacts', 'ok.txt'), 'fine');
    write(path.join(store, 'Artifacts', 'secret', 'locked.txt'), 'no', 0o600);
    spawnSync('mkdir', ['-p', out]);
    chmodSync(out, 0o777);
    const args = ['--home-directory', store, '--include', 'Artifacts', '--file-store-backup-directory', out];
    const failed = await asNobody(args);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('Artifacts/secret/locked.txt');
    expect(failed.stderr).toContain('Skip unreadable files');
    // The error code once, as Node's message has it ("EACCES: EACCES: ..." before).
    expect(failed.stderr).toMatch(/Artifacts\/secret\/locked\.txt \(EACCES: permission denied/);
    expect(failed.stderr).not.toContain('EACCES: EACCES');
    expect(readdirSync(out)).toEqual([]);

    const skipped = await asNobody([...args, '--skip-unreadable']);
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toContain('Artifacts/secret/locked.txt');
    expect(readdirSync(out)).toHaveLength(2);
  });

  maybe('an incremental reuses an unchanged file it may no longer read (the previous set holds it); a new one it cannot read fails it', async () => {
    const incHome = path.join(work, 'perm-inc-home');
    const incOut = path.join(work, 'perm-inc-out');
    // Well before the sets are taken, so its size and mtime alone say it is unchanged.
    const old = new Date('2026-10-01T12:00:00.000Z');
    write(path.join(incHome, 'Artifacts', 'kept.txt'), 'the same bytes', 0o644, old);
    spawnSync('mkdir', ['-p', incOut]);
    chmodSync(incOut, 0o777);
    const args = ['--home-directory', incHome, '--include', 'Artifacts', '--file-store-backup-directory', incOut];
    expect((await asNobody(args)).code).toBe(0);

    chmodSync(path.join(incHome, 'Artifacts', 'kept.txt'), 0o600); // mtime unchanged
    const reused = await asNobody([...args, '--backup-type', 'Incremental', '--service-messages']);
    expect(reused.code).toBe(0);
    expect(outputsOf(reused.stdout)).toMatchObject({ Mode: 'Incremental', Files: '1', StoredFiles: '0' });

    write(path.join(incHome, 'Artifacts', 'new.txt'), 'not readable', 0o600);
    const failed = await asNobody([...args, '--backup-type', 'Incremental']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('Artifacts/new.txt');
    expect(failed.stderr).not.toContain('Artifacts/kept.txt');
  });
});

describe('on Node.js 18', () => {
  const node18 = findNode18();
  (node18 ? test : test.skip)('the bundles back up and restore', async () => {
    const out = path.join(work, 'node18-out');
    mkdirSync(out);
    // Asked for worker threads, Node 18 (no zlib.crc32) reads the small files on the main thread.
    const backup = await runCommand(node18!, [bundlePath('backup-file-store'), '--home-directory', home, '--file-store-backup-directory', out], { env: { OCTOPUSDR_FILE_STORE_WORKERS: '2' } });
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const target = path.join(work, 'node18-restored');
    const restore = await runCommand(node18!, [bundlePath('restore-file-store'), '--source', out, '--home-directory', target]);
    expect(restore.code).toBe(0);
    expect(snapshot(target)).toEqual(snapshot(home));
  });
});
