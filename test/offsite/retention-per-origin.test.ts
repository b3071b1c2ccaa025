// Offsite retention is per origin, as Back Up SQL Database's local retention is (origin.ts: the
// server and database family, or the availability group; a set whose origin cannot be told is kept,
// never deleted on another's behalf). Copy Offsite sends a shared folder's sets of two servers to one
// target; red team 39 found offsite retention pooling every set of one database NAME there, picking
// "the newest verified full" by comparing LSNs across servers, and deleting another server's only
// (newest verified) full because this server had newer sets.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyOffsiteRetention } from '../../steps/engines/offsite/retention';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { backup } from '../database/harness';
import { silentLog } from '../file-store/helpers';
import { dropBackups, makeBackups, runCopy, type Backups } from './fixtures';
import { s3Provider } from './providers';

const provider = s3Provider();
let backups: Backups;
const later = new Date(Date.now() + 100 * 24 * 3600 * 1000);

beforeAll(async () => {
  await provider.start();
  backups = await makeBackups();
  await new Promise((r) => setTimeout(r, 1100));
  const run = await backup(backups.lab, 'Octo', '--backup-directory', backups.database, '--no-copy-only');
  if (run.code !== 0) throw new Error(run.stderr);
}, 180_000);
afterAll(async () => {
  await dropBackups(backups);
  await provider.stop();
});

test("offsite retention never deletes another server's only verified full of a database of the same name (local retention keeps it)", async () => {
  const folder = path.join(backups.lab.root, 'shared-by-two-servers');
  mkdirSync(folder, { recursive: true });
  for (const name of readdirSync(backups.database)) copyFileSync(path.join(backups.database, name), path.join(folder, name));
  // A second server (staging) backing up its own 'Octo' to the same share: its only backup, a verified full.
  const first = readdirSync(folder).filter((n) => n.startsWith('Octo_FULL_') && n.endsWith('.manifest.json')).sort()[0];
  const manifest = JSON.parse(readFileSync(path.join(folder, first), 'utf8'));
  expect(manifest.verification?.passed).toBe(true);
  const stem = first.replace(/\.manifest\.json$/, '');
  const otherStem = stem.replace(/_[0-9a-f]{6}$/, '_0dd0dd');
  const rename = (n: string) => n.replace(stem, otherStem);
  for (const f of manifest.files) copyFileSync(path.join(folder, f.name), path.join(folder, rename(f.name)));
  manifest.files = manifest.files.map((f: { name: string; serverPath: string }) => ({ ...f, name: rename(f.name), serverPath: f.serverPath.replace(f.name, rename(f.name)) }));
  manifest.header.serverName = 'STAGING-SQL';
  if (manifest.server) manifest.server.name = 'STAGING-SQL';
  writeFileSync(path.join(folder, rename(first)), JSON.stringify(manifest, null, 2));

  const target = await provider.newTarget();
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--backup-directory', folder], provider.env());
  expect(copied.code).toBe(0);
  const store = provider.store(target);
  const deleted = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: later }, quietEngineContext({ log: silentLog }));
  store.close();
  // STAGING-SQL's only set, its newest verified full, must stay offsite. It was deleted.
  expect(deleted.filter((d) => d.includes(otherStem))).toEqual([]);
  // This server's own sets are retained as before: the older chain goes, the newest full stays.
  expect(deleted.map((d) => d.replace(/_\d{8}T\d{6}Z_[0-9a-f]{6}$/, '')).sort()).toEqual(['database/Octo_DIFF', 'database/Octo_FULL', 'database/Octo_LOG', 'database/Octo_LOG']);
}, 180_000);

test('a set offsite whose manifest records no database family is kept, with every older set of its database, and said in a warning', async () => {
  const folder = path.join(backups.lab.root, 'unknown-origin');
  mkdirSync(folder, { recursive: true });
  for (const name of readdirSync(backups.database)) copyFileSync(path.join(backups.database, name), path.join(folder, name));
  // The first chain's differential, its family GUID gone from its manifest (edited, or written by another tool).
  const diff = readdirSync(folder).filter((n) => n.startsWith('Octo_DIFF_') && n.endsWith('.manifest.json')).sort()[0];
  const manifest = JSON.parse(readFileSync(path.join(folder, diff), 'utf8'));
  delete manifest.header.familyGuid;
  writeFileSync(path.join(folder, diff), JSON.stringify(manifest, null, 2));

  const target = await provider.newTarget();
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--backup-directory', folder], provider.env());
  expect(copied.code).toBe(0);
  const store = provider.store(target);
  const warnings: string[] = [];
  const log = { info: () => undefined, verbose: () => undefined, warn: (m: string) => void warnings.push(m) };
  const deleted = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: later }, quietEngineContext({ log }));
  store.close();
  // The differential and the full before it stay; only the logs after it go.
  expect(deleted.map((d) => d.replace(/_\d{8}T\d{6}Z_[0-9a-f]{6}$/, '')).sort()).toEqual(['database/Octo_LOG', 'database/Octo_LOG']);
  expect(warnings).toEqual([expect.stringContaining(`Offsite retention: kept database/${diff.replace(/\.manifest\.json$/, '')} and every older set of the database: its manifest records no server or no database family GUID`)]);
}, 180_000);
