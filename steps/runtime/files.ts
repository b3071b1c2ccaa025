// Writing a file so that nobody ever sees half of it: a temporary name beside the target,
// flushed to disk, then renamed into place. On failure the temporary file is removed. And opening
// a file that must be a regular one without hanging on a pipe with its name.
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';

/**
 * Opens a file for reading only if it is a regular file, else closes it and throws `refusal()`.
 * Without O_NONBLOCK, opening a FIFO waits for a writer that never comes: a pipe named like a
 * manifest hung every step that listed the folder; with it the open returns, and fstat tells.
 */
export async function openRegularFile(filePath: string, refusal: (what: string) => Error): Promise<fs.FileHandle> {
  const handle = await fs.open(filePath, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  let stats: Stats;
  try {
    stats = await handle.stat();
  } catch (error) {
    await handle.close();
    throw error;
  }
  if (stats.isFile()) return handle;
  await handle.close();
  throw refusal(whatIsNotAFile(stats));
}

/** What a path that is not a regular file is, for a message: `a folder`, `a pipe`, `a device`, `a socket`. */
export function whatIsNotAFile(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a pipe';
  if (stats.isSocket()) return 'a socket';
  return 'a device';
}

export async function writeFileAtomically(target: string, data: string | Buffer): Promise<void> {
  const staged = await stageFileAtomically(target, data);
  await staged.commit();
}

/** A file written and flushed under its temporary name, not yet in place. */
export interface StagedFile {
  /** Where it is, under its temporary name. */
  readonly temporary: string;
  /** Renames it into place and makes the rename durable. */
  commit(): Promise<void>;
  /** Removes the temporary file (when what it belongs to failed). */
  discard(): Promise<void>;
}

/**
 * The first half of writeFileAtomically, for a caller that writes it while other work goes on
 * (the file-store backup flushes the manifest beside its archive while the archive is finished).
 */
export async function stageFileAtomically(target: string, data: string | Buffer): Promise<StagedFile> {
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  const failed = async (error: unknown): Promise<never> => {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    // A failed write carries no path (ENOSPC from write()); name the file it was for.
    const errno = error as NodeJS.ErrnoException;
    if (errno && typeof errno.code === 'string' && !errno.path) errno.path = target;
    throw error;
  };
  try {
    const handle = await fs.open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    return failed(error);
  }
  return {
    temporary,
    commit: async () => {
      try {
        await fs.rename(temporary, target);
      } catch (error) {
        return failed(error);
      }
      await syncDirectory(path.dirname(target));
    },
    discard: () => fs.rm(temporary, { force: true }),
  };
}

/**
 * Makes the renames in a folder durable (a rename lives in the folder, not in the file). Windows
 * cannot open a folder for this and makes renames durable itself, so failing here is harmless.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}

/**
 * Gives a finished temporary file its name only where no file has it: a hard link fails on an
 * existing name, where a rename would replace it. Where hard links are not supported (some
 * shares), the name is claimed by an exclusive create first; a run killed between the two leaves
 * an empty file of that name, which the next run meets as taken, never as good. The name is made
 * durable before returning.
 */
export async function placeWithoutReplacing(temporary: string, target: string, taken: () => Error): Promise<void> {
  const linked = await fs.link(temporary, target).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') throw taken();
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS'].includes(error.code ?? '')) throw error;
      return false;
    },
  );
  if (linked) await fs.rm(temporary, { force: true });
  else {
    // No hard links here (some shares): the name is claimed by creating it exclusively, empty, then
    // the finished file is renamed over that claim, which is this run's own.
    await fs.writeFile(target, '', { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? taken() : error;
    });
    await fs.rename(temporary, target);
  }
  await syncDirectory(path.dirname(target));
}

/**
 * Writes a file durably under `<stem><extension>`, or `<stem>-2<extension>`, `-3`, ... when a file
 * of that name exists (two runs that started in the same second): never replaces one. Returns its path.
 */
export async function writeFileWithoutReplacing(directory: string, stem: string, extension: string, data: string | Buffer): Promise<string> {
  const staged = await stageFileAtomically(path.join(directory, `${stem}${extension}`), data);
  class Taken extends Error {}
  try {
    for (let n = 1; n <= 1000; n++) {
      const target = path.join(directory, `${stem}${n === 1 ? '' : `-${n}`}${extension}`);
      const placed = await placeWithoutReplacing(staged.temporary, target, () => new Taken()).then(
        () => true,
        (error: unknown) => {
          if (error instanceof Taken) return false;
          throw error;
        },
      );
      if (placed) return target;
    }
    throw new Error(`${path.join(directory, stem + extension)} and 999 more names like it are taken; clear out the folder.`);
  } finally {
    await staged.discard().catch(() => undefined);
  }
}
