// Where the Octopus file store lives: the folders below the Octopus home directory, with
// overrides for relocated folders, HA shared storage and the Linux container's volumes.
// Octopus Servers are mostly Windows, so paths may be `C:\...` or UNC shares as well as POSIX;
// every function takes the path flavour to use, so the Windows rules are testable on Linux.
import * as path from 'node:path';
import { quotePath } from '../../runtime/parameters';

export type PathApi = path.PlatformPath;

/** The folders an Octopus Server keeps, by the name used in archives, manifests and parameters. */
export const FILE_STORE_FOLDERS = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports', 'Imports', 'Telemetry', 'Logs'] as const;
export type FileStoreFolderName = (typeof FILE_STORE_FOLDERS)[number];

/** What the Octopus docs say to back up; the others are optional. */
export const DEFAULT_INCLUDED_FOLDERS: readonly FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];

export interface ResolvedFolder {
  name: FileStoreFolderName;
  path: string;
  /** Where the path came from, for messages: the home directory or an override line. */
  origin: 'home' | 'override';
}

/** The path flavour of the machine we run on. */
export function nativePathApi(): PathApi {
  return process.platform === 'win32' ? path.win32 : path.posix;
}

/** `C:\x`, `C:/x`, `\\server\share\x` or `\\?\C:\x`. */
export function isWindowsPath(text: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(text) || /^\\\\[^\\]/.test(text);
}

export function canonicalFolderName(text: string): FileStoreFolderName | undefined {
  const lowered = text.trim().toLowerCase();
  return FILE_STORE_FOLDERS.find((name) => name.toLowerCase() === lowered);
}

/** Parses a list of folder names (one per line or comma-separated); problems name the parameter. */
export function parseFolderNames(lines: readonly string[], label: string): { names: FileStoreFolderName[]; problems: string[] } {
  const names: FileStoreFolderName[] = [];
  const problems: string[] = [];
  for (const item of lines.flatMap((line) => line.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const name = canonicalFolderName(item);
    if (!name) problems.push(`"${label}" has an unknown folder "${item}"; use some of ${FILE_STORE_FOLDERS.join(', ')}.`);
    else if (!names.includes(name)) names.push(name);
  }
  return { names, problems };
}

function checkAbsolute(value: string, pathApi: PathApi, where: string, problems: string[]): string | undefined {
  const trimmed = value.trim().replace(/^"(.*)"$/, '$1');
  if (pathApi === path.posix && isWindowsPath(trimmed)) {
    problems.push(
      `${where} is a Windows path (${trimmed}), but this worker runs ${process.platform}. Run the step on a Windows worker, or mount the share and give its mount point.`,
    );
    return undefined;
  }
  if (!pathApi.isAbsolute(trimmed) || (pathApi === path.win32 && /^[\\/](?![\\/])/.test(trimmed))) {
    problems.push(`${where} must be an absolute path (e.g. ${pathApi === path.win32 ? 'C:\\Octopus or \\\\server\\share\\Octopus' : '/var/octopus'}), not ${quotePath(trimmed)}.`);
    return undefined;
  }
  // normalize() keeps UNC roots (\\server\share\) and turns C:/x into C:\x on win32.
  const normalized = pathApi.normalize(trimmed);
  const root = pathApi.parse(normalized).root;
  return normalized.length > root.length ? normalized.replace(/[\\/]+$/, '') : normalized;
}

export interface FolderResolutionInput {
  homeDirectory: string;
  /** `Name=Path` lines. */
  overrides: readonly string[];
  include: readonly FileStoreFolderName[];
  /** Labels of the parameters, for messages (`include`: the step's folder selection, when it has one). */
  labels: { homeDirectory: string; overrides: string; include?: string };
}

/** Resolves each included folder to an absolute path, listing every problem (not just the first). */
export function resolveFolders(input: FolderResolutionInput, pathApi: PathApi = nativePathApi()): { folders: ResolvedFolder[]; problems: string[] } {
  const problems: string[] = [];
  const overrides = new Map<FileStoreFolderName, string>();
  for (const line of input.overrides) {
    const at = line.indexOf('=');
    const name = at > 0 ? canonicalFolderName(line.slice(0, at)) : undefined;
    if (at <= 0 || !name) {
      problems.push(
        `"${input.labels.overrides}" line "${line}" must be Name=Path with Name one of ${FILE_STORE_FOLDERS.join(', ')} (e.g. Packages=/repository).`,
      );
      continue;
    }
    if (overrides.has(name)) {
      problems.push(`"${input.labels.overrides}" gives ${name} twice; keep one line.`);
      continue;
    }
    const resolved = checkAbsolute(line.slice(at + 1), pathApi, `"${input.labels.overrides}" ${name}`, problems);
    if (resolved) overrides.set(name, resolved);
  }
  const home = input.homeDirectory.trim() ? checkAbsolute(input.homeDirectory, pathApi, `"${input.labels.homeDirectory}"`, problems) : undefined;

  const folders: ResolvedFolder[] = [];
  for (const name of input.include) {
    const override = overrides.get(name);
    if (override) folders.push({ name, path: override, origin: 'override' });
    else if (home) folders.push({ name, path: pathApi.join(home, name), origin: 'home' });
    else if (!input.homeDirectory.trim()) {
      const fixes = [`set "${input.labels.homeDirectory}" (e.g. C:\\Octopus)`, `add ${name}=<path> to "${input.labels.overrides}"`];
      if (input.labels.include) fixes.push(`leave ${name} out of "${input.labels.include}"`);
      problems.push(`No path for ${name}: ${fixes.slice(0, -1).join(', ')}${fixes.length > 2 ? ',' : ''} or ${fixes.at(-1)}.`);
    }
  }
  // Two folders in one place, or one inside another, would be archived twice.
  const key = (p: string) => (pathApi === path.win32 ? p.toLowerCase() : p);
  for (const a of folders) {
    for (const b of folders) {
      if (a === b) continue;
      const rel = pathApi.relative(key(a.path), key(b.path));
      if (rel === '' && folders.indexOf(a) < folders.indexOf(b)) problems.push(`${a.name} and ${b.name} are the same folder (${a.path}); correct "${input.labels.overrides}".`);
      else if (rel !== '' && !rel.startsWith('..') && !pathApi.isAbsolute(rel)) {
        problems.push(`${b.name} (${b.path}) is inside ${a.name} (${a.path}); give folders that do not overlap in "${input.labels.overrides}".`);
      }
    }
  }
  return { folders, problems };
}

/** The archive entry name of a file: `<Folder>/<relative path with '/'>`. */
export function entryNameOf(folder: FileStoreFolderName, relativePath: string, pathApi: PathApi = nativePathApi()): string {
  const segments = relativePath.split(pathApi.sep).filter((s) => s !== '');
  return [folder, ...segments].join('/');
}

/** The local path of an entry's relative part under a folder. */
export function localPathOf(folderPath: string, relativeEntryPath: string, pathApi: PathApi = nativePathApi()): string {
  return relativeEntryPath === '' ? folderPath : pathApi.join(folderPath, ...relativeEntryPath.split('/'));
}
