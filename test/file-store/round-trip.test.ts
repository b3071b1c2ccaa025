// Back up a generated Octopus-like store and restore it: contents, mtimes, modes, empty files
// and folders, unicode, long names and deep paths survive; the archive is a standard ZIP that
// Info-ZIP `unzip -t` and Python's zipfile accept; the manifest is inside and beside it.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { MANIFEST_ENTRY_NAME, readManifestFile } from '../../steps/engines/file-store/manifest';
import { resolveBackupSource, restoreFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import { collectingLog, listAll, logText, makeStore, pseudoRandomBytes, silentLog, snapshot, tempDir, write } from './helpers';
import { createHash } from 'node:crypto';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

async function backup(home: string, out: string, mode: 'Full' | 'Incremental' = 'Full', now?: Date) {
  const { log, warnings } = collectingLog();
  const result = await backupFileStore({ folders: at(home), backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', ...(now ? { now: () => now } : {}) }, quietEngineContext({ log }));
  return { ...result, warningsLogged: warnings };
}

async function restoreTo(source: string, home: string, replaceExisting = false, folders = FOLDERS) {
  const set = await resolveBackupSource(source);
  return restoreFileStore({ set, destinations: at(home).filter((f) => folders.includes(f.name)), replaceExisting, dryRun: false }, quietEngineContext({ log: silentLog }));
}

describe('full backup and restore', () => {
  const work = tempDir('roundtrip');
  const home = path.join(work, 'home');
  const out = path.join(work, 'out');
  const restored = path.join(work, 'restored');
  let archive: string;

  beforeAll(async () => {
    makeStore(home);
    archive = (await backup(home, out)).archivePath;
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('the archive and its manifest are the only files written; the manifest is also inside', async () => {
    const names = readdirSync(out).sort();
    expect(names).toEqual([path.basename(archive).replace(/\.zip$/, '.manifest.json'), path.basename(archive)]);
    const manifest = await readManifestFile(path.join(out, names[0]));
    expect(manifest.mode).toBe('Full');
    expect(manifest.chain).toEqual([path.basename(archive)]);
    expect(manifest.totals.files).toBe(Object.values(snapshot(home)).filter((e) => e.type === 'file').length);
    const unicode = manifest.files.find((f) => f.path.endsWith('漢字.txt'))!;
    expect(unicode).toMatchObject({ folder: 'Artifacts', size: Buffer.byteLength('unicode ✓\n') });
    expect(unicode.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.directories.map((d) => `${d.folder}/${d.path}`)).toContain('Artifacts/empty-folder/nested-empty');
  });

  test('Info-ZIP unzip -t accepts it', () => {
    const run = spawnSync('unzip', ['-t', archive], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('No errors detected');
    expect(run.status).toBe(0);
  });

  test("Python's zipfile reads every entry with the manifest's hash, stores packages and deflates text", () => {
    const script = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
m = json.loads(z.read(${JSON.stringify(MANIFEST_ENTRY_NAME)}))
for f in m['files']:
    data = z.read(f['folder'] + '/' + f['path'])
    assert hashlib.sha256(data).hexdigest() == f['sha256'], f['path']
methods = {i.filename: i.compress_type for i in z.infolist()}
print(json.dumps({'files': len(m['files']), 'nupkg': methods['Packages/feeds-builtin/Acme.Web.1.0.0.nupkg'], 'log': methods['TaskLogs/servertasks-1.log.txt'], 'modes': oct(z.getinfo('Artifacts/Spaces-1/deploy.sh').external_attr >> 16)}))
`;
    const run = spawnSync('python3', ['-c', script, archive], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout);
    expect(report).toEqual({ files: expect.any(Number), nupkg: 0, log: 8, modes: '0o100755' });
    expect(report.files).toBeGreaterThan(45);
  });

  test('restore reproduces contents, mtimes, modes, empty files and folders', async () => {
    const result = await restoreTo(out, restored);
    expect(result.dryRun).toBe(false);
    expect(result.folders.every((f) => f.movedAsideTo === undefined)).toBe(true);
    expect(snapshot(restored)).toEqual(snapshot(home));
    expect(listAll(path.dirname(restored)).filter((n) => n.includes('staging'))).toEqual([]);
  });

  test('setuid and setgid bits are not restored', async () => {
    const work2 = tempDir('setuid');
    const home2 = path.join(work2, 'home');
    const out2 = path.join(work2, 'out');
    write(path.join(home2, 'Artifacts', 'tool.sh'), '#!/bin/sh\n', 0o6755);
    chmodSync(path.join(home2, 'Artifacts', 'tool.sh'), 0o6755);
    // Every folder backed up must exist (empty is fine).
    for (const folder of FOLDERS) mkdirSync(path.join(home2, folder), { recursive: true });
    await backup(home2, out2);
    const restored2 = path.join(work2, 'restored');
    await restoreTo(out2, restored2, false, ['Artifacts']);
    expect(statSync(path.join(restored2, 'Artifacts', 'tool.sh')).mode & 0o7777).toBe(0o755);
  });

  test('verify checks every hash without writing', async () => {
    const before = listAll(work);
    const result = await verifyFileStoreBackup(archive);
    expect(result).toMatchObject({ ok: true, problems: [] });
    expect(listAll(work)).toEqual(before);
  });

  test('verify reports a damaged archive', async () => {
    const damaged = path.join(work, 'damaged');
    rmSync(damaged, { recursive: true, force: true });
    spawnSync('cp', ['-r', out, damaged]);
    const copy = path.join(damaged, path.basename(archive));
    const bytes = readFileSync(copy);
    // Flip a byte inside the stored (uncompressed) 5 MB package: CRC and hash both break.
    const at = bytes.indexOf(readFileSync(path.join(home, 'Packages/feeds-builtin/Acme.Big.2.0.0.zip')).subarray(0, 64));
    expect(at).toBeGreaterThan(0);
    bytes[at + 1000] ^= 0xff;
    writeFileSync(copy, bytes);
    const result = await verifyFileStoreBackup(damaged);
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toContain('Acme.Big.2.0.0.zip');
    // Restoring it fails and leaves the destination as it was (absent).
    const target = path.join(work, 'from-damaged');
    await expect(restoreTo(damaged, target)).rejects.toThrow(/Acme\.Big|damaged|crc/i);
    expect(existsSync(target) ? readdirSync(target) : []).toEqual([]);
    expect(readdirSync(work).filter((n) => n.includes('staging'))).toEqual([]);
  });

  test('a non-empty destination is refused, then kept aside with Replace existing', async () => {
    const target = path.join(work, 'busy');
    write(path.join(target, 'TaskLogs', 'current.log.txt'), 'what the server wrote since\n');
    await expect(restoreTo(out, target, false, ['TaskLogs'])).rejects.toThrow(/^Nothing was restored:\n.*TaskLogs.*is not empty\. Set "Replace existing"/s);
    expect(readdirSync(path.join(target, 'TaskLogs'))).toEqual(['current.log.txt']);
    // A dry run shows the plan, marks the refused folder, and says a real run would be refused.
    const { log, infos } = collectingLog();
    const set = await resolveBackupSource(out);
    const destinations = at(target).filter((f) => f.name === 'TaskLogs');
    await expect(restoreFileStore({ set, destinations, replaceExisting: false, dryRun: true }, quietEngineContext({ log }))).rejects.toThrow(
      /^Dry run: a restore would be refused, and nothing was written:\n.*is not empty/s,
    );
    expect(infos.join('\n')).toMatch(/TaskLogs: \d+ files \(.*\) to .*busy\/TaskLogs \(refused: not empty\)/);

    const result = await restoreTo(out, target, true, ['TaskLogs']);
    const aside = result.folders[0].movedAsideTo!;
    expect(path.basename(aside)).toMatch(/^TaskLogs\.before-restore-\d{8}T\d{6}Z$/);
    expect(readFileSync(path.join(aside, 'current.log.txt'), 'utf8')).toBe('what the server wrote since\n');
    expect(snapshot(path.join(target, 'TaskLogs'))).toEqual(snapshot(path.join(home, 'TaskLogs')));
  });

  test('dry run writes nothing', async () => {
    const target = path.join(work, 'dry');
    const set = await resolveBackupSource(archive);
    const result = await restoreFileStore({ set, destinations: at(target), replaceExisting: false, dryRun: true }, quietEngineContext({ log: silentLog }));
    expect(result).toMatchObject({ dryRun: true, files: set.manifest.files.length });
    expect(existsSync(target)).toBe(false);
  });
});

describe('incremental chains', () => {
  const work = tempDir('incremental');
  const home = path.join(work, 'home');
  const out = path.join(work, 'out');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('store only what changed, follow deletions, and restore the chain', async () => {
    makeStore(home);
    const full = await backup(home, out, 'Full', new Date('2026-11-01T00:00:00Z'));
    const states = [snapshot(home)];

    // Changed content, a touched but identical file, a deletion and a new file.
    write(path.join(home, 'TaskLogs', 'servertasks-3.log.txt'), logText(500, 3));
    const touched = path.join(home, 'TaskLogs', 'servertasks-4.log.txt');
    utimesSync(touched, new Date('2026-11-15T00:00:00Z'), new Date('2026-11-15T00:00:00Z'));
    rmSync(path.join(home, 'TaskLogs', 'servertasks-5.log.txt'));
    write(path.join(home, 'Artifacts', 'Spaces-1', 'new-artifact.html'), '<html></html>');
    const first = await backup(home, out, 'Incremental', new Date('2026-11-02T00:00:00Z'));
    states.push(snapshot(home));
    expect(first.manifest.mode).toBe('Incremental');
    expect(first.manifest.basedOn).toBe(path.basename(full.archivePath));
    expect(first.manifest.files.filter((f) => f.archive === first.manifest.archive).map((f) => f.path).sort()).toEqual([
      'Spaces-1/new-artifact.html',
      'servertasks-3.log.txt',
    ]);
    expect(first.manifest.files.some((f) => f.path === 'servertasks-5.log.txt')).toBe(false);
    expect(first.manifest.chain).toEqual([path.basename(full.archivePath), path.basename(first.archivePath)]);

    // A second incremental on top: a package replaced, a folder removed.
    write(path.join(home, 'Packages', 'feeds-builtin', 'Acme.Web.1.0.0.nupkg'), Buffer.from('replaced'));
    rmSync(path.join(home, 'Artifacts', 'empty-folder'), { recursive: true });
    const second = await backup(home, out, 'Incremental', new Date('2026-11-03T00:00:00Z'));
    states.push(snapshot(home));
    expect(second.manifest.chain).toHaveLength(3);
    expect(second.manifest.totals.storedFiles).toBe(1);

    // Nothing changed: the incremental stores nothing.
    const quiet = await backup(home, out, 'Incremental', new Date('2026-11-04T00:00:00Z'));
    expect(quiet.manifest.totals.storedFiles).toBe(0);
    expect(quiet.manifest.chain).toEqual([...second.manifest.chain, path.basename(quiet.archivePath)]);

    // Each set restores the store as it was when it was taken.
    for (const [index, set] of [full, first, second].entries()) {
      const target = path.join(work, `restored-${index}`);
      await restoreTo(set.manifestPath, target);
      const expected = states[index];
      const actual = snapshot(target);
      // Folder mtimes change when their content does, so compare files and folder names.
      expect(Object.keys(actual)).toEqual(Object.keys(expected));
      for (const [name, entry] of Object.entries(expected)) if (entry.type === 'file') expect(actual[name]).toEqual(entry);
    }
    expect((await verifyFileStoreBackup(quiet.archivePath)).ok).toBe(true);

    // Without the full archive the chain is broken: verify says which archive is missing, and a
    // directory with no complete set is refused rather than half restored.
    rmSync(full.archivePath);
    const broken = await verifyFileStoreBackup(second.manifestPath);
    expect(broken.ok).toBe(false);
    expect(broken.problems.join('\n')).toContain(`${path.basename(full.archivePath)}: cannot be opened`);
    await expect(resolveBackupSource(out)).rejects.toThrow(/No complete file-store backup set/);
  });
});

describe('large stored files (read into recycled buffers)', () => {
  const work = tempDir('recycled');
  const home = path.join(work, 'home');
  const out = path.join(work, 'out');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('every byte of packages read in more 1 MiB chunks than the pool keeps reaches the archive, as the hash says', async () => {
    // 41 chunks and a partial one, then a file of exactly 3 chunks: buffers are reused many times over.
    const sizes = { 'Acme.Many.1.0.0.nupkg': 41 * 1024 * 1024 + 3, 'Acme.Exact.1.0.0.zip': 3 * 1024 * 1024 };
    Object.entries(sizes).forEach(([name, size], i) => write(path.join(home, 'Packages', name), pseudoRandomBytes(size, 40 + i)));
    write(path.join(home, 'TaskLogs', 'after.log.txt'), logText(400, 7));
    for (const folder of ['Artifacts', 'EventExports']) mkdirSync(path.join(home, folder));
    const result = await backup(home, out);
    const script = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
m = {f['folder'] + '/' + f['path']: f['sha256'] for f in json.loads(z.read(${JSON.stringify(MANIFEST_ENTRY_NAME)}))['files']}
for name, digest in m.items():
    assert hashlib.sha256(z.read(name)).hexdigest() == digest, name
print(len(m), z.getinfo('Packages/Acme.Many.1.0.0.nupkg').compress_type)
`;
    const run = spawnSync('python3', ['-c', script, result.archivePath], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('3 0');
    const source = (name: string) => createHash('sha256').update(readFileSync(path.join(home, 'Packages', name))).digest('hex');
    for (const name of Object.keys(sizes)) {
      expect(result.manifest.files.find((f) => f.path === name)?.sha256).toBe(source(name));
    }
  });
});
