// Issue 11, invariants 1, 2 and 5, proved with faults on the built bundles (`npm run build`):
// a green run means a complete, verified set of what was asked for; nothing that existed is lost
// (retention keeps the newest verified sets); nothing half-written is taken for a good backup, and
// what a killed run leaves is named, removed after the age guard and never read. Every case checks
// the exit code, the last line, and that what existed before is still there, byte for byte.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { applyRetention } from '../../steps/engines/file-store/retention';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { ABANDONED_AFTER_MS } from '../../steps/runtime/leftovers';
import { keyIdOf } from '../../steps/engines/master-key';
import { Lab, octopusTables } from '../database/harness';
import { bundlePath, logText, pseudoRandomBytes, runInProcess, runCommand, silentLog, snapshot, tempDir, write } from '../file-store/helpers';
import { asNobodyArgs, canRunAsNobody } from '../helpers/unprivileged';
import { octopusDatabase } from '../master-key/octopus-database';
import { DAMAGED_BACKUP_ADVICE } from '../../steps/engines/file-store/restore';
import { HISTORY_FILE_NAME } from '../../steps/test-restore/history';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const DAY = 24 * 3600 * 1000;
const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const work = tempDir('completeness');
afterAll(() => rmSync(work, { recursive: true, force: true }));

let counter = 0;
/** A fresh folder below the work folder. */
function fresh(name: string): string {
  const dir = path.join(work, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A small Octopus-like home: every default folder, with files in each. */
function smallStore(home: string, seed = 1): void {
  for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `servertasks-${seed}-${i}.log.txt`), logText(40, seed * 10 + i));
  write(path.join(home, 'Artifacts', 'Spaces-1', `report-${seed}.txt`), `artifact ${seed}\n`);
  write(path.join(home, 'Packages', 'feeds-builtin', `Acme.${seed}.nupkg`), pseudoRandomBytes(20_000, seed));
  write(path.join(home, 'EventExports', `events-${seed}.json`), JSON.stringify({ seed }));
}

const foldersOf = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

/** A set written (in-process) as if `daysAgo` days ago: backups that existed before the run under test. */
async function oldSet(home: string, out: string, daysAgo: number, mode: 'Full' | 'Incremental' = 'Full') {
  return backupFileStore({ folders: foldersOf(home), backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(Date.now() - daysAgo * DAY) }, quietEngineContext({ log: silentLog }));
}

/** SHA-256 of every file below `root`, by relative path. */
function hashes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, entry] of Object.entries(snapshot(root))) if (entry.type === 'file') out[name] = entry.sha256!;
  return out;
}

/** Everything that existed before is still there with the same bytes. */
function expectNothingLost(before: Record<string, string>, root: string): void {
  const after = hashes(root);
  // The DR record beside the backups gains a line per test run, by design.
  for (const [name, sha256] of Object.entries(before)) if (name !== HISTORY_FILE_NAME) expect([name, after[name]]).toEqual([name, sha256]);
}

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1) ?? '';
const zips = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.zip')).sort();

/** Runs a bundle and SIGKILLs it as soon as `when()` holds (polled every 2 ms), as a power cut or an OOM kill would. */
function runAndKill(stepId: string, args: string[], when: () => boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundlePath(stepId), ...args], { env: { PATH: process.env.PATH }, stdio: 'ignore' });
    const poll = setInterval(() => {
      if (when()) {
        clearInterval(poll);
        child.kill('SIGKILL');
      }
    }, 2);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal });
    });
  });
}

/** Makes a file or a whole folder look last written `ms` ago. */
function age(target: string, ms: number): void {
  const then = new Date(Date.now() - ms);
  if (lstatSync(target).isDirectory()) for (const name of readdirSync(target)) age(path.join(target, name), ms);
  utimesSync(target, then, then);
}

