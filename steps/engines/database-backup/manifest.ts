// The backup manifest: a JSON file beside the backup files that says what they hold, so a
// restore (or a person at 3 a.m.) need not guess. It never holds secrets. Written to a temporary
// name and renamed, so a reader never sees half a manifest.
import * as path from 'node:path';
import { openRegularFile, writeFileAtomically } from '../../runtime/files';
import type { BackupHeader } from './backup-set';
import { isLsn } from './lsn';
import type { BackupKind } from './naming';

export const MANIFEST_FORMAT = 'octopus-dr/sql-backup-manifest/v1';

export interface ManifestFile {
  name: string;
  /** The path the SQL Server service wrote. */
  serverPath: string;
  sizeBytes: number | null;
  stripe: number;
}

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  tool: { name: 'octopus-dr'; version: string };
  database: string;
  server: { name: string; version: string; majorVersion: number; edition: string };
  recoveryModel: string;
  backupType: BackupKind;
  copyOnly: boolean;
  compression: boolean;
  /** UTC time the backup was started (also the file-name stamp). */
  takenAt: string;
  durationSeconds: number;
  files: ManifestFile[];
  header: BackupHeader;
  verification: { method: 'RESTORE VERIFYONLY WITH CHECKSUM'; passed: boolean; at: string } | { method: 'none'; passed: false };
  octopusVersion: string | null;
  masterKeyId: string | null;
  /**
   * sys.databases.group_database_id when the database was in an Always On availability group: the
   * same on every replica, so replicas' sets are one origin (origin.ts). Absent in manifests
   * written before it was recorded, null when the database was in no group.
   */
  groupDatabaseId?: string | null;
  /**
   * Transparent data encryption: the certificate in master that protects the database encryption
   * key (thumbprint as hex, and its name there). A restore needs it, with its private key, on the
   * target server. Absent in older manifests, null when the database was not encrypted.
   */
  tde?: { thumbprint: string | null; certificate: string | null } | null;
}

export async function writeManifestAtomically(file: string, manifest: BackupManifest): Promise<void> {
  await writeFileAtomically(file, JSON.stringify(manifest, null, 2) + '\n');
}

/** Something named like a manifest that is a pipe, device, socket or folder: refused at once, never waited on. */
class NotARegularManifest extends Error {
  constructor(file: string, what: string) {
    super(`${file} is not a regular file (${what} with a manifest's name); it is no backup set. Move it out of the backup folder, then run this again.`);
  }
}

/** Reads and checks a manifest; throws an Error naming the file and the problem. */
export async function readManifest(file: string): Promise<BackupManifest> {
  let parsed: unknown;
  try {
    const handle = await openRegularFile(file, (what) => new NotARegularManifest(file, what));
    try {
      parsed = JSON.parse(await handle.readFile('utf8'));
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof NotARegularManifest) throw error;
    throw new Error(`${file} is not a readable backup manifest (${(error as Error).message}).`);
  }
  const m = parsed as Partial<BackupManifest>;
  const problems: string[] = [];
  if (m.format !== MANIFEST_FORMAT) problems.push(`format is not ${MANIFEST_FORMAT}`);
  if (typeof m.database !== 'string') problems.push('no database');
  if (!Array.isArray(m.files) || m.files.length === 0 || m.files.some((f) => typeof f?.name !== 'string' || path.basename(f.name) !== f.name)) {
    problems.push('no valid file list');
  }
  const h = m.header;
  if (!h || !isLsn(h.firstLsn) || !isLsn(h.lastLsn) || !isLsn(h.checkpointLsn) || !isLsn(h.databaseBackupLsn)) problems.push('no valid header LSNs');
  if (problems.length > 0) throw new Error(`${file} is not a valid octopus-dr backup manifest: ${problems.join(', ')}.`);
  return m as BackupManifest;
}
