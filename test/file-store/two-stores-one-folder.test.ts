// Two Octopus Servers (production and staging, or an old and a new server) backing up their file
// stores into one backup directory. Each set's manifest says where its folders were read from
// (and, for a local Windows path, on which machine): retention deletes only the sets of the store
// it has just backed up, an incremental builds only on a set of its own store, and a restore from
// the directory (no set named) is refused when the directory holds more than one store's sets.
// Before: staging's 3-day retention deleted production's newest (and only) verified set,
// staging's incremental built on production's set (recording production's bytes for a staging
// file of the same size and time), and a restore from the directory restored whichever server
// had backed up last, exit 0.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { applyRetention, backupFileStore, readManifestFile, resolveBackupSource, restoreFileStore } from '../../steps/engines/file-store';
import { storeRelation } from '../../steps/engines/file-store/origin';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { collectingLog, silentLog, tempDir, write } from './helpers';

const day = (d: number) => new Date(Date.UTC(2026, 10, d));
const work = tempDir('two-stores');
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function backUp(home: string, out: string, mode: 'Full' | 'Incremental', d: number, log = silentLog) {
  return backupFileStore(
    {
      folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }],
      backupDirectory: out,
      mode,
      skipUnreadable: false,
      toolVersion: 'test',
      now: () => new Date(day(d).getTime() + 3600_000),
    },
    quietEngineContext({ log }),
  );
}

test("staging's retention keeps production's newest verified set", async () => {
  const out = path.join(work, 'retention-out');
  const production = path.join(work, 'retention-production');
  const staging = path.join(work, 'retention-staging');
  write(path.join(production, 'TaskLogs', 'prod.log.txt'), 'production\n', undefined, day(1));
  write(path.join(staging, 'TaskLogs', 'staging.log.txt'), 'staging\n', undefined, day(1));
  const productionFull = path.basename((await backUp(production, out, 'Full', 1)).archivePath);
  await backUp(staging, out, 'Full', 5);
  const stagingNewest = await backUp(staging, out, 'Full', 10);

  const { log, warnings } = collectingLog();
  const result = await applyRetention(out, 3, day(10), log, { origin: stagingNewest.manifest });
  expect(result.deleted).not.toContain(productionFull);
  expect(readdirSync(out)).toContain(productionFull);
  // Staging's own older set still goes, and the sets left alone are said.
  expect(result.deleted).toHaveLength(1);
  expect(warnings.join('\n')).toMatch(/another file store/);
});

test("an incremental builds only on a set of its own store, never on another server's", async () => {
  const out = path.join(work, 'base-out');
  const production = path.join(work, 'base-production');
  const staging = path.join(work, 'base-staging');
  // The same name, size and time in both stores, different bytes (a task log of the same id).
  write(path.join(production, 'TaskLogs', 'ServerTasks-1.log.txt'), 'PRODUCTION\n', undefined, day(1));
  write(path.join(staging, 'TaskLogs', 'ServerTasks-1.log.txt'), 'staging!!!\n', undefined, day(1));
  const stagingFull = await backUp(staging, out, 'Full', 2);
  const productionFull = await backUp(production, out, 'Full', 3);
  const stagingIncremental = await backUp(staging, out, 'Incremental', 4);
  // What it restores is staging's file, not production's of the same name, size and time.
  const target = path.join(work, 'base-target');
  await restoreFileStore({ set: await resolveBackupSource(stagingIncremental.manifestPath), destinations: [{ name: 'TaskLogs', path: path.join(target, 'TaskLogs'), origin: 'home' }], replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }));
  expect(readFileSync(path.join(target, 'TaskLogs', 'ServerTasks-1.log.txt'), 'utf8')).toBe('staging!!!\n');
  expect(stagingIncremental.manifest.chain).not.toContain(path.basename(productionFull.archivePath));
  expect(stagingIncremental.manifest.basedOn).toBe(path.basename(stagingFull.archivePath));
});