describe('invariant 1: exit 0 means a complete set of what was asked for (file store)', () => {
  test('a missing home directory fails (exit 1) naming every folder and the fix, in Full and Incremental; the 21-day-old set survives retention', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    await oldSet(home, out, 21);
    const before = hashes(out);
    const missing = path.join(work, 'no-such-home');
    for (const mode of ['Full', 'Incremental']) {
      const run = await runInProcess('backup-file-store', ['--home-directory', missing, '--file-store-backup-directory', out, '--retention-days', '14', '--mode', mode]);
      expect(run.code).toBe(1);
      expect(lastLine(run.stderr)).toBe(
        `ERROR: ${FOLDERS.map((f) => `${f} folder ${path.join(missing, f)}`).join(', ')} do not exist, so nothing was backed up. ` +
          'Correct "Octopus home directory" or "File store folders", create a folder this server really keeps empty (an empty folder is backed up as empty), ' +
          'or leave TaskLogs, Artifacts, Packages, EventExports out of "Folders to back up".',
      );
      expect(run.stdout).not.toMatch(/backup of 0 files/);
      expect(readdirSync(out).sort()).toEqual(Object.keys(before).sort());
      expectNothingLost(before, out);
    }
  });

  test('a missing folder below an existing home fails naming that folder; an override that is missing names "File store folders"', async () => {
    const home = fresh('home');
    smallStore(home);
    rmSync(path.join(home, 'EventExports'), { recursive: true });
    const out = fresh('out');
    const run = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out]);
    expect(run.code).toBe(1);
    expect(lastLine(run.stderr)).toMatch(/^ERROR: EventExports folder \S+EventExports does not exist, so nothing was backed up\. Correct "Octopus home directory" or "File store folders".*or leave EventExports out of "Folders to back up"\.$/);
    expect(readdirSync(out)).toEqual([]);

    const override = await runInProcess('backup-file-store', ['--folders', `Packages=${path.join(work, 'no-such-volume')}`, '--include', 'Packages', '--file-store-backup-directory', out]);
    expect(override.code).toBe(1);
    expect(lastLine(override.stderr)).toMatch(/^ERROR: Packages folder \S+no-such-volume does not exist, so nothing was backed up\. Correct "File store folders", /);
    expect(readdirSync(out)).toEqual([]);
  });

  test('an existing empty folder is fine: exit 0, recorded with 0 files', async () => {
    const home = fresh('home');
    smallStore(home);
    rmSync(path.join(home, 'EventExports'), { recursive: true });
    mkdirSync(path.join(home, 'EventExports'));
    const out = fresh('out');
    const run = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out]);
    expect(run.code).toBe(0);
    expect(lastLine(run.stdout)).toMatch(/^Full backup of 7 files \(.*\) written to .*-full\.zip: 7 files .* stored in [\d.]+ s\.$/);
    const manifest = JSON.parse(readFileSync(path.join(out, readdirSync(out).find((n) => n.endsWith('.manifest.json'))!), 'utf8'));
    expect(manifest.folders.find((f: { name: string }) => f.name === 'EventExports')).toMatchObject({ files: 0, bytes: 0 });
  });

  test('a backup of 0 files fails (exit 1); "Allow an empty backup" opts in', async () => {
    const home = fresh('empty-home');
    for (const folder of FOLDERS) mkdirSync(path.join(home, folder));
    const out = fresh('out');
    const args = ['--home-directory', home, '--file-store-backup-directory', out];
    const run = await runInProcess('backup-file-store', args);
    expect(run.code).toBe(1);
    expect(lastLine(run.stderr)).toMatch(/^ERROR: Nothing to back up: TaskLogs \(.*\), Artifacts .* hold no files we can read\. .*correct it\. If these folders really are empty \(a new server\), check "Allow an empty backup"\. Nothing was written\.$/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);

    const allowed = await runInProcess('backup-file-store', [...args, '--allow-empty']);
    expect(allowed.code).toBe(0);
    expect(lastLine(allowed.stdout)).toMatch(/^Full backup of 0 files/);
  });
});

