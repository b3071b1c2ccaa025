// An unchanged incremental writes its manifest as its own header followed by the previous set's
// file list, byte for byte (manifest.ts, encodeManifestAfter); only where those bytes cannot say
// anything but this set's records. Otherwise, and in every other backup, it is encoded whole.
// Tests that edit the previous manifest record the edit in its archive's comment, as an archive
// written with those bytes would have it: an edit that is not recorded is compared record by record
// with the manifest inside the archive, and one that changes what they say is passed over
// (incremental-passes-over), before these bytes would be reused.
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { encodeManifest, encodeManifestAfter, MANIFEST_ENTRY_NAME, readManifestFile, readManifestFileWithBytes, type BackupSet, type FileStoreManifest } from '../../steps/engines/file-store/manifest';
import { openArchive } from '../../steps/engines/file-store/zip-reader';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { recordManifestBesideInComment, silentLog, tempDir, write } from './helpers';

const work = tempDir('manifest-reuse');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const day = (d: number) => new Date(Date.UTC(2026, 10, d, 8));
let seq = 0;

function backUp(home: string, out: string, mode: 'Full' | 'Incremental', d: number) {
  return backupFileStore(
    { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }, { name: 'Artifacts', path: path.join(home, 'Artifacts'), origin: 'home' }], backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => day(d) },
    quietEngineContext({ log: silentLog }),
  );
}

