// Retention reads each set only as far as its manifest's header (manifest.ts,
// readManifestHeaderFile), and whole only the sets whose records matter: the newest complete ones
// it counts, and those it is about to delete. A set whose manifest cannot be read whole is never
// deleted and never counted.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyRetention, backupFileStore } from '../../steps/engines/file-store';
import { readManifestFile, readManifestHeaderFile, type FileStoreManifest } from '../../steps/engines/file-store/manifest';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, spyOnWholeReads, tempDir, write } from './helpers';

const day = (d: number) => new Date(Date.UTC(2026, 10, d));
const work = tempDir('retention-headers');
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function set(home: string, out: string, mode: 'Full' | 'Incremental', d: number): Promise<string> {
  write(path.join(home, 'TaskLogs', `task-${d}.log.txt`), `day ${d}\n`, undefined, day(d));
  const result = await backupFileStore(
    { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(day(d).getTime() + 3600_000) },
    quietEngineContext({ log: silentLog }),
  );
  return result.manifestPath;
}

const headerOf = ({ files: _f, directories: _d, ...header }: FileStoreManifest) => header;

describe('readManifestHeaderFile', () => {
  const home = path.join(work, 'header-home');
  const out = path.join(work, 'header-out');
  let manifestPath: string;
  beforeAll(async () => {
    write(path.join(home, 'TaskLogs', 'Rapport d’exécution – ü 漢字.txt'), 'x');
    manifestPath = await set(home, out, 'Full', 1);
  });

  test('gives the header a whole read gives, names outside Latin-1 and all', async () => {
    const whole = await readManifestFile(manifestPath);
    expect(whole.files.length).toBeGreaterThan(1);
    expect(await readManifestHeaderFile(manifestPath)).toEqual(headerOf(whole));
  });

  test.each([65536 - 20, 65536 - 5, 65536, 65536 + 3])('finds the file list when it starts across two reads (header of %i bytes)', async (headerBytes) => {
    const whole = await readManifestFile(manifestPath);
    const file = path.join(out, `cut-${headerBytes}.manifest.json`);
    // Warnings fill the header to the size asked for, then the file list starts.
    const base = Buffer.byteLength(JSON.stringify({ ...whole, warnings: [''], files: undefined, directories: undefined }, null, 1).split('\n "files"')[0]);
    const edited = { ...whole, warnings: ['w'.repeat(Math.max(0, headerBytes - base - 30))] };
    const text = JSON.stringify(edited, null, 1);
    writeFileSync(file, text);
    expect(await readManifestHeaderFile(file)).toEqual(headerOf(edited));
  });

  test('reads a manifest not laid out as this tool writes it whole, and refuses a damaged header', async () => {
    const whole = await readManifestFile(manifestPath);
    const compact = path.join(out, 'compact.manifest.json');
    writeFileSync(compact, JSON.stringify(whole));
    expect(await readManifestHeaderFile(compact)).toEqual(headerOf(whole));
    const damaged = path.join(out, 'damaged.manifest.json');
    writeFileSync(damaged, readFileSync(manifestPath, 'utf8').replace('"chain": [', '"chain": ["../../etc/passwd", '));
    await expect(readManifestHeaderFile(damaged)).rejects.toThrow('has an invalid chain entry "../../etc/passwd"');
  });
});

