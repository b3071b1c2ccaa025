// A local set that changed after it was copied is not "already offsite and intact": the copy compares
// each already-offsite set's files (sizes, and the manifest's SHA-256) with its offsite record, and
// a difference fails the step naming the set and the file, with nothing offsite changed. Against
// s3rver, with real database and file-store sets, the step run in process.
import { appendFileSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCopy, suiteWithBackups } from './fixtures';
import { s3Provider } from './providers';

const provider = s3Provider();
const suite = suiteWithBackups(provider);

const copy = (url: string) =>
  runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', suite.backups.database, '--file-store-backup-directory', suite.backups.fileStore], provider.env());

async function offsite(url: string): Promise<Record<string, string>> {
  const store = provider.store(url);
  const out: Record<string, string> = {};
  for (const o of await store.list('')) {
    const head = (await store.head(o.key))!;
    out[o.key] = `${head.size} ${JSON.stringify(head.metadata)}`;
  }
  store.close();
  return out;
}

test('a data file whose size changed, or a manifest changed in place, fails the rerun naming the set and file; nothing offsite changes; put back, the rerun passes', async () => {
  const url = await provider.newTarget();
  const first = await copy(url);
  expect(first.code).toBe(0);
  expect(first.outputs.CopiedSets).toBe('6');
  const before = await offsite(url);

  // A file-store archive grown after the copy (same name, other content).
  const archive = readdirSync(suite.backups.fileStore).find((n) => n.endsWith('-full.zip'))!;
  const archivePath = path.join(suite.backups.fileStore, archive);
  const archiveSize = readFileSync(archivePath).length;
  appendFileSync(archivePath, Buffer.alloc(16, 1));
  // A database manifest edited in place, its size unchanged.
  const manifest = readdirSync(suite.backups.database).find((n) => n.includes('_DIFF_') && n.endsWith('.manifest.json'))!;
  const manifestPath = path.join(suite.backups.database, manifest);
  const original = readFileSync(manifestPath, 'utf8');
  const edited = original.replace(/"durationSeconds": (\d)/, (_m, d: string) => `"durationSeconds": ${d === '9' ? '8' : String(Number(d) + 1)}`);
  expect(edited).not.toBe(original);
  expect(edited.length).toBe(original.length);
  writeFileSync(manifestPath, edited);

  const changed = await copy(url);
  expect(changed.code).toBe(1);
  const archiveSet = archive.replace(/\.zip$/, '');
  const manifestSet = manifest.replace(/\.manifest\.json$/, '');
  expect(changed.result).toContain(`${archiveSet}: ${archivePath} is ${archiveSize + 16} bytes here, but ${archiveSize} in its offsite copy`);
  expect(changed.result).toMatch(new RegExp(`${manifestSet}: ${manifestPath.replace(/[.\\]/g, '\\$&')} is not the manifest copied offsite \\(SHA-256 [0-9a-f]{64} here, [0-9a-f]{64} offsite\\)`));
  expect(changed.result).toMatch(/2 local set\(s\) differ from their offsite copy/);
  // The last line says what to do.
  expect(changed.result!.split('\n').pop()).toMatch(/^Nothing offsite was changed\. Find out which copy is right: .*run the copy again\.$/);
  expect(changed.result).not.toMatch(/Already offsite|Unexpected error/);
  // Nothing offsite was overwritten or added.
  expect(await offsite(url)).toEqual(before);

  truncateSync(archivePath, archiveSize);
  writeFileSync(manifestPath, original);
  const again = await copy(url);
  expect(again.code).toBe(0);
  expect(again.outputs.AlreadyOffsite).toBe('6');
}, 180_000);
