// Finding backup sets in a folder: this tool's manifests first (they say which files belong
// together and hold the header facts), then any other backup files, grouped by our stripe naming.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BackupFile, BackupSet } from './backup-set';
import { readManifest, type BackupManifest } from './manifest';
import { fileNamePart, isManifestName, joinServerPath, manifestDatabasePartOf, manifestStampOf, manifestStemOf, parseBackupFileName } from './naming';
import { cleanLeftovers } from '../../runtime/leftovers';
import { isPartialStartedMarker, markerOwnerMayRun, readStartedMarker, startedMarkerName, stemOfStartedMarker } from './started-marker';

export interface ManifestSet {
  set: BackupSet;
  manifest: BackupManifest;
  manifestPath: string;
}

export interface FolderLocation {
  /** The folder as this worker sees it. */
  workerDirectory: string;
  /** The same folder as SQL Server sees it. */
  serverDirectory: string;
  serverSeparator?: '\\' | '/';
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile(), () => false);
}

export function fileIn(location: FolderLocation, name: string): BackupFile {
  return {
    name,
    workerPath: path.join(location.workerDirectory, name),
    serverPath: joinServerPath(location.serverDirectory, name, location.serverSeparator),
  };
}

/** A set described by a manifest, with the files it lists checked for presence. */
export async function setFromManifest(manifestPath: string, manifest: BackupManifest, location: FolderLocation): Promise<BackupSet> {
  const files: BackupFile[] = [];
  const missingFiles: string[] = [];
  for (const f of [...manifest.files].sort((a, b) => a.stripe - b.stripe)) {
    const file = fileIn(location, f.name);
    if (await exists(file.workerPath)) files.push(file);
    else missingFiles.push(f.name);
  }
  return {
    label: path.basename(manifestPath),
    files,
    missingFiles,
    header: manifest.header,
    manifestPath,
    verified: manifest.verification.passed,
    masterKeyId: manifest.masterKeyId ?? null,
    groupDatabaseId: manifest.groupDatabaseId ?? null,
    tde: manifest.tde ?? null,
  };
}

/**
 * Every readable octopus-dr manifest in the folder; unreadable ones are reported, not fatal, and
 * their names given to `skipped` when asked (from the same listing). A manifest that lists backup
 * files of another set (a copy of another set's manifest put in its place), or names another
 * database than its name says, is not this set's: it is reported and skipped like a damaged one,
 * so that nothing takes another set's files for its own (retention would delete them with it).
 */
export async function loadManifestSets(location: FolderLocation, warn: (message: string) => void, skipped?: string[]): Promise<ManifestSet[]> {
  const names = (await fs.readdir(location.workerDirectory)).filter(isManifestName).sort();
  const result: ManifestSet[] = [];
  for (const name of names) {
    const manifestPath = path.join(location.workerDirectory, name);
    try {
      const manifest = await readManifest(manifestPath);
      refuseAnotherSetsManifest(name, manifest);
      result.push({ set: await setFromManifest(manifestPath, manifest, location), manifest, manifestPath });
    } catch (error) {
      warn(`Skipping ${name}: ${(error as Error).message}`);
      skipped?.push(name);
    }
  }
  return result;
}

/** Throws when a manifest is not the one its name says: its files belong to another set, or its database is another. */
export function refuseAnotherSetsManifest(name: string, manifest: BackupManifest): void {
  const stem = manifestStemOf(name);
  const foreign = manifest.files.find((f) => parseBackupFileName(f.name)?.stem !== stem);
  if (foreign) {
    throw new Error(
      `it lists ${foreign.name}, which is not a file of this set (${stem}): it is another set's manifest, or was edited. Put back the set's own manifest, or move this one out of the backup folder`,
    );
  }
  if (manifestDatabasePartOf(name) !== fileNamePart(manifest.database)) {
    throw new Error(`it is a manifest of the database ${manifest.database}, which its name does not say: it was renamed or edited. Put back the set's own manifest, or move this one out of the backup folder`);
  }
}

/**
 * Whether a manifest's name says it may be one of `database`'s: the same file-name part, not only a
 * prefix of it, as a collation that ignores case and accents would compare them (older sets were
 * named as the connection string spelled the database, and the server may have matched `İzmir`
 * to `izmir` or `Straße` to `STRASSE`). A long name ends in a hash of its exact spelling, so there
 * only the part before the hash is compared. For keeping and warning, never for deleting.
 */