describe('invariant 2: nothing that existed is lost (retention)', () => {
  test('file store, only old sets: the new set is verified first, then the newest sets ("Minimum backups kept") stay and only older ones go', async () => {
    const home = fresh('home');
    smallStore(home);
    for (const [minimum, expectedKept] of [['2', 1], ['3', 2]] as const) {
      const out = fresh('out');
      const sets = [await oldSet(home, out, 40), await oldSet(home, out, 30), await oldSet(home, out, 21)];
      const keptOld = sets.slice(-expectedKept).map((s) => path.basename(s.archivePath));
      const keptHashes = Object.fromEntries(Object.entries(hashes(out)).filter(([name]) => keptOld.some((k) => name.startsWith(k.replace('.zip', '')))));
      const run = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out, '--retention-days', '14', '--retention-minimum', minimum]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Verified the new set before retention: 8 files, every SHA-256 matches.');
      expect(run.stdout).toMatch(new RegExp(`Retention \\(14 days, at least ${minimum} sets kept\\): deleted `));
      expect(lastLine(run.stdout)).toMatch(/^Full backup of 8 files/);
      const left = zips(out);
      expect(left).toHaveLength(expectedKept + 1);
      expect(left).toEqual(expect.arrayContaining(keptOld));
      expectNothingLost(keptHashes, out);
    }
  });

  test('file store: empty and 0 days both keep everything (one rule in both steps)', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    await oldSet(home, out, 400);
    await oldSet(home, out, 300);
    const before = hashes(out);
    for (const days of [[], ['--retention-days', '0']]) {
      const run = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out, ...days]);
      expect(run.code).toBe(0);
      expect(lastLine(run.stdout)).toMatch(/^Full backup of 8 files/);
      expectNothingLost(before, out);
    }
    expect(zips(out)).toHaveLength(4);
  });

  describe('database', () => {
    const lab = new Lab();
    beforeAll(() => lab.start({ operationMs: 50 }, [{ name: 'Kept', recoveryModel: 'FULL', tables: octopusTables() }]), 60_000);
    afterAll(() => lab.stop());

    test('only old sets: the newest verified sets ("Minimum backups kept") stay, older ones go; 0 days keeps everything', async () => {
      const dir = fresh('db-retention');
      const take = async (...args: string[]) => {
        const run = await lab.run('backup-database', 'Kept', ['--backup-directory', dir, ...args]);
        expect(run.code).toBe(0);
        return run;
      };
      const old: string[] = [];
      for (const days of [40, 30, 20]) {
        const run = await take();
        const manifest = JSON.parse(readFileSync(run.outputs.ManifestPath, 'utf8'));
        manifest.takenAt = new Date(Date.now() - days * DAY).toISOString();
        writeFileSync(run.outputs.ManifestPath, JSON.stringify(manifest, null, 2));
        old.push(path.basename(run.outputs.ManifestPath, '.manifest.json'));
      }
      const kept = Object.fromEntries(Object.entries(hashes(dir)).filter(([name]) => !name.startsWith(old[0])));

      const off = await take('--retention-days', '0');
      expect(off.outputs.RetentionDeleted).toBeUndefined();
      expect(off.result).toMatch(/^Full backup of 'Kept' .*verified\): /);
      expect(readdirSync(dir).filter((n) => n.startsWith(old[0]))).toHaveLength(2);

      const run = await take('--retention-days', '7', '--retention-minimum', '4', '--verbose');
      expect(run.outputs.RetentionDeleted).toBe('1');
      expect(run.stdout).toContain(`Retention: deleted ${old[0]}.manifest.json`);
      expect(run.stdout).toContain(`Retention: kept ${old[1]}.manifest.json (one of the 4 newest verified backups ("Minimum backups kept"))`);
      expect(run.result).toMatch(/^Full backup of 'Kept' .*verified\): /);
      expect(readdirSync(dir).filter((n) => n.startsWith(old[0]))).toEqual([]);
      expectNothingLost(kept, dir);
    }, 60_000);

    test('a manifest .partial (a killed backup) is named, left while young, deleted after the age guard; a backup file without its manifest and without a record of its start is named and kept', async () => {
      // What a killed run's backup files become is in test/backup-database/leftovers.test.ts (SIGKILL mid-BACKUP).
      const dir = fresh('db-leftovers');
      const good = await lab.run('backup-database', 'Kept', ['--backup-directory', dir]);
      expect(good.code).toBe(0);
      const partialManifest = path.join(dir, '.Kept_FULL_20261101T000000Z.manifest.json.0badc0de.partial');
      const orphanBackup = path.join(dir, 'Kept_FULL_20261101T000000Z.bak');
      const foreign = path.join(dir, 'someone-elses.bak');
      writeFileSync(partialManifest, '{"format":');
      writeFileSync(orphanBackup, 'a backup copied back in, or an older version\'s leftover');
      writeFileSync(foreign, 'not ours');

      const young = await lab.run('backup-database', 'Kept', ['--backup-directory', dir]);
      expect(young.code).toBe(0);
      expect(young.stdout).toContain(`${partialManifest} was left by a database backup`);
      expect(young.stdout).toContain(`${orphanBackup} is a backup file named as octopus-dr names them, with no manifest and no record that an octopus-dr backup started it, so it is left alone`);
      for (const file of [partialManifest, orphanBackup]) expect(existsSync(file)).toBe(true);

      age(partialManifest, ABANDONED_AFTER_MS + 60_000);
      age(orphanBackup, ABANDONED_AFTER_MS + 60_000);
      age(foreign, ABANDONED_AFTER_MS + 60_000);
      const before = hashes(dir);
      const old = await lab.run('backup-database', 'Kept', ['--backup-directory', dir]);
      expect(old.code).toBe(0);
      expect(old.result).toMatch(/^Full backup of 'Kept' /);
      expect(old.stdout).toContain(`Deleted ${partialManifest}, left by a database backup`);
      expect(existsSync(partialManifest)).toBe(false);
      expect(old.stdout).not.toContain(`Deleted ${orphanBackup}`);
      expect(existsSync(orphanBackup)).toBe(true);
      expect(existsSync(foreign)).toBe(true);
      delete before[path.basename(partialManifest)];
      expectNothingLost(before, dir);
    }, 60_000);
  });
});

