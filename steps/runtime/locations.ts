// Where a backup may go and where a restore may read from. A backup goes only where the user
// pointed, and that place must already exist: a missing folder is refused, never created, so an
// unmounted share cannot silently become a local folder; a relative path (which would depend on
// the folder the step happens to start in) and a path of another platform (a Windows or UNC path
// on Linux, which Linux would take as one odd file name) are refused too. Every step uses these
// checks, so the same mistake gets the same words everywhere.
//
// Two views of a folder: the worker's (this machine: it reads, writes manifests, locks) and SQL
// Server's (the service opens `DISK =` paths on its own machine, which may be Windows while the
// worker is Linux). Each is checked against the platform that uses it:
//   - a worker path must be absolute on the worker's platform and exist on the worker;
//   - a SQL Server path must be absolute in SQL Server's own syntax (`D:\x` or `\\server\share\x`
//     on Windows, `/x` on Linux): before connecting, in either syntax; after connecting, in the
//     syntax of the server's platform (SERVERPROPERTY('PathSeparator'));
//   - when no separate worker path is given, the SQL Server path is the worker's too, so it must
//     also pass the worker's checks, and a server of another platform than the worker's needs one.
import { promises as fs } from 'node:fs';
import type { ParameterDefinition } from '../../templates/model';
import { restoreDataDirectory, restoreLogDirectory, restoreSource, restoreSourceOnServer } from '../../templates/parameters';
import { howToSet, quotePath } from './parameters';

export type PathFlavour = 'windows' | 'posix';

/** The path syntax of the machine this step runs on. */
export function workerFlavour(platform: NodeJS.Platform = process.platform): PathFlavour {
  return platform === 'win32' ? 'windows' : 'posix';
}

/** The path syntax of a SQL Server, from SERVERPROPERTY('PathSeparator'). */
export function serverFlavour(separator: string | undefined): PathFlavour {
  return separator === '/' ? 'posix' : 'windows';
}

const PLATFORM_NAME: Record<PathFlavour, string> = { windows: 'Windows', posix: 'Linux' };
const EXAMPLE: Record<PathFlavour, string> = { windows: 'D:\\Backups\\Octopus or \\\\backup01\\octopus', posix: '/var/backups/octopus' };

/** `C:\x`, `C:/x`, `\\server\share\x`, `\\?\C:\x`. */
export function isWindowsAbsolute(text: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(text) || /^\\\\[^\\/]/.test(text);
}

export function isPosixAbsolute(text: string): boolean {
  return text.startsWith('/');
}

function isAbsoluteIn(text: string, flavour: PathFlavour): boolean {
  return flavour === 'windows' ? isWindowsAbsolute(text) : isPosixAbsolute(text);
}

function quoted(parameter: ParameterDefinition): string {
  return `"${parameter.label}"`;
}

/**
 * What is wrong with the syntax of a path for a platform, in the words every step uses; undefined
 * when it is an absolute path of that platform. `where` says whose view it is, for the messages.
 */
export function pathSyntaxProblem(value: string, flavour: PathFlavour, parameter: ParameterDefinition, where: 'worker' | 'server'): string | undefined {
  const label = quoted(parameter);
  const fix = howToSet(parameter);
  const machine = where === 'worker' ? `this worker (${PLATFORM_NAME[flavour]})` : `the SQL Server (on ${PLATFORM_NAME[flavour]})`;
  if (value.includes('/') && value.includes('\\')) {
    const separator = flavour === 'windows' ? '\\' : '/';
    return `${label} mixes / and \\ in "${value}"; write it with ${separator} only, as ${machine} expects (e.g. ${EXAMPLE[flavour]}): ${fix}.`;
  }
  if (isAbsoluteIn(value, flavour)) return undefined;
  const other: PathFlavour = flavour === 'windows' ? 'posix' : 'windows';
  if (isAbsoluteIn(value, other)) {
    return where === 'worker'
      ? `${label} is a ${PLATFORM_NAME[other]} path ("${value}"), but this worker runs ${PLATFORM_NAME[flavour]}` +
          (flavour === 'posix' ? ', where it would be a folder of that literal name' : '') +
          `: mount the folder on this worker and give its path here (e.g. ${EXAMPLE[flavour]}), or run the step on a ${PLATFORM_NAME[other]} worker: ${fix}.`
      : `${label} is a ${PLATFORM_NAME[other]} path ("${value}"), but the SQL Server runs on ${PLATFORM_NAME[flavour]}: give the folder as the SQL Server service sees it (e.g. ${EXAMPLE[flavour]}): ${fix}.`;
  }
  return `${label} must be an absolute path as ${machine} sees it (e.g. ${EXAMPLE[flavour]}), not ${quotePath(value)}: a relative path would depend on the folder the step starts in: ${fix}.`;
}

