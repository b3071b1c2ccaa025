// Finding backup sets in a folder: this tool's manifests first (they say which files belong
// together and hold the header facts), then any other backup files, grouped by our stripe naming.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BackupFile, BackupSet } from './backup-set';
import { readManifest, type BackupManifest } from './manifest';
import { fileNamePart, isManifestName, joinServerPath, manifestStampOf, parseBackupFileName } from './naming';
import { cleanLeftovers } from '../../runtime/leftovers';

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
  };
}

/** Every readable octopus-dr manifest in the folder; unreadable ones are reported, not fatal. */
export async function loadManifestSets(location: FolderLocation, warn: (message: string) => void): Promise<ManifestSet[]> {
  const names = (await fs.readdir(location.workerDirectory)).filter(isManifestName).sort();
  const result: ManifestSet[] = [];
  for (const name of names) {
    const manifestPath = path.join(location.workerDirectory, name);
    try {
      const manifest = await readManifest(manifestPath);
      result.push({ set: await setFromManifest(manifestPath, manifest, location), manifest, manifestPath });
    } catch (error) {
      warn(`Skipping ${name}: ${(error as Error).message}`);
    }
  }
  return result;
}

export interface FileGroup {
  label: string;
  files: BackupFile[];
  missingFiles: string[];
}

/** Backup files no manifest accounts for, grouped into media sets by our `_<n>of<N>` naming. */
export async function looseBackupFiles(location: FolderLocation, claimed: ReadonlySet<string>): Promise<FileGroup[]> {
  const names = (await fs.readdir(location.workerDirectory)).filter((n) => /\.(bak|trn)$/i.test(n) && !claimed.has(n)).sort();
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

/**
 * What a killed backup leaves in the folder: a manifest never renamed into place, and backup files
 * named as this tool names them with no manifest (SQL Server writes the final name from the start,
 * so only the manifest, written last, marks a set complete). Each is named; it is deleted once
 * nothing has written to it for the age guard, so a concurrent backup's files are never touched.
 */
export async function cleanBackupLeftovers(workerDirectory: string, now: Date, log: { warn(message: string): void }): Promise<void> {
  const names = new Set(await fs.readdir(workerDirectory));
  const claimed = new Set<string>();
  for (const name of names) {
    if (!isManifestName(name)) continue;
    const manifest = await readManifest(path.join(workerDirectory, name)).catch(() => undefined);
    for (const f of manifest?.files ?? []) claimed.add(f.name);
  }
  const isPartialManifest = (name: string) => {
    const m = /^\.(.+\.manifest\.json)\.[0-9a-f]+\.partial$/.exec(name);
    return m !== null && isManifestName(m[1]);
  };
  const isUnfinishedBackup = (name: string) => {
    const parsed = parseBackupFileName(name);
    return parsed !== undefined && !claimed.has(name) && !names.has(`${parsed.stem}.manifest.json`);
  };
  await cleanLeftovers(workerDirectory, isPartialManifest, 'a database backup', now, log);
  await cleanLeftovers(workerDirectory, isUnfinishedBackup, 'a database backup (a backup file without its manifest)', now, log);
}

/**
 * Manifests of `database` in the folder, newer (by the stamp in their name) than `stamp`, that
 * cannot be read: each one a backup a restore of "the newest" silently passed over.
 */
export async function unreadableManifestsNewerThan(workerDirectory: string, database: string, stamp: string): Promise<string[]> {
  const prefix = `${fileNamePart(database)}_`;
  const found: string[] = [];
  for (const name of (await fs.readdir(workerDirectory)).filter(isManifestName).sort()) {
    const nameStamp = manifestStampOf(name);
    if (!name.startsWith(prefix) || !nameStamp || nameStamp <= stamp) continue;
    const problem = await readManifest(path.join(workerDirectory, name)).then(
      () => undefined,
      (error: Error) => error.message,
    );
    if (problem) found.push(problem);
  }
  return found;
}
