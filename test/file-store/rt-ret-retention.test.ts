// Red team (stop 25): retention decides from each set's manifest header (manifest.ts,
// readManifestHeaderFile, listBackupSetHeaders). Whatever it reads, it must not delete what the
// previous whole-manifest listing (listBackupSets) kept: an archive a kept, restorable set needs,
// or the newest full set that can be read.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyRetention, backupFileStore } from '../../steps/engines/file-store';
import { listBackupSets, readManifestFile, readManifestHeaderFile } from '../../steps/engines/file-store/manifest';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir, write } from './helpers';

const day = (d: number) => new Date(Date.UTC(2026, 10, d));
const work = tempDir('rt-ret-retention');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A set of day `d`; `file` (default: a new task log of that day) is written first. */
async function set(home: string, out: string, mode: 'Full' | 'Incremental', d: number, file = `task-${d}.log.txt`, content = `day ${d}\n`) {
  write(path.join(home, 'TaskLogs', file), content, undefined, day(d));
  const result = await backupFileStore(
    { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(day(d).getTime() + 3600_000) },
    quietEngineContext({ log: silentLog }),
  );
  return { archive: path.basename(result.archivePath), manifestPath: result.manifestPath };
}

const archives = (out: string) => readdirSync(out).filter((n) => n.endsWith('.zip')).sort();

/**
 * A full of day 1, an incremental of day 20 that needs it (its first task log is unchanged), and a
 * full of day 21: with 7 days kept on day 22, the incremental is kept, so the full of day 1 must stay.
 */
async function chainOfThree(name: string) {
  const home = path.join(work, `${name}-home`);
  const out = path.join(work, `${name}-out`);
  const full1 = await set(home, out, 'Full', 1);
  const inc20 = await set(home, out, 'Incremental', 20);
  const full21 = await set(home, out, 'Full', 21);
  const manifest = await readManifestFile(inc20.manifestPath);
  expect(manifest.chain).toEqual([full1.archive, inc20.archive]);
  return { out, full1, inc20, full21 };
}

test('Red team (stop 25): a kept incremental whose manifest was rewritten with sorted keys still keeps the full it needs', async () => {
  const { out, full1, inc20 } = await chainOfThree('sorted');
  // The same manifest, rewritten by Python with sorted keys (the file list now comes before "folders").
  const python = spawnSync('python3', ['-c', 'import json, sys; p = sys.argv[1]; m = json.load(open(p, encoding="utf-8")); json.dump(m, open(p, "w", encoding="utf-8"), indent=1, sort_keys=True, ensure_ascii=False)', inc20.manifestPath], { encoding: 'utf8' });
  expect(python.stderr).toBe('');
  // The set still reads whole (restore and the next backup use it), and needs the day-1 full.
  const { sets } = await listBackupSets(out);
  expect(sets.find((s) => s.manifest.archive === inc20.archive)?.manifest.chain).toEqual([full1.archive, inc20.archive]);

  const result = await applyRetention(out, 7, day(22), silentLog);
  expect(result.deleted).toEqual([]);
  expect(archives(out)).toContain(full1.archive);
});

test('Red team (stop 25): a full whose manifest cannot be read whole does not take the place of the newest readable full', async () => {
  const home = path.join(work, 'newest-full-home');
  const out = path.join(work, 'newest-full-out');
  const full1 = await set(home, out, 'Full', 1, 'only.log.txt', 'first\n');
  const full2 = await set(home, out, 'Full', 2, 'only.log.txt', 'second\n');
  // Day 2's manifest loses its end: its header still reads, its records do not.
  const text = readFileSync(full2.manifestPath, 'utf8');
  truncateSync(full2.manifestPath, Buffer.byteLength(text.slice(0, text.indexOf('\n "files": [') + 40)));
  // Day 3: the only file changed, so the incremental (built on day 1, the newest set that reads) needs no earlier archive.
  const inc3 = await set(home, out, 'Incremental', 3, 'only.log.txt', 'third\n');
  const manifest = await readManifestFile(inc3.manifestPath);
  expect(manifest.basedOn).toBe(full1.archive);
  expect(manifest.chain).toEqual([inc3.archive]);

  // Before stop 25 the damaged set was not listed, so day 1 was the newest full set and stayed.
  const result = await applyRetention(out, 5, day(30), silentLog);
  expect(result.deleted).toEqual([]);
  expect(archives(out)).toEqual([full1.archive, full2.archive, inc3.archive].sort());
});

