// Amazon S3 and S3-compatible stores, through the official AWS SDK v3: the reader (s3-reader.ts)
// with uploads and deletes. Large files go up in parts (lib-storage) with at most
// PART_SIZE x QUEUE_SIZE bytes in memory.
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Target } from './target';
import { describeS3Error, isNotFound, openS3Reader, s3ClientFor } from './s3-reader';
import { fullKey, withLockAdvice, type ConditionalWrite, type OffsiteStore, type UploadOptions, type WriteCondition } from './store';

export { describeS3Error } from './s3-reader';

export const PART_SIZE = 8 * 1024 * 1024;
export const QUEUE_SIZE = 4;

/**
 * A condition that did not hold: 412 Precondition Failed, or 409 (ConditionalRequestConflict: another
 * conditional write or delete of the key at the same moment; AWS says to read the object again and retry).
 */
function isRefused(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.$metadata?.httpStatusCode === 412 || e.$metadata?.httpStatusCode === 409 || e.name === 'PreconditionFailed' || e.name === 'ConditionalRequestConflict';
}

/**
 * An `If-Match` write of a key with no current object: Amazon S3 answers 404 NoSuchKey (conditional-writes.html:
 * "no current object version", or a delete marker). The version it names is gone, so the condition did not
 * hold. Before, a takeover of a lock deleted meanwhile failed the run on that answer.
 */
function isGoneForIfMatch(error: unknown, condition: WriteCondition): boolean {
  return Boolean(condition && 'ifMatch' in condition) && isNotFound(error) && (error as { name?: string }).name !== 'NoSuchBucket';
}

/** A store that does not take the conditional headers at all (older S3-compatible stores). */
function isUnsupported(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.$metadata?.httpStatusCode === 501 || e.name === 'NotImplemented';
}

export function openS3Store(target: S3Target): OffsiteStore {
  const client = s3ClientFor(target);
  const key = (relative: string) => fullKey(target.prefix, relative);
  return {
    ...openS3Reader(target, client),
    async upload(relative, body, options: UploadOptions) {
      const upload = new Upload({
        client,
        // lib-storage sends these on PutObject, or on CreateMultipartUpload for a file in parts.
        params: {
          Bucket: target.bucket,
          Key: key(relative),
          Body: body,
          ...(options.size >= 0 ? { ContentLength: options.size } : {}),
          Metadata: options.metadata,
          ...(options.immutability
            ? { ObjectLockMode: options.immutability.mode === 'Compliance' ? 'COMPLIANCE' : 'GOVERNANCE', ObjectLockRetainUntilDate: options.immutability.until }
            : {}),
        },
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        leavePartsOnError: false,
      });
      upload.on('httpUploadProgress', (p) => options.onProgress?.(Number(p.loaded ?? 0)));
      const abort = () => void upload.abort().catch(() => undefined);
      options.signal?.addEventListener('abort', abort, { once: true });
      try {
        await upload.done();
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        throw withLockAdvice(describeS3Error(error, target, `upload ${key(relative)}`), options.immutability, 'a bucket with Object Lock enabled and the s3:PutObjectRetention permission');
      } finally {
        options.signal?.removeEventListener('abort', abort);
      }
    },
    async putIf(relative, body, condition: WriteCondition): Promise<ConditionalWrite> {
      try {
        const put = await client.send(
          new PutObjectCommand({
            Bucket: target.bucket,
            Key: key(relative),
            Body: body,
            ContentLength: body.length,
            ContentType: 'application/json',
            ...(condition && 'ifNoneMatch' in condition ? { IfNoneMatch: condition.ifNoneMatch } : {}),
            ...(condition && 'ifMatch' in condition ? { IfMatch: condition.ifMatch } : {}),
          }),
        );
        return { etag: put.ETag ?? '' };
      } catch (error) {
        if (condition && (isRefused(error) || isGoneForIfMatch(error, condition))) return 'refused';
        if (condition && isUnsupported(error)) return 'unsupported';
        throw describeS3Error(error, target, `write the offsite lock ${key(relative)}`);
      }
    },
    async read(relative) {
      try {
        const got = await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key(relative) }));
        return { body: Buffer.from(await got.Body!.transformToByteArray()), etag: got.ETag ?? '' };
      } catch (error) {
        if (isNotFound(error) && (error as { name?: string }).name !== 'NoSuchBucket') return undefined;
        throw describeS3Error(error, target, `read ${key(relative)}`);
      }
    },
    async removeIf(relative, ifMatch) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key(relative), IfMatch: ifMatch }));
        return 'deleted';
      } catch (error) {
        if (isRefused(error)) return 'refused';
        if (isNotFound(error) && (error as { name?: string }).name !== 'NoSuchBucket') return 'deleted';
        throw describeS3Error(error, target, `delete ${key(relative)}`);
      }
    },
    async remove(relative) {
      await client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key(relative) })).catch((e) => {
        throw describeS3Error(e, target, `delete ${key(relative)}`);
      });
    },
  };
}
