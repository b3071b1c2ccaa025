// Azure Blob Storage (and Azurite), through the official SDK. Uploads are staged blocks with at
// most BLOCK_SIZE x CONCURRENCY bytes in memory, committed only when every block is up.
import { AnonymousCredential, BlobServiceClient, ContainerClient, RestError } from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import type { Readable } from 'node:stream';
import { urlLabelOf, type AzureTarget } from './target';
import { fullKey, IMMUTABILITY_LABEL, OffsiteError, withLockAdvice, type ConditionalWrite, type OffsiteStore, type RemoteObject, type WriteCondition } from './store';

export const BLOCK_SIZE = 8 * 1024 * 1024;
export const CONCURRENCY = 4;

function credentialLabel(target: AzureTarget): string {
  if (target.connectionString) return '"Azure storage connection string" (OctopusDr.Offsite.AzureConnectionString)';
  if (target.sasToken) return '"Azure SAS token" (OctopusDr.Offsite.AzureSasToken)';
  return 'the Azure default credentials (set "Azure storage connection string" or "Azure SAS token", or give this worker a managed identity with a Storage Blob Data role)';
}

export function describeAzureError(error: unknown, target: AzureTarget, action: string): OffsiteError {
  if (error instanceof OffsiteError) return error;
  const e = error as { name?: string; code?: string; statusCode?: number; message?: string; details?: { errorCode?: string } };
  const code = e.details?.errorCode ?? e.code ?? e.name ?? 'Error';
  const said = `${code}${e.statusCode ? `, HTTP ${e.statusCode}` : ''}`;
  const where = `${target.display}`;
  if (/immutab|worm/i.test(`${code} ${e.message ?? ''}`)) {
    return new OffsiteError(
      `Azure Storage refused the immutability policy for ${action.replace(/^upload /, '')} (${said}): ${IMMUTABILITY_LABEL} needs a container with ` +
        'version-level immutability (enable versioning on the account, then version-level immutability support on the container) and credentials ' +
        `allowed to set immutability policies (SAS permission i, or the Storage Blob Data Owner role), or set ${IMMUTABILITY_LABEL} to 0.`,
      error,
    );
  }
  switch (code) {
    case 'AuthenticationFailed':
    case 'InvalidAuthenticationInfo':
    case 'NoAuthenticationInformation':
    case 'CredentialUnavailableError':
    case 'AuthenticationRequiredError':
      return new OffsiteError(`Azure Storage rejected the credentials while trying to ${action} (${said}): check ${credentialLabel(target)}.`, error);
    case 'ContainerNotFound':
      return new OffsiteError(`The container "${target.container}" does not exist in account "${target.account}" (${said}): check ${urlLabelOf(target)}, or create the container.`, error);
    case 'AuthorizationFailure':
      // Azure answers this to a wrong account key or an expired SAS as well as to a missing permission.
      return new OffsiteError(
        `Azure Storage rejected the credentials while trying to ${action} (${said}): check ${credentialLabel(target)}; the key or SAS may be wrong or ` +
          'expired, or lack read, add, create, write and list permission on the container.',
        error,
      );
    case 'AuthorizationPermissionMismatch':
    case 'AuthorizationResourceTypeMismatch':
    case 'AuthorizationServiceMismatch':
    case 'InsufficientAccountPermissions':
      return new OffsiteError(
        `The credentials have no permission to ${action} in ${where} (${said}): give ${credentialLabel(target)} read, add, create, write and list ` +
          '(delete for retention) on the container, or the Storage Blob Data Contributor role.',
        error,
      );
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ECONNRESET':
    case 'ETIMEDOUT':
    case 'REQUEST_SEND_ERROR':
      return new OffsiteError(`Cannot reach Azure Storage at ${target.accountUrl} (${code}) to ${action}: check ${urlLabelOf(target)} and the worker's network or proxy.`, error);
    default:
      if (error instanceof RestError || e.statusCode) {
        return new OffsiteError(`Azure Storage failed to ${action} in ${where} (${said}${e.message ? `: ${e.message.split('\n')[0]}` : ''}).`, error);
      }
      return new OffsiteError(`Could not ${action} in ${where}: ${e.message ?? String(error)} (${code}).`, error);
  }
}

function containerClientFor(target: AzureTarget): ContainerClient {
  if (target.connectionString) {
    let service: BlobServiceClient;
    try {
      service = BlobServiceClient.fromConnectionString(target.connectionString);
    } catch (error) {
      // The SDK's text can quote the string; say only what is wrong.
      throw new OffsiteError(`"Azure storage connection string" (OctopusDr.Offsite.AzureConnectionString) is not a valid storage connection string (it needs AccountName and AccountKey, or BlobEndpoint and SharedAccessSignature).`, error);
    }
    if (service.accountName && service.accountName !== target.account) {
      throw new OffsiteError(
        `"Azure storage connection string" (OctopusDr.Offsite.AzureConnectionString) is for account "${service.accountName}", but ${urlLabelOf(target)} names account "${target.account}": use the same account in both.`,
      );
    }
    return service.getContainerClient(target.container);
  }
  const containerUrl = `${target.accountUrl}/${encodeURIComponent(target.container)}`;
  if (target.sasToken) return new ContainerClient(`${containerUrl}?${target.sasToken}`, new AnonymousCredential());
  return new ContainerClient(containerUrl, new DefaultAzureCredential());
}