export function isManifestOf(name: string, database: string): boolean {
  const part = manifestDatabasePartOf(name);
  if (part === undefined) return false;
  const [ours, theirs] = [part, fileNamePart(database)].map(loosely);
  if (!ours.hashed && !theirs.hashed) return ours.key === theirs.key;
  // Both long (a spelling differs only in case or accents), the same up to where the shorter ends.
  const length = Math.min(ours.key.length, theirs.key.length);
  return length >= LONG_KEY && ours.key.slice(0, length) === theirs.key.slice(0, length);
}

/** Shorter than this, a folded name cannot be a spelling of one long enough to be hashed (64 characters kept). */
const LONG_KEY = 56;

const HASHED_PART = /^(.+)~[0-9a-f]{8}$/s;

/** A file-name part folded as loosely as any collation could compare it, without its hash. */
function loosely(part: string): { key: string; hashed: boolean } {
  const hashed = HASHED_PART.exec(part);
  const text = hashed ? hashed[1] : part;
  const key = text.toUpperCase().toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').replace(/ı/g, 'i');
  return { key, hashed: hashed !== null };
}

export interface FileGroup {
  label: string;
  files: BackupFile[];
  missingFiles: string[];
}

/** Backup files no manifest accounts for (and no unfinished backup's), grouped into media sets by our `_<n>of<N>` naming. */
export async function looseBackupFiles(location: FolderLocation, claimed: ReadonlySet<string>): Promise<FileGroup[]> {
  const listed = await fs.readdir(location.workerDirectory);
  const present = new Set(listed);
  // A backup file a run recorded starting and never finished (no manifest) is being written, or a
  // killed run's leftover: never read as a backup.
  const unfinished = (name: string) => {
    const stem = parseBackupFileName(name)?.stem;
    return stem !== undefined && present.has(startedMarkerName(stem)) && !present.has(`${stem}.manifest.json`);
  };
  const names = listed.filter((n) => /\.(bak|trn)$/i.test(n) && !claimed.has(n) && !unfinished(n)).sort();
  const groups = new Map<string, FileGroup>();
  for (const name of names) {
    const parsed = parseBackupFileName(name);
    if (!parsed || parsed.stripes === 1) {
      groups.set(name, { label: name, files: [fileIn(location, name)], missingFiles: [] });
      continue;
    }
    const key = `${parsed.stem}#${parsed.stripes}`;
    if (groups.has(key)) continue;
    const extension = path.extname(name);
    const files: BackupFile[] = [];
    const missingFiles: string[] = [];
    for (let i = 1; i <= parsed.stripes; i++) {
      const stripe = `${parsed.stem}_${i}of${parsed.stripes}${extension}`;
      if (names.includes(stripe)) files.push(fileIn(location, stripe));
      else missingFiles.push(stripe);
    }
    groups.set(key, { label: `${parsed.stem}${extension} (${parsed.stripes} files)`, files, missingFiles });
  }
  return [...groups.values()];
}

/** The run that cleans: it holds the lock `lockKey` (as `token`) on `host`. */
export interface CleaningRun {
  lockKey: string;
  token: string;
  host: string;
}

/**
 * What a killed backup leaves in the folder, cleaned by a backup holding the database's lock: a
 * manifest (or a record of a start) never renamed into place, deleted once nothing has written to
 * it for the age guard; and the backup files a killed run of this database started, which its
 * record of the start names (started-marker.ts), deleted once that run is gone and nothing has
 * written to them for the age guard, then the record itself. A backup file named as this tool
 * names them but with neither a manifest nor such a record is not proven a leftover (a backup copied
 * back in keeps its old time): it is named in one warning and left alone. Nothing here is read as a backup.
 */
