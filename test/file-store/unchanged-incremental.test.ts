// The unchanged incremental's shortcuts (issue 16): the previous set's records found in scan
// order, records reused as they are, the manifest encoded once for both copies, and a scan that
// yields to the event loop. Each shortcut must still find every change.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore, recordsInScanOrder, type ManifestFile } from '../../steps/engines/file-store';
import { scanProgress } from '../../steps/engines/file-store/backup';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { MANIFEST_ENTRY_NAME } from '../../steps/engines/file-store/manifest';
import { scanFolder } from '../../steps/engines/file-store/scan';
import { openArchive } from '../../steps/engines/file-store/zip-reader';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { makeStore, silentLog, spyOnWholeReads, tempDir, write } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

function backup(home: string, out: string, mode: 'Full' | 'Incremental', now: Date) {
  return backupFileStore({ folders: at(home), backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => now }, quietEngineContext({ log: silentLog }));
}

const record = (folder: FileStoreFolderName, file: string): ManifestFile => ({ folder, path: file, size: 1, mtimeMs: 0, mode: 0o644, sha256: '0'.repeat(64), archive: 'a.zip' });

describe('recordsInScanOrder', () => {
  const records = [record('TaskLogs', 'a'), record('TaskLogs', 'b'), record('TaskLogs', 'c'), record('Artifacts', 'a'), record('Packages', 'p')];

  test('files asked for in the order of the manifest get their own records', () => {
    const find = recordsInScanOrder(records);
    expect(records.map((r) => find(r.folder, r.path))).toEqual(records);
  });

  test('new files, deleted files and another folder order still find exactly their own record', () => {
    const find = recordsInScanOrder(records);
    expect(find('Packages', 'p')).toBe(records[4]);
    expect(find('TaskLogs', 'a')).toBe(records[0]);
    expect(find('TaskLogs', 'new')).toBeUndefined();
    // b deleted: c is found past it.
    expect(find('TaskLogs', 'c')).toBe(records[2]);
    // The same path in another folder is another file.
    expect(find('Artifacts', 'a')).toBe(records[3]);
    expect(find('Artifacts', 'b')).toBeUndefined();
    expect(find('EventExports', 'p')).toBeUndefined();
    expect(find('TaskLogs', 'b')).toBe(records[1]);
  });

  test('an empty previous set has no records', () => {
    expect(recordsInScanOrder([])('TaskLogs', 'a')).toBeUndefined();
  });
});

