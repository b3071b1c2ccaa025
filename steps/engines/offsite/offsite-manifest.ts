// The offsite record of one set: `<area>/<id>.offsite.json`, uploaded after every file of the set
// (its data files, then its own manifest), so a set is visible offsite only when whole. It lists
// every object with the size and SHA-256 it must have; it never holds a secret.
import { StepFailure } from '../../runtime/errors';
import type { Area } from './sets';

export const OFFSITE_FORMAT = 'octopus-dr/offsite-set';
export const OFFSITE_SUFFIX = '.offsite.json';

export interface OffsiteFileRecord {
  name: string;
  /** The local file. */
  size: number;
  sha256: string;
  /** The object as stored (differs from the local file when encrypted). */
  storedSize: number;
  storedSha256: string;
}

export interface OffsiteEncryption {
  format: 'age';
  /** `passphrase` (scrypt) or `recipient` (X25519 public key, named below). */
  method: 'passphrase' | 'recipient';
  recipients: string[];
}

export interface OffsiteSetRecord {
  format: typeof OFFSITE_FORMAT;
  formatVersion: 1;
  area: Area;
  id: string;
  takenAt: string;
  copiedAt: string;
  toolVersion: string;
  /** The set's own manifest (`.manifest.json`), stored last among the files. */
  manifest: OffsiteFileRecord;
  files: OffsiteFileRecord[];
  encryption: OffsiteEncryption | null;
  /** Every object of the set is locked until then (absent in records written before immutability). */
  immutability?: { mode: 'Governance' | 'Compliance'; until: string } | null;
}

/** When the set's objects are still locked at `now`, the time the lock ends; otherwise undefined. */
export function lockedUntil(record: Pick<OffsiteSetRecord, 'immutability'>, now: Date): string | undefined {
  const until = record.immutability?.until;
  return until && Date.parse(until) > now.getTime() ? until : undefined;
}

export function offsiteRecordKey(area: Area, id: string): string {
  return `${area}/${id}${OFFSITE_SUFFIX}`;
}

const SAFE_NAME = /^[^/\\\0]+$/;

export function parseOffsiteRecord(text: string, where: string): OffsiteSetRecord {
  let value: Partial<OffsiteSetRecord>;
  try {
    value = JSON.parse(text) as Partial<OffsiteSetRecord>;
  } catch (error) {
    throw new StepFailure(`${where} is not valid JSON (${(error as Error).message}).`);
  }
  const files = [value.manifest, ...(Array.isArray(value.files) ? value.files : [])];
  const valid =
    value.format === OFFSITE_FORMAT &&
    value.formatVersion === 1 &&
    (value.area === 'database' || value.area === 'file-store') &&
    typeof value.id === 'string' &&
    Array.isArray(value.files) &&
    value.files.length > 0 &&
    files.every(
      (f) =>
        f &&
        typeof f.name === 'string' &&
        SAFE_NAME.test(f.name) &&
        f.name !== '.' &&
        f.name !== '..' &&
        Number.isSafeInteger(f.size) &&
        Number.isSafeInteger(f.storedSize) &&
        /^[0-9a-f]{64}$/.test(f.sha256) &&
        /^[0-9a-f]{64}$/.test(f.storedSha256),
    );
  if (!valid) throw new StepFailure(`${where} is not a valid octopus-dr offsite record (format ${OFFSITE_FORMAT} version 1).`);
  return value as OffsiteSetRecord;
}
