// What RESTORE HEADERONLY says about a backup set, normalised: LSNs as exact decimal strings,
// times as ISO-8601 text in the SQL Server's local time (as SQL Server records them).
import type { Lsn } from './lsn';
import type { BackupKind } from './naming';

export interface BackupHeader {
  position: number;
  /** 1 database, 2 log, 5 differential database (HEADERONLY BackupType). */
  backupType: number;
  backupTypeDescription: string;
  databaseName: string;
  serverName: string;
  firstLsn: Lsn;
  lastLsn: Lsn;
  checkpointLsn: Lsn;
  databaseBackupLsn: Lsn;
  differentialBaseLsn: Lsn | null;
  recoveryForkId: string | null;
  firstRecoveryForkId: string | null;
  familyGuid: string | null;
  /** `YYYY-MM-DDTHH:mm:ss.mmm`, server local time. */
  backupStartDate: string;
  backupFinishDate: string;
  isCopyOnly: boolean;
  hasBackupChecksums: boolean;
  compressed: boolean;
  isDamaged: boolean;
  /** Bytes, as decimal text. */
  backupSize: string;
  compressedBackupSize: string | null;
  recoveryModel: string;
  softwareVersionMajor: number;
  softwareVersionMinor: number;
  softwareVersionBuild: number;
}

export interface BackupFile {
  /** File name, e.g. `Octopus_FULL_20261127T033000Z_1of2.bak`. */
  name: string;
  /** Where this worker reads it (existence, size, deletion). */
  workerPath: string;
  /** Where the SQL Server service reads it (`FROM DISK =`). */
  serverPath: string;
}

/** One backup set: the media family files that hold it and its header. */
export interface BackupSet {
  /** Stable label for messages: the manifest or first file name. */
  label: string;
  files: BackupFile[];
  /** Files the set needs that are not present (stripes), by name. */
  missingFiles: string[];
  header: BackupHeader;
  manifestPath?: string;
  /** True when the manifest records a successful RESTORE VERIFYONLY. */
  verified?: boolean;
  /** The master key ID the manifest records (the key the restored database needs). */
  masterKeyId?: string | null;
  /** The availability-group database ID the manifest records (origin.ts). */
  groupDatabaseId?: string | null;
  /** TDE: the certificate the manifest records (thumbprint hex, name); null when not encrypted or not recorded. */
  tde?: { thumbprint: string | null; certificate: string | null } | null;
}

export function kindOf(header: Pick<BackupHeader, 'backupType'>): BackupKind | undefined {
  switch (header.backupType) {
    case 1:
      return 'Full';
    case 5:
      return 'Differential';
    case 2:
      return 'Log';
    default:
      return undefined;
  }
}

/** Normalises a server-local time text (`2026-11-27 03:15:00`, `2026-11-27T03:15:00.5`) to `YYYY-MM-DDTHH:mm:ss.mmm`. */
export function normaliseLocalTime(text: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s = '00', frac = ''] = m;
  const date = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s));
  if (date.getUTCFullYear() !== +y || date.getUTCMonth() !== +mo - 1 || date.getUTCDate() !== +d || +h > 23 || +mi > 59 || +s > 59) {
    return undefined;
  }
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${(frac + '000').slice(0, 3)}`;
}
