// Red team (stop 25): the manifest entry is deflated in pieces (zip-writer.ts,
// deflateRawInPieces). yazl ignores a deflate error and stores whatever buffer it is given, so a
// piece that fails must fail the archive: nothing kept, and never an archive whose manifest entry
// is empty while its central directory gives the full size.
import { deflateFault, originalDeflateRaw } from './rt-ret-deflate-fault';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import zlib = require('node:zlib');
import { backupFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import { manifestDifferences, readInternalManifest, readManifestFile } from '../../steps/engines/file-store/manifest';
import { deflateRawInPieces } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir, write } from './helpers';

const work = tempDir('rt-ret-deflate');
const home = path.join(work, 'home');
beforeAll(() => {
  // ~9,000 files: a manifest of ~2.6 MB, deflated in two pieces.
  for (let i = 0; i < 9000; i++) write(path.join(home, 'TaskLogs', `dir-${i % 30}`, `servertasks-${i}.log.txt`), `log ${i}\n`);
});
afterEach(() => (deflateFault.mode = 'none'));
afterAll(() => {
  (zlib as unknown as { deflateRaw: unknown }).deflateRaw = originalDeflateRaw;
  rmSync(work, { recursive: true, force: true });
});

test.each(['async', 'sync'] as const)('Red team (stop 25): a piece of the manifest that fails to deflate (%s) fails the backup and keeps nothing', async (mode) => {
  const out = path.join(work, `out-${mode}`);
  deflateFault.mode = mode;
  await expect(
    backupFileStore(
      { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' },
      quietEngineContext({ log: silentLog }),
    ),
  ).rejects.toThrow(/insufficient memory/);
  expect(readdirSync(out)).toEqual([]);
}, 60_000);

describe('Red team (stop 25): pieces at the sizes where their number changes', () => {
  const MiB = 1024 * 1024;
  const text = Buffer.from('2026-11-27 03:00:00.123 INFO Step 3 deploying package Acme.Web.42.nupkg to Production\n'.repeat(Math.ceil((5 * MiB + 2) / 86)));
  test.each([1, 2, 4, 5].flatMap((m) => [m * MiB - 1, m * MiB, m * MiB + 1]))('%i bytes: one raw deflate stream that Node and Python inflate to the same bytes', async (bytes) => {
    const data = text.subarray(0, bytes);
    const pieces = await new Promise<Buffer[]>((resolve, reject) =>
      // The fault module above is off here: its deflateRaw passes every call through.
      deflateRawInPieces(data, { level: 1 }, (error, result) => (error ? reject(error) : resolve(result))),
    );
    expect(pieces).toHaveLength(Math.max(1, Math.min(4, Math.floor(bytes / MiB))));
    expect(pieces.every((p) => p.length > 0)).toBe(true);
    const joined = Buffer.concat(pieces);
    expect(zlib.inflateRawSync(joined).equals(data)).toBe(true);
    const python = spawnSync('python3', ['-c', 'import sys, zlib; d = zlib.decompressobj(-15); out = d.decompress(sys.stdin.buffer.read()); assert d.eof and not d.unused_data; sys.stdout.buffer.write(out)'], { input: joined, maxBuffer: 64 * MiB });
    expect(python.stderr.toString()).toBe('');
    expect(python.stdout.equals(data)).toBe(true);
  });
});

test('Red team (stop 25): a set whose manifest entry was deflated in pieces verifies through yauzl, and its inside and beside manifests agree', async () => {
  const out = path.join(work, 'out-clean');
  const result = await backupFileStore(
    { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' },
    quietEngineContext({ log: silentLog }),
  );
  expect(statSync(result.manifestPath).size).toBeGreaterThan(2 * 1024 * 1024);
  const inside = await readInternalManifest(result.archivePath);
  expect(manifestDifferences(await readManifestFile(result.manifestPath), inside)).toEqual([]);
  const check = await verifyFileStoreBackup(result.manifestPath);
  expect(check.problems).toEqual([]);
  expect(check.ok).toBe(true);
  expect(check.files).toBe(9000);
}, 60_000);
