// Writing a file so that nobody ever sees half of it: a temporary name beside the target,
// flushed to disk, then renamed into place. On failure the temporary file is removed.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export async function writeFileAtomically(target: string, data: string | Buffer): Promise<void> {
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    const handle = await fs.open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temporary, target);
  } catch (error) {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    // A failed write carries no path (ENOSPC from write()); name the file it was for.
    const errno = error as NodeJS.ErrnoException;
    if (errno && typeof errno.code === 'string' && !errno.path) errno.path = target;
    throw error;
  }
  await syncDirectory(path.dirname(target));
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
