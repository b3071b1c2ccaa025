// A large buffer (the manifest entry) is deflated in pieces side by side (zip-writer.ts,
// deflateRawInPieces): joined, they must be one raw deflate stream that zlib, Python and Info-ZIP
// read back to the same bytes, in an archive whose manifest is that large.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { backupFileStore } from '../../steps/engines/file-store';
import { MANIFEST_ENTRY_NAME } from '../../steps/engines/file-store/manifest';
import { DEFLATE_MEM_LEVEL, deflateAhead, type DeflatedAhead, deflateRawInPieces, StreamingZipWriter } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { logText, pseudoRandomBytes, silentLog, tempDir, write } from './helpers';

const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

function piecesOf(data: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => deflateRawInPieces(data, { level: 1 }, (error, pieces) => (error ? reject(error) : resolve(pieces))));
}

/** Python's zlib, a second implementation, inflating raw deflate (wbits -15). */
function pythonInflate(compressed: Buffer): Buffer {
  const run = spawnSync('python3', ['-c', 'import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))'], { input: compressed, maxBuffer: 64 * 1024 * 1024 });
  expect(run.status).toBe(0);
  return run.stdout;
}

test.each([
  ['5 MiB of task-log text', () => Buffer.from(logText(60_000, 7)).subarray(0, 5 * 1024 * 1024)],
  ['2 MiB + 1 byte that do not compress', () => pseudoRandomBytes(2 * 1024 * 1024 + 1, 3)],
  ['7 MiB + 3 bytes of log text (four uneven pieces)', () => Buffer.from(logText(90_000, 11)).subarray(0, 7 * 1024 * 1024 + 3)],
  ['0.5 MiB of log text (one piece)', () => Buffer.from(logText(10_000, 5)).subarray(0, 512 * 1024)],
])('%s: every piece but the last ends in a sync flush, and the pieces joined inflate to the same bytes', async (_name, make) => {
  const data = make();
  const pieces = await piecesOf(data);
  expect(pieces.length).toBe(Math.max(1, Math.min(4, Math.floor(data.length / (1024 * 1024)))));
  for (const piece of pieces.slice(0, -1)) expect(piece.subarray(-4)).toEqual(SYNC_FLUSH_MARKER);
  const joined = Buffer.concat(pieces);
  expect(inflateRawSync(joined).equals(data)).toBe(true);
  expect(pythonInflate(joined).equals(data)).toBe(true);
});

