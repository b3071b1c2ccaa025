// The built backup-database step against the SQL Server simulator.
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables } from './harness';

const lab = new Lab();

beforeAll(async () => {
  await lab.start({}, [
    { name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'OctopusSimple', recoveryModel: 'SIMPLE', tables: octopusTables() },
  ]);
});
afterAll(() => lab.stop());

test('full backup: copy-only, checksum, verified, manifest, progress, outputs', async () => {
  const run = await backup(lab, 'Octopus', '--master-key-id', '0123456789ABCDEF');
  expect(run.stderr + run.stdout.slice(-3000)).not.toMatch(/ERROR|##octopus\[stdout-error\]/);
  expect(run.code).toBe(0);
  const manifestPath = run.outputs.ManifestPath;
  expect(path.basename(manifestPath)).toMatch(/^Octopus_FULL_\d{8}T\d{6}Z\.manifest\.json$/);
  expect(run.artifacts).toEqual([manifestPath]);
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  expect(m).toMatchObject({
    format: 'octopus-dr/sql-backup-manifest/v1',
    database: 'Octopus',
    backupType: 'Full',
    copyOnly: true,
    recoveryModel: 'FULL',
    server: { name: 'SQLSIM', majorVersion: 16 },
    verification: { method: 'RESTORE VERIFYONLY WITH CHECKSUM', passed: true },
    octopusVersion: '2026.1.5021',
    masterKeyId: '0123456789abcdef',
  });
  expect(m.header.firstLsn).toMatch(/^\d{17,25}$/);
  expect(m.header.isCopyOnly).toBe(true);
  expect(m.header.hasBackupChecksums).toBe(true);
  expect(m.files).toHaveLength(1);
  expect(m.files[0].sizeBytes).toBe(statSync(path.join(lab.backups, m.files[0].name)).size);
  expect(run.outputs.BackupFiles).toBe(m.files[0].serverPath);
  expect(run.outputs.Verified).toBe('True');
  expect(run.progress.length).toBeGreaterThan(2);
  expect(run.progress[run.progress.length - 1]).toBe(100);
  expect(existsSync(m.files[0].serverPath)).toBe(true);
});
