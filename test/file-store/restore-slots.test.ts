// Small entries are read into slots of memory shared with the restore's thread: four 1 MiB slots
// and one for entries up to the small-entry limit (4 MiB + 1 KiB stored). Entries on both sides of
// each boundary, and several large ones queued for the one large slot, restore byte for byte.
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore, resolveBackupSource, restoreFileStore, verifyFileStoreBackup, type FileStoreFolderName, type ResolvedFolder } from '../../steps/engines/file-store';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { logText, pseudoRandomBytes, silentLog, snapshot, tempDir, write } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));
const MiB = 1024 * 1024;

const work = tempDir('slots');
const home = path.join(work, 'home');
const backups = path.join(work, 'backups');
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('entries just under, at and over each slot size, and several large ones in a row, restore and verify byte for byte', async () => {
  for (let i = 0; i < 30; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), logText(50 + i * 40, i));
  // Deflated incompressible artifacts: their stored size is a little over their size.
  const artifactSizes = [MiB - 2048, MiB, 2.5 * MiB, 3 * MiB, 4 * MiB - 4096, 4 * MiB, 1.5 * MiB];
  artifactSizes.forEach((size, i) => write(path.join(home, 'Artifacts', `ServerTasks-${i}`, `output-${i}.log`), pseudoRandomBytes(size, 100 + i)));
  // Stored packages: stored size is exactly their size.
  [MiB, MiB + 1, 4 * MiB].forEach((size, i) => write(path.join(home, 'Packages', 'feeds-builtin', `Acme.Slot.1.0.${i}.zip`), pseudoRandomBytes(size, 200 + i)));

  await backupFileStore({ folders: at(home), backupDirectory: backups, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  const target = path.join(work, 'restored');
  const result = await restoreFileStore(
    { set: await resolveBackupSource(backups), destinations: at(target), replaceExisting: false, dryRun: false },
    quietEngineContext({ log: silentLog }),
  );
  expect(result.files).toBe(40);
  expect(snapshot(target)).toEqual(snapshot(home));
  await expect(verifyFileStoreBackup(backups)).resolves.toMatchObject({ ok: true, problems: [], files: 40 });
});
