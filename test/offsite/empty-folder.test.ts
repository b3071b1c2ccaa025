// A backup folder that holds no backup set (an unmounted share leaves an empty mount point) fails the
// copy, naming the folder and saying to check the mount, before anything connects; before, with the
// other folder holding sets, the copy passed with exit 0 and never said the folder was empty.
// Against s3rver, with real database sets, the step run in process.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCopy, suiteWithBackups } from './fixtures';
import { s3Provider } from './providers';

const provider = s3Provider();
const suite = suiteWithBackups(provider);

async function objectsAt(url: string): Promise<number> {
  const store = provider.store(url);
  const count = (await store.list('')).length;
  store.close();
  return count;
}

test('an empty file-store backup folder beside a database folder with sets fails naming it, nothing copied; alone, an empty folder fails the same way', async () => {
  const mountPoint = path.join(suite.backups.lab.root, 'unmounted-share');
  mkdirSync(mountPoint);
  const url = await provider.newTarget();
  const run = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', suite.backups.database, '--file-store-backup-directory', mountPoint], provider.env());
  expect(run.result).toBe(
    `"File store backup directory" (OctopusDr.FileStore.BackupDirectory) ${mountPoint} holds no backup set. If it is a share or another disk, check that it is mounted on this worker ` +
      '(an unmounted share leaves an empty folder); otherwise correct the folder, or leave the parameter empty to copy only the other backups. Nothing was copied.',
  );
  expect(run.code).toBe(1);
  expect(await objectsAt(url)).toBe(0);

  // Alone, and with something in it that is no backup set: the same.
  writeFileSync(path.join(mountPoint, 'readme.txt'), 'not a backup\n');
  const alone = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', mountPoint], provider.env());
  expect(alone.code).toBe(1);
  expect(alone.result).toMatch(new RegExp(`^"Backup directory" \\(OctopusDr\\.Sql\\.BackupDirectory\\) ${mountPoint.replace(/[.\\]/g, '\\$&')} holds no backup set\\. If it is a share`));
  expect(await objectsAt(url)).toBe(0);

  // Both folders with sets: copied as before.
  const both = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', suite.backups.database, '--file-store-backup-directory', suite.backups.fileStore], provider.env());
  expect(both.code).toBe(0);
  expect(both.outputs.CopiedSets).toBe('6');
}, 180_000);

test('a folder whose manifests are all unreadable fails naming them (it is mounted: the manifests are the problem), for database and file-store folders', async () => {
  const url = await provider.newTarget();
  const databaseFolder = path.join(suite.backups.lab.root, 'damaged-sql');
  mkdirSync(databaseFolder);
  for (const name of ['Octo_FULL_20260101T000000Z_abcdef.manifest.json', 'Octo_LOG_20260101T010000Z_abcdef.manifest.json']) writeFileSync(path.join(databaseFolder, name), '{ damaged');
  const database = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', databaseFolder], provider.env());
  expect(database.code).toBe(1);
  expect(database.result).toBe(
    `"Backup directory" (OctopusDr.Sql.BackupDirectory) ${databaseFolder} holds 2 manifest(s), none readable: Octo_FULL_20260101T000000Z_abcdef.manifest.json, Octo_LOG_20260101T010000Z_abcdef.manifest.json (the warnings above say why). ` +
      'Put back an intact copy of each (Fetch Backups from Offsite brings back a set copied earlier), or move them out of the folder; or leave the parameter empty to copy only the other backups. Nothing was copied.',
  );
  expect(database.out).toMatch(/Skipping Octo_FULL_20260101T000000Z_abcdef\.manifest\.json: /);

  const fileStoreFolder = path.join(suite.backups.lab.root, 'damaged-fs');
  mkdirSync(fileStoreFolder);
  const archive = 'octopus-file-store-20260101T000000Z-abcdef-full';
  writeFileSync(path.join(fileStoreFolder, `${archive}.zip`), 'not a zip');
  writeFileSync(path.join(fileStoreFolder, `${archive}.manifest.json`), '{ damaged');
  const fileStore = await runCopy(['--offsite-url', url, ...provider.args(), '--file-store-backup-directory', fileStoreFolder], provider.env());
  expect(fileStore.code).toBe(1);
  expect(fileStore.result).toMatch(new RegExp(`^"File store backup directory" \\(OctopusDr\\.FileStore\\.BackupDirectory\\) ${fileStoreFolder.replace(/[.\\]/g, '\\$&')} holds 1 manifest\\(s\\), none readable: ${archive}\\.manifest\\.json \\(the warnings above say why\\)\\.`));
  expect(await objectsAt(url)).toBe(0);
}, 180_000);
