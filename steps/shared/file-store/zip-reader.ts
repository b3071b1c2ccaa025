// Streaming ZIP (ZIP64) reader over yauzl: reads the central directory, checks every entry
// (zip-slip, links, encryption, duplicates) before any data is read, and opens entries for
// reading concurrently, each with constant memory.
import type { Readable } from 'node:stream';
import * as yauzl from 'yauzl';
import { unsafeEntryNameReason, unsafeEntryTypeReason, unixModeOf } from './entry-safety';

export interface ArchiveEntry {
  name: string;
  isDirectory: boolean;
  size: number;
  compressedSize: number;
  /** Permission bits from the Unix attributes, when the archive was made on Unix. */
  mode?: number;
  raw: yauzl.Entry;
}

export interface OpenedArchive {
  path: string;
  entries: Map<string, ArchiveEntry>;
  /** Every reason to refuse this archive, one line per entry. */
  problems: string[];
  openEntry(entry: ArchiveEntry): Promise<Readable>;
  close(): void;
}

function decodeName(entry: yauzl.Entry): string {
  const raw = (entry as { fileNameRaw?: Buffer }).fileNameRaw ?? (entry.fileName as unknown as Buffer);
  // strict: keep backslashes as they are, so that our rules see (and refuse) them.
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
}

/** Opens an archive and checks its entries; the caller decides what to do with `problems`. */
export async function openArchive(archivePath: string, options: { windows?: boolean } = {}): Promise<OpenedArchive> {
  // decodeStrings:false so that yauzl does not stop at the first bad name: we list them all.
  const zip = await yauzl.openPromise(archivePath, { autoClose: false, decodeStrings: false, validateEntrySizes: true });
  const entries = new Map<string, ArchiveEntry>();
  const problems: string[] = [];
  try {
    for await (const raw of zip.eachEntry()) {
      const name = decodeName(raw);
      const shown = JSON.stringify(name);
      const isDirectory = name.endsWith('/');
      const reason = unsafeEntryNameReason(name, options.windows) ?? (yauzl.validateFileName(name) ?? undefined);
      if (reason) problems.push(`entry ${shown}: ${reason}`);
      const typeReason = unsafeEntryTypeReason(raw.externalFileAttributes, raw.versionMadeBy, isDirectory);
      if (typeReason) problems.push(`entry ${shown}: ${typeReason}`);
      if (raw.isEncrypted()) problems.push(`entry ${shown}: encrypted`);
      if (raw.compressionMethod !== 0 && raw.compressionMethod !== 8) problems.push(`entry ${shown}: unsupported compression method ${raw.compressionMethod}`);
      // Windows and macOS folders ignore case; two names differing only in case would collide.
      const key = name;
      if (entries.has(key)) problems.push(`entry ${shown}: appears twice`);
      const mode = unixModeOf(raw.externalFileAttributes, raw.versionMadeBy);
      entries.set(key, {
        name,
        isDirectory,
        size: raw.uncompressedSize,
        compressedSize: raw.compressedSize,
        mode: mode === undefined ? undefined : mode & 0o7777,
        raw,
      });
    }
  } catch (error) {
    zip.close();
    throw error;
  }
  return {
    path: archivePath,
    entries,
    problems,
    openEntry: (entry) => zip.openReadStreamPromise(entry.raw),
    close: () => zip.close(),
  };
}
