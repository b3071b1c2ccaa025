// A differential whose base full backup is in another folder (the DBA's own full, not copy-only)
// (red team 38): the backup still succeeds, but says, in its log and its result message, that it
// restores only together with backups that are not in its folder, naming the full it needs; a
// differential whose base is in the folder, and a full, say nothing of the kind.
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables, restore } from '../database/harness';

const lab = new Lab();
beforeAll(() => lab.start({}, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]));
afterAll(() => lab.stop());

const WARNING = /restores only together with backups that are not in /;

test('a differential based on a full in another folder is taken, with a warning in the log and the result naming the missing full', async () => {
  // octopus-dr's own (not copy-only) full in its folder: a differential on it restores from the folder alone.
  const ours = await backup(lab, 'Octopus', '--no-copy-only');
  expect(ours.code).toBe(0);
  expect(ours.stdout + ours.stderr).not.toMatch(WARNING);
  lab.insertProject('Octopus', 'P-before-own-diff');
  const ownDiff = await backup(lab, 'Octopus', '--backup-type', 'Differential');
  expect(ownDiff.code).toBe(0);
  expect(ownDiff.stdout + ownDiff.stderr).not.toMatch(WARNING);
  expect(ownDiff.result).not.toContain('WARNING');

  // The DBA's nightly full, elsewhere: it becomes the differential base.
  const dbaFolder = path.join(lab.root, 'dba');
  mkdirSync(dbaFolder);
  const dba = await backup(lab, 'Octopus', '--no-copy-only', '--backup-directory', dbaFolder);
  expect(dba.code).toBe(0);
  const dbaFull = lab.readManifest(path.basename(dba.outputs.ManifestPath), dbaFolder);
  lab.insertProject('Octopus', 'P-after-dba-full');

  const diff = await backup(lab, 'Octopus', '--backup-type', 'Differential');
  expect(diff.code).toBe(0);
  expect(diff.outputs.Verified).toBe('True');
  const text = `this differential backup restores only together with backups that are not in ${lab.backups}`;
  expect(diff.stdout).toContain(text.charAt(0).toUpperCase() + text.slice(1));
  expect(diff.stdout).toContain(`based on the full backup with checkpoint LSN ${dbaFull.header.checkpointLsn}, which was not found beside it`);
  expect(diff.result).toMatch(/^Differential backup of 'Octopus' .*\. WARNING: this differential backup restores only together with backups that are not in /);
  expect(diff.result).toContain("Its base is a full backup taken elsewhere (your DBA's, not copy-only, say)");

  // Why it matters: a restore from this folder alone passes over it.
  const plan = await restore(lab, '--source', lab.backups, '--target-database', 'Octopus_copy', '--dry-run');
  expect(plan.code).toBe(0);
  expect(plan.stdout + plan.stderr).not.toContain(path.basename(diff.outputs.ManifestPath));
});

test("a log backup whose chain runs through the DBA's log backup elsewhere is taken with the warning; one that continues the folder's chain is not", async () => {
  const dir = path.join(lab.root, 'logs');
  mkdirSync(dir);
  const full = await backup(lab, 'Octopus', '--backup-directory', dir, '--no-copy-only');
  expect(full.code).toBe(0);
  lab.insertProject('Octopus', 'P-log-1');
  const log1 = await backup(lab, 'Octopus', '--backup-directory', dir, '--backup-type', 'Log', '--no-copy-only');
  expect(log1.code).toBe(0);
  expect(log1.stdout + log1.stderr).not.toMatch(WARNING);

  const dbaFolder = path.join(lab.root, 'dba-logs');
  mkdirSync(dbaFolder);
  lab.insertProject('Octopus', 'P-log-2');
  expect((await backup(lab, 'Octopus', '--backup-directory', dbaFolder, '--backup-type', 'Log', '--no-copy-only')).code).toBe(0);
  lab.insertProject('Octopus', 'P-log-3');
  const log3 = await backup(lab, 'Octopus', '--backup-directory', dir, '--backup-type', 'Log', '--no-copy-only');
  expect(log3.code).toBe(0);
  expect(log3.stdout).toMatch(/This log backup restores only together with backups that are not in .*LSN gap after /);
  expect(log3.result).toContain('WARNING: this log backup restores only together with backups that are not in');
});
