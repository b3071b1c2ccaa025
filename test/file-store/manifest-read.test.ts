// Reading and writing a manifest (issue 16: every incremental reads the previous set's and writes
// its own): ASCII text is decoded as Latin-1, anything else as UTF-8; every record is still
// checked in one pass over each list; the bytes written are exactly the UTF-8 of the JSON text.
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeManifest, MANIFEST_FORMAT, parseManifest, readManifestFile, textOf, type FileStoreManifest } from '../../steps/engines/file-store/manifest';
import { tempDir } from './helpers';

const ARCHIVE = 'octopus-file-store-20260301T100000Z-abcdef-full.zip';
const work = tempDir('manifest-read');
afterAll(() => rmSync(work, { recursive: true, force: true }));

function manifest(paths: string[]): FileStoreManifest {
  return {
    format: MANIFEST_FORMAT,
    formatVersion: 1,
    archive: ARCHIVE,
    mode: 'Full',
    createdAt: '2026-03-01T10:00:00.000Z',
    toolVersion: 'test',
    host: 'host',
    platform: 'linux',
    chain: [ARCHIVE],
    folders: [{ name: 'TaskLogs', source: '/store/TaskLogs', files: paths.length, bytes: paths.length }],
    totals: { files: paths.length, bytes: paths.length, directories: 1, storedFiles: paths.length, storedBytes: paths.length },
    warnings: [],
    skipped: [],
    files: paths.map((p) => ({ folder: 'TaskLogs', path: p, size: 1, mtimeMs: 1.5, mode: 0o644, sha256: 'a'.repeat(64), archive: ARCHIVE })),
    directories: [{ folder: 'TaskLogs', path: 'sub', mtimeMs: 2.5, mode: 0o755 }],
  };
}

describe('textOf', () => {
  test.each([
    ['ASCII', 'servertasks-1.log.txt {"a":1}'],
    ['Latin-1 letters', 'Bücher/Straße.txt'],
    ['other scripts and emoji', 'タスク/日志-😀.txt'],
    ['empty', ''],
  ])('%s: the same text as UTF-8 decoding', (_name, text) => {
    const bytes = Buffer.from(text, 'utf8');
    expect(textOf(bytes)).toBe(text);
    expect(textOf(bytes)).toBe(bytes.toString('utf8'));
  });

  test('bytes that are not ASCII are never read as Latin-1', () => {
    // 0xC3 0xA9 is "é" in UTF-8; read as Latin-1 it would be "Ã©".
    expect(textOf(Buffer.from([0x61, 0xc3, 0xa9]))).toBe('aé');
  });
});

describe('readManifestFile', () => {
  test.each([
    ['ASCII paths', ['servertasks-1.log.txt', 'a/b c.txt']],
    ['non-ASCII paths', ['Bücher/Straße.txt', 'タスク/日志-😀.txt']],
    // Over 1 MiB of text: Node decodes Latin-1 of that size into a string outside V8's heap.
    ['7,000 ASCII paths', Array.from({ length: 7000 }, (_, i) => `servertasks-${i}.log.txt`)],
  ])('%s read back exactly as written', async (_name, paths) => {
    const file = path.join(work, `${paths.length}-${paths[0].length}.manifest.json`);
    const written = manifest(paths);
    writeFileSync(file, JSON.stringify(written, null, 1));
    if (paths.length > 1000) expect(Buffer.byteLength(JSON.stringify(written, null, 1))).toBeGreaterThan(1024 * 1024);
    expect(await readManifestFile(file)).toEqual(written);
  });
});

describe('parseManifest still checks every record', () => {
  const edited = (edit: (m: FileStoreManifest) => void) => {
    const m = manifest(['a.txt', 'b.txt']);
    edit(m);
    return () => parseManifest(JSON.stringify(m), 'edited.manifest.json');
  };

  test('a sound manifest passes', () => {
    expect(edited(() => undefined)().files).toHaveLength(2);
  });
  test('a file record in an unknown folder', () => {
    expect(edited((m) => void ((m.files[1] as { folder: string }).folder = '../../escape'))).toThrow('edited.manifest.json has a record in an unknown folder "../../escape".');
  });
  test('a directory record in an unknown folder', () => {
    expect(edited((m) => void ((m.directories[0] as { folder: string }).folder = 'Cache'))).toThrow('edited.manifest.json has a record in an unknown folder "Cache".');
  });
  test('a SHA-256 that is not 64 hex digits', () => {
    expect(edited((m) => void (m.files[1].sha256 = 'A'.repeat(64)))).toThrow('edited.manifest.json has an invalid file record ("b.txt").');
    expect(edited((m) => void (m.files[1].sha256 = `${'a'.repeat(64)}\n`))).toThrow('invalid file record ("b.txt")');
  });
  test('a file in an archive the chain does not name', () => {
    expect(edited((m) => void (m.files[0].archive = 'octopus-file-store-20260201T100000Z-abcdef-full.zip'))).toThrow('invalid file record ("a.txt")');
  });
  test('a size that is not a safe integer', () => {
    expect(edited((m) => void (m.files[0].size = 2 ** 53))).toThrow('invalid file record ("a.txt")');
  });
});

describe('encodeManifest', () => {
  test.each([
    ['ASCII', ['servertasks-1.log.txt']],
    ['Latin-1 letters', ['Bücher/Straße.txt']],
    ['other scripts, emoji and a lone surrogate', ['タスク/日志-😀.txt', 'half-\ud83d.txt']],
  ])('%s: the UTF-8 of the JSON text, read back as it was', (_name, paths) => {
    const written = manifest(paths);
    const bytes = encodeManifest(written);
    expect(bytes.equals(Buffer.from(JSON.stringify(written, null, 1), 'utf8'))).toBe(true);
    expect(parseManifest(textOf(bytes), 'encoded')).toEqual(written);
  });
});
