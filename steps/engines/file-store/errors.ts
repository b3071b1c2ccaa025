// The file-store engine fails only with this: a StepFailure whose message says what failed and
// what to do, which runStep reports as it is.
import { StepFailure } from '../../runtime/errors';

export class FileStoreError extends StepFailure {
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'FileStoreError';
  }
}

/** An OS error's reason with its code in front once (Node's message usually starts with it already: "EACCES: permission denied, ..."). */
export function withErrorCode(code: string, message: string): string {
  return message.startsWith(code) ? message : `${code}: ${message}`;
}

/** The OS error code a reason starts with ("ENOTCONN: socket is not connected, open '...'"), if any. */
export function reasonCode(reason: string): string | undefined {
  return /^(E[A-Z0-9]+)\b/.exec(reason)?.[1];
}

/**
 * The file store itself stopped answering, not one file: the share (SMB, NFS, a FUSE mount) or the
 * connection to it went away. Every later file would fail the same way, so "Skip unreadable files"
 * would skip the rest of the store and exit 0 with what it had. The network codes cannot be about
 * one file (libuv gives the same ones on Windows for a UNC path: ERROR_NETNAME_DELETED is
 * ECONNRESET, ERROR_SEM_TIMEOUT ETIMEDOUT). ENODEV: a local regular file never gives it; Linux
 * CIFS answers it to every request once the share is being unmounted (smb2_reconnect), and NFS
 * passes on a server's NFSERR_NODEV (a file replaced since the scan by a device without a driver
 * would give it too: called a dropped store here, failed rather than skipped, the safe side).
 * Not here, and skipped with the opt-in as one file's problem: EIO (a bad sector; also what CIFS
 * answers when its session is gone, see the note in docs/design.md), ESTALE (one file replaced on
 * the NFS server), EREMOTEIO (NFSv4's NFS4ERR_RESOURCE: the server answered, about that request).
 */
const STORE_GONE = new Set(['ENOTCONN', 'EHOSTDOWN', 'EHOSTUNREACH', 'ENETDOWN', 'ENETUNREACH', 'ENETRESET', 'ETIMEDOUT', 'ECONNRESET', 'ECONNABORTED', 'ECONNREFUSED', 'ESHUTDOWN', 'ENODEV']);
/** This worker ran out of open files or memory: the file is fine. */
const OUT_OF_RESOURCES = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);

/**
 * A reason that is not one file's problem (the store stopped answering, or this worker ran out of
 * a resource): the backup fails, whatever "Skip unreadable files" says. `during`: what it was
 * doing, e.g. "reading TaskLogs/a.log.txt".
 */
export function backupFault(reason: string, during: string, code = reasonCode(reason), cause?: unknown): FileStoreError | undefined {
  if (code !== undefined && STORE_GONE.has(code)) {
    return new FileStoreError(
      `The share or disk that holds the file store stopped answering (${reason}) while ${during}. ` +
        'Nothing was kept: check the connection to it (is it still mounted and reachable from this worker?), then run the backup again.',
      { cause },
    );
  }
  if (code !== undefined && OUT_OF_RESOURCES.has(code)) {
    return new FileStoreError(
      `This worker ran out of open files or memory (${reason}) while ${during}; the file store itself is fine. Nothing was kept: ` +
        "raise the open-file limit of the worker's account (ulimit -n) or free memory, then run the backup again.",
      { cause },
    );
  }
  return undefined;
}

/**
 * The same faults met in the backup directory (reading an earlier set): not a damaged set, so the
 * set is not passed over for them; the backup fails, saying where and what to do.
 */
export function backupDirectoryFault(reason: string, directory: string, code = reasonCode(reason), cause?: unknown): FileStoreError | undefined {
  if (code !== undefined && STORE_GONE.has(code)) {
    return new FileStoreError(
      `The share or disk that holds the backup directory ${directory} stopped answering (${reason}) while an earlier backup set was read. ` +
        'Nothing was kept: check the connection to it (is it still mounted and reachable from this worker?), then run the backup again.',
      { cause },
    );
  }
  if (code !== undefined && OUT_OF_RESOURCES.has(code)) {
    return new FileStoreError(
      `This worker ran out of open files or memory (${reason}) while an earlier backup set in ${directory} was read; the set itself is fine. Nothing was kept: ` +
        "raise the open-file limit of the worker's account (ulimit -n) or free memory, then run the backup again.",
      { cause },
    );
  }
  return undefined;
}

/**
 * A read error in the middle of a file being stored (a half-written entry cannot be taken back,
 * so it fails the backup even with "Skip unreadable files"). It came from the source file's
 * descriptor, so it is the file store's disk or share, never the backup folder's.
 */
export function sourceReadFailure(name: string, cause: Error): FileStoreError {
  const code = (cause as NodeJS.ErrnoException).code;
  const reason = code ? withErrorCode(code, cause.message) : cause.message;
  return (
    backupFault(reason, `reading ${name}`, code, cause) ??
    new FileStoreError(
      `${name} could not be read to its end (${reason}): the disk or share of the file store that holds it reported an error. ` +
        'Nothing was kept: check that disk or share and the system log, then run the backup again.',
      { cause },
    )
  );
}
