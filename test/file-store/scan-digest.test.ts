// An unchanged incremental that never reads the previous set's lists (issue 16): the previous
// manifest's scanDigest equals the scan's, no file was modified around the previous set, and the
// new set's lists are the previous bytes. Each test checks the set against what reading the lists
// would have made, and that every change, however small, still makes them read.
import { chmodSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore, verifyFileStoreBackup, type FileStoreManifest } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { encodeManifest, parseManifestBytes, parseManifestBytesListsOnDemand, scanDigestOf } from '../../steps/engines/file-store/manifest';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { makeStore, recordManifestBesideInComment, silentLog, tempDir } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));

function backup(home: string, out: string, mode: 'Full' | 'Incremental', now: Date) {
  return backupFileStore({ folders: at(home), backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => now }, quietEngineContext({ log: silentLog }));
}

/** The backup took the shortcut: its manifest's lists were never parsed (they are parsed when first read). */
const listsUnread = (manifest: FileStoreManifest) => Object.getOwnPropertyDescriptor(manifest, 'files')?.get !== undefined;
const LIST_START = '\n "files": [';
const listBytes = (bytes: Buffer) => bytes.subarray(bytes.indexOf(LIST_START));
const readManifest = (file: string): FileStoreManifest => JSON.parse(readFileSync(file, 'utf8'));
/** The archives a set's records name, and its own: what its chain must be. */
const usedChain = (m: FileStoreManifest) => m.chain.filter((a) => a === m.archive || m.files.some((f) => f.archive === a));
const day = (n: number) => new Date(Date.UTC(2026, 10, n));

async function expectVerified(manifestPath: string, files: number): Promise<void> {
  const verified = await verifyFileStoreBackup(manifestPath);
  expect(verified.files).toBe(files);
}

