// Reading Amazon S3 and S3-compatible stores, through the official AWS SDK v3: list, head and
// download, the three commands a restore needs (and only them, so the restore templates carry no
// upload code: no lib-storage, no DeleteObject). s3-store.ts adds uploads and deletes for the copy.
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { urlLabelOf, type S3Target } from './target';
import { fullKey, IMMUTABILITY_LABEL, OffsiteError, type OffsiteReader, type RemoteObject } from './store';

const KEY_LABELS = '"S3 access key ID" (OctopusDr.Offsite.AccessKeyId) and "S3 secret access key" (OctopusDr.Offsite.SecretAccessKey)';

export function describeS3Error(error: unknown, target: S3Target, action: string): OffsiteError {
  if (error instanceof OffsiteError) return error;
  const e = error as { name?: string; Code?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.Code ?? (e.name && e.name !== 'Error' ? e.name : undefined) ?? e.code ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const where = `${target.display}${target.endpoint ? ` at ${target.endpoint}` : ''}`;
  const credentials = target.credentials ? `check ${KEY_LABELS}` : `set ${KEY_LABELS}, or give this worker AWS credentials (environment, profile, instance or task role)`;
  const said = `${code}${status ? `, HTTP ${status}` : ''}`;
  if (/object ?lock/i.test(`${code} ${e.message ?? ''}`)) {
    // AWS: InvalidRequest "Bucket is missing Object Lock Configuration" (or a store without Object Lock at all).
    return new OffsiteError(
      `The S3 store refused to lock ${action.replace(/^upload /, '')} (${said}: ${e.message ?? ''}): ${IMMUTABILITY_LABEL} needs a bucket with Object Lock enabled ` +
        `(enable it when the bucket is created, or on a versioned bucket with put-object-lock-configuration, and grant s3:PutObjectRetention), ` +
        `or set ${IMMUTABILITY_LABEL} to 0.`,
      error,
    );
  }
  switch (code) {
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'InvalidToken':
    case 'ExpiredToken':
    case 'CredentialsProviderError':
      return new OffsiteError(`The S3 store rejected the credentials while trying to ${action} (${said}): ${credentials}.`, error);
    case 'NoSuchBucket':
      return new OffsiteError(`The bucket "${target.bucket}" does not exist (${said}): check ${urlLabelOf(target)}${target.endpoint ? ' and "S3 endpoint URL" (OctopusDr.Offsite.Endpoint)' : ' and "S3 region" (OctopusDr.Offsite.Region)'}, or create the bucket.`, error);
    case 'AccessDenied':
    case 'AllAccessDisabled':
      return new OffsiteError(
        `The credentials have no permission to ${action} in ${where} (${said}): grant them s3:ListBucket, s3:GetObject and s3:PutObject on the bucket ` +
          `(s3:DeleteObject for retention), or use other credentials (${KEY_LABELS}).`,
        error,
      );
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return new OffsiteError(`The bucket "${target.bucket}" is in another region (${said}): set "S3 region" (OctopusDr.Offsite.Region) to the bucket's region.`, error);
    case 'XAmzContentSHA256Mismatch':
    case 'InvalidArgument':
    case 'NotImplemented':
      return new OffsiteError(`The S3 store refused the request to ${action} (${said}: ${e.message ?? ''}). S3-compatible stores that do not support the SDK's checksums need "S3 request checksums" (OctopusDr.Offsite.RequestChecksums) set to WhenRequired.`, error);
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ECONNRESET':
    case 'ETIMEDOUT':
    case 'TimeoutError':
      return new OffsiteError(`Cannot reach the S3 store ${where} (${code}) to ${action}: check ${urlLabelOf(target)}${target.endpoint ? ', "S3 endpoint URL" (OctopusDr.Offsite.Endpoint)' : ''} and the worker's network or proxy.`, error);
    default:
      if (error instanceof S3ServiceException || status) {
        return new OffsiteError(`The S3 store failed to ${action} in ${where} (${said}${e.message && e.message !== code ? `: ${e.message}` : ''}).`, error);
      }
      return new OffsiteError(`Could not ${action} in ${where}: ${e.message ?? String(error)} (${code}).`, error);
  }
}

export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

/** The S3 client for a target (a caller destroys it with the reader's close). */
export function s3ClientFor(target: S3Target): S3Client {
  // The SDK warns on stderr (an Octopus warning line) that *future* SDK releases need Node 22; this
  // build runs on 20, and the warning says nothing an operator can act on.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    region: target.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(target.endpoint ? { endpoint: target.endpoint } : {}),
    forcePathStyle: target.pathStyle,
    ...(target.credentials ? { credentials: target.credentials } : {}),
    ...(target.checksumsWhenRequired ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    maxAttempts: 5,
  });
}

export function openS3Reader(target: S3Target, client: S3Client = s3ClientFor(target)): OffsiteReader {
  const key = (relative: string) => fullKey(target.prefix, relative);
  const relativeOf = (full: string) => (target.prefix ? full.slice(target.prefix.length + 1) : full);

  return {
    display: target.display,
    async list(keyPrefix) {
      const result: { key: string; size: number }[] = [];
      let token: string | undefined;
      do {
        const page = await client
          .send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: key(keyPrefix), ContinuationToken: token }))
          .catch((e) => {
            throw describeS3Error(e, target, `list ${key(keyPrefix)}`);
          });
        for (const o of page.Contents ?? []) if (o.Key) result.push({ key: relativeOf(o.Key), size: Number(o.Size ?? 0) });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return result;
    },
    async head(relative): Promise<RemoteObject | undefined> {
      try {
        const h = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: key(relative) }));
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(h.Metadata ?? {})) metadata[k.toLowerCase()] = v;
        return { key: relative, size: Number(h.ContentLength ?? 0), metadata };
      } catch (error) {
        if (isNotFound(error)) {
          // HEAD has no body: a missing bucket looks like a missing object. Listing tells them apart.
          await client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: key(relative), MaxKeys: 1 })).catch((e) => {
            throw describeS3Error(e, target, `read ${key(relative)}`);
          });
          return undefined;
        }
        throw describeS3Error(error, target, `read ${key(relative)}`);
      }
    },
    async download(relative, signal) {
      try {
        const got = await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key(relative) }), { abortSignal: signal });
        return got.Body as Readable;
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (isNotFound(error) && (error as { name?: string }).name !== 'NoSuchBucket') {
          throw new OffsiteError(`${target.display}/${relative} is missing offsite; the set that lists it cannot be restored from there.`, error);
        }
        throw describeS3Error(error, target, `download ${key(relative)}`);
      }
    },
    close() {
      client.destroy();
    },
  };
}
