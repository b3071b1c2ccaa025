// Master-key drift: manifests written to a real backup folder (as backup-database writes them), read
// back through the existing discovery reader, compared with a newly verified key ID.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadManifestSets } from '../../steps/engines/database-backup/discovery';
import { MANIFEST_FORMAT, type BackupManifest } from '../../steps/engines/database-backup/manifest';
import { backupSetNames, type BackupKind } from '../../steps/engines/database-backup/naming';
import { findKeyDrift, keyDriftOutputs } from '../../steps/engines/standby';
import { header, lsn } from '../database/fixtures';

const OLD_KEY = '0a1b2c3d4e5f6071';
const NEW_KEY = '9f8e7d6c5b4a3921';

let folder: string;
beforeEach(() => (folder = mkdtempSync(path.join(tmpdir(), 'octopus-dr-drift-'))));
afterEach(() => rmSync(folder, { recursive: true, force: true }));

/** Writes a manifest (and its backup file) as backup-database does; returns its file name. */
function writeBackup(database: string, kind: BackupKind, takenAt: string, masterKeyId: string | null): string {
  const names = backupSetNames(database, kind, new Date(takenAt), 1);
  const manifest: BackupManifest = {
    format: MANIFEST_FORMAT,
    tool: { name: 'octopus-dr', version: '0.1.0' },
    database,
    server: { name: 'SQL01', version: '16.0.4135.4', majorVersion: 16, edition: 'Developer Edition (64-bit)' },
    recoveryModel: 'FULL',
    backupType: kind,
    copyOnly: false,
    compression: false,
    takenAt,
    durationSeconds: 3,
    files: [{ name: names.files[0], serverPath: `/var/opt/mssql/backup/${names.files[0]}`, sizeBytes: 1024, stripe: 1 }],
    header: header({ backupType: kind === 'Full' ? 1 : kind === 'Log' ? 2 : 5, firstLsn: lsn(1), lastLsn: lsn(2), databaseName: database }),
    verification: { method: 'RESTORE VERIFYONLY WITH CHECKSUM', passed: true, at: takenAt },
    octopusVersion: '2026.1.5021',
    masterKeyId,
  };
  writeFileSync(path.join(folder, names.files[0]), 'backup');
  writeFileSync(path.join(folder, names.manifest), JSON.stringify(manifest, null, 2));
  return names.manifest;
}

const load = () => loadManifestSets({ workerDirectory: folder, serverDirectory: '/var/opt/mssql/backup' }, (m) => { throw new Error(m); });

test('a changed key ID: the old key ID, since when the new key applies, the sets that need the old key, and a loud warning', async () => {
  const full1 = writeBackup('Octopus', 'Full', '2026-11-20T01:30:00.000Z', OLD_KEY);
  const log1 = writeBackup('Octopus', 'Log', '2026-11-20T13:30:00.000Z', OLD_KEY);
  const full2 = writeBackup('Octopus', 'Full', '2026-11-27T01:30:00.000Z', OLD_KEY.toUpperCase());
  // The new backup's own manifest is already in the folder: it is not "earlier", so it is ignored.
  writeBackup('Octopus', 'Full', '2026-12-01T01:30:00.000Z', NEW_KEY);
  const drift = findKeyDrift({ database: 'Octopus', verifiedKeyId: NEW_KEY, takenAt: new Date('2026-12-01T01:30:00.000Z'), manifests: await load() });
  expect(drift).not.toBeNull();
  expect(drift).toMatchObject({
    database: 'Octopus',
    previousKeyId: OLD_KEY.toUpperCase(),
    newKeyId: NEW_KEY,
    previousKeySeenAt: '2026-11-27T01:30:00.000Z',
    newKeySince: '2026-12-01T01:30:00.000Z',
    setsWithOtherKeys: [],
  });
  expect(drift!.setsNeedingPreviousKey.map((s) => s.name)).toEqual([full2, log1, full1]);
  expect(drift!.warning).toBe(
    `MASTER KEY CHANGED for database Octopus: this backup verified key ID ${NEW_KEY}, but the previous backup (${full2}, taken 2026-11-27T01:30:00.000Z) recorded key ID ${OLD_KEY.toUpperCase()}. ` +
      `The 3 backup set(s) taken before 2026-12-01T01:30:00.000Z with key ID ${OLD_KEY.toUpperCase()} can only be restored with that old master key: ` +
      `${full2} (2026-11-27T01:30:00.000Z), ${log1} (2026-11-20T13:30:00.000Z), ${full1} (2026-11-20T01:30:00.000Z). ` +
      `Keep the old master key (ID ${OLD_KEY.toUpperCase()}) safe, beside the new one, for as long as you keep those backups. ` +
      'If nobody changed the master key on purpose, find out why before relying on the new backups.',
  );
  expect(keyDriftOutputs(drift)).toEqual({
    MasterKeyChanged: 'True',
    PreviousKeyId: OLD_KEY.toUpperCase(),
    NewKeySince: '2026-12-01T01:30:00.000Z',
    SetsNeedingPreviousKey: [full2, log1, full1].join('\n'),
    MasterKeyWarning: drift!.warning,
  });
});

