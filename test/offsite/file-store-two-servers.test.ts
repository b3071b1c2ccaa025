// Copy Offsite of a backup directory that two Octopus Servers back up their file stores into
// (production and staging, or an old and a new server): offsite retention keeps each store's sets
// by that store's own newest sets, and a restore from the offsite URL without a set named is
// refused, naming each store, as a restore from the folder is (file-store/origin.ts). Before,
// offsite retention pooled every file-store set: production's newest (and only) set was deleted
// because staging had newer ones; and the restore took staging's newest set in production's
// place, exit 0.
import { mkdirSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { applyOffsiteRetention } from '../../steps/engines/offsite/retention';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { runInProcess, silentLog, tempDir, write } from '../file-store/helpers';
import { runCopy } from './fixtures';
import { s3Provider } from './providers';

const provider = s3Provider();
const DAY = 24 * 3600 * 1000;
const START = Date.now() - 20 * DAY;
const work = tempDir('offsite-two-stores');

beforeAll(async () => provider.start(), 120_000);
afterAll(async () => provider.stop());

async function fullAt(home: string, out: string, day: number): Promise<string> {
  const set = await backupFileStore(
    { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', now: () => new Date(START + day * DAY) },
    quietEngineContext({ log: silentLog }),
  );
  return path.basename(set.archivePath, '.zip');
}

let out: string;
let url: string;
let productionFull: string;
let stagingSets: string[];
beforeAll(async () => {
  out = path.join(work, 'shared');
  mkdirSync(out);
  const production = path.join(work, 'production');
  const staging = path.join(work, 'staging');
  write(path.join(production, 'TaskLogs', 'prod.log.txt'), 'production\n');
  write(path.join(staging, 'TaskLogs', 'staging.log.txt'), 'staging\n');
  productionFull = await fullAt(production, out, 0);
  stagingSets = [await fullAt(staging, out, 5), await fullAt(staging, out, 10)];
  url = await provider.newTarget('two-stores');
  const copied = await runCopy(['--offsite-url', url, ...provider.args(), '--file-store-backup-directory', out], provider.env());
  if (copied.code !== 0) throw new Error(`copy failed: ${copied.result}`);
}, 120_000);

test("offsite retention never deletes another server's newest file-store set", async () => {
  const store = provider.store(url);
  const warnings: string[] = [];
  const log = { info: () => undefined, verbose: () => undefined, warn: (m: string) => void warnings.push(m) };
  const deleted = await applyOffsiteRetention({ store, retentionDays: 3, keepAtLeast: 1, now: new Date(START + 11 * DAY) }, quietEngineContext({ log }));
  store.close();
  expect(deleted).not.toContain(`file-store/${productionFull}`);
  // Staging's own older set is retained as before.
  expect(deleted).toEqual([`file-store/${stagingSets[0]}`]);
}, 60_000);

test('a restore from the offsite URL holding two stores is refused before anything is downloaded, naming both', async () => {
  const target = path.join(work, 'restored');
  const download = path.join(work, 'download');
  const run = await runInProcess('restore-file-store', ['--source', url, ...provider.args(), '--download-directory', download, '--home-directory', target], { env: provider.env() });
  expect(run.code).toBe(1);
  expect(run.stdout + run.stderr).toMatch(/more than one file store/);
  expect(run.stdout + run.stderr).toContain(path.join(work, 'production', 'TaskLogs'));
  expect(run.stdout + run.stderr).toContain(path.join(work, 'staging', 'TaskLogs'));
  expect(existsSync(path.join(target, 'TaskLogs'))).toBe(false);

  // Naming production's set restores it.
  const named = await runInProcess('restore-file-store', ['--source', `${url}/file-store/${productionFull}.manifest.json`, ...provider.args(), '--download-directory', download, '--home-directory', target], { env: provider.env() });
  expect(named.code).toBe(0);
  expect(existsSync(path.join(target, 'TaskLogs', 'prod.log.txt'))).toBe(true);
}, 60_000);