export function openAzureStore(target: AzureTarget): OffsiteStore {
  const container = containerClientFor(target);
  const key = (relative: string) => fullKey(target.prefix, relative);
  const relativeOf = (full: string) => (target.prefix ? full.slice(target.prefix.length + 1) : full);
  const isNotFound = (error: unknown) => {
    const e = error as { statusCode?: number; details?: { errorCode?: string } };
    return e.statusCode === 404 && e.details?.errorCode !== 'ContainerNotFound';
  };

  const isRefused = (error: unknown) => {
    const e = error as { statusCode?: number; details?: { errorCode?: string } };
    return e.statusCode === 412 || (e.statusCode === 409 && e.details?.errorCode === 'BlobAlreadyExists');
  };

  return {
    display: target.display,
    async list(keyPrefix) {
      const result: { key: string; size: number }[] = [];
      try {
        for await (const blob of container.listBlobsFlat({ prefix: key(keyPrefix) })) {
          result.push({ key: relativeOf(blob.name), size: Number(blob.properties.contentLength ?? 0) });
        }
      } catch (error) {
        throw describeAzureError(error, target, `list ${key(keyPrefix)}`);
      }
      return result;
    },
    async head(relative): Promise<RemoteObject | undefined> {
      try {
        const p = await container.getBlobClient(key(relative)).getProperties();
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k.toLowerCase()] = v;
        return { key: relative, size: Number(p.contentLength ?? 0), metadata };
      } catch (error) {
        if (isNotFound(error)) {
          // A HEAD answer has no error body, but Azure names the error in x-ms-error-code (the SDK's details.errorCode).
          if ((error as { details?: { errorCode?: string } }).details?.errorCode === 'BlobNotFound') return undefined;
          // Without it, a missing container looks like a missing blob: ask the container (a container SAS may not).
          const exists = await container.exists().catch((e) => {
            throw describeAzureError(e, target, `read ${key(relative)}`);
          });
          if (!exists) throw describeAzureError({ details: { errorCode: 'ContainerNotFound' }, statusCode: 404 }, target, `read ${key(relative)}`);
          return undefined;
        }
        throw describeAzureError(error, target, `read ${key(relative)}`);
      }
    },
    async upload(relative, body, options) {
      const blob = container.getBlockBlobClient(key(relative));
      try {
        await blob.uploadStream(body, BLOCK_SIZE, CONCURRENCY, {
          metadata: options.metadata,
          // uploadStream passes its options on to Put Block List, which sets the policy on the blob it creates.
          ...(options.immutability
            ? { immutabilityPolicy: { expiriesOn: options.immutability.until, policyMode: options.immutability.mode === 'Compliance' ? 'Locked' : 'Unlocked' } }
            : {}),
          abortSignal: options.signal,
          onProgress: (p) => options.onProgress?.(p.loadedBytes),
        });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        throw withLockAdvice(
          describeAzureError(error, target, `upload ${key(relative)}`),
          options.immutability,
          'a container with version-level immutability and credentials allowed to set immutability policies (SAS permission i, or the Storage Blob Data Owner role)',
        );
      }
    },
    async download(relative, signal) {
      try {
        const got = await container.getBlobClient(key(relative)).download(0, undefined, { abortSignal: signal, maxRetryRequests: 5 });
        return got.readableStreamBody as Readable;
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (isNotFound(error)) throw new OffsiteError(`${target.display}/${relative} is missing offsite; the set that lists it cannot be restored from there.`, error);
        throw describeAzureError(error, target, `download ${key(relative)}`);
      }
    },
    async putIf(relative, body, condition: WriteCondition): Promise<ConditionalWrite> {
      try {
        const put = await container.getBlockBlobClient(key(relative)).upload(body, body.length, {
          blobHTTPHeaders: { blobContentType: 'application/json' },
          ...(condition ? { conditions: condition } : {}),
        });
        return { etag: put.etag ?? '' };
      } catch (error) {
        // If-None-Match on an existing blob: 409 BlobAlreadyExists; If-Match on another version: 412 ConditionNotMet.
        if (condition && isRefused(error)) return 'refused';
        throw describeAzureError(error, target, `write the offsite lock ${key(relative)}`);
      }
    },
    async read(relative) {
      try {
        const blob = container.getBlobClient(key(relative));
        const got = await blob.download(0, undefined, { maxRetryRequests: 5 });
        const chunks: Buffer[] = [];
        for await (const c of got.readableStreamBody as Readable) chunks.push(c as Buffer);
        return { body: Buffer.concat(chunks), etag: got.etag ?? '' };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw describeAzureError(error, target, `read ${key(relative)}`);
      }
    },
    async removeIf(relative, ifMatch) {
      try {
        await container.getBlobClient(key(relative)).delete({ conditions: { ifMatch } });
        return 'deleted';
      } catch (error) {
        if (isRefused(error)) return 'refused';
        if (isNotFound(error)) return 'deleted';
        throw describeAzureError(error, target, `delete ${key(relative)}`);
      }
    },
    async remove(relative) {
      await container
        .getBlobClient(key(relative))
        .delete()
        .catch((e) => {
          throw describeAzureError(e, target, `delete ${key(relative)}`);
        });
    },
    close() {
      /* The SDK keeps no connection to close. */
    },
  };
}