describe('invariant 5: nothing half-written or edited is taken for a good backup', () => {
  const home = path.join(work, 'manifest-home');
  beforeAll(() => smallStore(home));

  async function goodSet() {
    const out = fresh('out');
    const run = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out]);
    expect(run.code).toBe(0);
    const archive = path.join(out, zips(out)[0]);
    return { out, archive, sidecar: archive.replace(/\.zip$/, '.manifest.json') };
  }

  /** A good set, then a newer one a second later holding a file the older lacks: the newer's archive name and manifest path. */
  async function goodSetAndNewer() {
    const { out } = await goodSet();
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the next set gets a later name
    write(path.join(home, 'TaskLogs', 'newer.log.txt'), 'only in the newer set\n');
    const newer = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out]);
    rmSync(path.join(home, 'TaskLogs', 'newer.log.txt'));
    expect(newer.code).toBe(0);
    const newest = zips(out).at(-1)!;
    return { out, newest, sidecar: path.join(out, newest.replace(/\.zip$/, '.manifest.json')) };
  }

  const edits: [string, (m: { files: { path: string; sha256: string; size: number }[] }) => void, RegExp][] = [
    ['a record removed', (m) => void m.files.splice(m.files.findIndex((f) => f.path.endsWith('.nupkg')), 1), /\(Packages\/feeds-builtin\/Acme\.1\.nupkg is missing from the manifest beside the archive\)/],
    ['a hash changed', (m) => void (m.files[0].sha256 = 'f'.repeat(64)), /\(TaskLogs\/servertasks-1-0\.log\.txt: sha256 differs\)/],
    ['a size changed', (m) => void (m.files[0].size += 1), /\(TaskLogs\/servertasks-1-0\.log\.txt: size differs; totals differs\)|\(TaskLogs\/servertasks-1-0\.log\.txt: size differs\)/],
  ];
  test.each(edits)('a hand-edited sidecar (%s) fails verification and restore (exit 1); nothing is restored', async (_what, edit, detail) => {
    const { out, archive, sidecar } = await goodSet();
    const manifest = JSON.parse(readFileSync(sidecar, 'utf8'));
    edit(manifest);
    writeFileSync(sidecar, JSON.stringify(manifest, null, 1));
    const before = hashes(out);

    const verify = await runInProcess('restore-file-store', ['--source', archive, '--verify-only']);
    expect(verify.code).toBe(1);
    expect(verify.stdout).not.toContain('every SHA-256 matches');
    // The difference is named, then the last line says what to do.
    const difference = verify.stderr.split('\n').find((l) => /^ {2}- \S+\.manifest\.json differs from the manifest inside octopus-file-store-\S+\.zip /.test(l)) ?? '';
    expect(difference).toMatch(detail);
    expect(difference).toMatch(/it was edited or damaged after the backup was written\. Use another backup set, or put back the manifest as it was written\.$/);
    expect(lastLine(verify.stderr)).toBe(DAMAGED_BACKUP_ADVICE);

    const target = path.join(work, `restored-${++counter}`);
    const restore = await runInProcess('restore-file-store', ['--source', out, '--home-directory', target]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toMatch(/differs from the manifest inside .*Use another backup set/);
    expect(lastLine(restore.stderr)).toBe(DAMAGED_BACKUP_ADVICE);
    expect(existsSync(target)).toBe(false);
    expectNothingLost(before, out);
  });

  test('a truncated manifest beside the newest set: verify fails, and a folder restore refuses it rather than restoring the older set', async () => {
    const { out, newest, sidecar } = await goodSetAndNewer();
    truncateSync(sidecar, Math.floor(readFileSync(sidecar).length / 2));
    const before = hashes(out);

    const verify = await runInProcess('restore-file-store', ['--source', path.join(out, newest), '--verify-only']);
    expect(verify.code).toBe(1);
    expect(lastLine(verify.stderr)).toMatch(new RegExp(`^ERROR: ${sidecar.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON`));

    const target = path.join(work, `restored-${++counter}`);
    const restore = await runInProcess('restore-file-store', ['--source', out, '--home-directory', target]);
    expect(restore.code).toBe(1);
    expect(lastLine(restore.stderr)).toMatch(
      new RegExp(`^ERROR: The newest backup set in .* cannot be used: ${newest.replace(/\./g, '\\.')} \\(.*is not valid JSON.*\\)\\. The newest usable set, .*, is older and is not taken in its place\\. To use it, give its archive or manifest`),
    );
    expect(existsSync(target)).toBe(false);
    expectNothingLost(before, out);
  });

  test('the newest set\'s creation time edited to look older: a folder restore takes that set by the time in its name, and refuses it, rather than restoring the older set', async () => {
    const { out, newest, sidecar } = await goodSetAndNewer();
    writeFileSync(sidecar, readFileSync(sidecar, 'utf8').replace(/"createdAt": "\d{4}/, '"createdAt": "2001'));
    const before = hashes(out);

    const target = path.join(work, `restored-${++counter}`);
    const restore = await runInProcess('restore-file-store', ['--source', out, '--home-directory', target]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain(`${newest.replace(/\.zip$/, '.manifest.json')} differs from the manifest inside ${newest} (createdAt differs)`);
    expect(lastLine(restore.stderr)).toBe(DAMAGED_BACKUP_ADVICE);
    expect(existsSync(target)).toBe(false);
    expectNothingLost(before, out);
  });

  test('two sets of the same second, the newer one\'s creation time edited to look older: a folder restore refuses rather than restoring the older set', async () => {
    const out = fresh('same-second');
    const second = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const at = (ms: number, mode: 'Full' | 'Incremental') =>
      backupFileStore({ folders: foldersOf(home), backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(second + ms) }, quietEngineContext({ log: silentLog }));
    await at(100, 'Full');
    write(path.join(home, 'TaskLogs', 'newer.log.txt'), 'only in the newer set\n');
    const newer = await at(500, 'Incremental');
    rmSync(path.join(home, 'TaskLogs', 'newer.log.txt'));
    writeFileSync(newer.manifestPath, readFileSync(newer.manifestPath, 'utf8').replace(new Date(second + 500).toISOString(), new Date(second + 50).toISOString()));
    const before = hashes(out);

    const target = path.join(work, `restored-${++counter}`);
    const restore = await runInProcess('restore-file-store', ['--source', out, '--home-directory', target]);
    expect(restore.code).toBe(1);
    expect(lastLine(restore.stderr)).toContain(
      `${path.basename(newer.archivePath)} (the manifest beside its archive is not the copy inside it, edited or damaged since the backup: createdAt differs). The newest usable set, `,
    );
    expect(lastLine(restore.stderr)).toContain('is of the same second (which is newer cannot be told) and is not taken in its place');
    expect(existsSync(target)).toBe(false);
    expectNothingLost(before, out);
  });

  test('a damaged set of the same second as the newest usable one: refused, without calling the usable one older', async () => {
    const { out } = await goodSet();
    const usable = zips(out).at(-1)!;
    write(path.join(home, 'TaskLogs', 'newer.log.txt'), 'only in the other set\n');
    const other = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out]);
    rmSync(path.join(home, 'TaskLogs', 'newer.log.txt'));
    expect(other.code).toBe(0);
    const written = zips(out).find((z) => z !== usable)!;
    // The other set given the usable one's second (as two runs in one second would be), its manifest damaged.
    const sameSecond = `${usable.slice(0, usable.lastIndexOf('-', usable.lastIndexOf('-') - 1))}-ffffff-full.zip`;
    renameSync(path.join(out, written), path.join(out, sameSecond));
    const sidecar = path.join(out, sameSecond.replace(/\.zip$/, '.manifest.json'));
    renameSync(path.join(out, written.replace(/\.zip$/, '.manifest.json')), sidecar);
    truncateSync(sidecar, Math.floor(readFileSync(sidecar).length / 2));

    const restore = await runInProcess('restore-file-store', ['--source', out, '--home-directory', path.join(work, `restored-${++counter}`)]);
    expect(restore.code).toBe(1);
    expect(lastLine(restore.stderr)).toMatch(
      new RegExp(`cannot be used: ${sameSecond.replace(/\./g, '\\.')} \\(.*is not valid JSON.*\\)\\. The newest usable set, ${usable.replace(/\./g, '\\.')}, is of the same second \\(which is newer cannot be told\\) and is not taken in its place`),
    );
  });

  test('an archive copied without its manifest restores from a folder, read through the manifest inside it', async () => {
    const { archive } = await goodSet();
    const copy = fresh('copied');
    writeFileSync(path.join(copy, path.basename(archive)), readFileSync(archive));
    const before = hashes(copy);

    const verify = await runInProcess('restore-file-store', ['--source', copy, '--verify-only']);
    expect(verify.code).toBe(0);
    expect(lastLine(verify.stdout)).toMatch(/^Verified .*\.zip \(chain of 1\): 8 files, .*every SHA-256 matches\.$/);
    const target = path.join(work, `restored-${++counter}`);
    const restore = await runInProcess('restore-file-store', ['--source', copy, '--home-directory', target]);
    expect(restore.code).toBe(0);
    expect(lastLine(restore.stdout)).toMatch(/^Restored 8 files /);
    expect(hashes(target)).toEqual(hashes(home));
    expectNothingLost(before, copy);
  });

  test('SIGKILL mid-backup: the rerun names the .partial, leaves it while young, deletes it after the age guard, never reads it; --verify-only on it is refused at once', async () => {
    const big = fresh('big-home');
    smallStore(big);
    const block = pseudoRandomBytes(8 * 1024 * 1024, 7);
    for (let i = 0; i < 12; i++) write(path.join(big, 'Packages', `big-${i}.nupkg`), Buffer.concat([Buffer.from(`package ${i}`), block]));
    const out = fresh('out');
    // The folder's earlier set is of the store the reruns back up: sets of two stores in one folder are
    // refused by a restore of the folder (file-store/origin.ts). The killed run (of a store big enough
    // to be caught half-way) leaves no set.
    await oldSet(home, out, 3);
    const before = hashes(out);
    const partials = () => readdirSync(out).filter((n) => n.endsWith('.partial'));

    const killed = await runAndKill('backup-file-store', ['--home-directory', big, '--file-store-backup-directory', out], () => partials().length > 0);
    expect(killed.signal).toBe('SIGKILL');
    const [partial] = partials();
    expect(partial).toMatch(/^\.octopus-file-store-\d{8}T\d{6}Z(-[0-9a-f]{6})?(-\d+)?-full\.zip\.partial$/);
    const partialPath = path.join(out, partial);

    const refused = await runInProcess('restore-file-store', ['--source', partialPath, '--verify-only']);
    expect(refused.code).toBe(2);
    expect(lastLine(refused.stderr)).toBe(
      `ERROR: Backup to restore ${partialPath} is a temporary file of a backup that did not finish (a stopped run leaves it); it is not a backup and is never read. ` +
        'Give a finished archive (octopus-file-store-<time>-full.zip), its manifest, or the backup directory.',
    );

    const rerun = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out]);
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toContain(`WARNING: ${partialPath} was left by a file-store backup that was stopped, or belongs to one still running`);
    expect(lastLine(rerun.stdout)).toMatch(/^Full backup of 8 files/);
    expect(existsSync(partialPath)).toBe(true);

    age(partialPath, ABANDONED_AFTER_MS + 60_000);
    const later = await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out, '--mode', 'Incremental']);
    expect(later.code).toBe(0);
    expect(later.stderr).toContain(`WARNING: Deleted ${partialPath}, left by a file-store backup that was stopped before it finished`);
    expect(partials()).toEqual([]);
    expect(lastLine(later.stdout)).toMatch(/^Incremental backup of 8 files/);

    // The folder's newest set is the last good one, never the killed run's.
    const verify = await runInProcess('restore-file-store', ['--source', out, '--verify-only']);
    expect(verify.code).toBe(0);
    expect(lastLine(verify.stdout)).toMatch(/-incremental\.zip \(chain of 2\): 8 files/);
    expectNothingLost(before, out);
  }, 60_000);

  test('SIGKILL mid-restore: the next restore names the staging folder, deletes it after the age guard, and restores', async () => {
    const big = fresh('big-home');
    smallStore(big);
    const block = pseudoRandomBytes(8 * 1024 * 1024, 8);
    for (let i = 0; i < 12; i++) write(path.join(big, 'Packages', `big-${i}.nupkg`), Buffer.concat([Buffer.from(`package ${i}`), block]));
    const out = fresh('out');
    await oldSet(big, out, 1);
    const destination = path.join(fresh('target'), 'octopus');
    const staging = () => (existsSync(destination) ? readdirSync(destination).filter((n) => n.includes('.restore-staging-')) : []);

    const killed = await runAndKill('restore-file-store', ['--source', out, '--home-directory', destination], () => staging().length > 0);
    expect(killed.signal).toBe('SIGKILL');
    const left = staging().map((n) => path.join(destination, n));
    expect(left.length).toBeGreaterThan(0);

    const refused = await runInProcess('restore-file-store', ['--source', left[0], '--verify-only']);
    expect(refused.code).toBe(2);
    expect(lastLine(refused.stderr)).toMatch(/is a temporary folder of a restore that did not finish \(a stopped run leaves it\); it is not a backup and is never read\./);

    // Young: it may be a concurrent restore's, so it is named and left alone.
    const young = await runInProcess('restore-file-store', ['--source', out, '--home-directory', destination]);
    expect(young.code).toBe(0);
    for (const dir of left) {
      expect(young.stderr).toContain(`WARNING: ${dir} was left by a file-store restore that was stopped, or belongs to one still running`);
      expect(existsSync(dir)).toBe(true);
    }
    expect(lastLine(young.stdout)).toMatch(/^Restored 20 files /);
    const restored = hashes(destination);

    for (const dir of left) age(dir, ABANDONED_AFTER_MS + 60_000);
    const rerun = await runInProcess('restore-file-store', ['--source', out, '--home-directory', destination, '--replace-existing']);
    expect(rerun.code).toBe(0);
    for (const dir of left) {
      expect(rerun.stderr).toContain(`WARNING: Deleted ${dir}, left by a file-store restore that was stopped before it finished`);
      expect(existsSync(dir)).toBe(false);
    }
    expect(lastLine(rerun.stdout)).toMatch(/^Restored 20 files .*; previous content moved aside to /);
    for (const folder of FOLDERS) expect(hashes(path.join(destination, folder))).toEqual(hashes(path.join(big, folder)));
    // What the first restore wrote was moved aside, not deleted.
    const aside = readdirSync(destination).filter((n) => n.includes('.before-restore-'));
    expect(aside).toHaveLength(FOLDERS.length);
    for (const folder of FOLDERS) {
      const movedTo = aside.find((n) => n.startsWith(`${folder}.before-restore-`))!;
      const prefix = `${folder}/`;
      const was = Object.fromEntries(Object.entries(restored).filter(([k]) => k.startsWith(prefix) && !k.includes('.restore-staging-')).map(([k, v]) => [k.slice(prefix.length), v]));
      expect(hashes(path.join(destination, movedTo))).toEqual(was);
    }
  }, 60_000);

  test('disk full: the backup fails naming it, the sets already on the disk are untouched and no .partial is left', async () => {
    const disk = fresh('full-disk');
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk]).status !== 0) {
      console.warn('mount is not available here (not root): the disk-full case was not exercised');
      return;
    }
    try {
      const small = fresh('small-home');
      smallStore(small, 3);
      await oldSet(small, disk, 2);
      const before = hashes(disk);
      const big = fresh('big-home');
      smallStore(big);
      write(path.join(big, 'Packages', 'large.nupkg'), randomBytes(3 * 1024 * 1024));
      const run = await runInProcess('backup-file-store', ['--home-directory', big, '--file-store-backup-directory', disk]);
      expect(run.code).toBe(1);
      expect(lastLine(run.stderr)).toMatch(/^ERROR: The disk holding \S+ is full \(ENOSPC\) while writing the archive \S+ \(the partial archive was deleted\); .* free: free at least .* there or choose another directory\.$/);
      expect(readdirSync(disk).filter((n) => n.endsWith('.partial'))).toEqual([]);
      expect(readdirSync(disk).sort()).toEqual(Object.keys(before).sort());
      expectNothingLost(before, disk);
    } finally {
      spawnSync('umount', [disk]);
    }
  }, 60_000);
});

