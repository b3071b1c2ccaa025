// A restore from an offsite URL (no set named) whose newest file-store set's chain is not whole
// offsite (an incremental it needs was deleted there: by hand, by a lifecycle rule, or by a deletion
// that stopped part-way) is refused, naming the set and what it misses, as a restore from the folder
// refuses it: an older set is not restored in its place. Before, the newest set was passed over in
// silence and the full before it restored, exit 0, without what only the newer sets held.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { offsiteRecordKey } from '../../steps/engines/offsite/offsite-manifest';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { runInProcess, silentLog, tempDir, write } from '../file-store/helpers';
import { runCopy } from './fixtures';
import { s3Provider } from './providers';

const provider = s3Provider();
const work = tempDir('offsite-chain-gap');
beforeAll(async () => provider.start(), 120_000);
afterAll(async () => {
  await provider.stop();
  rmSync(work, { recursive: true, force: true });
});

test('the newest set offsite whose chain misses an incremental is refused, not passed over for the full', async () => {
  const home = path.join(work, 'home');
  const out = path.join(work, 'out');
  mkdirSync(out);
  const sets: string[] = [];
  for (const [i, mode] of (['Full', 'Incremental', 'Incremental'] as const).entries()) {
    write(path.join(home, 'TaskLogs', `task-${i}.log.txt`), `task ${i}\n`, undefined, new Date(Date.now() - (10 - i) * 3600_000));
    const set = await backupFileStore(
      { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(Date.now() - (5 - i) * 3600_000) },
      quietEngineContext({ log: silentLog }),
    );
    sets.push(path.basename(set.archivePath, '.zip'));
  }
  const url = await provider.newTarget('chain-gap');
  const copied = await runCopy(['--offsite-url', url, ...provider.args(), '--file-store-backup-directory', out], provider.env());
  expect(copied.code).toBe(0);
  // The middle incremental is gone offsite: its record first, then its objects.
  const store = provider.store(url);
  await store.remove(offsiteRecordKey('file-store', sets[1]));
  for (const o of await store.list('file-store/')) if (o.key.includes(sets[1])) await store.remove(o.key);
  store.close();

  const target = path.join(work, 'restored');
  const run = await runInProcess('restore-file-store', ['--source', url, ...provider.args(), '--download-directory', path.join(work, 'download'), '--home-directory', target], { env: provider.env() });
  expect(existsSync(path.join(target, 'TaskLogs', 'task-0.log.txt'))).toBe(false);
  expect(run.code).toBe(1);
  const said = run.stdout + run.stderr;
  expect(said).toContain(sets[2]);
  expect(said).toContain(`${sets[1]}.zip`);
}, 120_000);