/** Before connecting, a SQL Server path may be in either syntax; it must be absolute in one of them. */
export function serverPathSyntaxProblem(value: string, parameter: ParameterDefinition): string | undefined {
  const windows = pathSyntaxProblem(value, 'windows', parameter, 'server');
  const posix = pathSyntaxProblem(value, 'posix', parameter, 'server');
  if (!windows || !posix) return undefined;
  if (/mixes \/ and \\/.test(windows)) return windows;
  return `${quoted(parameter)} must be an absolute path as the SQL Server service sees it (e.g. ${EXAMPLE.windows} on Windows, ${EXAMPLE.posix} on Linux), not ${quotePath(value)}: ${howToSet(parameter)}.`;
}

export type ExpectedEntry = 'directory' | 'file or directory';

/** A worker path: absolute on this worker's platform, and present (never created). */
export async function workerPathProblem(
  value: string,
  parameter: ParameterDefinition,
  expected: ExpectedEntry = 'directory',
  flavour: PathFlavour = workerFlavour(),
): Promise<string | undefined> {
  const syntax = pathSyntaxProblem(value, flavour, parameter, 'worker');
  if (syntax) return syntax;
  let stat;
  try {
    stat = await fs.stat(value);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return expected === 'directory'
        ? `${quoted(parameter)} ${value} does not exist on this worker. Create it (or mount the share) first: octopus-dr never creates it, ` +
            `so that an unmounted share cannot silently become a local folder: ${howToSet(parameter)}.`
        : `${quoted(parameter)} ${value} does not exist on this worker. Give an existing backup directory, backup file or manifest (is the share mounted?): ${howToSet(parameter)}.`;
    }
    return `${quoted(parameter)} ${value} cannot be read on this worker (${code}): give the worker's account access to it, or ${howToSet(parameter)}.`;
  }
  if (expected === 'directory' && !stat.isDirectory()) {
    return `${quoted(parameter)} ${value} is a file, not a folder: ${howToSet(parameter)}.`;
  }
  return undefined;
}

/** A worker path and the same folder as SQL Server sees it (restore sources), with other SQL Server paths. */
export interface SqlSourceLocations {
  source: { value: string; parameter: ParameterDefinition };
  sourceOnServer: { value: string; parameter: ParameterDefinition };
  /** Other folders on the SQL Server (data and log directories); empty values are skipped. */
  serverPaths?: { value: string; parameter: ParameterDefinition }[];
}

/** The restore steps' source and SQL Server folders, each with the shared parameter that carries it. */
export function sqlSourceLocationsOf(values: { source: string; sourceOnServer: string; dataDirectory: string; logDirectory: string }): SqlSourceLocations {
  return {
    source: { value: values.source, parameter: restoreSource },
    sourceOnServer: { value: values.sourceOnServer, parameter: restoreSourceOnServer },
    serverPaths: [
      { value: values.dataDirectory, parameter: restoreDataDirectory },
      { value: values.logDirectory, parameter: restoreLogDirectory },
    ],
  };
}

/** Before connecting: the source exists on the worker; every SQL Server path is absolute in some syntax. */
export async function sqlSourceProblemsBeforeConnecting(locations: SqlSourceLocations): Promise<string[]> {
  const problems: string[] = [];
  const source = await workerPathProblem(locations.source.value, locations.source.parameter, 'file or directory');
  if (source) problems.push(source);
  for (const { value, parameter } of [locations.sourceOnServer, ...(locations.serverPaths ?? [])]) {
    const problem = value ? serverPathSyntaxProblem(value, parameter) : undefined;
    if (problem) problems.push(problem);
  }
  return problems;
}

/** Once the server's platform is known: its paths in its syntax; a server of another platform needs its own path. */
export function sqlSourceProblemsForServer(locations: SqlSourceLocations, separator: string | undefined, worker: PathFlavour = workerFlavour()): string[] {
  const server = serverFlavour(separator);
  const problems: string[] = [];
  for (const { value, parameter } of [locations.sourceOnServer, ...(locations.serverPaths ?? [])]) {
    const problem = value ? pathSyntaxProblem(value, server, parameter, 'server') : undefined;
    if (problem) problems.push(problem);
  }
  if (!locations.sourceOnServer.value && server !== worker) {
    const { parameter } = locations.sourceOnServer;
    problems.push(
      `The SQL Server runs on ${PLATFORM_NAME[server]} and cannot open ${locations.source.value} as this ${PLATFORM_NAME[worker]} worker names it: ` +
        `set "${parameter.label}" to the folder as the SQL Server service sees it (e.g. ${EXAMPLE[server]}): ${howToSet(parameter)}.`,
    );
  }
  return problems;
}

export async function isDirectory(value: string): Promise<boolean> {
  return fs.stat(value).then((s) => s.isDirectory(), () => false);
}
