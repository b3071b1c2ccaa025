// Backup file names: `<Database>_<FULL|DIFF|LOG>_<UTC yyyyMMddTHHmmssZ>_<6 hex>[_<n>of<N>].bak|.trn`,
// with a manifest `<stem>.manifest.json` beside them. The random part keeps two runs in the same
// second apart; names written before it existed (without it) are still parsed. Names are
// parseable back, so retention can recognise this tool's own files.
import { createHash, randomBytes } from 'node:crypto';

export type BackupKind = 'Full' | 'Differential' | 'Log';

export const KIND_TOKENS: Record<BackupKind, 'FULL' | 'DIFF' | 'LOG'> = { Full: 'FULL', Differential: 'DIFF', Log: 'LOG' };

export function extensionOf(kind: BackupKind): '.bak' | '.trn' {
  return kind === 'Log' ? '.trn' : '.bak';
}

/** `yyyyMMddTHHmmssZ` in UTC. */
export function backupTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function parseBackupTimestamp(stamp: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

// Leaves the longest file name (64 stripes, random part) under 120 characters.
const MAX_NAME_PART = 73;

/**
 * The database name as a file-name part: characters Windows or POSIX refuse in a file name (and
 * control characters) become `_`; a long name is shortened with a hash so two long names stay apart.
 * The manifest keeps the real name.
 */
export function fileNamePart(database: string): string {
  let safe = database.replace(/[\u0000-\u001f\u007f<>:"/\\|?*]/g, '_').replace(/[. ]+$/, (m) => '_'.repeat(m.length));
  if (safe === '' || /^\.+$/.test(safe)) safe = '_';
  if (safe.length > MAX_NAME_PART) {
    const hash = createHash('sha256').update(database, 'utf8').digest('hex').slice(0, 8);
    safe = `${safe.slice(0, MAX_NAME_PART - 9)}~${hash}`;
  }
  return safe;
}

export interface BackupSetNames {
  /** `<Database>_<TYPE>_<stamp>`: the stem shared by the set's files and its manifest. */
  stem: string;
  files: string[];
  manifest: string;
}

/** The random part of a set name: 6 lower-case hex characters. */
export function randomNamePart(): string {
  return randomBytes(3).toString('hex');
}

export function backupSetNames(database: string, kind: BackupKind, when: Date, stripes: number, unique: string = randomNamePart()): BackupSetNames {
  if (!Number.isInteger(stripes) || stripes < 1 || stripes > 64) throw new Error(`Stripes must be 1 to 64, not ${stripes}.`);
  if (!/^[0-9a-f]{6}$/.test(unique)) throw new Error(`The unique part of a backup name must be 6 hex characters, not ${unique}.`);
  const stem = `${fileNamePart(database)}_${KIND_TOKENS[kind]}_${backupTimestamp(when)}_${unique}`;
  const extension = extensionOf(kind);
  const files =
    stripes === 1
      ? [`${stem}${extension}`]
      : Array.from({ length: stripes }, (_, i) => `${stem}_${i + 1}of${stripes}${extension}`);
  return { stem, files, manifest: `${stem}.manifest.json` };
}

export interface ParsedBackupFileName {
  stem: string;
  databasePart: string;
  kind: BackupKind;
  when: Date;
  stripe: number;
  stripes: number;
}

// The random part is optional: sets written before it was added have none.
// `s`: the database part may hold U+2028 or U+2029, which fileNamePart keeps and `.` would not match.
const FILE_PATTERN = /^(.+)_(FULL|DIFF|LOG)_(\d{8}T\d{6}Z)(_[0-9a-f]{6})?(?:_(\d{1,2})of(\d{1,2}))?\.(bak|trn)$/is;

/** Parses a name this tool wrote; undefined for anything else. */
export function parseBackupFileName(name: string): ParsedBackupFileName | undefined {
  const m = FILE_PATTERN.exec(name);
  if (!m) return undefined;
  const when = parseBackupTimestamp(m[3]);
  if (!when) return undefined;
  const kind = (Object.keys(KIND_TOKENS) as BackupKind[]).find((k) => KIND_TOKENS[k] === m[2].toUpperCase())!;
  if ((kind === 'Log') !== (m[7].toLowerCase() === 'trn')) return undefined;
  const stripe = m[5] === undefined ? 1 : Number(m[5]);
  const stripes = m[6] === undefined ? 1 : Number(m[6]);
  if (stripes < 1 || stripes > 64 || stripe < 1 || stripe > stripes || (m[5] !== undefined && stripes < 2)) return undefined;
  return { stem: `${m[1]}_${m[2]}_${m[3]}${m[4] ?? ''}`, databasePart: m[1], kind, when, stripe, stripes };
}

const MANIFEST_PATTERN = /_(FULL|DIFF|LOG)_(\d{8}T\d{6}Z)(?:_[0-9a-f]{6})?\.manifest\.json$/i;

export function isManifestName(name: string): boolean {
  return MANIFEST_PATTERN.test(name);
}

/** The database part of a manifest's name (`fileNamePart` of its database), or undefined for a name not ours. */
export function manifestDatabasePartOf(name: string): string | undefined {
  return /^(.+)_(?:FULL|DIFF|LOG)_\d{8}T\d{6}Z(?:_[0-9a-f]{6})?\.manifest\.json$/is.exec(name)?.[1];
}

/** The set stem a manifest's name gives (`<database part>_<TYPE>_<stamp>[_<6 hex>]`): its backup files are named from it. */
export function manifestStemOf(name: string): string | undefined {
  return isManifestName(name) ? name.replace(/\.manifest\.json$/i, '') : undefined;
}

/** The UTC stamp (`20261201T013000Z`) in a manifest's name, with or without the random part. */
export function manifestStampOf(name: string): string | undefined {
  return MANIFEST_PATTERN.exec(name)?.[2];
}

/** Joins a directory and a file name with the separator the directory already uses (SQL Server on Windows or Linux). */
export function joinServerPath(directory: string, name: string, separator?: string): string {
  const sep = separator ?? (directory.includes('\\') || /^[A-Za-z]:/.test(directory) ? '\\' : '/');
  return directory.endsWith('\\') || directory.endsWith('/') ? directory + name : directory + sep + name;
}

/** Database file names for a restored copy, named after the target so a copy beside the original never collides. */
export function relocatedFileName(target: string, type: 'D' | 'L' | 'S' | 'F', ordinal: number): string {
  const base = fileNamePart(target);
  if (type === 'L') return ordinal === 1 ? `${base}_log.ldf` : `${base}_log${ordinal}.ldf`;
  if (type === 'D') return ordinal === 1 ? `${base}.mdf` : `${base}_${ordinal}.ndf`;
  return `${base}_${type === 'S' ? 'fs' : 'ft'}${ordinal}`;
}