describe('an unchanged incremental that does not read the lists', () => {
  const work = tempDir('scan-digest');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('writes the previous lists byte for byte, with the header the lists read would give, and the set verifies', async () => {
    const home = path.join(work, 'same');
    const out = path.join(work, 'same-out');
    makeStore(home);
    const full = await backup(home, out, 'Full', day(1));
    expect(full.manifest.scanDigest).toBe(scanDigestOf(full.manifest.files, full.manifest.directories));

    const quiet = await backup(home, out, 'Incremental', day(2));
    expect(listsUnread(quiet.manifest)).toBe(true);
    const bytes = readFileSync(quiet.manifestPath);
    expect(listBytes(bytes).equals(listBytes(readFileSync(full.manifestPath)))).toBe(true);
    const written = readManifest(quiet.manifestPath);
    // Laid out as encoding it whole lays it out, and the result's lists, once read, are the file's.
    expect(encodeManifest(written).equals(bytes)).toBe(true);
    expect(quiet.manifest).toEqual(written);
    expect(written.chain).toEqual([full.manifest.archive, quiet.manifest.archive]);
    expect(written.totals).toEqual({ ...full.manifest.totals, storedFiles: 0, storedBytes: 0 });
    expect(written.scanDigest).toBe(full.manifest.scanDigest);
    await expectVerified(quiet.manifestPath, full.manifest.totals.files);

    // The same incremental from the full's manifest without its scanDigest (a set written before
    // it was recorded; the archive's comment made to match): the lists are read, and the set is
    // the same but for its name and time.
    rmSync(quiet.archivePath);
    rmSync(quiet.manifestPath);
    const { scanDigest: _dropped, ...withoutDigest } = readManifest(full.manifestPath);
    writeFileSync(full.manifestPath, encodeManifest(withoutDigest as FileStoreManifest));
    recordManifestBesideInComment(full.archivePath, full.manifestPath);
    const read = await backup(home, out, 'Incremental', day(2));
    expect(listsUnread(read.manifest)).toBe(false);
    const readWritten = readManifest(read.manifestPath);
    const apartFromName = (m: FileStoreManifest) => ({ ...m, archive: '', chain: m.chain.slice(0, -1) });
    expect(apartFromName(readWritten)).toEqual(apartFromName(written));
    expect(readWritten.scanDigest).toBe(written.scanDigest);
  });

  /** A full set on day 1, then an incremental on day 3 that stores the one task log added on day 2. */
  async function fullThenOneStored(name: string) {
    const home = path.join(work, name);
    const out = path.join(work, `${name}-out`);
    makeStore(home);
    const full = await backup(home, out, 'Full', day(1));
    writeFileSync(path.join(home, 'TaskLogs', 'servertasks-41.log.txt'), 'a new task log\n');
    utimesSync(path.join(home, 'TaskLogs', 'servertasks-41.log.txt'), day(2), day(2));
    const stored = await backup(home, out, 'Incremental', day(3));
    return { home, out, full, stored };
  }

  test('leaves out of its chain an unchanged set that stored nothing, and keeps one that stored a file', async () => {
    const { home, out, full, stored } = await fullThenOneStored('chain');
    expect(stored.manifest.totals.storedFiles).toBe(1);
    const second = await backup(home, out, 'Incremental', day(4));
    const third = await backup(home, out, 'Incremental', day(5));
    for (const quiet of [second, third]) expect(listsUnread(quiet.manifest)).toBe(true);
    const [secondWritten, thirdWritten] = [second, third].map((s) => readManifest(s.manifestPath));
    expect(secondWritten.chain).toEqual([full.manifest.archive, stored.manifest.archive, second.manifest.archive]);
    // `second` stored nothing: no record names its archive, so `third` does not need it.
    expect(thirdWritten.chain).toEqual([full.manifest.archive, stored.manifest.archive, third.manifest.archive]);
    for (const m of [secondWritten, thirdWritten]) expect(m.chain).toEqual(usedChain(m));
    rmSync(second.archivePath);
    await expectVerified(third.manifestPath, full.manifest.totals.files + 1);
  });

  test("the chain is told by the records, not by the header's totals: a set that stored a file stays in it though its totals were edited to say it stored none", async () => {
    const { home, out, full, stored } = await fullThenOneStored('totals');
    const text = readFileSync(stored.manifestPath, 'utf8');
    expect(text).toContain('"storedFiles": 1,');
    writeFileSync(stored.manifestPath, text.replace('"storedFiles": 1,', '"storedFiles": 0,'));
    recordManifestBesideInComment(stored.archivePath, stored.manifestPath);
    const quiet = await backup(home, out, 'Incremental', day(4));
    expect(listsUnread(quiet.manifest)).toBe(true);
    expect(readManifest(quiet.manifestPath).chain).toEqual([full.manifest.archive, stored.manifest.archive, quiet.manifest.archive]);
    await expectVerified(quiet.manifestPath, full.manifest.totals.files + 1);
  });

  test('a same-size rewrite whose mtime was put back, modified within the racy window of the previous set, is still hashed and stored', async () => {
    const home = path.join(work, 'racy');
    const out = path.join(work, 'racy-out');
    makeStore(home);
    const sneaky = path.join(home, 'TaskLogs', 'servertasks-8.log.txt');
    const previousTaken = day(3);
    // Written 1 s before the previous set: its mtime alone cannot tell the next backup anything.
    const nearPrevious = new Date(previousTaken.getTime() - 1000);
    utimesSync(sneaky, nearPrevious, nearPrevious);
    const base = await backup(home, out, 'Full', previousTaken);
    const text = readFileSync(sneaky, 'utf8');
    writeFileSync(sneaky, text.slice(0, -2) + (text.endsWith('X\n') ? 'Y\n' : 'X\n'));
    utimesSync(sneaky, nearPrevious, nearPrevious);
    // Every field the scan sees is as the previous set records it.
    const next = await backup(home, out, 'Incremental', day(4));
    expect(next.manifest.scanDigest).toBe(base.manifest.scanDigest);
    expect(listsUnread(next.manifest)).toBe(false);
    const record = next.manifest.files.find((f) => f.path === 'servertasks-8.log.txt')!;
    expect(record.archive).toBe(next.manifest.archive);
    expect(record.sha256).not.toBe(base.manifest.files.find((f) => f.path === 'servertasks-8.log.txt')!.sha256);
    expect(next.manifest.totals.storedFiles).toBe(1);
  });

  test('a new mode alone, a new empty folder and a deleted file each make the lists read, and the set records them', async () => {
    const home = path.join(work, 'small');
    const out = path.join(work, 'small-out');
    makeStore(home);
    let previous = await backup(home, out, 'Full', day(1));
    const changes: [string, () => void, (m: FileStoreManifest) => void][] = [
      ['mode', () => chmodSync(path.join(home, 'Artifacts', 'Spaces-1', 'deploy.sh'), 0o700), (m) => expect(m.files.find((f) => f.path === 'Spaces-1/deploy.sh')!.mode).toBe(0o700)],
      ['folder', () => mkdirSync(path.join(home, 'EventExports', 'new-empty')), (m) => expect(m.directories.map((d) => `${d.folder}/${d.path}`)).toContain('EventExports/new-empty')],
      ['deleted', () => rmSync(path.join(home, 'TaskLogs', 'servertasks-3.log.txt')), (m) => expect(m.files.map((f) => f.path)).not.toContain('servertasks-3.log.txt')],
    ];
    let n = 2;
    for (const [name, change, check] of changes) {
      change();
      const next = await backup(home, out, 'Incremental', day(n++));
      expect([name, listsUnread(next.manifest)]).toEqual([name, false]);
      expect([name, next.manifest.scanDigest]).not.toEqual([name, previous.manifest.scanDigest]);
      expect(next.manifest.scanDigest).toBe(scanDigestOf(next.manifest.files, next.manifest.directories));
      expect(next.manifest.totals.storedFiles).toBe(0);
      check(readManifest(next.manifestPath));
      previous = next;
    }
    // And once nothing changes again, the shortcut holds again.
    const quiet = await backup(home, out, 'Incremental', day(n));
    expect(listsUnread(quiet.manifest)).toBe(true);
    await expectVerified(quiet.manifestPath, previous.manifest.totals.files);
  });

  test('records that do not check under a matching comment fail a changed incremental, naming the set and what to do', async () => {
    const home = path.join(work, 'forged');
    const out = path.join(work, 'forged-out');
    makeStore(home);
    const full = await backup(home, out, 'Full', day(1));
    const edited = readManifest(full.manifestPath);
    edited.files[0].sha256 = 'not-a-hash';
    writeFileSync(full.manifestPath, encodeManifest(edited));
    recordManifestBesideInComment(full.archivePath, full.manifestPath);
    writeFileSync(path.join(home, 'TaskLogs', 'servertasks-42.log.txt'), 'new\n');
    await expect(backup(home, out, 'Incremental', day(2))).rejects.toThrow(
      new RegExp(`^The backup set ${full.manifest.archive}, the newest usable one, cannot be built on: .* has an invalid file record .*Move its archive and manifest out of `),
    );
  });
});

