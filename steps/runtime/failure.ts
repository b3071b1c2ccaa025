// Turns whatever stopped a step into a last line that says what failed and what to do. Steps and
// engines throw StepFailure (or a domain error that extends it) for what they foresee; this covers the
// rest: operating-system errors (a full disk, a read-only or forbidden folder, too many open files)
// wherever they happen, and, last, a bug, which says how to report it.
import { statfsSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StepFailure } from './errors';
import { formatBytes } from './format';

/** What a file operation was doing, to say so when it fails. */
export interface FileOperation {
  /** The file or folder concerned (default: the path the error carries). */
  path?: string;
  /** e.g. "writing the test report"; default "writing <path>". */
  what?: string;
  /** How much the write needed, when known (the "free N" of a full disk). */
  neededBytes?: number;
}

export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** The account this process runs as, for "give <account> write access". */
export function accountName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.getuid ? `uid ${process.getuid()}` : 'this account';
  }
}

/** The folder to talk about: the target if it is one, else the folder that holds it. */
function folderOf(target: string): string {
  try {
    if (statSync(target).isDirectory()) return target;
  } catch {
    // A file being written, or one that could not be created: its folder is what matters.
  }
  return path.dirname(target);
}

function freeBytes(folder: string): number | undefined {
  for (let dir = folder; ; dir = path.dirname(dir)) {
    try {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      if (path.dirname(dir) === dir) return undefined;
    }
  }
}

/** System calls (as libuv names them) that only read: their failure is not "while writing". */
const READING_CALLS = new Set(['scandir', 'opendir', 'readdir', 'read', 'stat', 'lstat', 'fstat', 'access', 'readlink', 'realpath']);

/** The user's message for an operating-system error, or undefined when it is none. */
export function describeFileError(error: unknown, operation: FileOperation = {}): string | undefined {
  const code = errnoOf(error);
  if (!code) return undefined;
  const e = error as NodeJS.ErrnoException & { dest?: string; address?: string; hostname?: string; port?: number };
  const target = operation.path ?? e.path ?? e.dest;
  const what = operation.what ?? (target ? `${READING_CALLS.has(e.syscall ?? '') ? 'reading' : 'writing'} ${target}` : `a file operation (${e.syscall ?? 'unknown'})`);
  const folder = target ? folderOf(path.resolve(target)) : undefined;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT': {
      const free = folder ? freeBytes(folder) : undefined;
      // What is missing beyond what is free ("21.0 MB free: free at least 19.1 MB" read as a contradiction).
      const need = operation.neededBytes !== undefined ? `at least ${formatBytes(Math.max(operation.neededBytes - (free ?? 0), 1))}${free !== undefined ? ' more' : ''}` : 'space';
      const quota = code === 'EDQUOT' ? ' (the disk quota of this account is used up)' : '';
      return (
        `${folder ? `The disk holding ${folder}` : 'A disk'} is full${quota} (${code}) while ${what}` +
        `${free !== undefined ? `; ${formatBytes(free)} free` : ''}: free ${need} there or choose another directory.`
      );
    }
    case 'EFBIG':
      return `${target ?? 'A file'} reached the largest file size allowed (EFBIG) while ${what}: raise the file size limit of the account ${accountName()} (ulimit -f), or choose another directory on a file system that allows large files.`;
    case 'EACCES':
    case 'EPERM':
      return `${target ?? 'A file'} cannot be accessed by the account ${accountName()} (${code}: permission denied) while ${what}: give that account read and write access to ${folder ?? 'the folder'}, or choose another directory.`;
    case 'EROFS':
      return `${target ?? 'A file'} is on a read-only file system (EROFS) while ${what}: choose a directory on a writable disk, or mount that disk read-write.`;
    case 'ENOENT':
      return `${target ?? 'A file or folder'} does not exist (ENOENT) while ${what}: create it, or correct the path.`;
    case 'ENOTDIR':
      return `A part of ${target ?? 'the path'} is a file, not a folder (ENOTDIR) while ${what}: correct the path.`;
    case 'EISDIR':
      return `${target ?? 'The path'} is a folder, not a file (EISDIR) while ${what}: give a file's path, or a folder where the step expects one.`;
    case 'EEXIST':
      return `${target ?? 'A file'} already exists (EEXIST) while ${what}: move it away, or choose another directory.`;
    case 'ENAMETOOLONG':
      return `The path ${target ?? ''} is too long for this file system (ENAMETOOLONG) while ${what}: choose a directory with a shorter path.`;
    case 'EMFILE':
    case 'ENFILE':
      return `Too many files are open (${code}) while ${what}: raise the open-file limit of the account ${accountName()} (ulimit -n) and run the step again.`;
    case 'EBUSY':
      return `${target ?? 'A file'} is in use (EBUSY) while ${what}: stop the program that holds it (e.g. the Octopus Server, an antivirus scan) and run the step again.`;
    case 'EIO':
      return `The disk holding ${folder ?? 'a file'} reported an input/output error (EIO) while ${what}: check the disk and its connection (system log), or choose another directory.`;
    case 'ENOMEM':
      return `The worker ran out of memory (ENOMEM) while ${what}: free memory on the worker or run the step on a larger one.`;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'ECONNRESET':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `Cannot reach ${e.address ?? e.hostname ?? 'a server'}${e.port ? `:${e.port}` : ''} (${code}): check the address and port, the name resolution (DNS) and that no firewall blocks the connection.`;
    default:
      return `${target ? `${target}: ` : ''}${e.message} (${code}) while ${what}: check the path, the disk and the account's permissions, and run the step again.`;
  }
}

/** A StepFailure for an operating-system error (keeps anything else as it is). */
export function fileFailure(error: unknown, operation: FileOperation = {}): unknown {
  if (error instanceof StepFailure) return error;
  const message = describeFileError(error, operation);
  return message ? new StepFailure(message, { cause: error }) : error;
}

/** A StepFailure's own exit code (bad input, e.g. a connection string the parser refuses, is 2); 1 for anything else. */
export function exitCodeOf(error: unknown): number {
  return error instanceof StepFailure ? error.exitCode : 1;
}

/** The last line for any failure: what failed and what to do, also for the failures nobody foresaw. */
export function failureMessage(error: unknown, stepName = 'The step'): string {
  if (error instanceof StepFailure) return error.message;
  const fileMessage = describeFileError(error);
  if (fileMessage) return fileMessage;
  const text = error instanceof Error ? error.message : String(error);
  return (
    `${stepName} stopped on an internal error it does not know how to handle: ${text}. ` +
    'Run it again with --verbose (under Octopus, the verbose task log has the details) and report this message and that log to the octopus-dr maintainers.'
  );
}
