// Backup sets for the pure chain/retention tests, with LSNs above 2^53 so that any comparison
// done in JS numbers instead of BigInt would go wrong.
import type { BackupHeader, BackupSet } from '../../steps/engines/database-backup/backup-set';

export const BASE = 37_000_000_012_300_001n; // > 2^53

export function lsn(offset: bigint | number): string {
  return (BASE + BigInt(offset)).toString();
}

export function header(partial: Partial<BackupHeader> & Pick<BackupHeader, 'backupType' | 'firstLsn' | 'lastLsn'>): BackupHeader {
  return {
    position: 1,
    backupTypeDescription: partial.backupType === 1 ? 'Database' : partial.backupType === 5 ? 'Database Differential' : 'Transaction Log',
    databaseName: 'Octopus',
    serverName: 'SQL01',
    checkpointLsn: partial.firstLsn,
    databaseBackupLsn: '0',
    differentialBaseLsn: null,
    recoveryForkId: 'A1B2C3D4-0000-0000-0000-000000000001',
    firstRecoveryForkId: 'A1B2C3D4-0000-0000-0000-000000000001',
    familyGuid: 'F0000000-0000-0000-0000-000000000001',
    backupStartDate: '2026-11-01T00:00:00.000',
    backupFinishDate: '2026-11-01T00:00:00.000',
    isCopyOnly: false,
    hasBackupChecksums: true,
    compressed: false,
    isDamaged: false,
    backupSize: '1048576',
    compressedBackupSize: '1048576',
    recoveryModel: 'FULL',
    softwareVersionMajor: 16,
    softwareVersionMinor: 0,
    softwareVersionBuild: 4135,
    ...partial,
  };
}

export function set(label: string, h: BackupHeader, extra: Partial<BackupSet> = {}): BackupSet {
  return {
    label,
    files: [{ name: `${label}.bak`, workerPath: `/b/${label}.bak`, serverPath: `D:\\b\\${label}.bak` }],
    missingFiles: [],
    header: h,
    verified: true,
    ...extra,
  };
}

/** A full backup whose checkpoint is its first LSN. */
export function full(label: string, first: number, last: number, finish: string, extra: Partial<BackupHeader> = {}): BackupSet {
  return set(label, header({ backupType: 1, firstLsn: lsn(first), lastLsn: lsn(last), checkpointLsn: lsn(first), backupFinishDate: finish, ...extra }));
}

export function diff(label: string, base: BackupSet, first: number, last: number, finish: string, extra: Partial<BackupHeader> = {}): BackupSet {
  return set(
    label,
    header({ backupType: 5, firstLsn: lsn(first), lastLsn: lsn(last), checkpointLsn: lsn(first), databaseBackupLsn: base.header.checkpointLsn, backupFinishDate: finish, ...extra }),
  );
}

export function log(label: string, first: number, last: number, finish: string, extra: Partial<BackupHeader> = {}): BackupSet {
  return set(label, header({ backupType: 2, firstLsn: lsn(first), lastLsn: lsn(last), backupFinishDate: finish, ...extra }));
}

export function labels(sets: readonly (BackupSet | undefined)[]): string[] {
  return sets.filter((s): s is BackupSet => s !== undefined).map((s) => s.label);
}
