// A large buffer (the manifest entry) is deflated in pieces side by side (zip-writer.ts,
// deflateRawInPieces): joined, they must be one raw deflate stream that zlib, Python and Info-ZIP
// read back to the same bytes, in an archive whose manifest is that large.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { backupFileStore } from '../../steps/engines/file-store';
import { MANIFEST_ENTRY_NAME } from '../../steps/engines/file-store/manifest';
import { deflateRawInPieces } from '../../steps/engines/file-store/zip-writer';
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