describe('invariant 1: Test Latest Backup never passes an empty or an older file-store set', () => {
  const KEY = randomBytes(32);
  const lab = new Lab();
  beforeAll(async () => {
    const db = octopusDatabase({ name: 'Octopus', key: KEY, variableSets: 4, frozenVariableSets: 1, certificateTable: 'Configuration' });
    const have = new Set((db.seed.tables ?? []).map((t) => t.name.toLowerCase()));
    const tables = [...(db.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
    await lab.start({ operationMs: 50 }, [{ ...db.seed, name: 'Octopus', recoveryModel: 'FULL', tables }]);
    const full = await lab.run('backup-database', 'Octopus', ['--master-key-id', keyIdOf(KEY)]);
    expect(full.code).toBe(0);
  }, 60_000);
  afterAll(() => lab.stop());

  const testRestore = (fileStoreDirectory: string) =>
    lab.run('test-restore', 'master', ['--source', lab.backups, '--file-store-backup-directory', fileStoreDirectory], {
      cwd: fresh('report'),
      env: { OCTOPUSDR_MASTERKEY: KEY.toString('base64') },
    });

  test('a good set passes (the control)', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    expect((await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out])).code).toBe(0);
    const run = await testRestore(out);
    expect(run.code).toBe(0);
    expect(run.outputs.FileStore).toBe('passed');
  }, 60_000);

  test('a set of 0 files fails the test', async () => {
    const home = fresh('empty-home');
    for (const folder of FOLDERS) mkdirSync(path.join(home, folder));
    const out = fresh('out');
    expect((await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out, '--allow-empty'])).code).toBe(0);
    const before = hashes(out);
    const run = await testRestore(out);
    expect(run.code).toBe(1);
    expect(run.outputs.FileStore).toBe('failed');
    expect(run.result).toMatch(/^Test restore FAILED \(1 problem\):\n {2}- File store: the newest set \S+ holds 0 files\. Check "Octopus home directory" and "File store folders" of the file-store backup, and back up again\.\n/);
    expectNothingLost(before, out);
  }, 60_000);

  test('a newest set that cannot be read fails the test; the older good set is not passed in its place', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    await oldSet(home, out, 2);
    expect((await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out])).code).toBe(0);
    const newest = zips(out).at(-1)!;
    truncateSync(path.join(out, newest.replace(/\.zip$/, '.manifest.json')), 100);
    const before = hashes(out);
    const run = await testRestore(out);
    expect(run.code).toBe(1);
    expect(run.outputs.FileStore).toBe('failed');
    expect(run.result).toMatch(new RegExp(`^Test restore FAILED \\(1 problem\\):\\n {2}- File store: The newest backup set in \\S+ cannot be used: ${newest.replace(/\./g, '\\.')} .*is older and is not taken in its place`));
    expectNothingLost(before, out);
  }, 60_000);
  test('database: a newer backup whose manifest cannot be read fails the test; the older one is not passed in its place', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    expect((await runInProcess('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', out])).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a later name than the first full
    const newer = await lab.run('backup-database', 'Octopus', ['--master-key-id', keyIdOf(KEY)]);
    expect(newer.code).toBe(0);
    const manifestPath = newer.outputs.ManifestPath;
    const manifestText = readFileSync(manifestPath);
    const bak: string = JSON.parse(manifestText.toString('utf8')).files[0].name;
    const aside = path.join(fresh('aside'), bak);
    truncateSync(manifestPath, 60);
    writeFileSync(aside, readFileSync(path.join(lab.backups, bak)));
    rmSync(path.join(lab.backups, bak));
    const before = hashes(lab.backups);
    try {
      const run = await testRestore(out);
      expect(run.code).toBe(1);
      expect(run.result).toMatch(
        new RegExp(`^Test restore FAILED \\(1 problem\\):\\n {2}- A newer backup of 'Octopus' than the one tested cannot be read: \\S+${path.basename(manifestPath).replace(/\./g, '\\.')} is not a readable backup manifest .* Repair or move away that manifest and its backup files, and run the backup again\\.\\n`),
      );
      expectNothingLost(before, lab.backups);
    } finally {
      writeFileSync(manifestPath, manifestText);
      writeFileSync(path.join(lab.backups, bak), readFileSync(aside));
    }
  }, 60_000);
});

