// Reading and writing a manifest (issue 16: every incremental reads the previous set's and writes
// its own): every record is still checked, in one pass over each list, and the bytes written are
// exactly the UTF-8 of the JSON text.
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeManifest, MANIFEST_FORMAT, parseManifest, parseManifestBytes, readManifestFile, type FileStoreManifest } from '../../steps/engines/file-store/manifest';
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

describe('readManifestFile', () => {
  test.each([
    ['ASCII paths', ['servertasks-1.log.txt', 'a/b c.txt']],
    ['non-ASCII paths', ['Bücher/Straße.txt', 'タスク/日志-😀.txt']],
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
    // More bytes than the first buffer holds: the rest is encoded after it.
    ['long non-ASCII names', Array.from({ length: 50 }, (_, i) => `${i}-${'日志😀é'.repeat(40)}.txt`)],
  ])('%s: the UTF-8 of the JSON text, read back as it was', (_name, paths) => {
    const written = manifest(paths);
    const bytes = encodeManifest(written);
    if (paths.length === 50) expect(bytes.length).toBeGreaterThan(JSON.stringify(written, null, 1).length * 1.5);
    expect(bytes.equals(Buffer.from(JSON.stringify(written, null, 1), 'utf8'))).toBe(true);
    expect(parseManifest(bytes.toString('utf8'), 'encoded')).toEqual(written);
  });
});

describe('encodeManifest writes the records a thousand at a time', () => {
  const withDirectories = (paths: string[], directories: number): FileStoreManifest => ({
    ...manifest(paths),
    directories: Array.from({ length: directories }, (_, i) => ({ folder: 'Artifacts' as const, path: `d-${i}/"quoted"\\`, mtimeMs: i + 0.25, mode: 0o755 })),
  });
  test.each([
    ['no files, no folders', 0, 0],
    ['one file', 1, 1],
    ['999 files', 999, 3],
    ['1,000 files', 1000, 1000],
    ['1,001 files and 1,001 folders', 1001, 1001],
    ['2,500 files', 2500, 7],
  ])('%s: the same bytes as the whole text', (_name, files, directories) => {
    const written = withDirectories(
      Array.from({ length: files }, (_, i) => (i % 97 === 5 ? `Bücher/${i}-日志😀\n\t"x"\\.txt` : `ServerTasks-${i}.log.txt`)),
      directories,
    );
    expect(encodeManifest(written).equals(Buffer.from(JSON.stringify(written, null, 1), 'utf8'))).toBe(true);
  });

  test('the whole text is never one string: no JSON.stringify call gives more than the header or a thousand records', () => {
    const written = manifest(Array.from({ length: 5000 }, (_, i) => `ServerTasks-${i}.log.txt`));
    const whole = JSON.stringify(written, null, 1).length;
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      const bytes = encodeManifest(written);
      expect(bytes.length).toBe(whole);
      const longest = Math.max(...stringify.mock.results.map((r) => (typeof r.value === 'string' ? r.value.length : 0)));
      expect(stringify.mock.calls.length).toBeGreaterThan(5);
      expect(longest).toBeLessThan(whole / 4);
    } finally {
      stringify.mockRestore();
    }
  });

  test('a manifest with a key after its lists, or a list missing (not written by this tool), is encoded whole, the same bytes', () => {
    const odd = { ...manifest(['a.txt', 'b.txt']), note: 'after the lists' } as FileStoreManifest;
    const noFolders = { ...manifest(['a.txt']), directories: undefined } as unknown as FileStoreManifest;
    for (const m of [odd, noFolders]) expect(encodeManifest(m).equals(Buffer.from(JSON.stringify(m, null, 1), 'utf8'))).toBe(true);
  });
});

describe('parseManifestBytes reads the file list ~64 KB at a time', () => {
  const named = (count: number) =>
    manifest(Array.from({ length: count }, (_, i) => (i % 89 === 3 ? `Bücher/${i}-日志😀\n\t"x"\\},\n  {\n.txt` : `ServerTasks-${i}.log.txt`)));
  /** JSON.parse's inputs while `run` runs. */
  function parsedTexts(run: () => unknown): string[] {
    const parse = jest.spyOn(JSON, 'parse');
    try {
      run();
      return parse.mock.calls.map((call) => String(call[0]));
    } finally {
      parse.mockRestore();
    }
  }

  test.each([0, 1, 229, 230, 231, 5000])('%i files: the value JSON.parse gives for the whole text', (count) => {
    const bytes = encodeManifest(named(count));
    expect(parseManifestBytes(bytes, 'm')).toEqual(JSON.parse(bytes.toString('utf8')));
  });

  test('5,000 files are parsed in pieces, none of them near the whole text', () => {
    const bytes = encodeManifest(named(5000));
    const texts = parsedTexts(() => parseManifestBytes(bytes, 'm'));
    expect(texts.length).toBeGreaterThan(10);
    expect(Math.max(...texts.map((t) => t.length))).toBeLessThan(100 * 1024);
  });

  test('a record holding a nested object (an edited manifest): the value JSON.parse gives', () => {
    const edited = named(3000) as unknown as { files: Record<string, unknown>[] };
    // A nested object with its own closing braces and commas on lines indented like the records'.
    const text = JSON.stringify(edited, null, 1).replace('"path": "ServerTasks-600.log.txt"', '"path": "ServerTasks-600.log.txt",\n   "x": {"a": {\n  },\n  "b": {\n}}');
    const bytes = Buffer.from(text, 'utf8');
    expect(parseManifestBytes(bytes, 'm')).toEqual(JSON.parse(text));
  });

  test('keys set twice, a "files" key in the header, keys after the lists: the value JSON.parse gives', () => {
    const base = JSON.stringify(named(600), null, 1);
    const variants = [
      base.replace('\n "mode": "Full",', '\n "mode": "Full",\n "mode": "Incremental",'),
      base.replace('\n "host": "host",', '\n "files": [],\n "host": "host",'),
      base.replace(/\n\}$/, ',\n "chain": []\n}'),
    ];
    for (const text of variants) {
      const bytes = Buffer.from(text, 'utf8');
      let whole: unknown;
      try {
        whole = parseManifest(text, 'm');
      } catch (error) {
        expect(() => parseManifestBytes(bytes, 'm')).toThrow((error as Error).message);
        continue;
      }
      expect(parseManifestBytes(bytes, 'm')).toEqual(whole);
    }
  });

  test('bytes that are not JSON fail as parseManifest fails them', () => {
    const bytes = encodeManifest(named(600));
    const cut = bytes.subarray(0, bytes.length - 200);
    expect(() => parseManifestBytes(cut, 'cut.manifest.json')).toThrow(/^cut\.manifest\.json is not valid JSON/);
  });
});