test('a restore from a directory holding two stores is refused, naming both; a named set restores', async () => {
  const out = path.join(work, 'restore-out');
  const production = path.join(work, 'restore-production');
  const staging = path.join(work, 'restore-staging');
  write(path.join(production, 'TaskLogs', 'prod.log.txt'), 'production\n', undefined, day(1));
  write(path.join(staging, 'TaskLogs', 'staging.log.txt'), 'staging\n', undefined, day(1));
  const productionFull = await backUp(production, out, 'Full', 2);
  await backUp(staging, out, 'Full', 3);
  const target = path.join(work, 'restore-target');
  const destinations = [{ name: 'TaskLogs' as const, path: path.join(target, 'TaskLogs'), origin: 'home' as const }];
  const restore = async (source: string) => restoreFileStore({ set: await resolveBackupSource(source), destinations, replaceExisting: false, dryRun: false }, quietEngineContext({ log: silentLog }));
  await expect(restore(out)).rejects.toThrow(/more than one file store/);
  await expect(restore(out)).rejects.toThrow(path.join(production, 'TaskLogs'));
  await expect(restore(out)).rejects.toThrow(path.join(staging, 'TaskLogs'));
  expect(readdirSync(work)).not.toContain('restore-target');
  await restore(productionFull.manifestPath);
  expect(readdirSync(path.join(target, 'TaskLogs'))).toEqual(['prod.log.txt']);
});

describe('storeRelation', () => {
  const header = (host: string, ...folders: [string, string][]) => ({ host, folders: folders.map(([name, source]) => ({ name, source })) }) as Parameters<typeof storeRelation>[0];
  test('a local Windows path is the same store only on the same machine', () => {
    expect(storeRelation(header('OCTO-PROD', ['TaskLogs', 'C:\\Octopus\\TaskLogs']), header('octo-prod', ['TaskLogs', 'c:\\octopus\\tasklogs']))).toBe('same');
    expect(storeRelation(header('OCTO-PROD', ['TaskLogs', 'C:\\Octopus\\TaskLogs']), header('OCTO-STAGING', ['TaskLogs', 'C:\\Octopus\\TaskLogs']))).toBe('other');
  });
  test('a share is the same store from any machine; another share is another store', () => {
    expect(storeRelation(header('WORKER-1', ['Packages', '\\\\fs01\\Octopus\\Packages']), header('WORKER-2', ['Packages', '\\\\FS01\\octopus\\Packages']))).toBe('same');
    expect(storeRelation(header('WORKER-1', ['Packages', '\\\\fs01\\Octopus\\Packages']), header('WORKER-1', ['Packages', '\\\\fs02\\Octopus\\Packages']))).toBe('other');
  });
  test('a POSIX path (a mount on any worker of a pool) is compared as it is', () => {
    expect(storeRelation(header('worker-a', ['Packages', '/repository']), header('worker-b', ['Packages', '/repository']))).toBe('same');
    expect(storeRelation(header('worker-a', ['Packages', '/mnt/prod/Packages']), header('worker-a', ['Packages', '/mnt/staging/Packages']))).toBe('other');
  });
  test('more folders of the same store are the same store; no folder in common is another', () => {
    expect(storeRelation(header('h', ['TaskLogs', '/o/TaskLogs']), header('h', ['TaskLogs', '/o/TaskLogs'], ['Packages', '/o/Packages']))).toBe('same');
    expect(storeRelation(header('h', ['TaskLogs', '/o/TaskLogs']), header('h', ['Packages', '/o/Packages']))).toBe('other');
    expect(storeRelation(header('h', ['TaskLogs', '/o/TaskLogs'], ['Packages', '/a/Packages']), header('h', ['TaskLogs', '/o/TaskLogs'], ['Packages', '/b/Packages']))).toBe('other');
  });
  test('a set that does not say where it was read from is unknown', () => {
    expect(storeRelation(header('h', ['TaskLogs', '/o/TaskLogs']), { host: 'h', folders: [{ name: 'TaskLogs' }] } as never)).toBe('unknown');
  });
});

test('manifests written before this change are told apart by what they already record', async () => {
  // host and each folder's source have been in every manifest: no new field is needed.
  const out = path.join(work, 'old-out');
  const home = path.join(work, 'old-home');
  write(path.join(home, 'TaskLogs', 'a.txt'), 'a', undefined, day(1));
  const result = await backUp(home, out, 'Full', 1);
  const manifest = await readManifestFile(result.manifestPath);
  expect(manifest.host).toEqual(expect.any(String));
  expect(manifest.folders[0].source).toBe(path.join(home, 'TaskLogs'));
});