describe('invariant 2: retention deletes nothing before the new set verified', () => {
  test('when the check of the new set fails, no old set is deleted', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    await oldSet(home, out, 40);
    await oldSet(home, out, 30);
    await oldSet(home, out, 1);
    const before = hashes(out);
    await expect(
      applyRetention(out, 7, new Date(), silentLog, {
        minimumSets: 1,
        beforeDeleting: async () => {
          throw new Error('the new set failed verification');
        },
      }),
    ).rejects.toThrow('the new set failed verification');
    expect(readdirSync(out).sort()).toEqual(Object.keys(before).sort());
    expectNothingLost(before, out);
    // The same call with a passing check deletes the two old full sets, never the newest.
    const passed = await applyRetention(out, 7, new Date(), silentLog, { minimumSets: 1, beforeDeleting: async () => undefined });
    expect(passed.deleted).toHaveLength(2);
    expect(zips(out)).toHaveLength(1);
  });
});

describe('a leftover that cannot be deleted', () => {
  (canRunAsNobody() ? test : test.skip)('is named with the reason and the backup still runs (as an unprivileged user: root deletes everything)', async () => {
    const home = fresh('home');
    smallStore(home);
    const out = fresh('out');
    chmodSync(out, 0o1777); // sticky: the worker's account may write here, but not delete root's files
    const partial = path.join(out, '.octopus-file-store-20261101T000000Z-full.zip.partial');
    writeFileSync(partial, 'half an archive, owned by another account');
    age(partial, ABANDONED_AFTER_MS + 60_000);
    const before = hashes(out);
    const run = await runCommand('setpriv', asNobodyArgs(bundlePath('backup-file-store'), ['--home-directory', home, '--file-store-backup-directory', out]));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`WARNING: ${partial} was left by a file-store backup, but cannot be deleted (EPERM); it is not a backup. Delete it once nothing uses it.`);
    expect(lastLine(run.stdout)).toMatch(/^Full backup of 8 files/);
    expectNothingLost(before, out);
  });
});
