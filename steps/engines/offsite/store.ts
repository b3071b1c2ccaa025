// What the copy and restore engines need from an offsite store, whatever the provider. Keys are
// relative to the target's prefix (`database/<file>`, `file-store/<file>`). Errors are thrown as
// OffsiteError with a message that says what to do.
import type { Readable } from 'node:stream';
import { StepFailure } from '../../runtime/errors';

export interface RemoteObject {
  key: string;
  size: number;
  /** Lower-case names. */
  metadata: Record<string, string>;
}

/** A write-once lock on an uploaded object: S3 Object Lock, or an Azure Blob immutability policy. */
export interface Immutability {
  until: Date;
  /** Governance: S3 GOVERNANCE / Azure Unlocked (an administrator can lift it). Compliance: S3 COMPLIANCE / Azure Locked. */
  mode: 'Governance' | 'Compliance';
}

/** The parameter a refused lock names. */
export const IMMUTABILITY_LABEL = '"Offsite immutability (days)" (OctopusDr.Offsite.ImmutabilityDays)';

export interface UploadOptions {
  size: number;
  immutability?: Immutability;
  metadata: Record<string, string>;
  onProgress?: (bytesSent: number) => void;
  signal?: AbortSignal;
}

/**
 * The condition of a small write (the copy's lock, target-lock.ts): create only (`ifNoneMatch: '*'`), or
 * replace only the version with this ETag (`ifMatch`); none writes whatever is there.
 */
export type WriteCondition = { ifNoneMatch: '*' } | { ifMatch: string } | undefined;

/** What a conditional write did: the new version's ETag; `refused` (the condition did not hold); `unsupported` (the store does not take the condition). */
export type ConditionalWrite = { etag: string } | 'refused' | 'unsupported';

export interface OffsiteStore {
  /** The target as a URL, for messages. */
  readonly display: string;
  /** Objects whose key starts with `keyPrefix`, metadata not included. */
  list(keyPrefix: string): Promise<{ key: string; size: number }[]>;
  /** Size and metadata, or undefined when there is no such object. */
  head(key: string): Promise<RemoteObject | undefined>;
  upload(key: string, body: Readable, options: UploadOptions): Promise<void>;
  download(key: string, signal?: AbortSignal): Promise<Readable>;
  remove(key: string): Promise<void>;
  /** Writes a small object when `condition` holds. */
  putIf(key: string, body: Buffer, condition: WriteCondition): Promise<ConditionalWrite>;
  /** A small object and its ETag, or undefined when there is none. */
  read(key: string): Promise<{ body: Buffer; etag: string } | undefined>;
  /** Deletes an object if its ETag is still `ifMatch`: `refused` when it has another now; gone already counts as deleted. */
  removeIf(key: string, ifMatch: string): Promise<'deleted' | 'refused'>;
  close(): void;
}

/** What a restore reads from a store: no upload or delete (so a restore bundle need not carry them). */
export type OffsiteReader = Pick<OffsiteStore, 'display' | 'list' | 'head' | 'download' | 'close'>;

/** Object metadata names: lower-case letters and digits only, valid on S3 and as Azure (C# identifier) names. */
export const META_SHA256 = 'octopusdrsha256';
export const META_SIZE = 'octopusdrsize';
export const META_NAME = 'octopusdrname';
export const META_ENCRYPTION = 'octopusdrencryption';
/** When the object was uploaded with a lock: until when (ISO). */
export const META_LOCKED_UNTIL = 'octopusdrlockeduntil';

/** A refused upload that asked for a lock: the lock may be why, so the message says what it needs. */
export function withLockAdvice(error: OffsiteError, immutability: Immutability | undefined, needs: string): OffsiteError {
  if (!immutability || error.message.includes(IMMUTABILITY_LABEL)) return error;
  return new OffsiteError(`${error.message} The upload asked for a lock (${IMMUTABILITY_LABEL}), which needs ${needs}; or set it to 0.`, error.cause);
}

export class OffsiteError extends StepFailure {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'OffsiteError';
  }
}

/** Joins the target prefix and a relative key. */
export function fullKey(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key;
}
