// Hostile archives, made with Python's zipfile the way an attacker would: entries with `..`,
// absolute paths, drive letters, backslashes and symbolic links. Restore must refuse each one
// before writing anything, and nothing may appear outside (or even inside) the staging folder.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { rmSync } from 'node:fs';
import { MANIFEST_FORMAT } from '../../steps/engines/file-store/manifest';
import { resolveBackupSource, restoreFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import { listAll, silentLog, tempDir } from './helpers';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const ARCHIVE = 'octopus-file-store-20260101T000000Z-full.zip';

/** Writes a zip with Python (entries: name -> [content, unix mode]) and a manifest that lists them. */
function makeArchive(dir: string, entries: [string, string, number][], manifestPaths?: string[]): string {
  const script = `
import json, sys, zipfile
entries = json.loads(sys.argv[2])
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for name, content, mode in entries:
        info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = mode << 16
        z.writestr(info, content)
`;
  const archive = path.join(dir, ARCHIVE);
  const run = spawnSync('python3', ['-c', script, archive, JSON.stringify(entries)], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  // The manifest lists the entries under a known folder; the others are only in the archive,
  // where restore must notice them all the same.
  const listed = manifestPaths ? entries : entries.filter(([name]) => ['TaskLogs', 'Artifacts'].includes(name.split('/')[0]) && !name.includes('..') && !name.includes('\\'));
  const files = listed.map(([name, content], i) => {
    const folder = manifestPaths ? 'TaskLogs' : name.split('/')[0];
    const rel = manifestPaths ? manifestPaths[i] : name.split('/').slice(1).join('/');
    return { folder, path: rel, size: Buffer.byteLength(content), mtimeMs: Date.parse('2026-01-01T00:00:00Z'), mode: 0o644, sha256: createHash('sha256').update(content).digest('hex'), archive: ARCHIVE };
  });
  const manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: 1,
    archive: ARCHIVE,
    mode: 'Full',
    createdAt: '2026-01-01T00:00:00.000Z',
    toolVersion: 'evil',
    host: 'evil',
    platform: 'linux',
    chain: [ARCHIVE],
    folders: [{ name: 'TaskLogs', source: '/x', files: files.length, bytes: 0 }],
    totals: { files: files.length, bytes: 0, directories: 0, storedFiles: files.length, storedBytes: 0 },
    warnings: [],
    skipped: [],
    files,
    directories: [],
  };
  writeFileSync(path.join(dir, ARCHIVE.replace('.zip', '.manifest.json')), JSON.stringify(manifest));
  return archive;
}

const cases: [string, [string, string, number][], string][] = [
  ['parent-directory entry', [['TaskLogs/ok.txt', 'ok', 0o100644], ['TaskLogs/../../evil.txt', 'pwned', 0o100644]], 'parent-directory'],
  ['absolute path', [['TaskLogs/ok.txt', 'ok', 0o100644], ['/tmp/octopus-dr-evil-absolute.txt', 'pwned', 0o100644]], 'absolute path'],
  ['drive letter', [['C:/evil.txt', 'pwned', 0o100644], ['TaskLogs/ok.txt', 'ok', 0o100644]], 'drive letter'],
  ['backslash trick', [['TaskLogs/ok.txt', 'ok', 0o100644], ['TaskLogs\\..\\..\\evil.txt', 'pwned', 0o100644]], 'backslash'],
  ['symbolic link', [['TaskLogs/link', '/etc', 0o120777], ['TaskLogs/link/evil.txt', 'pwned', 0o100644]], 'symbolic link'],
];

describe.each(cases)('an archive with a %s', (_label, entries, reason) => {
  const work = tempDir('evil');
  const backups = path.join(work, 'backups');
  const home = path.join(work, 'home', 'deeper');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('is refused before anything is written, by restore and by verify', async () => {
    spawnSync('mkdir', ['-p', backups]);
    makeArchive(backups, entries);
    const before = listAll(work);
    const set = await resolveBackupSource(backups);
    await expect(
      restoreFileStore({ set, destinations: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], replaceExisting: true, dryRun: false }, quietEngineContext({ log: silentLog })),
    ).rejects.toThrow(new RegExp(`refused before anything was written[\\s\\S]*${reason}`));
    expect(listAll(work)).toEqual(before);
    expect(existsSync('/tmp/octopus-dr-evil-absolute.txt')).toBe(false);
    const verdict = await verifyFileStoreBackup(backups);
    expect(verdict.ok).toBe(false);
    expect(verdict.problems.join('\n')).toContain(reason);
  });
});

test('a manifest record that climbs out of its folder is refused even when the entry name looks harmless', async () => {
  const work = tempDir('evil-manifest');
  try {
    const backups = path.join(work, 'backups');
    spawnSync('mkdir', ['-p', backups]);
    makeArchive(backups, [['TaskLogs/x.txt', 'pwned', 0o100644]], ['../../x.txt']);
    const before = listAll(work);
    const set = await resolveBackupSource(backups);
    await expect(
      restoreFileStore({ set, destinations: [{ name: 'TaskLogs', path: path.join(work, 'home', 'TaskLogs'), origin: 'home' }], replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog })),
    ).rejects.toThrow(/manifest record .*parent-directory/);
    expect(listAll(work)).toEqual(before);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a manifest naming a folder outside the known ones is refused before anything is written', async () => {
  const work = tempDir('evil-folder');
  try {
    const backups = path.join(work, 'backups');
    spawnSync('mkdir', ['-p', backups]);
    makeArchive(backups, [['TaskLogs/x.txt', 'x', 0o100644]]);
    const manifestPath = path.join(backups, ARCHIVE.replace('.zip', '.manifest.json'));
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    manifest.folders.push({ name: '../../escape', source: '/x', files: 0, bytes: 0 });
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const before = listAll(work);
    await expect(resolveBackupSource(backups)).rejects.toThrow(/No complete file-store backup set.*unknown folder/s);
    await expect(resolveBackupSource(manifestPath)).rejects.toThrow(/unknown folder "..\/..\/escape"/);
    expect(listAll(work)).toEqual(before);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