test('a manifest over 2 MiB, deflated in pieces, is read back by unzip -t and Python, and equals the one beside the archive', async () => {
  const work = tempDir('deflate-pieces');
  try {
    const home = path.join(work, 'home');
    // ~9,000 files: a manifest of ~2.6 MB.
    for (let i = 0; i < 9000; i++) write(path.join(home, 'TaskLogs', `dir-${i % 30}`, `servertasks-${i}.log.txt`), `log ${i}\n`);
    const out = path.join(work, 'out');
    const result = await backupFileStore(
      { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' },
      quietEngineContext({ log: silentLog }),
    );
    const beside = readFileSync(result.manifestPath);
    expect(beside.length).toBeGreaterThan(2 * 1024 * 1024);

    const unzip = spawnSync('unzip', ['-tq', result.archivePath], { encoding: 'utf8' });
    expect(unzip.stdout + unzip.stderr).toContain('No errors detected');
    const python = spawnSync('python3', ['-c', 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))', result.archivePath, MANIFEST_ENTRY_NAME], {
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(python.status).toBe(0);
    expect(python.stdout.equals(beside)).toBe(true);
    // Deflated in pieces: not the size one deflate stream of it has (the pieces' sync flushes and
    // lost history make it differ).
    const stored = spawnSync('python3', ['-c', 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2]).compress_size)', result.archivePath, MANIFEST_ENTRY_NAME], { encoding: 'utf8' });
    expect(Number(stored.stdout)).not.toBe(deflateRawSync(beside, { level: 1 }).length);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

/** An entry's compressed bytes as the archive holds them (Python's zipfile finds where they are). */
function compressedEntry(archivePath: string, name: string): Buffer {
  const script =
    'import sys, struct, zipfile\n' +
    'info = zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2])\n' +
    'f = open(sys.argv[1], "rb"); f.seek(info.header_offset); local = f.read(30)\n' +
    'name_length, extra_length = struct.unpack("<HH", local[26:30])\n' +
    'f.seek(info.header_offset + 30 + name_length + extra_length); sys.stdout.buffer.write(f.read(info.compress_size))\n';
  const run = spawnSync('python3', ['-c', script, archivePath, name], { maxBuffer: 64 * 1024 * 1024 });
  expect(run.status).toBe(0);
  return run.stdout;
}

function pythonRead(archivePath: string, name: string): Buffer {
  const run = spawnSync('python3', ['-c', 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))', archivePath, name], { maxBuffer: 64 * 1024 * 1024 });
  expect(run.status).toBe(0);
  return run.stdout;
}

describe('a tail deflated ahead (deflateAhead): used only for the very bytes it was started on', () => {
  const work = tempDir('deflate-ahead');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  let seq = 0;

  /** `head` then `tail` in one buffer, as encodeManifestAfter lays a header in front of the previous list. */
  function headThenTail(head: string, tailBytes: Buffer): { whole: Buffer; tail: Buffer } {
    const whole = Buffer.concat([Buffer.from(head), tailBytes]);
    return { whole, tail: whole.subarray(whole.length - tailBytes.length) };
  }

  async function archiveWith(data: Buffer, ahead: DeflatedAhead | undefined, level = 1): Promise<string> {
    const file = path.join(work, `ahead-${++seq}.zip`);
    const writer = new StreamingZipWriter(file, { threads: false });
    writer.addBuffer('manifest.json', data, { mtimeMs: Date.UTC(2026, 11, 4), mode: 0o644 }, level, { inPieces: true, ahead });
    await writer.finish();
    return file;
  }

  const headerSyncFlushed = (head: Buffer, level = 1) => deflateRawSync(head, { level, memLevel: DEFLATE_MEM_LEVEL, finishFlush: constants.Z_SYNC_FLUSH });

  test('the buffer ends with the tail: its head deflated and sync-flushed, then the tail deflated ahead; read back by Python, unzip -t and Node', async () => {
    const { whole, tail } = headThenTail('{\n "format": "octopus-dr-file-store/1",\n "archive": "x.zip",', Buffer.from(logText(40_000, 3)).subarray(0, 2_500_000));
    const ahead = deflateAhead(tail, 1);
    const file = await archiveWith(whole, ahead);
    const compressed = compressedEntry(file, 'manifest.json');
    const head = whole.subarray(0, whole.length - tail.length);
    expect(compressed.equals(Buffer.concat([headerSyncFlushed(head), (await ahead.deflated)!]))).toBe(true);
    expect(inflateRawSync(compressed).equals(whole)).toBe(true);
    expect(pythonRead(file, 'manifest.json').equals(whole)).toBe(true);
    const unzip = spawnSync('unzip', ['-tq', file], { encoding: 'utf8' });
    expect(unzip.stdout + unzip.stderr).toContain('No errors detected');
  });

  test.each([
    ['equal bytes in other memory (a copy)', (whole: Buffer, tail: Buffer) => ({ data: Buffer.from(whole), ahead: deflateAhead(tail, 1), level: 1 })],
    ['the tail followed by more bytes', (whole: Buffer, tail: Buffer) => ({ data: Buffer.concat([whole, Buffer.from(' ')]), ahead: deflateAhead(tail, 1), level: 1 })],
    ['another compression level', (whole: Buffer, tail: Buffer) => ({ data: whole, ahead: deflateAhead(tail, 1), level: 6 })],
    ['a deflate ahead that failed', (whole: Buffer, tail: Buffer) => ({ data: whole, ahead: { tail, level: 1, deflated: Promise.resolve(undefined) }, level: 1 })],
  ])('%s: the buffer is deflated whole instead, and reads back the same', async (_name, make) => {
    const { whole, tail } = headThenTail('{"header": 1,', Buffer.from(logText(3_000, 5)));
    const { data, ahead, level } = make(whole, tail);
    const file = await archiveWith(data, ahead, level);
    const compressed = compressedEntry(file, 'manifest.json');
    expect(compressed.equals(Buffer.concat(await new Promise<Buffer[]>((resolve, reject) => deflateRawInPieces(data, { level }, (e, p) => (e ? reject(e) : resolve(p))))))).toBe(true);
    expect(pythonRead(file, 'manifest.json').equals(data)).toBe(true);
  });

  test('an unchanged incremental: the previous list was deflated during the scan, and only the new header at the end; a changed one deflates its manifest whole', async () => {
    const home = path.join(work, 'home');
    const out = path.join(work, 'out');
    const when = new Date(Date.UTC(2026, 10, 1));
    for (let i = 0; i < 3000; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`, undefined, when);
    const backUp = (mode: 'Full' | 'Incremental', day: number) =>
      backupFileStore(
        { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(Date.UTC(2026, 10, day)) },
        quietEngineContext({ log: silentLog }),
      );
    await backUp('Full', 2);
    const unchanged = await backUp('Incremental', 3);
    const beside = readFileSync(unchanged.manifestPath);
    const listAt = beside.indexOf('\n "files": [');
    const compressed = compressedEntry(unchanged.archivePath, MANIFEST_ENTRY_NAME);
    const headPiece = headerSyncFlushed(beside.subarray(0, listAt));
    expect(compressed.subarray(0, headPiece.length).equals(headPiece)).toBe(true);
    expect(inflateRawSync(compressed).equals(beside)).toBe(true);
    expect(pythonRead(unchanged.archivePath, MANIFEST_ENTRY_NAME).equals(beside)).toBe(true);

    write(path.join(home, 'TaskLogs', 'servertasks-new.log.txt'), 'new\n', undefined, when);
    const changed = await backUp('Incremental', 4);
    const changedBeside = readFileSync(changed.manifestPath);
    const changedCompressed = compressedEntry(changed.archivePath, MANIFEST_ENTRY_NAME);
    expect(changedCompressed.equals(Buffer.concat(await piecesOf(changedBeside)))).toBe(true);
    expect(pythonRead(changed.archivePath, MANIFEST_ENTRY_NAME).equals(changedBeside)).toBe(true);
  });
});
