// The built backup-database step against the SQL Server simulator.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables, PASSWORD } from './harness';

const lab = new Lab();
const HOSTILE = "Oct]o'pus; DROP DATABASE master --ü";
const filesOf = (prefix: string) => readdirSync(lab.backups).filter((f) => f.startsWith(prefix)).sort();

beforeAll(async () => {
  await lab.start({}, [
    { name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'OctopusSimple', recoveryModel: 'SIMPLE', tables: octopusTables() },
    { name: 'Chain', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'Striped', recoveryModel: 'FULL', tables: octopusTables() },
    { name: 'Slow', recoveryModel: 'FULL', tables: octopusTables() },
    { name: HOSTILE, recoveryModel: 'FULL', tables: octopusTables() },
  ]);
});
afterAll(() => lab.stop());

test('full backup: copy-only, checksum, verified, manifest, progress, outputs', async () => {
  const run = await backup(lab, 'Octopus', '--master-key-id', '0123456789ABCDEF');
  expect(run.stderr + run.stdout.slice(-3000)).not.toMatch(/ERROR|##octopus\[stdout-error\]/);
  expect(run.code).toBe(0);
  const manifestPath = run.outputs.ManifestPath;
  expect(path.basename(manifestPath)).toMatch(/^Octopus_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json$/);
  expect(run.artifacts).toEqual([manifestPath]);
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  expect(m).toMatchObject({
    format: 'octopus-dr/sql-backup-manifest/v1',
    database: 'Octopus',
    backupType: 'Full',
    copyOnly: true,
    compression: true, // Auto on Developer edition
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
  for (const text of [run.stdout, run.stderr, readFileSync(manifestPath, 'utf8')]) expect(text).not.toContain(PASSWORD);
});

test('a log backup of a SIMPLE-recovery database is refused before anything is written', async () => {
  const seen = lab.sim.events.length;
  const run = await backup(lab, 'OctopusSimple', '--backup-type', 'Log');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/uses the SIMPLE recovery model.*Nothing was changed.*point-in-time restore/s);
  expect(filesOf('OctopusSimple')).toEqual([]);
  expect(lab.sim.events.slice(seen).some((e) => e.kind === 'request' && /BACKUP/.test(e.detail ?? ''))).toBe(false);
});

test('differential without a full base, and log without a started chain, are refused; then the chain works', async () => {
  const diff = await backup(lab, 'Chain', '--backup-type', 'Differential');
  expect(diff.code).toBe(1);
  expect(diff.result).toMatch(/no full backup a differential could be based on/);
  await backup(lab, 'Chain'); // copy-only full: starts nothing
  const log = await backup(lab, 'Chain', '--backup-type', 'Log');
  expect(log.code).toBe(1);
  expect(log.result).toMatch(/copy-only full backups do not/);

  const full = await backup(lab, 'Chain', '--no-copy-only', '--compression', 'Off');
  expect(full.code).toBe(0);
  const fullManifest = JSON.parse(readFileSync(full.outputs.ManifestPath, 'utf8'));
  expect(fullManifest).toMatchObject({ copyOnly: false, compression: false, header: { isCopyOnly: false, compressed: false } });
  lab.insertProject('Chain', 'Projects-2');
  const differential = await backup(lab, 'Chain', '--backup-type', 'Differential');
  expect(differential.code).toBe(0);
  const d = JSON.parse(readFileSync(differential.outputs.ManifestPath, 'utf8'));
  expect(d.backupType).toBe('Differential');
  expect(d.copyOnly).toBe(false); // COPY_ONLY does not apply to differentials
  expect(d.header.backupType).toBe(5);
  expect(d.header.databaseBackupLsn).toBe(fullManifest.header.checkpointLsn);
  expect(path.basename(differential.outputs.ManifestPath)).toMatch(/^Chain_DIFF_/);
  const logRun = await backup(lab, 'Chain', '--backup-type', 'Log', '--no-copy-only');
  expect(logRun.code).toBe(0);
  const l = JSON.parse(readFileSync(logRun.outputs.ManifestPath, 'utf8'));
  expect(l.files[0].name).toMatch(/^Chain_LOG_\d{8}T\d{6}Z_[0-9a-f]{6}\.trn$/);
  expect(BigInt(l.header.firstLsn)).toBeLessThanOrEqual(BigInt(fullManifest.header.lastLsn));
  expect(logRun.outputs.FirstLsn).toBe(l.header.firstLsn);
});

test('stripes: N files named _<n>of<N>, all in the manifest', async () => {
  const run = await backup(lab, 'Striped', '--stripes', '3');
  expect(run.code).toBe(0);
  const m = JSON.parse(readFileSync(run.outputs.ManifestPath, 'utf8'));
  expect(m.files.map((f: { name: string }) => f.name.replace(/\d{8}T\d{6}Z_[0-9a-f]{6}/, 'T'))).toEqual(['Striped_FULL_T_1of3.bak', 'Striped_FULL_T_2of3.bak', 'Striped_FULL_T_3of3.bak']);
  expect(run.outputs.BackupFiles.split('\n')).toHaveLength(3);
  for (const f of m.files) expect(f.sizeBytes).toBeGreaterThan(0);
});

test('compression: On is refused on Express before backing up; Auto leaves it to the server there', async () => {
  const properties = lab.sim.model.properties;
  const saved = { edition: properties.edition, engineEdition: properties.engineEdition };
  Object.assign(properties, { edition: 'Express Edition (64-bit)', engineEdition: 4 });
  try {
    const before = filesOf('Striped').length;
    const on = await backup(lab, 'Striped', '--compression', 'On');
    expect(on.code).toBe(2);
    expect(on.result).toMatch(/Express Edition \(64-bit\) cannot compress backups. Set "Compression" to Auto or Off/);
    expect(filesOf('Striped')).toHaveLength(before);
    const auto = await backup(lab, 'Striped', '--compression', 'Auto', '--verbose');
    expect(auto.code).toBe(0);
    expect(auto.stdout).toContain('compression server default');
    expect(auto.stdout).not.toMatch(/WITH[^\n]*COMPRESSION/);
  } finally {
    Object.assign(properties, saved);
  }
});

test('the backup directory must be visible to the worker; a missing server folder fails with the server error', async () => {
  const hidden = await backup(lab, 'Octopus', '--backup-directory', '/no/such/folder');
  expect(hidden.code).toBe(2);
  expect(hidden.result).toMatch(/"Backup directory" \/no\/such\/folder does not exist on this worker.*never creates it.*set "Backup directory on this worker"/s);
  const elsewhere = await backup(lab, 'Octopus', '--backup-directory', '/no/such/folder', '--backup-directory-on-worker', lab.backups);
  expect(elsewhere.code).toBe(1);
  expect(elsewhere.result).toMatch(/3201|Cannot open backup device/);
  expect(readdirSync(lab.backups).filter((f) => f.endsWith('.tmp') || f.endsWith('.partial'))).toEqual([]);
});

test('cancel in the middle of BACKUP: the attention reaches the server, the partial file is removed, exit is non-zero', async () => {
  lab.sim.model.operationMs = 4000;
  try {
    let partial: string | undefined;
    const run = await lab.run('backup-database', 'Slow', [], {
      killAfter: (stdout) => {
        const m = /(Slow_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}\.bak)/.exec(stdout);
        if (!m || !/percentage='(MT|MjA|[1-9])/.test(stdout)) return false;
        // What SQL Server leaves while writing: a file that is not a complete backup.
        partial = path.join(lab.backups, m[1]);
        writeFileSync(partial, 'partial');
        return true;
      },
    });
    expect(partial).toBeDefined();
    expect(run.code).toBe(143);
    expect(run.result).toMatch(/Cancelled/);
    expect(lab.sim.events.some((e) => e.kind === 'attention')).toBe(true);
    expect(lab.sim.events.some((e) => e.kind === 'attention-ack')).toBe(true);
    expect(existsSync(partial!)).toBe(false);
    expect(filesOf('Slow')).toEqual([]);
  } finally {
    lab.sim.model.operationMs = 200;
  }
});

test('hostile database name: parameters, not text; a file name that is safe; the real name in the manifest', async () => {
  const run = await backup(lab, HOSTILE, '--backup-type', 'Full');
  expect(run.code).toBe(0);
  const m = JSON.parse(readFileSync(run.outputs.ManifestPath, 'utf8'));
  expect(m.database).toBe(HOSTILE);
  expect(m.header.databaseName).toBe(HOSTILE);
  expect(m.octopusVersion).toBe('2026.1.5021');
  expect(path.basename(m.files[0].name)).toMatch(/^Oct\]o'pus; DROP DATABASE master --ü_FULL_/);
  expect(lab.sim.model.database('master')).toBeDefined();
  const requests = lab.sim.events.filter((e) => e.kind === 'request').map((e) => e.detail ?? '');
  expect(requests.some((r) => r.includes('DROP DATABASE master'))).toBe(false);
});

test('a backup that fails verification is deleted and the step fails', async () => {
  lab.sim.faults.push({ match: /RESTORE VERIFYONLY/, dropMidStream: true });
  const run = await backup(lab, 'Striped');
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/The new backup failed RESTORE VERIFYONLY WITH CHECKSUM and was deleted/);
  const stem = /Striped_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}/.exec(run.stdout)![0];
  expect(filesOf(stem)).toEqual([]);
});