test('Red team (stop 25): the header read finds the file list wherever a read cuts it, after a long header and characters outside Latin-1', async () => {
  const home = path.join(work, 'cut-home');
  const out = path.join(work, 'cut-out');
  const { manifestPath } = await set(home, out, 'Full', 1, 'Rapport d’exécution – ü 漢字.txt', 'x');
  const whole = await readManifestFile(manifestPath);
  const headerOf = ({ files: _f, directories: _d, ...header }: typeof whole) => header;
  const plain = JSON.stringify({ ...whole, warnings: [''] }, null, 1);
  const base = Buffer.byteLength(plain.slice(0, plain.indexOf('\n "files": [')));
  // The file list starting 2 x 64 KiB - 16 .. - 1 bytes in (each position of its 12-character start
  // across the second read's end), then 3 MiB in.
  for (const bytes of [...Array.from({ length: 16 }, (_, i) => 2 * 65536 - 13 + i), 3 * 1024 * 1024]) {
    // A warning of '€' (3 bytes each) and 'w' filling the header to `bytes - 3` bytes.
    const fill = bytes - base;
    const edited = { ...whole, warnings: ['€'.repeat(Math.floor(fill / 3) - 1) + 'w'.repeat(fill % 3)] };
    const file = path.join(out, `cut-${bytes}.manifest.json`);
    writeFileSync(file, JSON.stringify(edited, null, 1));
    const text = readFileSync(file);
    expect(text.indexOf('\n "files": [')).toBe(bytes - 3);
    expect(await readManifestHeaderFile(file)).toEqual(headerOf(edited));
  }
});

test('Red team (stop 25): a manifest that never ends (a link to /dev/zero) is left out of retention, not read until memory runs out', async () => {
  const home = path.join(work, 'zero-home');
  const out = path.join(work, 'zero-out');
  const full1 = await set(home, out, 'Full', 1);
  const full2 = await set(home, out, 'Full', 2);
  const endless = path.join(out, 'octopus-file-store-20261101T000000Z-abcdef-full.manifest.json');
  symlinkSync('/dev/zero', endless);
  writeFileSync(endless.replace('.manifest.json', '.zip'), 'not an archive');
  const result = await applyRetention(out, 5, day(30), silentLog);
  expect(result.deleted).toEqual([full1.archive]);
  expect(archives(out)).toEqual(['octopus-file-store-20261101T000000Z-abcdef-full.zip', full2.archive].sort());
}, 60_000);

test('Red team (stop 25): a newest full whose "mode" was moved after the file list is still the newest full set', async () => {
  const home = path.join(work, 'moved-mode-home');
  const out = path.join(work, 'moved-mode-out');
  const full1 = await set(home, out, 'Full', 1, 'only.log.txt', 'first\n');
  const full2 = await set(home, out, 'Full', 2, 'only.log.txt', 'second\n');
  const inc3 = await set(home, out, 'Incremental', 3, 'only.log.txt', 'third\n');
  expect((await readManifestFile(inc3.manifestPath)).chain).toEqual([inc3.archive]);
  // The same keys and values; "mode" now comes last.
  const text = readFileSync(full2.manifestPath, 'utf8');
  writeFileSync(full2.manifestPath, text.replace('\n "mode": "Full",', '').replace(/\n}\s*$/, ',\n "mode": "Full"\n}'));
  expect((await readManifestFile(full2.manifestPath)).mode).toBe('Full');

  const result = await applyRetention(out, 5, day(30), silentLog);
  expect(result.deleted).toEqual([full1.archive]);
  expect(archives(out)).toEqual([full2.archive, inc3.archive].sort());
});

test('Red team (stop 25): CRLF line ends read as the whole manifest reads; a BOM is refused by both reads, as listBackupSets refused it', async () => {
  const home = path.join(work, 'crlf-home');
  const out = path.join(work, 'crlf-out');
  const { manifestPath } = await set(home, out, 'Full', 1);
  const text = readFileSync(manifestPath, 'utf8');
  const crlf = path.join(out, 'crlf.manifest.json');
  writeFileSync(crlf, text.replace(/\n/g, '\r\n'));
  const { files: _f, directories: _d, ...wholeHeader } = await readManifestFile(crlf);
  expect(await readManifestHeaderFile(crlf)).toEqual(wholeHeader);
  const bom = path.join(out, 'bom.manifest.json');
  writeFileSync(bom, `\uFEFF${text}`);
  await expect(readManifestFile(bom)).rejects.toThrow('is not valid JSON');
  await expect(readManifestHeaderFile(bom)).rejects.toThrow('is not valid JSON');
});
