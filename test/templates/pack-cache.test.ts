import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { packBundle, packBundleCached } from '../../scripts/build/index';

// A bundle-like text that brotli packs quickly.
const code = Buffer.from(Array.from({ length: 400 }, (_, i) => `function step${i}(){return ${i * 7919 % 1000};}\n`).join(''));

function onlyEntry(dir: string): string {
  const entries = readdirSync(dir);
  expect(entries).toHaveLength(1);
  return path.join(dir, entries[0]);
}

test('a damaged pack-cache entry is packed again, never embedded', async () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-pack-cache-'));
  const first = await packBundleCached(code, cache);
  const entry = onlyEntry(cache);
  // A build killed between write and flush, or a full disk: the entry is cut short.
  writeFileSync(entry, readFileSync(entry).subarray(0, 40));
  const second = await packBundleCached(code, cache);
  expect(brotliDecompressSync(second).equals(code)).toBe(true);
  expect(second.equals(first)).toBe(true);
  expect(readFileSync(entry).equals(first)).toBe(true);
});

test('a pack-cache entry holding another bundle is never served', async () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-pack-cache-'));
  await packBundleCached(code, cache);
  writeFileSync(onlyEntry(cache), brotliCompressSync(Buffer.from('process.exit(0)')));
  expect(brotliDecompressSync(await packBundleCached(code, cache)).equals(code)).toBe(true);
});

test('the cache gives the bytes packBundle gives (the same sources, the same templates, cached or not)', async () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-pack-cache-'));
  await packBundleCached(code, cache);
  expect((await packBundleCached(code, cache)).equals(packBundle(code))).toBe(true);
});
