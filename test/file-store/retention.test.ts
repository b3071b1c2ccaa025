// Retention deletes only this tool's own sets older than the limit, and never the newest full
// set nor an archive that a kept incremental still needs.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { applyRetention } from '../../steps/engines/file-store';
import { silentLog, tempDir, write } from './helpers';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const day = (d: number) => new Date(Date.UTC(2026, 10, d));

async function set(home: string, out: string, mode: 'Full' | 'Incremental', d: number) {
  write(path.join(home, 'TaskLogs', `task-${d}.log.txt`), `day ${d}\n`, undefined, day(d));
  const result = await backupFileStore({
    folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }],
    backupDirectory: out,
    mode,
    skipUnreadable: false,
    toolVersion: 'test',
    now: () => new Date(day(d).getTime() + 3600_000),
  }, quietEngineContext({ log: silentLog }));
  return path.basename(result.archivePath);
}

test('old sets go; the newest full, sets within the limit and what their chains need stay; foreign files stay', async () => {
  const work = tempDir('retention');
  try {
    const home = path.join(work, 'home');
    const out = path.join(work, 'out');
    const full1 = await set(home, out, 'Full', 1);
    const inc2 = await set(home, out, 'Incremental', 2);
    const inc3 = await set(home, out, 'Incremental', 3);
    const full10 = await set(home, out, 'Full', 10);
    const inc11 = await set(home, out, 'Incremental', 11);
    writeFileSync(path.join(out, 'notes.txt'), 'not ours');
    writeFileSync(path.join(out, 'octopus-file-store-20260101T000000Z-full.zip'), 'no manifest: not provably ours');

    const result = await applyRetention(out, 5, day(12), silentLog);
    expect(result.deleted.sort()).toEqual([full1, inc2, inc3].sort());
    expect(readdirSync(out).sort()).toEqual(
      [full10, full10.replace('.zip', '.manifest.json'), inc11, inc11.replace('.zip', '.manifest.json'), 'notes.txt', 'octopus-file-store-20260101T000000Z-full.zip'].sort(),
    );

    // Far in the future: everything is old, but the newest set and the newest full (and their chains) are never deleted.
    const later = await applyRetention(out, 5, day(60), silentLog);
    expect(later.deleted).toEqual([]);
    expect(readdirSync(out)).toEqual(expect.arrayContaining([full10, inc11]));

    // 0 and empty keep everything (the same rule as the database step's).
    expect((await applyRetention(out, 0, day(90), silentLog)).deleted).toEqual([]);
    expect((await applyRetention(out, undefined, day(90), silentLog)).deleted).toEqual([]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('an old full that a kept incremental still needs is kept', async () => {
  const work = tempDir('retention-chain');
  try {
    const home = path.join(work, 'home');
    const out = path.join(work, 'out');
    const full1 = await set(home, out, 'Full', 1);
    const inc9 = await set(home, out, 'Incremental', 9);
    const inc10 = await set(home, out, 'Incremental', 10);
    const result = await applyRetention(out, 2, day(11), silentLog);
    // inc10 (kept) needs full1 and inc9 for the files it did not store again.
    expect(result.deleted).toEqual([]);
    expect(readdirSync(out).filter((n) => n.endsWith('.zip')).sort()).toEqual([full1, inc10, inc9].sort());
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a backup directory inside a folder being backed up is refused', async () => {
  const work = tempDir('inside');
  try {
    const home = path.join(work, 'home');
    write(path.join(home, 'Artifacts', 'a.txt'), 'a');
    await expect(
      backupFileStore({
        folders: [{ name: 'Artifacts', path: path.join(home, 'Artifacts'), origin: 'home' }],
        backupDirectory: path.join(home, 'Artifacts', 'backups'),
        mode: 'Full',
        skipUnreadable: false,
        toolVersion: 'test',
      }, quietEngineContext({ log: silentLog })),
    ).rejects.toThrow(/is inside the Artifacts folder .*choose a backup directory outside the file store/);
    expect(readdirSync(path.join(home, 'Artifacts'))).toEqual(['a.txt']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("a killed backup's partial archive is deleted by a later backup once it is clearly abandoned", async () => {
  const work = tempDir('partials');
  try {
    const home = path.join(work, 'home');
    const out = path.join(work, 'out');
    write(path.join(home, 'TaskLogs', 'a.log.txt'), 'a');
    const old = new Date('2026-11-01T00:00:00Z');
    write(path.join(out, '.octopus-file-store-20261101T000000Z-full.zip.partial'), 'half an archive', undefined, old);
    write(path.join(out, '.octopus-file-store-20261127T000000Z-full.zip.partial'), 'a backup still running');
    write(path.join(out, '.someone-elses.partial'), 'not ours', undefined, old);
    await set(home, out, 'Full', 27);
    const left = readdirSync(out).filter((n) => n.endsWith('.partial')).sort();
    expect(left).toEqual(['.octopus-file-store-20261127T000000Z-full.zip.partial', '.someone-elses.partial']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a set whose manifest has no valid creation time is never deleted as old', async () => {
  const work = tempDir('retention-unknown-time');
  try {
    const home = path.join(work, 'home');
    const out = path.join(work, 'out');
    const full1 = await set(home, out, 'Full', 1);
    await set(home, out, 'Full', 10);
    for (const createdAt of ['', 'yesterday']) {
      const manifestPath = path.join(out, full1.replace('.zip', '.manifest.json'));
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      writeFileSync(manifestPath, JSON.stringify({ ...manifest, createdAt }));
      const result = await applyRetention(out, 5, day(30), silentLog);
      expect(result.deleted).toEqual([]);
      expect(readdirSync(out)).toContain(full1);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a set whose manifest says it is older than its name (an edited creation time) is aged by its name, and kept', async () => {
  const work = tempDir('retention-edited-time');
  try {
    const home = path.join(work, 'home');
    const out = path.join(work, 'out');
    const full1 = await set(home, out, 'Full', 1);
    const full10 = await set(home, out, 'Full', 10);
    const full11 = await set(home, out, 'Full', 11);
    // The set of day 10 now claims to be from 2001.
    const sidecar = path.join(out, full10.replace('.zip', '.manifest.json'));
    writeFileSync(sidecar, readFileSync(sidecar, 'utf8').replace(/"createdAt": "\d{4}/, '"createdAt": "2001'));

    const result = await applyRetention(out, 5, day(12), silentLog);
    expect(result.deleted).toEqual([full1]);
    expect(readdirSync(out)).toEqual(expect.arrayContaining([full10, full11]));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
