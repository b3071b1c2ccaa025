// Smoke tests of the built database bundles (the other database suites run the steps in-process):
// a backup and a restore of it under a new name, as an operator runs them from the command line.
import { Lab, octopusTables } from './harness';

const lab = new Lab();
beforeAll(() => lab.start({}, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]));
afterAll(() => lab.stop());

test('smoke: the built backup-database and restore-database bundles back up and restore under a new name', async () => {
  const backup = await lab.run('backup-database', 'Octopus', ['--backup-type', 'Full'], { bundle: true, plain: true });
  expect(backup.stderr).toBe('');
  expect(backup.code).toBe(0);
  expect(backup.stdout).not.toContain('##octopus');
  expect(lab.manifests()).toHaveLength(1);

  const restore = await lab.run('restore-database', 'master', ['--source', lab.backups, '--target-database', 'Octopus-restored'], { bundle: true });
  expect(restore.stderr).toBe('');
  expect(restore.code).toBe(0);
  expect(restore.outputs.RestoredDatabase).toBe('Octopus-restored');
  expect(lab.projectIds('Octopus-restored')).toEqual(lab.projectIds('Octopus'));
});