test('the same key ID (in any letter case) is no drift; the outputs say so', async () => {
  writeBackup('Octopus', 'Full', '2026-11-27T01:30:00.000Z', OLD_KEY.toUpperCase());
  const drift = findKeyDrift({ database: 'Octopus', verifiedKeyId: OLD_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: await load() });
  expect(drift).toBeNull();
  expect(keyDriftOutputs(drift)).toEqual({ MasterKeyChanged: 'False', PreviousKeyId: '', NewKeySince: '', SetsNeedingPreviousKey: '', MasterKeyWarning: '' });
});

test('the newest earlier manifest WITH a key ID decides: newer ones without a key ID are skipped, and listed among the sets whose key is not the new one', async () => {
  writeBackup('Octopus', 'Full', '2026-11-20T01:30:00.000Z', OLD_KEY);
  const unknown = writeBackup('Octopus', 'Log', '2026-11-30T01:30:00.000Z', null);
  const drift = findKeyDrift({ database: 'Octopus', verifiedKeyId: NEW_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: await load() });
  expect(drift?.previousKeyId).toBe(OLD_KEY);
  expect(drift?.setsWithOtherKeys.map((s) => s.name)).toEqual([unknown]);
  expect(drift?.warning).toContain(`1 older set(s) recorded another key ID or none: ${unknown} (2026-11-30T01:30:00.000Z).`);
});

test('nothing to compare with: a first backup, backups without key IDs, other databases, and later backups are not drift', async () => {
  expect(findKeyDrift({ database: 'Octopus', verifiedKeyId: NEW_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: [] })).toBeNull();
  writeBackup('Octopus', 'Full', '2026-11-20T01:30:00.000Z', null);
  writeBackup('OctopusOther', 'Full', '2026-11-25T01:30:00.000Z', OLD_KEY);
  writeBackup('Octopus', 'Full', '2026-12-02T01:30:00.000Z', OLD_KEY); // taken after the new one: not earlier
  expect(findKeyDrift({ database: 'octopus', verifiedKeyId: NEW_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: await load() })).toBeNull();
  // The other database does see its own drift.
  expect(findKeyDrift({ database: 'OctopusOther', verifiedKeyId: NEW_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: await load() })?.previousKeyId).toBe(OLD_KEY);
});

test('more than five sets: five are named, the rest counted', async () => {
  for (let day = 10; day <= 17; day++) writeBackup('Octopus', 'Full', `2026-11-${day}T01:30:00.000Z`, OLD_KEY);
  const drift = findKeyDrift({ database: 'Octopus', verifiedKeyId: NEW_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: await load() });
  expect(drift?.setsNeedingPreviousKey).toHaveLength(8);
  expect(drift?.warning).toMatch(/The 8 backup set\(s\) taken before .*\(2026-11-13T01:30:00\.000Z\) and 3 more\. Keep the old master key/);
});

test('a new backup without a usable key ID or time is a programming error, said plainly', () => {
  expect(() => findKeyDrift({ database: 'Octopus', verifiedKeyId: ' ', takenAt: new Date(), manifests: [] })).toThrow(/needs the verified key ID/);
  expect(() => findKeyDrift({ database: 'Octopus', verifiedKeyId: NEW_KEY, takenAt: 'yesterday', manifests: [] })).toThrow(/needs the verified key ID and the new backup's time/);
});

test("manifests are of a database by their header's name, exactly: a case-sensitive server's `case` does not hide `Case`'s key change; before, it did", async () => {
  writeBackup('Case', 'Full', '2026-11-20T01:30:00.000Z', OLD_KEY);
  writeBackup('case', 'Full', '2026-11-25T01:30:00.000Z', NEW_KEY);
  const drift = findKeyDrift({ database: 'Case', verifiedKeyId: NEW_KEY, takenAt: '2026-12-01T01:30:00.000Z', manifests: await load() });
  expect(drift?.previousKeyId).toBe(OLD_KEY);
  expect(drift?.setsNeedingPreviousKey.map((s) => s.name)).toEqual([expect.stringMatching(/^Case_FULL_/)]);
});
