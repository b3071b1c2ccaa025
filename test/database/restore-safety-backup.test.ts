// A safety backup lands in the SQL Server's default backup folder, which may be the very folder
// restores read from: a later restore from that folder must not pick it up as "the newest backup".
import * as path from 'node:path';
import { backup, Lab, octopusTables, restore } from './harness';

const lab = new Lab();

beforeAll(async () => {
  await lab.start({}, [
    { name: 'Octo', recoveryModel: 'FULL', tables: octopusTables([['Projects-2', 'Production']]) },
    { name: 'Standby', recoveryModel: 'FULL', tables: octopusTables([['Projects-Stale', 'Stale']]) },
  ]);
  const run = await backup(lab, 'Octo', '--backup-directory', lab.backups, '--no-copy-only');
  expect(run.code).toBe(0);
}, 60_000);
afterAll(() => lab.stop());

test('running the same restore from the default backup folder twice restores the same backup, not the safety backup', async () => {
  const first = await restore(lab, '--source', lab.backups, '--target-database', 'Standby', '--replace-existing');
  expect(first.code).toBe(0);
  expect(path.dirname(first.outputs.SafetyBackupFile)).toBe(lab.backups);
  expect(lab.projectIds('Standby')).toEqual(['Projects-1', 'Projects-2']);

  const again = await restore(lab, '--source', lab.backups, '--target-database', 'Standby', '--replace-existing');
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/Not considered: .*Standby_SAFETY_/);
  // Two restores (in the same second, as here when the machine is quick) never share a safety file:
  // BACKUP appends to an existing file, and the first safety backup is the one that holds 'Projects-Stale'.
  expect(again.outputs.SafetyBackupFile).not.toBe(first.outputs.SafetyBackupFile);
  expect(lab.projectIds('Standby')).toEqual(['Projects-1', 'Projects-2']);

  // Named, a safety backup is restored: that is how the previous database comes back.
  const back = await restore(lab, '--source', first.outputs.SafetyBackupFile, '--target-database', 'Standby', '--replace-existing');
  expect(back.code).toBe(0);
  expect(lab.projectIds('Standby')).toEqual(['Projects-1', 'Projects-Stale']);
});