describe('retention', () => {
  test('reads whole only the sets it counts and deletes, however many sets there are', async () => {
    const home = path.join(work, 'many-home');
    const out = path.join(work, 'many-out');
    await set(home, out, 'Full', 1);
    for (let d = 2; d <= 9; d++) await set(home, out, 'Incremental', d);
    await set(home, out, 'Full', 20);
    const wholeReads = spyOnWholeReads();
    const read = () => wholeReads.paths().map((file) => path.basename(file));
    try {
      // Day 21, 30 days: ten sets, all kept; only the two newest complete ones are read whole.
      expect((await applyRetention(out, 30, day(21), silentLog, { minimumSets: 2 })).deleted).toEqual([]);
      expect(read().sort()).toEqual(readdirSync(out).filter((n) => n.endsWith('.manifest.json')).sort().slice(-2));
      wholeReads.clear();

      // Day 60, one set kept at least: the newest (a full) is counted, and the nine before it go, each read whole first.
      const result = await applyRetention(out, 5, day(60), silentLog, { minimumSets: 1 });
      expect(result.deleted).toHaveLength(9);
      expect(read()).toHaveLength(10);
      expect(new Set(read()).size).toBe(10);
    } finally {
      wholeReads.restore();
    }
    expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toHaveLength(1);
  });

  test('never deletes, or counts as complete, a set whose manifest cannot be read whole', async () => {
    const home = path.join(work, 'damaged-home');
    const out = path.join(work, 'damaged-out');
    const oldFull = await set(home, out, 'Full', 1);
    const damagedFull = await set(home, out, 'Full', 2);
    await set(home, out, 'Full', 3);
    // The middle set's manifest loses its end (its header still reads).
    const text = readFileSync(damagedFull, 'utf8');
    truncateSync(damagedFull, Buffer.byteLength(text.slice(0, text.indexOf('\n "files": [') + 40)));
    const verbose: string[] = [];
    const warnings: string[] = [];
    const log = { verbose: (m: string) => verbose.push(m), warn: (m: string) => warnings.push(m) };

    // Two sets kept at least: the damaged one does not count, so the oldest stays too.
    const result = await applyRetention(out, 5, day(30), log, { minimumSets: 2 });
    expect(result.deleted).toEqual([]);
    expect(readdirSync(out)).toEqual(expect.arrayContaining([path.basename(oldFull), path.basename(damagedFull)]));

    // With one set kept at least, the oldest goes, and the damaged one is kept, saying why.
    const second = await applyRetention(out, 5, day(30), log, { minimumSets: 1 });
    expect(second.deleted).toEqual([path.basename(oldFull).replace('.manifest.json', '.zip')]);
    expect(readdirSync(out)).toContain(path.basename(damagedFull));
    expect(verbose.join('\n')).toContain(`Retention: kept ${damagedFull.replace('.manifest.json', '.zip')}: its manifest cannot be read whole.`);
    // Its header reads, so its chain is known: no warning, and the older full could go.
    expect(warnings).toEqual([]);
  });
});

