// Folder resolution for Windows (drive letters, UNC shares) and POSIX paths, and the zip-slip
// rules for entry names. Windows paths are tested with path.win32, since the tests run on Linux.
import * as path from 'node:path';
import { unsafeEntryNameReason, unsafeEntryTypeReason } from '../../steps/engines/file-store/entry-safety';
import { DEFAULT_INCLUDED_FOLDERS, entryNameOf, localPathOf, parseFolderNames, resolveFolders } from '../../steps/engines/file-store/folders';

const labels = { homeDirectory: 'Octopus home directory', overrides: 'File store folders' };

describe('resolveFolders on Windows (path.win32)', () => {
  test('derives the default folders from a drive-letter home', () => {
    const { folders, problems } = resolveFolders({ homeDirectory: 'C:\\Octopus\\', overrides: [], include: DEFAULT_INCLUDED_FOLDERS, labels }, path.win32);
    expect(problems).toEqual([]);
    expect(folders.map((f) => f.path)).toEqual(['C:\\Octopus\\TaskLogs', 'C:\\Octopus\\Artifacts', 'C:\\Octopus\\Packages', 'C:\\Octopus\\EventExports']);
  });

  test('UNC shares (the usual HA layout) and forward slashes are normalised; overrides win', () => {
    const { folders, problems } = resolveFolders(
      {
        homeDirectory: '\\\\fs01\\OctopusShared',
        overrides: ['packages=\\\\fs02\\Repo\\Packages', 'TaskLogs=D:/Octopus/Logs/Tasks'],
        include: ['TaskLogs', 'Packages', 'Artifacts'],
        labels,
      },
      path.win32,
    );
    expect(problems).toEqual([]);
    expect(folders).toEqual([
      { name: 'TaskLogs', path: 'D:\\Octopus\\Logs\\Tasks', origin: 'override' },
      { name: 'Packages', path: '\\\\fs02\\Repo\\Packages', origin: 'override' },
      { name: 'Artifacts', path: '\\\\fs01\\OctopusShared\\Artifacts', origin: 'home' },
    ]);
  });

  test('relative and drive-relative paths are refused with the parameter label', () => {
    const { problems } = resolveFolders({ homeDirectory: 'Octopus', overrides: ['Packages=\\Repo'], include: ['Packages', 'TaskLogs'], labels }, path.win32);
    expect(problems).toEqual([
      expect.stringContaining('"File store folders" Packages must be an absolute path'),
      expect.stringContaining('"Octopus home directory" must be an absolute path (e.g. C:\\Octopus or \\\\server\\share\\Octopus)'),
    ]);
  });

  test('overlapping folders are refused, case-insensitively on Windows', () => {
    const { problems } = resolveFolders({ homeDirectory: 'C:\\Octopus', overrides: ['Packages=c:\\octopus\\tasklogs\\pkgs'], include: ['TaskLogs', 'Packages'], labels }, path.win32);
    expect(problems).toEqual([expect.stringContaining('Packages (c:\\octopus\\tasklogs\\pkgs) is inside TaskLogs')]);
  });

  test('entry names always use / and map back to Windows paths', () => {
    expect(entryNameOf('Artifacts', 'Spaces-1\\a b\\c.txt', path.win32)).toBe('Artifacts/Spaces-1/a b/c.txt');
    expect(localPathOf('\\\\fs01\\share\\Artifacts', 'Spaces-1/a b/c.txt', path.win32)).toBe('\\\\fs01\\share\\Artifacts\\Spaces-1\\a b\\c.txt');
  });
});