describe('scanFolder', () => {
  const work = tempDir('scan');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const crowded = path.join(work, 'crowded');
  beforeAll(() => {
    mkdirSync(crowded);
    for (let i = 0; i < 2500; i++) writeFileSync(path.join(crowded, `f${i}.txt`), '');
  });

  test('names are in code-unit order, as every earlier set has them', async () => {
    const dir = path.join(work, 'order');
    for (const name of ['b', 'B', 'a', '_x', '10', '9', 'é', 'z', 'Z~']) write(path.join(dir, name), name);
    const { files } = await scanFolder('TaskLogs', dir);
    expect(files.map((f) => f.path)).toEqual(['10', '9', 'B', 'Z~', '_x', 'a', 'b', 'z', 'é']);
  });

  test('a large folder lets timers run and reports how far it has got while it is scanned', async () => {
    const seen: number[] = [];
    let reportsBeforeTimer: number | undefined;
    const { files } = await scanFolder('TaskLogs', crowded, undefined, (entries) => {
      // Set in the middle of one folder: it runs before the folder is done.
      if (seen.push(entries) === 1) setImmediate(() => (reportsBeforeTimer = seen.length));
    });
    expect(files).toHaveLength(2500);
    expect(seen).toEqual([1000, 2000]);
    expect(reportsBeforeTimer).toBe(1);
  });

  test("a scan that takes more than a second shows how far it has got on the step's progress bar, at most once a second", () => {
    let clock = 0;
    const shown: [number, string][] = [];
    const report = scanProgress({ progress: (percent, message) => shown.push([percent, message]) }, 'TaskLogs', () => clock);
    clock = 400;
    report(1000);
    clock = 1000;
    report(2000);
    clock = 1500;
    report(3000);
    clock = 2100;
    report(4000);
    expect(shown).toEqual([
      [0, 'Scanning TaskLogs: 2000 files and folders so far'],
      [0, 'Scanning TaskLogs: 4000 files and folders so far'],
    ]);
  });

  test('small subfolders are listed synchronously; the folder itself and a large subfolder on the thread pool, where a cancel need not wait for them', async () => {
    const dir = path.join(work, 'listing');
    write(path.join(dir, 'small', 'a.txt'), 'x');
    write(path.join(dir, 'small', 'deeper', 'b.txt'), 'x');
    const large = path.join(dir, 'large');
    mkdirSync(large, { recursive: true });
    // Over 128 KiB of directory entries (ext4 takes ~48 bytes for each of these names).
    for (let i = 0; i < 4000; i++) writeFileSync(path.join(large, `servertasks-${String(i).padStart(6, '0')}-0123456789abcdef.log.txt`), '');
    expect(statSync(large).size).toBeGreaterThan(128 * 1024);
    // The module object itself (scan.ts reads its properties at each call).
    const fs = require('node:fs') as typeof import('node:fs');
    const listedSynchronously = jest.spyOn(fs, 'readdirSync');
    const listedOnThreadPool = jest.spyOn(fs.promises, 'readdir');
    try {
      const { files } = await scanFolder('Artifacts', dir);
      expect(files).toHaveLength(4002);
      expect(listedSynchronously.mock.calls.map(([listed]) => path.relative(dir, String(listed)))).toEqual(['small', path.join('small', 'deeper')]);
      expect(listedOnThreadPool.mock.calls.map(([listed]) => path.relative(dir, String(listed)))).toEqual(['', 'large']);
    } finally {
      listedSynchronously.mockRestore();
      listedOnThreadPool.mockRestore();
    }
  });

  test('a cancel during the scan of one large folder stops it', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const scan = scanFolder('TaskLogs', crowded, controller.signal, () => controller.abort(reason));
    await expect(scan).rejects.toBe(reason);
  });

  test('links, pipes and names with a backslash are problems, not files, and the scan goes on past them', async () => {
    const dir = path.join(work, 'problems');
    write(path.join(dir, 'a.txt'), 'x');
    symlinkSync(path.join(dir, 'a.txt'), path.join(dir, 'b-link'));
    expect(spawnSync('mkfifo', [path.join(dir, 'c-pipe')]).status).toBe(0);
    write(path.join(dir, 'd\\name.txt'), 'x');
    write(path.join(dir, 'e', 'f.txt'), 'x');
    const result = await scanFolder('TaskLogs', dir);
    expect(result.files.map((f) => f.path)).toEqual(['a.txt', 'e/f.txt']);
    expect(result.directories.map((d) => d.path)).toEqual(['e']);
    expect(result.problems.map((p) => [p.path, p.kind])).toEqual([
      ['b-link', 'unsupported'],
      ['c-pipe', 'unsupported'],
      ['d\\name.txt', 'unsupported'],
    ]);
  });
});

describe('an incremental after a full', () => {
  const work = tempDir('unchanged');
  const home = path.join(work, 'home');
  const out = path.join(work, 'out');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const fullTaken = new Date('2026-11-01T00:00:00Z');
  let fullManifest: Awaited<ReturnType<typeof backup>>['manifest'];

  beforeAll(async () => {
    makeStore(home);
    mkdirSync(out);
    fullManifest = (await backup(home, out, 'Full', fullTaken)).manifest;
  });

  test('of an unchanged store stores nothing and lists every record as the full did, in the same order', async () => {
    const quiet = await backup(home, out, 'Incremental', new Date('2026-11-02T00:00:00Z'));
    expect(quiet.manifest.totals.storedFiles).toBe(0);
    expect(quiet.manifest.files).toEqual(fullManifest.files);
    // Both copies of the manifest are the same bytes.
    const archive = await openArchive(quiet.archivePath);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await archive.openEntry(archive.entries.get(MANIFEST_ENTRY_NAME)!)) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(readFileSync(quiet.manifestPath))).toBe(true);
    } finally {
      archive.close();
    }
    rmSync(quiet.archivePath);
    rmSync(quiet.manifestPath);
  });

  test('finds a same-size rewrite, a same-size rewrite that kept its mtime near the previous set, a new mode and a new file', async () => {
    const previousTaken = new Date('2026-11-03T00:00:00Z');
    const rewritten = path.join(home, 'TaskLogs', 'servertasks-7.log.txt');
    const sneaky = path.join(home, 'TaskLogs', 'servertasks-8.log.txt');
    const chmodded = path.join(home, 'Artifacts', 'Spaces-1', 'deploy.sh');
    // The file was last written 1 s before the previous set: within the racy window.
    const nearPrevious = new Date(previousTaken.getTime() - 1000);
    utimesSync(sneaky, nearPrevious, nearPrevious);
    const base = await backup(home, out, 'Incremental', previousTaken);
    const sneakyRecord = base.manifest.files.find((f) => f.path === 'servertasks-8.log.txt')!;

    // Same length, other bytes; one with a new mtime, one with its old mtime put back.
    const flip = (file: string) => {
      const text = readFileSync(file, 'utf8');
      writeFileSync(file, text.slice(0, -2) + (text.endsWith('X\n') ? 'Y\n' : 'X\n'));
    };
    flip(rewritten);
    flip(sneaky);
    utimesSync(sneaky, nearPrevious, nearPrevious);
    chmodSync(chmodded, 0o700);
    write(path.join(home, 'Packages', 'feeds-builtin', 'Acme.New.1.0.0.nupkg'), 'new');

    const next = await backup(home, out, 'Incremental', new Date('2026-11-04T00:00:00Z'));
    const storedHere = next.manifest.files.filter((f) => f.archive === next.manifest.archive).map((f) => `${f.folder}/${f.path}`);
    expect(storedHere.sort()).toEqual(['Packages/feeds-builtin/Acme.New.1.0.0.nupkg', 'TaskLogs/servertasks-7.log.txt', 'TaskLogs/servertasks-8.log.txt']);
    const sneakyNow = next.manifest.files.find((f) => f.path === 'servertasks-8.log.txt')!;
    expect(sneakyNow.mtimeMs).toBe(sneakyRecord.mtimeMs);
    expect(sneakyNow.sha256).not.toBe(sneakyRecord.sha256);
    // A new mode alone is no new content: the bytes are reused, the record has the new mode.
    const deploy = next.manifest.files.find((f) => f.path === 'Spaces-1/deploy.sh')!;
    expect(deploy.archive).not.toBe(next.manifest.archive);
    expect(deploy.mode).toBe(0o700);
    expect(base.manifest.files.find((f) => f.path === 'Spaces-1/deploy.sh')!.mode).toBe(0o755);
  });
});