export async function cleanBackupLeftovers(workerDirectory: string, now: Date, log: { warn(message: string): void; verbose?(message: string): void }, run: CleaningRun): Promise<void> {
  const names = new Set(await fs.readdir(workerDirectory));
  const claimed = new Set<string>();
  for (const name of names) {
    if (!isManifestName(name)) continue;
    const manifest = await readManifest(path.join(workerDirectory, name)).catch(() => undefined);
    for (const f of manifest?.files ?? []) claimed.add(f.name);
  }
  const isPartial = (name: string) => {
    if (isPartialStartedMarker(name)) return true;
    const m = /^\.(.+\.manifest\.json)\.[0-9a-f]+\.partial$/.exec(name);
    return m !== null && isManifestName(m[1]);
  };
  await cleanLeftovers(workerDirectory, isPartial, 'a database backup', now, log);

  // The records of backups that started: whose files were a killed run's (of this database).
  const killed = new Set<string>();
  const accounted = new Set<string>();
  for (const name of [...names].sort()) {
    const stem = stemOfStartedMarker(name);
    if (stem === undefined) continue;
    const file = path.join(workerDirectory, name);
    accounted.add(stem);
    if (names.has(`${stem}.manifest.json`)) {
      // Killed between writing the manifest and removing the record: the set is complete.
      await fs.rm(file, { force: true }).then(
        () => log.verbose?.(`Removed ${file}: its backup ${stem}.manifest.json is complete.`),
        () => undefined,
      );
      continue;
    }
    const marker = await readStartedMarker(file);
    if (!marker) {
      log.warn(
        `${file} is named as octopus-dr's record that a backup started, but is not one (damaged or edited), so the backup files named ${stem}* are left alone. ` +
          'If no backup of that name is needed, delete them and this file.',
      );
      continue;
    }
    if (marker.lockKey !== run.lockKey) continue; // Another database's run: its next backup judges it.
    if (markerOwnerMayRun(marker, run.host, run.token)) {
      log.warn(`${file} records a backup by process ${marker.holder.pid} on ${marker.holder.host}, which still runs; its files are left alone.`);
      continue;
    }
    killed.add(stem);
  }
  const isKilledRunFile = (name: string) => {
    const parsed = parseBackupFileName(name);
    return parsed !== undefined && killed.has(parsed.stem) && !claimed.has(name) && !names.has(`${parsed.stem}.manifest.json`);
  };
  await cleanLeftovers(workerDirectory, isKilledRunFile, 'a database backup (its record of starting names it, and it has no manifest)', now, log);
  const left = await fs.readdir(workerDirectory).catch(() => [...names]);
  for (const stem of killed) {
    if (left.some((n) => parseBackupFileName(n)?.stem === stem)) continue; // Too young yet, or not deletable: the next run.
    const file = path.join(workerDirectory, startedMarkerName(stem));
    await fs.rm(file, { force: true }).then(
      () => log.warn(`Deleted ${file}, the record of a backup that was stopped before it finished; its backup files are gone.`),
      (error: NodeJS.ErrnoException) => log.warn(`${file} records a backup that was stopped before it finished, but cannot be deleted (${error.code ?? error.message}); delete it.`),
    );
  }

  const unproven = [...names]
    .filter((name) => {
      const parsed = parseBackupFileName(name);
      return parsed !== undefined && !claimed.has(name) && !names.has(`${parsed.stem}.manifest.json`) && !accounted.has(parsed.stem);
    })
    .sort();
  if (unproven.length > 0) {
    const one = unproven.length === 1;
    log.warn(
      `${unproven.map((n) => path.join(workerDirectory, n)).join(', ')} ${one ? 'is a backup file' : 'are backup files'} named as octopus-dr names them, with no manifest and no record that an octopus-dr backup started ${one ? 'it' : 'them'}, ` +
        `so ${one ? 'it is' : 'they are'} left alone: it may be a backup copied here to restore from (Restore SQL Database restores a backup file named as its source, without a manifest), ` +
        'or what a backup killed before octopus-dr recorded backups as they started left. ' +
        `Move ${one ? 'it' : 'them'} out of this folder once no restore needs ${one ? 'it' : 'them'}; no backup or retention deletes ${one ? 'it' : 'them'}.`,
    );
  }
}

/**
 * Manifests of `database` in the folder, newer (by the stamp in their name) than `stamp`, that
 * cannot be read: each one a backup a restore of "the newest" silently passed over.
 */
export async function unreadableManifestsNewerThan(workerDirectory: string, database: string, stamp: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of (await fs.readdir(workerDirectory)).filter(isManifestName).sort()) {
    const nameStamp = manifestStampOf(name);
    if (!isManifestOf(name, database) || !nameStamp || nameStamp <= stamp) continue;
    const problem = await readManifest(path.join(workerDirectory, name)).then(
      () => undefined,
      (error: Error) => error.message,
    );
    if (problem) found.push(problem);
  }
  return found;
}
