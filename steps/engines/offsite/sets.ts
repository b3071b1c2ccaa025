// The local backup sets a copy can send: found by the engines that wrote them (database
// manifests, file-store manifests), never by re-parsing names here.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { kindOf, type BackupSet } from '../database-backup/backup-set';
import { earlierSetsNeeded } from '../database-backup/chain';
import { loadManifestSets } from '../database-backup/discovery';
import type { BackupManifest } from '../database-backup/manifest';
import { originOf } from '../database-backup/origin';
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
  /**
   * The ids of the earlier sets of its area that restoring it needs (a full, differential and earlier
   * logs; the archives an incremental refers to), as far as this folder shows them. Copy Offsite
   * checks that those already offsite open with the current key (copy.ts, chainKeyProblem).
   */
  chain?: string[];
  /**
   * A full backup (starts a chain), and what its chains are of (the database, by name and origin; the
   * file store): a newer full of the same supersedes an older chain.
   */
  full?: { of: string; is: boolean };
}

const idOfManifest = (manifestName: string) => manifestName.replace(/\.manifest\.json$/i, '');

/**
 * The earlier sets `set` needs, by the backup headers: the chain a restore up to its end would take
 * (selectChain). When that chain cannot be made here (a log missing, a stripe gone), at least the
 * full its header names as its base (DatabaseBackupLSN = the full's CheckpointLSN).
 */
function databaseChainOf(set: BackupSet, all: readonly BackupSet[]): string[] {
  return earlierSetsNeeded(set, all).map((m) => idOfManifest(m.label));
}

/**
 * What a database set's chains are of: the database by name and by origin (origin.ts: the server and
 * family GUID, or the availability-group database and family GUID), so that only a newer full of the
 * same database on the same server supersedes an older chain (copy.ts). Before, by name alone,
 * staging's newer full of its own 'Octopus' in a shared folder made production's newest differential
 * "superseded" after a key change, and it was never sent offsite (red team 39). A set whose origin is
 * not recorded is of its own: nothing supersedes it, nor does it supersede anything.
 */
function databaseChainsOf(set: BackupSet, manifest: BackupManifest, manifestName: string): string {
  const origin = originOf({ manifest });
  const name = `database ${set.header.databaseName}`;
  if (origin.server === null || origin.familyGuid === null) return `${name}, origin unknown (${manifestName})`;
  const family = origin.familyGuid.toLowerCase();
  return origin.groupDatabaseId ? `${name}, availability-group database ${origin.groupDatabaseId.toLowerCase()}, family ${family}` : `${name}, on ${origin.server.toLowerCase()}, family ${family}`;
}

/** The database sets in `directory`; the names of manifests that cannot be read go to `skipped` (each also warned about). */
export async function databaseSets(directory: string, warn: (m: string) => void, skipped?: string[]): Promise<LocalSet[]> {
  const found = await loadManifestSets({ workerDirectory: directory, serverDirectory: directory }, warn, skipped);
  const all = found.map((f) => f.set);
  return found.map(({ set, manifest, manifestPath }) => {
    const manifestName = path.basename(manifestPath);
    return {
      area: 'database' as const,
      id: idOfManifest(manifestName),
      chain: databaseChainOf(set, all),
      full: { of: databaseChainsOf(set, manifest, manifestName), is: kindOf(set.header) === 'Full' },
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

/** The file-store sets in `directory`; `ignored` says why each set that cannot be read was left out, `unreadable` names the file read for it (its manifest, or the archive when none is beside it). */
export async function fileStoreSets(directory: string): Promise<{ sets: LocalSet[]; ignored: string[]; unreadable: string[] }> {
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
      chain: set.manifest.chain.filter((a) => a !== archive).map((a) => a.replace(/\.zip$/, '')),
      full: { of: 'file store', is: set.manifest.mode === 'Full' },
    });
  }
  // Each reason starts with the file that was read ("<manifest or archive>: why").
  return { sets: result, ignored, unreadable: ignored.map((why) => why.slice(0, why.indexOf(': '))) };
}
