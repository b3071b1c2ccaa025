// Zip-slip defence: an entry name must stay inside the folder it is extracted to on Windows and
// on Linux alike, and an archive must not smuggle links or devices. Checked for every entry of
// every archive in a chain before anything is written.

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

// Names Windows reserves in any folder, with or without an extension.
const WINDOWS_DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;

/**
 * Returns why an entry name is unsafe, or undefined when it is safe to join below a folder.
 * `windows` adds the rules that only matter where Windows interprets names (device names,
 * alternate data streams, trailing dots), so a Linux store's legal names still restore on Linux.
 */
export function unsafeEntryNameReason(name: string, windows = process.platform === 'win32'): string | undefined {
  if (name === '') return 'empty name';
  if (name.includes('\0')) return 'NUL character in the name';
  if (name.includes('\\')) return 'backslash in the name (a Windows path separator)';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'drive letter';
  const segments = name.replace(/\/$/, '').split('/');
  for (const segment of segments) {
    if (segment === '') return 'empty path segment (//)';
    if (segment === '..') return 'parent-directory segment (..)';
    if (segment === '.') return 'current-directory segment (.)';
    if (!windows) continue;
    if (segment.includes(':')) return 'colon in the name (a drive letter or an NTFS stream)';
    if (/[. ]$/.test(segment)) return 'segment ending in a dot or space (Windows drops them)';
    if (WINDOWS_DEVICE_NAME.test(segment)) return `Windows device name "${segment}"`;
    if (/[\x00-\x1f<>"|?*]/.test(segment)) return 'character Windows does not allow in file names';
  }
  return undefined;
}

/** The Unix file type in a zip entry's external attributes (made on Unix), if any. */
export function unixModeOf(externalFileAttributes: number, versionMadeBy: number): number | undefined {
  const madeOnUnix = versionMadeBy >>> 8 === 3;
  const mode = (externalFileAttributes >>> 16) & 0xffff;
  return madeOnUnix && mode !== 0 ? mode : undefined;
}

/** Why an entry's type is not a plain file or directory (links, devices, fifos), if it is not. */
export function unsafeEntryTypeReason(externalFileAttributes: number, versionMadeBy: number, isDirectoryName: boolean): string | undefined {
  const mode = unixModeOf(externalFileAttributes, versionMadeBy);
  if (mode === undefined) return undefined;
  const type = mode & S_IFMT;
  if (type === 0) return undefined;
  if (type === S_IFREG && !isDirectoryName) return undefined;
  if (type === S_IFDIR && isDirectoryName) return undefined;
  if (type === 0o120000) return 'symbolic link';
  return `not a regular file (type ${type.toString(8)})`;
}