describe('resolveFolders on Linux (path.posix)', () => {
  test('the Linux container volumes, with no home directory', () => {
    const { folders, problems } = resolveFolders(
      { homeDirectory: '', overrides: ['Packages=/repository', 'Artifacts=/artifacts', 'TaskLogs=/taskLogs', 'EventExports=/eventExports/'], include: DEFAULT_INCLUDED_FOLDERS, labels },
      path.posix,
    );
    expect(problems).toEqual([]);
    expect(folders.map((f) => `${f.name}=${f.path}`)).toEqual(['TaskLogs=/taskLogs', 'Artifacts=/artifacts', 'Packages=/repository', 'EventExports=/eventExports']);
  });

  test('a Windows path on a Linux worker, a bad line and a missing folder are all reported at once', () => {
    const { problems } = resolveFolders({ homeDirectory: 'C:\\Octopus', overrides: ['Repository /x', 'Packages=/a', 'Packages=/b'], include: ['Packages', 'TaskLogs'], labels }, path.posix);
    expect(problems).toEqual([
      expect.stringContaining('line "Repository /x" must be Name=Path'),
      expect.stringContaining('gives Packages twice'),
      expect.stringContaining('is a Windows path (C:\\Octopus)'),
    ]);
    const none = resolveFolders({ homeDirectory: '', overrides: [], include: ['Logs'], labels }, path.posix);
    expect(none.problems).toEqual([expect.stringContaining('No path for Logs: set "Octopus home directory"')]);
    // A step that selects folders also offers leaving the folder out.
    const selected = resolveFolders({ homeDirectory: '', overrides: [], include: ['Logs'], labels: { ...labels, include: 'Folders to back up' } }, path.posix);
    expect(selected.problems).toEqual([
      'No path for Logs: set "Octopus home directory" (e.g. C:\\Octopus), add Logs=<path> to "File store folders", or leave Logs out of "Folders to back up".',
    ]);
  });

  test('folder names are parsed case-insensitively from lines or commas', () => {
    expect(parseFolderNames(['tasklogs, PACKAGES', 'Logs'], 'Folders to back up')).toEqual({ names: ['TaskLogs', 'Packages', 'Logs'], problems: [] });
    expect(parseFolderNames(['Cache'], 'Folders to back up').problems).toEqual([expect.stringContaining('unknown folder "Cache"')]);
  });
});

describe('zip-slip rules', () => {
  test.each([
    ['../evil.txt', 'parent-directory'],
    ['TaskLogs/../../evil.txt', 'parent-directory'],
    ['/etc/passwd', 'absolute'],
    ['C:/Windows/evil.dll', 'drive letter'],
    ['c:evil.txt', 'drive letter'],
    ['TaskLogs\\..\\..\\evil.txt', 'backslash'],
    ['TaskLogs//x', 'empty path segment'],
    ['TaskLogs/./x', 'current-directory'],
    ['a\0b', 'NUL'],
  ])('%s is refused everywhere (%s)', (name, reason) => {
    expect(unsafeEntryNameReason(name, false)).toContain(reason);
    expect(unsafeEntryNameReason(name, true)).toBeDefined();
  });

  test.each([
    ['TaskLogs/file.txt:stream', 'colon'],
    ['TaskLogs/CON', 'device name'],
    ['TaskLogs/nul.txt', 'device name'],
    ['TaskLogs/trailing.', 'dot or space'],
    ['TaskLogs/a<b', 'does not allow'],
  ])('%s is refused on Windows only (%s)', (name, reason) => {
    expect(unsafeEntryNameReason(name, true)).toContain(reason);
    expect(unsafeEntryNameReason(name, false)).toBeUndefined();
  });

  test('ordinary names, unicode and folders pass', () => {
    for (const name of ['TaskLogs/servertasks-1.log.txt', "Artifacts/Rapport d'exécution – ü 漢字.txt", 'Artifacts/a/b/', 'octopus-dr-manifest.json']) {
      expect(unsafeEntryNameReason(name, true)).toBeUndefined();
    }
  });

  test('links and devices in Unix attributes are refused; plain files and folders pass', () => {
    const unix = 3 << 8;
    expect(unsafeEntryTypeReason((0o120777 << 16) >>> 0, unix, false)).toBe('symbolic link');
    expect(unsafeEntryTypeReason((0o020644 << 16) >>> 0, unix, false)).toContain('not a regular file');
    expect(unsafeEntryTypeReason((0o100644 << 16) >>> 0, unix, false)).toBeUndefined();
    expect(unsafeEntryTypeReason((0o040755 << 16) >>> 0, unix, true)).toBeUndefined();
    // Made on DOS/Windows: the high bits are not a Unix mode.
    expect(unsafeEntryTypeReason((0o120777 << 16) >>> 0, 0, false)).toBeUndefined();
  });
});