describe('a manifest whose lists are parsed when first read', () => {
  const work = tempDir('lists-on-demand');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  let bytes: Buffer;
  beforeAll(async () => {
    makeStore(path.join(work, 'home'));
    bytes = readFileSync((await backup(path.join(work, 'home'), path.join(work, 'out'), 'Full', day(1))).manifestPath);
  });

  test('is the manifest parseManifestBytes gives, key for key and in the same order', () => {
    const onDemand = parseManifestBytesListsOnDemand(bytes, 'm');
    expect(listsUnread(onDemand)).toBe(true);
    expect(JSON.stringify(onDemand)).toBe(JSON.stringify(parseManifestBytes(bytes, 'm')));
    // Read once, the lists are plain properties from then on.
    expect(listsUnread(onDemand)).toBe(false);
    expect(onDemand.files).toBe(onDemand.files);
  });

  test('checks its header at once and its records when they are read, each time they are read', () => {
    const text = bytes.toString('utf8');
    expect(() => parseManifestBytesListsOnDemand(Buffer.from(text.replace('"createdAt": "', '"createdAt": "not a time')), 'm')).toThrow('m has no valid creation time');
    const badRecord = parseManifestBytesListsOnDemand(Buffer.from(text.replace(/"sha256": "[0-9a-f]{64}"/, '"sha256": "zz"')), 'm');
    expect(() => badRecord.files).toThrow('m has an invalid file record');
    expect(() => badRecord.directories).toThrow('m has an invalid file record');
  });

  test('bytes in another layout are parsed whole at once', () => {
    const crlf = Buffer.from(bytes.toString('utf8').replace(/\n/g, '\r\n'));
    const parsed = parseManifestBytesListsOnDemand(crlf, 'm');
    expect(listsUnread(parsed)).toBe(false);
    expect(parsed).toEqual(JSON.parse(bytes.toString('utf8')));
  });
});

describe('scanDigestOf', () => {
  const file = { folder: 'TaskLogs' as const, path: 'a.txt', size: 10, mtimeMs: 1764547200000.123, mode: 0o644 };
  const folder = { folder: 'Artifacts' as const, path: 'x', mtimeMs: 1764547200000, mode: 0o755 };
  const digest = (files: (typeof file)[], directories: (typeof folder)[] = [folder]) => scanDigestOf(files, directories);

  test('is the same for the same records, and differs when any field of any record does', () => {
    expect(digest([file])).toBe(digest([{ ...file }]));
    const others = [
      digest([{ ...file, folder: 'Artifacts' as never }]),
      digest([{ ...file, path: 'b.txt' }]),
      digest([{ ...file, size: 11 }]),
      digest([{ ...file, mtimeMs: file.mtimeMs + 0.001 }]),
      digest([{ ...file, mode: 0o600 }]),
      digest([file], [{ ...folder, mode: 0o700 }]),
      digest([file], [{ ...folder, mtimeMs: 1 }]),
      digest([file], []),
      digest([file, file]),
      digest([]),
    ];
    expect(new Set([digest([file]), ...others]).size).toBe(others.length + 1);
  });

  test('tells apart names that UTF-8 would not (an unpaired surrogate and U+FFFD) and records that only move a name between them', () => {
    expect(digest([{ ...file, path: 'a\ud800' }])).not.toBe(digest([{ ...file, path: 'a\ufffd' }]));
    expect(digest([{ ...file, path: 'ab' }, { ...file, path: 'c' }])).not.toBe(digest([{ ...file, path: 'a' }, { ...file, path: 'bc' }]));
    // A file and a folder of the same name are not the same list.
    expect(scanDigestOf([], [{ ...folder, path: 'a.txt' }])).not.toBe(scanDigestOf([{ ...file, folder: 'Artifacts' }], []));
  });
});
