// Turns the offsite parameters into a target: which store, which bucket or container, which
// prefix, and how to sign in. Every problem is a ParameterError naming the parameter, found
// before anything connects.
import { quoteValue } from '../../runtime/parameters';
import {
  offsiteAccessKeyId,
  offsiteAzureConnectionString,
  offsiteAzureSas,
  offsiteEndpoint,
  offsiteSecretAccessKey,
  offsiteUrl,
} from '../../../templates/offsite-parameters';
import type { ParameterDefinition } from '../../../templates/model';
import { ParameterError } from '../../runtime/errors';
import { howToSet } from '../../runtime/parameters';

export interface OffsiteSettings {
  offsiteUrl: string;
  region: string;
  endpoint: string;
  pathStyle: boolean;
  requestChecksums: string;
  accessKeyId: string;
  secretAccessKey: string;
  azureConnectionString: string;
  azureSasToken: string;
}

export interface S3Target {
  kind: 's3';
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  pathStyle: boolean;
  checksumsWhenRequired: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** The URL as given, for messages (it never holds a secret). */
  display: string;
  /** The parameter the URL arrived in, as store errors name it (see urlLabelOf). */
  urlLabel?: string;
}

export interface AzureTarget {
  kind: 'azure';
  /** `https://<account>.blob.core.windows.net` or `http://127.0.0.1:10000/<account>`. */
  accountUrl: string;
  account: string;
  container: string;
  prefix: string;
  connectionString?: string;
  sasToken?: string;
  display: string;
  urlLabel?: string;
}

export type OffsiteTarget = S3Target | AzureTarget;

/** The parameter a store error tells the user to check for the URL: "Offsite URL", or in a restore *Backup to restore*. */
export function urlLabelOf(target: OffsiteTarget): string {
  return target.urlLabel ?? `"${offsiteUrl.label}" (${offsiteUrl.name})`;
}

/** True for a source value that names an offsite store rather than a local path. */
export function isOffsiteUrl(value: string): boolean {
  return /^(s3|https?):\/\//i.test(value.trim());
}

function trimPrefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
}

function problemWith(parameter: ParameterDefinition, text: string): string {
  return `"${parameter.label}" ${text}: ${howToSet(parameter)}.`;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const CONTAINER = /^(\$root|[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9])$/;
const IP_OR_LOCAL_HOST = /^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\])$/i;