describe('a set whose manifest cannot be read as far as its header', () => {
  // Which sets its chain needs is unknown: it and every older set are kept, with a warning saying
  // what to do. Before, it was left out of the listing and the full it was built on was deleted.
  const zipOf = (manifest: string) => manifest.replace('.manifest.json', '.zip');
  const cases: [string, (manifest: string, other: string) => void, (manifest: string, out: string) => string][] = [
    [
      'damaged',
      (manifest) => writeFileSync(manifest, readFileSync(manifest, 'utf8').slice(0, 60)),
      (manifest, out) =>
        `Retention kept ${path.basename(zipOf(manifest))} and every older set: its manifest ${path.basename(manifest)} cannot be read (`,
    ],
    [
      "another set's manifest",
      (manifest, other) => writeFileSync(manifest, readFileSync(other)),
      (manifest, out) =>
        `its manifest ${path.basename(manifest)} cannot be read (it is the manifest of another archive (octopus-file-store-20261110T`,
    ],
    [
      'not a file (a folder in its place)',
      (manifest) => { rmSync(manifest); execFileSync('mkdir', [manifest]); },
      (manifest) => `Retention kept every set older than ${path.basename(manifest)}: ${manifest} is not a regular file (a folder with a manifest's name); it is no backup set. Move it out of the backup directory, then run this again. The next backup`,
    ],
    [
      'damaged, and its archive missing',
      (manifest) => { writeFileSync(manifest, '{'); rmSync(zipOf(manifest)); },
      (manifest, out) => `Retention kept every set older than ${path.basename(manifest)}: its manifest cannot be read (`,
    ],
    [
      'no manifest beside it, and the archive damaged',
      (manifest) => { rmSync(manifest); writeFileSync(zipOf(manifest), 'PK not a zip'); },
      (manifest, out) => `Retention kept ${path.basename(zipOf(manifest))} and every older set: it has no manifest beside it and the one inside it cannot be read (`,
    ],
  ];
  const advice: Record<string, (manifest: string, out: string) => string> = {
    damaged: (manifest, out) => `If the set is needed, put its manifest back (the archive holds a copy, its entry octopus-dr-manifest.json); if not, move both files out of ${out}.`,
    "another set's manifest": (manifest, out) => `If the set is needed, put its manifest back (the archive holds a copy, its entry octopus-dr-manifest.json); if not, move both files out of ${out}.`,
    'not a file (a folder in its place)': () => '',
    'damaged, and its archive missing': (manifest, out) => `and its archive ${path.basename(zipOf(manifest))} is missing. Bring the set back from its offsite copy, or move ${path.basename(manifest)} out of ${out}.`,
    'no manifest beside it, and the archive damaged': (manifest, out) => `Bring the set back from its offsite copy, or move the archive out of ${out}.`,
  };
  test.each(cases)('%s: kept with the full it was built on, and a warning says what to do; put right, retention goes on', async (name, damage, expected) => {
    const home = path.join(work, `unreadable-${cases.findIndex((c) => c[0] === name)}`);
    const out = path.join(home, 'out');
    const full1 = await set(home, out, 'Full', 1);
    const inc2 = await set(home, out, 'Incremental', 2);
    const full10 = await set(home, out, 'Full', 10);
    await set(home, out, 'Incremental', 11);
    damage(inc2, full10);
    const warnings: string[] = [];
    const log = { verbose: () => undefined, warn: (m: string) => warnings.push(m) };

    const result = await applyRetention(out, 5, day(12), log);
    expect(result.deleted).toEqual([]);
    expect(readdirSync(out)).toEqual(expect.arrayContaining([path.basename(full1), path.basename(zipOf(full1))]));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(expected(inc2, out));
    expect(warnings[0]).toContain(advice[name](inc2, out));
    expect(warnings[0]).toMatch(/The next backup then applies retention to the older sets\.$/);
    expect(warnings[0]).not.toMatch(/[\u0000-\u001f]/);

    // The set moved away, as the warning says: the old full goes, the newest full and its chain stay.
    rmSync(inc2, { recursive: true, force: true });
    rmSync(zipOf(inc2), { force: true });
    const after = await applyRetention(out, 5, day(12), log);
    expect(after.deleted).toEqual([path.basename(zipOf(full1))]);
    expect(warnings).toHaveLength(1);
  });

  test('one newer than every set keeps them all; an older one leaves the newer sets to retention as before', async () => {
    const home = path.join(work, 'unreadable-order');
    const out = path.join(home, 'out');
    const full1 = await set(home, out, 'Full', 1);
    const full2 = await set(home, out, 'Full', 2);
    const full10 = await set(home, out, 'Full', 10);
    writeFileSync(full1, '{');
    const warnings: string[] = [];
    const log = { verbose: () => undefined, warn: (m: string) => warnings.push(m) };
    // Only full1 is unreadable: full2, newer, is old enough and needed by nothing kept, so it goes.
    expect((await applyRetention(out, 5, day(12), log)).deleted).toEqual([path.basename(full2).replace('.manifest.json', '.zip')]);
    expect(warnings).toHaveLength(1);
    // The newest unreadable: nothing older goes, however old.
    writeFileSync(full10, '');
    await set(home, out, 'Full', 20);
    expect((await applyRetention(out, 5, day(40), log)).deleted).toEqual([]);
    expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toHaveLength(3);
  });
});

describe('a pipe named like a manifest (it would block a plain open until a writer came)', () => {
  const home = path.join(work, 'fifo-home');
  const out = path.join(work, 'fifo-out');
  let fifo: string;
  beforeAll(async () => {
    await set(home, out, 'Full', 1);
    fifo = path.join(out, 'octopus-file-store-20261101T000000Z-000000-full.manifest.json');
    execFileSync('mkfifo', [fifo]);
  });

  test('reading it, whole or its header, fails at once naming it, instead of waiting forever', async () => {
    for (const read of [readManifestFile, readManifestHeaderFile]) {
      await expect(read(fifo)).rejects.toThrow(`${fifo} is not a regular file (a pipe with a manifest's name); it is no backup set. Move it out of the backup directory`);
    }
  });

  test('an incremental and its retention go on past it: the set is made, the pipe and the real full are left', async () => {
    await set(home, out, 'Incremental', 20);
    const retention = await applyRetention(out, 1, day(30), silentLog, { minimumSets: 1 });
    expect(retention.deleted).toEqual([]);
    const left = readdirSync(out).filter((n) => n.endsWith('.manifest.json'));
    expect(left).toHaveLength(3);
    expect(left).toContain(path.basename(fifo));
  });
});
