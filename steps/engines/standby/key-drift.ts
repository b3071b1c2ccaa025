// Master-key drift: the key ID a backup verified differs from the one the newest earlier backup of
// the same database recorded. Every backup taken before the change can only be used with the old
// master key, so that key must be kept as long as those backups are; Back up Octopus says so loudly
// and in output variables. Reads manifests only (loadManifestSets in database-backup/discovery.ts).
import * as path from 'node:path';
import type { BackupManifest } from '../database-backup/manifest';

/** A database backup manifest and where it was read from (a ManifestSet from loadManifestSets fits). */
export interface ManifestRecord {
  manifest: Pick<BackupManifest, 'database' | 'takenAt' | 'masterKeyId' | 'backupType'> & { header?: Pick<BackupManifest['header'], 'databaseName'> };
  manifestPath: string;
}

export interface KeyDriftSet {
  /** The manifest's file name. */
  name: string;
  takenAt: string;
  backupType: string;
  /** The key ID it recorded; null when it recorded none (its key is unknown). */
  masterKeyId: string | null;
}

export interface KeyDrift {
  database: string;
  previousKeyId: string;
  newKeyId: string;
  /** When the newest earlier backup with the previous key ID was taken. */
  previousKeySeenAt: string;
  /** The new backup's time: backups from then on need the new key. */
  newKeySince: string;
  /** Earlier backups of this database that recorded the previous key ID, newest first. */
  setsNeedingPreviousKey: KeyDriftSet[];
  /** Earlier backups that recorded yet another key ID, or none: their key is not the new one either. */
  setsWithOtherKeys: KeyDriftSet[];
  /** The warning for the log (loud) and the result message. Holds key IDs, never keys. */
  warning: string;
}

export interface KeyDriftInput {
  /**
   * The database the new backup is of, as its backup header names it; manifests of other databases
   * in the folder are ignored (matched by their headers' name, exactly: older manifests recorded the
   * connection string's spelling in `database`, and a case-sensitive server may hold `Case` and `case`).
   */
  database: string;
  /** The key ID the new backup verified (the step's VerifiedKeyId). */
  verifiedKeyId: string;
  /** When the new backup was taken; only manifests taken before it count as earlier. */
  takenAt: Date | string;
  /** The folder's manifests, including (or not) the new backup's own: it is not earlier, so it is ignored. */
  manifests: readonly ManifestRecord[];
}

const sameKeyId = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();
const timeOf = (text: string) => Date.parse(text);

function describe(record: ManifestRecord): KeyDriftSet {
  return {
    name: path.basename(record.manifestPath),
    takenAt: record.manifest.takenAt,
    backupType: record.manifest.backupType,
    masterKeyId: record.manifest.masterKeyId ?? null,
  };
}

const SHOWN = 5;

function list(sets: readonly KeyDriftSet[]): string {
  const shown = sets.slice(0, SHOWN).map((s) => `${s.name} (${s.takenAt})`);
  return shown.join(', ') + (sets.length > SHOWN ? ` and ${sets.length - SHOWN} more` : '');
}

/**
 * Drift between the verified key ID and the newest earlier backup of the same database that recorded
 * a key ID; null when they agree or no earlier backup recorded one (nothing to compare with).
 */
export function findKeyDrift(input: KeyDriftInput): KeyDrift | null {
  const newKeyId = input.verifiedKeyId.trim();
  const newAt = input.takenAt instanceof Date ? input.takenAt.getTime() : timeOf(input.takenAt);
  if (!newKeyId || Number.isNaN(newAt)) throw new Error('findKeyDrift needs the verified key ID and the new backup\'s time.');
  const ofThisDatabase = (r: ManifestRecord) =>
    r.manifest.header?.databaseName !== undefined ? r.manifest.header.databaseName === input.database : r.manifest.database.toLowerCase() === input.database.toLowerCase();
  const earlier = input.manifests
    .filter((r) => ofThisDatabase(r) && timeOf(r.manifest.takenAt) < newAt)
    .sort((a, b) => timeOf(b.manifest.takenAt) - timeOf(a.manifest.takenAt));
  const previous = earlier.find((r) => typeof r.manifest.masterKeyId === 'string' && r.manifest.masterKeyId.trim() !== '');
  if (!previous || sameKeyId(previous.manifest.masterKeyId!, newKeyId)) return null;

  const previousKeyId = previous.manifest.masterKeyId!.trim();
  const setsNeedingPreviousKey = earlier.filter((r) => r.manifest.masterKeyId && sameKeyId(r.manifest.masterKeyId, previousKeyId)).map(describe);
  const setsWithOtherKeys = earlier.filter((r) => !r.manifest.masterKeyId || (!sameKeyId(r.manifest.masterKeyId, previousKeyId) && !sameKeyId(r.manifest.masterKeyId, newKeyId))).map(describe);
  const newKeySince = new Date(newAt).toISOString();
  const warning =
    `MASTER KEY CHANGED for database ${input.database}: this backup verified key ID ${newKeyId}, but the previous backup ` +
    `(${describe(previous).name}, taken ${previous.manifest.takenAt}) recorded key ID ${previousKeyId}. ` +
    `The ${setsNeedingPreviousKey.length} backup set(s) taken before ${newKeySince} with key ID ${previousKeyId} can only be restored with that old master key: ` +
    `${list(setsNeedingPreviousKey)}. Keep the old master key (ID ${previousKeyId}) safe, beside the new one, for as long as you keep those backups. ` +
    (setsWithOtherKeys.length > 0 ? `${setsWithOtherKeys.length} older set(s) recorded another key ID or none: ${list(setsWithOtherKeys)}. ` : '') +
    'If nobody changed the master key on purpose, find out why before relying on the new backups.';
  return {
    database: input.database,
    previousKeyId,
    newKeyId,
    previousKeySeenAt: previous.manifest.takenAt,
    newKeySince,
    setsNeedingPreviousKey,
    setsWithOtherKeys,
    warning,
  };
}

/** Output variables for Back up Octopus: set them on every run, so a later step can test `MasterKeyChanged`. */
export function keyDriftOutputs(drift: KeyDrift | null): Record<string, string> {
  return {
    MasterKeyChanged: drift ? 'True' : 'False',
    PreviousKeyId: drift?.previousKeyId ?? '',
    NewKeySince: drift?.newKeySince ?? '',
    SetsNeedingPreviousKey: drift ? drift.setsNeedingPreviousKey.map((s) => s.name).join('\n') : '',
    MasterKeyWarning: drift?.warning ?? '',
  };
}
