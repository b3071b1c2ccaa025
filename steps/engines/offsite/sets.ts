// The local backup sets a copy can send: found by the engines that wrote them (database
// manifests, file-store manifests), never by re-parsing names here.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { loadManifestSets } from '../database-backup/discovery';
import { listBackupSets, madeAt, manifestNameFor, MANIFEST_ENTRY_NAME } from '../file-store/manifest';

export type Area = 'database' | 'file-store';

export interface LocalFile {
  name: string;
  path: string;
}

export interface LocalSet {
  area: Area;
  /** The set's stem, shared by its files offsite: `<Database>_FULL_<stamp>` or `octopus-file-store-<stamp>-full`. */
  id: string;
  manifest: LocalFile;
  /** The data files (stripes, or the archive). */
  files: LocalFile[];
  /** When it was taken (UTC ISO), to send oldest first. */
  takenAt: string;
  /** Why it is not sent, when it is not complete and verified. */
  notReady?: string;
}

export async function databaseSets(directory: string, warn: (m: string) => void): Promise<LocalSet[]> {
  const found = await loadManifestSets({ workerDirectory: directory, serverDirectory: directory }, warn);
  return found.map(({ set, manifest, manifestPath }) => {
    const manifestName = path.basename(manifestPath);
    return {
      area: 'database' as const,
      id: manifestName.replace(/\.manifest\.json$/i, ''),
      manifest: { name: manifestName, path: manifestPath },
      files: manifest.files.map((f) => ({ name: f.name, path: path.join(directory, f.name) })),
      takenAt: manifest.takenAt,
      notReady:
        set.missingFiles.length > 0
          ? `${set.missingFiles.join(', ')} missing`
          : !manifest.verification.passed
            ? 'not verified (the backup ran without Verify, or verification failed)'
            : undefined,
    };
  });
}

export async function fileStoreSets(directory: string): Promise<{ sets: LocalSet[]; ignored: string[] }> {
  const { sets, ignored } = await listBackupSets(directory);
  const result: LocalSet[] = [];
  for (const set of sets) {
    const present = await fs.stat(set.archivePath).then((s) => s.isFile(), () => false);
    const archive = set.manifest.archive;
    const manifestName = manifestNameFor(archive);
    // A set read through the manifest inside its archive has no manifest file to send: offsite,
    // the archive would stand as its manifest, and retention there could no longer read the area.
    const noManifest =
      set.manifestPath === set.archivePath
        ? `no manifest beside its archive; put back ${manifestName} from the copy inside the archive (for example: unzip -p ${archive} ${MANIFEST_ENTRY_NAME} > ${manifestName}) so that the set can be copied`
        : undefined;
    result.push({
      area: 'file-store',
      id: set.manifest.archive.replace(/\.zip$/, ''),
      manifest: { name: path.basename(set.manifestPath), path: set.manifestPath },
      files: [{ name: set.manifest.archive, path: set.archivePath }],
      // The later of the time in its name and its creation time, as retention ages a set (madeAt).
      takenAt: new Date(madeAt(set.manifest)).toISOString(),
      notReady: present ? noManifest : `${archive} missing`,
    });
  }
  return { sets: result, ignored };
}