test('a master key ID that is not 16 hex characters is refused before connecting', async () => {
  const seen = lab.sim.events.length;
  const run = await backup(lab, 'Octopus', '--master-key-id', 'not-a-key-id');
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/"Master key ID" must be 16 hexadecimal characters .*--master-key-id/);
  expect(lab.sim.events.slice(seen).filter((e) => e.kind === 'login')).toEqual([]);
});

test('a master key ID other than the previous backup\'s warns loudly and sets MasterKeyChanged and PreviousKeyId', async () => {
  const folder = path.join(lab.root, 'key-drift');
  mkdirSync(folder);
  const first = await backup(lab, 'Chain', '--backup-directory', folder, '--master-key-id', '1111111111111111');
  expect(first.code).toBe(0);
  expect(first.outputs).toMatchObject({ MasterKeyChanged: 'False', PreviousKeyId: '' });
  const same = await backup(lab, 'Chain', '--backup-directory', folder, '--master-key-id', '1111111111111111');
  expect(same.outputs.MasterKeyChanged).toBe('False');
  const second = await backup(lab, 'Chain', '--backup-directory', folder, '--master-key-id', '2222222222222222');
  expect(second.code).toBe(0);
  expect(second.outputs).toMatchObject({ MasterKeyChanged: 'True', PreviousKeyId: '1111111111111111' });
  expect(second.outputs.SetsNeedingPreviousKey.split('\n')).toEqual([path.basename(same.outputs.ManifestPath), path.basename(first.outputs.ManifestPath)]);
  // Logged at warning level (Octopus shows it in the task log's warning colour).
  expect(second.stdout).toMatch(/##octopus\[stdout-warning\]\nMASTER KEY CHANGED for database Chain: .*Keep the old master key \(ID 1111111111111111\) safe/);
});
