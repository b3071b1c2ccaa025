// The simulator's backup file format (ours, not Microsoft's MTF): a file is a sequence of backup
// sets; each record is
//   "SQLSIMBK" | u32 header length | header JSON | u32 body length | body | sha256(header+body)
// The header holds what RESTORE HEADERONLY/FILELISTONLY return; the body (this stripe's slice of
// the database content and, for log backups, the log records) is what RESTORE brings back. The
// checksum lets VERIFYONLY and RESTORE detect a damaged file.
import { createHash } from 'node:crypto';
import type { DatabaseContent, DatabaseFile, RecoveryModel } from './model';

const MAGIC = Buffer.from('SQLSIMBK');

export interface BackupSetHeader {
  position: number;
  familyCount: number;
  familySequence: number;
  mediaSetId: string;
  backupName: string | null;
  backupDescription: string | null;
  /** 1 full, 2 log, 5 differential. */
  backupType: 1 | 2 | 5;
  compressed: boolean;
  serverName: string;
  machineName: string;
  databaseName: string;
  databaseCreationDate: string;
  backupSize: number;
  compressedBackupSize: number;
  firstLsn: string;
  lastLsn: string;
  checkpointLsn: string;
  databaseBackupLsn: string;
  differentialBaseLsn: string | null;
  backupStartDate: string;
  backupFinishDate: string;
  softwareVersionMajor: number;
  softwareVersionMinor: number;
  softwareVersionBuild: number;
  recoveryForkId: string;
  familyGuid: string;
  backupSetGuid: string;
  collation: string;
  hasBackupChecksums: boolean;
  isCopyOnly: boolean;
  recoveryModel: RecoveryModel;
  files: DatabaseFile[];
  /** TDE: the thumbprint (hex) of the certificate that protects the database encryption key; a restore needs it in master. */
  tdeThumbprint?: string | null;
}

export interface BackupBody {
  content: DatabaseContent;
  /** Log backups: the committed changes they cover, oldest first. */
  log?: { lsn: string; at: string; content: DatabaseContent }[];
}

export interface BackupRecord {
  header: BackupSetHeader;
  body: Buffer;
  checksumOk: boolean;
}

export function encodeRecord(header: BackupSetHeader, body: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const lengths = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const digest = createHash('sha256').update(h).update(body).digest();
  return Buffer.concat([MAGIC, lengths(h.length), h, lengths(body.length), body, digest]);
}

/** Parses a file; throws 'malformed' when it is not (or no longer) in our format. */
export function decodeFile(data: Buffer): BackupRecord[] {
  const records: BackupRecord[] = [];
  let at = 0;
  while (at < data.length) {
    if (data.length - at < 16 || !data.subarray(at, at + 8).equals(MAGIC)) throw new Error('malformed');
    const headerLength = data.readUInt32LE(at + 8);
    const headerStart = at + 12;
    if (headerStart + headerLength + 4 > data.length) throw new Error('malformed');
    let header: BackupSetHeader;
    try {
      header = JSON.parse(data.subarray(headerStart, headerStart + headerLength).toString('utf8')) as BackupSetHeader;
    } catch {
      throw new Error('malformed');
    }
    const bodyLength = data.readUInt32LE(headerStart + headerLength);
    const bodyStart = headerStart + headerLength + 4;
    if (bodyStart + bodyLength + 32 > data.length) throw new Error('malformed');
    const body = data.subarray(bodyStart, bodyStart + bodyLength);
    const digest = data.subarray(bodyStart + bodyLength, bodyStart + bodyLength + 32);
    const expected = createHash('sha256').update(data.subarray(headerStart, headerStart + headerLength)).update(body).digest();
    records.push({ header, body: Buffer.from(body), checksumOk: expected.equals(digest) });
    at = bodyStart + bodyLength + 32;
  }
  if (records.length === 0) throw new Error('malformed');
  return records;
}