/** Checks the offsite parameters and returns the target; throws a ParameterError listing every problem. */
export function offsiteTargetFrom(settings: OffsiteSettings): OffsiteTarget {
  const raw = settings.offsiteUrl.trim();
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    problems.push(problemWith(offsiteUrl, `must be s3://<bucket>/<prefix> or https://<account>.blob.core.windows.net/<container>/<prefix>, not ${quoteValue(raw)}`));
  }
  if (url && (url.username || url.password || url.search)) {
    // Credentials in the URL would be printed with it: they belong in the secret parameters.
    problems.push(problemWith(offsiteUrl, 'must not hold credentials or a query (a SAS token goes in "Azure SAS token")'));
    url = undefined;
  }
  if (!url) throw new ParameterError(problems);

  if (url.protocol === 's3:') {
    const bucket = url.hostname;
    if (!BUCKET.test(bucket)) problems.push(problemWith(offsiteUrl, `names the bucket "${bucket}", which is not a valid S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)`));
    const hasKey = settings.accessKeyId !== '';
    const hasSecret = settings.secretAccessKey !== '';
    if (hasKey !== hasSecret) {
      problems.push(problemWith(hasKey ? offsiteSecretAccessKey : offsiteAccessKeyId, 'is needed with the other half of the S3 access key (or leave both empty for the AWS default credentials)'));
    }
    if (settings.azureConnectionString || settings.azureSasToken) {
      problems.push(problemWith(settings.azureConnectionString ? offsiteAzureConnectionString : offsiteAzureSas, 'is for Azure Blob targets; the offsite URL is an S3 bucket, so leave it empty'));
    }
    let endpoint: string | undefined;
    if (settings.endpoint.trim()) {
      try {
        const e = new URL(settings.endpoint.trim());
        if (!/^https?:$/.test(e.protocol) || e.username || e.password) throw new Error('scheme');
        endpoint = e.toString().replace(/\/$/, '');
      } catch {
        problems.push(problemWith(offsiteEndpoint, `must be an http(s) URL such as https://minio.example.com:9000, not ${quoteValue(settings.endpoint.trim())}`));
      }
    }
    if (problems.length) throw new ParameterError(problems);
    return {
      kind: 's3',
      bucket,
      prefix: trimPrefix(decodeURIComponent(url.pathname)),
      region: settings.region.trim() || undefined,
      endpoint,
      pathStyle: settings.pathStyle,
      checksumsWhenRequired: settings.requestChecksums === 'WhenRequired',
      credentials: hasKey ? { accessKeyId: settings.accessKeyId.trim(), secretAccessKey: settings.secretAccessKey.trim() } : undefined,
      display: `s3://${bucket}/${trimPrefix(decodeURIComponent(url.pathname))}`,
    };
  }

  if (url.protocol === 'https:' || url.protocol === 'http:') {
    const segments = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    let account: string;
    let accountUrl: string;
    if (IP_OR_LOCAL_HOST.test(url.hostname)) {
      // Azurite and other emulators: http://127.0.0.1:10000/<account>/<container>/<prefix>.
      account = segments.shift() ?? '';
      accountUrl = `${url.protocol}//${url.host}/${account}`;
    } else {
      account = url.hostname.split('.')[0];
      accountUrl = `${url.protocol}//${url.host}`;
    }
    const container = segments.shift() ?? '';
    if (!account) problems.push(problemWith(offsiteUrl, 'names no storage account'));
    if (!CONTAINER.test(container)) problems.push(problemWith(offsiteUrl, `must name a container (3-63 lower-case letters, digits and hyphens) after the account, not "${container}"`));
    if (settings.azureConnectionString && settings.azureSasToken) {
      problems.push(problemWith(offsiteAzureSas, 'and "Azure storage connection string" are both set; give one of them'));
    }
    if (settings.accessKeyId || settings.secretAccessKey) {
      problems.push(problemWith(settings.accessKeyId ? offsiteAccessKeyId : offsiteSecretAccessKey, 'is for S3 targets; the offsite URL is Azure Blob Storage, so leave it empty'));
    }
    if (settings.endpoint.trim()) problems.push(problemWith(offsiteEndpoint, 'is for S3-compatible stores; an Azure URL already names its endpoint, so leave it empty'));
    if (problems.length) throw new ParameterError(problems);
    const prefix = trimPrefix(segments.join('/'));
    return {
      kind: 'azure',
      accountUrl,
      account,
      container,
      prefix,
      connectionString: settings.azureConnectionString || undefined,
      sasToken: settings.azureSasToken ? settings.azureSasToken.trim().replace(/^\?/, '') : undefined,
      display: `${accountUrl}/${container}${prefix ? `/${prefix}` : ''}`,
    };
  }
  throw new ParameterError([problemWith(offsiteUrl, `must start with s3://, https:// or (for an emulator) http://, not "${url.protocol}//"`)]);
}

/** The parts of secrets that could appear on their own in a store's error text (a SAS signature, an account key). */
export function secretPartsOf(target: OffsiteTarget): string[] {
  const parts: string[] = [];
  if (target.kind === 's3' && target.credentials) {
    const { secretAccessKey, accessKeyId } = target.credentials;
    // As an error text may quote it: whole, or URL-encoded (a secret key holds / and +).
    parts.push(secretAccessKey, encodeURIComponent(secretAccessKey), accessKeyId);
  }
  if (target.kind === 'azure') {
    if (target.sasToken) {
      const sig = new URLSearchParams(target.sasToken).get('sig');
      if (sig) parts.push(sig, encodeURIComponent(sig));
      parts.push(target.sasToken);
    }
    if (target.connectionString) {
      const key = /(?:^|;)\s*AccountKey\s*=\s*([^;]+)/i.exec(target.connectionString)?.[1];
      if (key) parts.push(key.trim(), encodeURIComponent(key.trim()));
      const sas = /(?:^|;)\s*SharedAccessSignature\s*=\s*([^;]+)/i.exec(target.connectionString)?.[1];
      if (sas) parts.push(sas.trim());
    }
  }
  return parts.filter((p) => p.length >= 4);
}