describe('the set an incremental builds on', () => {
  const work = tempDir('newest');
  const home = path.join(work, 'home');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  beforeAll(() => makeStore(home));
  const day = (n: number) => new Date(Date.UTC(2026, 10, n));

  async function directoryWithSets(name: string, count: number) {
    const out = path.join(work, name);
    mkdirSync(out);
    const sets = [await backup(home, out, 'Full', day(1))];
    for (let n = 2; n <= count; n++) sets.push(await backup(home, out, 'Incremental', day(n)));
    return { out, sets };
  }

  test('is the newest set, found by reading its manifest alone', async () => {
    const { out, sets } = await directoryWithSets('many', 4);
    const wholeReads = spyOnWholeReads();
    try {
      const next = await backup(home, out, 'Incremental', day(10));
      expect(next.manifest.basedOn).toBe(sets[3].manifest.archive);
      expect(wholeReads.paths().filter((file) => file.endsWith('.manifest.json'))).toEqual([sets[3].manifestPath]);
    } finally {
      wholeReads.restore();
    }
  });

  test('passes over a newer set whose archives are not all there, or whose manifest cannot be read', async () => {
    const { out, sets } = await directoryWithSets('broken', 4);
    rmSync(sets[3].archivePath);
    writeFileSync(sets[2].manifestPath, '{ not json');
    const next = await backup(home, out, 'Incremental', day(10));
    expect(next.manifest.basedOn).toBe(sets[1].manifest.archive);
    expect(next.manifest.chain).toEqual([sets[0].manifest.archive, next.manifest.archive]);
  });

  test('goes by creation time, as listing every set does, when a manifest says another time than its name', async () => {
    const { out, sets } = await directoryWithSets('edited', 3);
    // The newest set by name claims to be older than the one before it.
    const edited = JSON.parse(readFileSync(sets[2].manifestPath, 'utf8'));
    edited.createdAt = new Date(day(1).getTime() + 60_000).toISOString();
    writeFileSync(sets[2].manifestPath, JSON.stringify(edited));
    const next = await backup(home, out, 'Incremental', day(10));
    expect(next.manifest.basedOn).toBe(sets[1].manifest.archive);
  });
});

describe('a folder of more files than a function takes arguments', () => {
  const work = tempDir('crowded');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  // Spreading the scan's lists into push() overflowed the stack past ~120,000 entries.
  test('150,000 task logs are scanned and planned; the backup gets to writing them', async () => {
    const logs = path.join(work, 'TaskLogs');
    mkdirSync(logs);
    for (let i = 0; i < 150_000; i++) writeFileSync(path.join(logs, `servertasks-${i}.log.txt`), '');
    const controller = new AbortController();
    const reachedWriting = new Error('reached the write phase');
    const run = backupFileStore(
      {
        folders: [{ name: 'TaskLogs', path: logs, origin: 'home' }],
        backupDirectory: path.join(work, 'out'),
        mode: 'Full',
        skipUnreadable: false,
        toolVersion: 'test',
        onProgress: (progress) => {
          expect(progress.filesTotal).toBe(150_000);
          controller.abort(reachedWriting);
        },
      },
      quietEngineContext({ log: silentLog, signal: controller.signal }),
    );
    await expect(run).rejects.toBe(reachedWriting);
  }, 120_000);
});