/** A store and its full set; returns the folders and the full's manifest path. */
async function storeWithFull() {
  const home = path.join(work, `home-${++seq}`);
  const out = path.join(work, `out-${seq}`);
  for (let i = 0; i < 30; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`.repeat(20 + i), undefined, day(1));
  write(path.join(home, 'Artifacts', 'ServerTasks-1', 'Rapport d’exécution – ü 漢字.txt'), 'x', undefined, day(1));
  const full = await backUp(home, out, 'Full', 2);
  return { home, out, full };
}

async function archivedManifestBytes(archivePath: string): Promise<Buffer> {
  const archive = await openArchive(archivePath);
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await archive.openEntry(archive.entries.get(MANIFEST_ENTRY_NAME)!)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await archive.close();
  }
}

/** The manifest beside the archive and the one inside: the same bytes; and what they say. */
async function writtenManifest(result: { manifestPath: string; archivePath: string }): Promise<{ bytes: Buffer; parsed: FileStoreManifest }> {
  const bytes = readFileSync(result.manifestPath);
  expect((await archivedManifestBytes(result.archivePath)).equals(bytes)).toBe(true);
  return { bytes, parsed: await readManifestFile(result.manifestPath) };
}

test('an unchanged incremental: the same bytes a whole encoding gives, and its list is the previous set\'s', async () => {
  const { home, out, full } = await storeWithFull();
  const incremental = await backUp(home, out, 'Incremental', 3);
  const { bytes, parsed } = await writtenManifest(incremental);
  expect(bytes.equals(encodeManifest(incremental.manifest))).toBe(true);
  expect(parsed).toEqual(incremental.manifest);
  const fullBytes = readFileSync(full.manifestPath);
  const list = (b: Buffer) => b.subarray(b.indexOf('\n "files": ['));
  expect(list(bytes).equals(list(fullBytes))).toBe(true);
});

test('the previous list is reused as its file holds it: records laid out otherwise are carried over, and read the same', async () => {
  const { home, out, full } = await storeWithFull();
  // The same values, each record's fields indented further: only a reuse can carry this layout over.
  const text = readFileSync(full.manifestPath, 'utf8');
  const at = text.indexOf('\n "files": [');
  writeFileSync(full.manifestPath, text.slice(0, at) + text.slice(at).replace(/\n {3}"/g, '\n      "'));
  recordManifestBesideInComment(full.archivePath, full.manifestPath);
  const incremental = await backUp(home, out, 'Incremental', 3);
  const { bytes, parsed } = await writtenManifest(incremental);
  expect(bytes.toString('utf8')).toContain('\n      "folder": "TaskLogs"');
  expect(parsed).toEqual(incremental.manifest);
  expect(parsed.chain).toEqual([full.manifest.archive, incremental.manifest.archive]);
  expect(parsed.basedOn).toBe(full.manifest.archive);
});

describe('encoded whole instead, and right, when the previous bytes could say something else', () => {
  const edits: [string, (text: string) => string][] = [
    // Naming an older set that is there, so that the set stays complete and the incremental builds on it.
    ['a "chain" set again after the file list', (text) => text.replace(/\n}\s*$/, `,\n "chain": [${JSON.stringify(olderFull)}, ${JSON.stringify(JSON.parse(text).archive)}]\n}`)],
    // Found by a field check: the same value passed the header comparison, and the next set's
    // manifest then read as the previous set's chain (its own archive left out).
    ['a "chain" set again after the file list, to the value its header has', (text) => text.replace(/\n}\s*$/, `,\n "chain": ${JSON.stringify(JSON.parse(text).chain)}\n}`)],
    ['a "chain" after the files, inside the list\'s own lines', (text) => text.replace('\n ],\n "directories": [', `\n ], "chain": ${JSON.stringify(JSON.parse(text).chain)},\n "directories": [`)],
    ['a top-level key after the lists that this tool does not write', (text) => text.replace(/\n}\s*$/, ',\n "note": "edited"\n}')],
    ['a "mode" moved after the file list (the header before the list is not whole)', (text) => text.replace('\n "mode": "Full",', '').replace(/\n}\s*$/, ',\n "mode": "Full"\n}')],
  ];
  let olderFull = '';
  test.each(edits)('%s', async (_label, edit) => {
    const { home, out, full: older } = await storeWithFull();
    olderFull = older.manifest.archive;
    const full = await backUp(home, out, 'Full', 3);
    writeFileSync(full.manifestPath, edit(readFileSync(full.manifestPath, 'utf8')));
    recordManifestBesideInComment(full.archivePath, full.manifestPath);
    const incremental = await backUp(home, out, 'Incremental', 4);
    const { bytes, parsed } = await writtenManifest(incremental);
    expect(bytes.equals(encodeManifest(incremental.manifest))).toBe(true);
    expect(parsed).toEqual(incremental.manifest);
    expect(parsed.chain).toEqual([full.manifest.archive, incremental.manifest.archive]);
    expect(incremental.manifest.basedOn).toBe(full.manifest.archive);
    expect(bytes.toString('utf8')).not.toMatch(new RegExp(`edited|${older.manifest.archive}`));
  });

  test.each([
    ['a file changed (stored again)', (home: string) => write(path.join(home, 'TaskLogs', 'servertasks-3.log.txt'), 'changed\n', undefined, day(3))],
    ['a file added', (home: string) => write(path.join(home, 'TaskLogs', 'servertasks-new.log.txt'), 'new\n', undefined, day(3))],
    ['a file deleted', (home: string) => rmSync(path.join(home, 'TaskLogs', 'servertasks-4.log.txt'))],
    ['only a mode changed (the record changes, nothing is stored)', (home: string) => chmodSync(path.join(home, 'TaskLogs', 'servertasks-5.log.txt'), 0o600)],
  ])('%s', async (_label, change) => {
    const { home, out } = await storeWithFull();
    change(home);
    const incremental = await backUp(home, out, 'Incremental', 3);
    const { bytes, parsed } = await writtenManifest(incremental);
    expect(bytes.equals(encodeManifest(incremental.manifest))).toBe(true);
    expect(parsed).toEqual(incremental.manifest);
  });
});

describe('where the header goes: in the room read in front of the list, or joined by a copy', () => {
  async function previousSet() {
    const { home, out, full } = await storeWithFull();
    const incremental = await backUp(home, out, 'Incremental', 3);
    const read = await readManifestFileWithBytes(full.manifestPath);
    const previous: BackupSet = { directory: out, manifestPath: full.manifestPath, archivePath: full.archivePath, manifest: read.manifest, manifestBytes: read.bytes };
    // This set's records are the previous set's objects, as an unchanged incremental makes them.
    const manifest = { ...incremental.manifest, files: read.manifest.files };
    return { previous, manifest, bytes: read.bytes };
  }

  test('in the room: no copy of the list, the same bytes a whole encoding gives; the previous bytes are not offered again', async () => {
    const { previous, manifest, bytes } = await previousSet();
    const written = encodeManifestAfter(manifest, previous);
    expect(written.equals(encodeManifest(manifest))).toBe(true);
    expect(written.buffer).toBe(bytes.buffer);
    expect(previous.manifestBytes).toBeUndefined();
    expect(encodeManifestAfter(manifest, previous).equals(written)).toBe(true);
  });

  test('a header longer than the room (64 KiB): joined by a copy, the previous bytes left as they were', async () => {
    const { previous, manifest, bytes } = await previousSet();
    const before = Buffer.from(bytes);
    const long = { ...manifest, warnings: ['w'.repeat(70 * 1024)] };
    const written = encodeManifestAfter(long, previous);
    expect(written.equals(encodeManifest(long))).toBe(true);
    expect(written.buffer).not.toBe(bytes.buffer);
    expect(bytes.equals(before)).toBe(true);
  });

  test('bytes read without room in front: joined by a copy, never written in front of them', async () => {
    const { previous, manifest } = await previousSet();
    const plain = readFileSync(previous.manifestPath);
    const before = Buffer.from(plain);
    const written = encodeManifestAfter(manifest, { ...previous, manifestBytes: plain });
    expect(written.equals(encodeManifest(manifest))).toBe(true);
    expect(plain.equals(before)).toBe(true);
  });
});
