// The record a backup leaves before BACKUP starts: `.octopus-dr-started-<stem>.json` beside the
// files, naming the run (its lock's holder) and the set's stem. It is written durably (temporary
// name, flush, rename) before SQL Server creates a file, and removed only once the manifest is in
// place (or the files were deleted). So a backup file without a manifest is a killed run's
// leftover only when such a record names its stem and the run it names is gone: that is the only
// backup file the cleanup deletes. A backup file without a manifest and without a record (a DBA
// copied a backup back in, a copy tool keeping its old time) is someone's backup, and is left.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomically } from '../../runtime/files';
import { processIsAlive, processSpace, type LockHolder } from '../../runtime/lock';

export const STARTED_MARKER_FORMAT = 'octopus-dr/sql-backup-started/v1';

export interface StartedMarker {
  format: typeof STARTED_MARKER_FORMAT;
  /** The set's stem: its backup files and its manifest are named from it. */
  stem: string;
  /** The lock the run held (`database-<name>`): only a run holding the same lock judges the record. */
  lockKey: string;
  /** The run: the holder record of its lock (host, process, process space, token). */
  holder: LockHolder;
  /** The backup files the run was about to write. */
  files: string[];
}

const MARKER_PATTERN = /^\.octopus-dr-started-(.+)\.json$/s;

export function startedMarkerName(stem: string): string {
  return `.octopus-dr-started-${stem}.json`;
}

/** The stem a marker's name gives, or undefined for any other name. */
export function stemOfStartedMarker(name: string): string | undefined {
  return MARKER_PATTERN.exec(name)?.[1];
}

/** A marker's temporary file, left by a run killed while writing it (writeFileAtomically's name). */
export function isPartialStartedMarker(name: string): boolean {
  const m = /^\.(.+)\.[0-9a-f]+\.partial$/s.exec(name);
  return m !== null && stemOfStartedMarker(m[1]) !== undefined;
}

export async function writeStartedMarker(directory: string, marker: StartedMarker): Promise<string> {
  const file = path.join(directory, startedMarkerName(marker.stem));
  await writeFileAtomically(file, JSON.stringify(marker, null, 1) + '\n');
  return file;
}

/** Reads a marker; undefined when it is not one this tool wrote for the stem its name gives. */
export async function readStartedMarker(file: string): Promise<StartedMarker | undefined> {
  const stem = stemOfStartedMarker(path.basename(file));
  if (stem === undefined) return undefined;
  try {
    const stat = await fs.lstat(file);
    if (!stat.isFile() || stat.size > 1_000_000) return undefined;
    const value = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<StartedMarker>;
    const h = value.holder;
    if (
      value.format !== STARTED_MARKER_FORMAT ||
      value.stem !== stem ||
      typeof value.lockKey !== 'string' ||
      !Array.isArray(value.files) ||
      !h ||
      h.tool !== 'octopus-dr' ||
      typeof h.host !== 'string' ||
      !Number.isInteger(h.pid) ||
      typeof h.token !== 'string'
    ) {
      return undefined;
    }
    return value as StartedMarker;
  } catch {
    return undefined;
  }
}

/**
 * Whether the run a marker names may still be running, judged by a run that holds the same lock
 * (so the marker's run no longer holds it: it released it, or it was taken over as stale). Only a
 * process on this host, in this process space, that still runs counts as alive (a hung run whose
 * lock was taken over): its files are left alone.
 */
export function markerOwnerMayRun(marker: StartedMarker, host: string, ourToken: string): boolean {
  const { holder } = marker;
  if (holder.token === ourToken) return true;
  const ours = processSpace();
  const sameProcessSpace = !holder.processSpace || !ours || holder.processSpace === ours;
  return holder.host === host && sameProcessSpace && processIsAlive(holder.pid) && holder.pid !== process.pid;
}
