// The two offsite targets the tests run against, started on loopback, with the parameters a user
// would give for each.
import { generateBlobSASQueryParameters, ContainerSASPermissions, StorageSharedKeyCredential } from '@azure/storage-blob';
import { openOffsiteStore } from '../../steps/engines/offsite/open';
import type { OffsiteStore } from '../../steps/engines/offsite/store';
import { offsiteTargetFrom, type OffsiteSettings } from '../../steps/engines/offsite/target';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, startS3Server, type AzuriteServer, type S3Server } from './servers';

export interface Provider {
  name: 's3' | 'azure';
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A fresh, empty bucket or container; returns the offsite URL of `prefix` in it. */
  newTarget(prefix?: string): Promise<string>;
  /** A URL whose bucket or container does not exist. */
  missingUrl(): string;
  /** Command-line arguments and environment that sign in (secrets only in the environment). */
  args(): string[];
  env(): NodeJS.ProcessEnv;
  wrongCredentialsEnv(): NodeJS.ProcessEnv;
  /** Credentials that may read and list but not write, or undefined when the server has no permissions. */
  readOnlyEnv(url: string): NodeJS.ProcessEnv | undefined;
  /** The secrets the parameters carry, which no output may show. */
  secrets(): string[];
  settings(url: string): OffsiteSettings;
  store(url: string): OffsiteStore;
}

const blank: Omit<OffsiteSettings, 'offsiteUrl'> = {
  region: '', endpoint: '', pathStyle: false, requestChecksums: 'WhenSupported', accessKeyId: '', secretAccessKey: '', azureConnectionString: '', azureSasToken: '',
};

let counter = 0;

export function s3Provider(): Provider & { server(): S3Server } {
  let server: S3Server;
  const p: Provider & { server(): S3Server } = {
    name: 's3',
    server: () => server,
    async start() {
      server = await startS3Server();
    },
    stop: () => server.stop(),
    async newTarget(prefix = 'dr/octopus') {
      const bucket = `octopus-dr-${process.pid}-${++counter}`;
      await server.createBucket(bucket);
      return `s3://${bucket}/${prefix}`;
    },
    missingUrl: () => 's3://no-such-bucket-here/dr',
    args: () => ['--endpoint-url', server.endpoint, '--path-style', '--region', 'us-east-1'],
    env: () => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: server.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: server.secretAccessKey }),
    // s3rver does not check SigV4 signatures (only the key ID), so a wrong secret would pass: use an unknown key ID.
    wrongCredentialsEnv: () => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: 'AKIAWRONGKEY00000000', OCTOPUSDR_OFFSITE_SECRETACCESSKEY: server.secretAccessKey }),
    readOnlyEnv: () => undefined,
    secrets: () => [server.secretAccessKey],
    settings: (url) => ({ ...blank, offsiteUrl: url, endpoint: server.endpoint, pathStyle: true, region: 'us-east-1', accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }),
    store: (url) => openOffsiteStore(offsiteTargetFrom(p.settings(url))),
  };
  return p;
}

export function azureProvider(): Provider & { server(): AzuriteServer } {
  let server: AzuriteServer;
  const p: Provider & { server(): AzuriteServer } = {
    name: 'azure',
    server: () => server,
    async start() {
      server = await startAzurite();
    },
    stop: () => server.stop(),
    async newTarget(prefix = 'dr/octopus') {
      const container = `octopus-dr-${process.pid}-${++counter}`;
      await server.createContainer(container);
      return `${server.accountUrl}/${container}/${prefix}`;
    },
    missingUrl: () => `${server.accountUrl}/no-such-container/dr`,
    args: () => [],
    env: () => ({ OCTOPUSDR_OFFSITE_AZURECONNECTIONSTRING: server.connectionString }),
    wrongCredentialsEnv: () => ({
      OCTOPUSDR_OFFSITE_AZURECONNECTIONSTRING: server.connectionString.replace(AZURITE_KEY, Buffer.from('a wrong account key, 64 bytes long, for the offsite tests!!!!!!!').toString('base64')),
    }),
    readOnlyEnv(url) {
      const container = new URL(url).pathname.split('/')[2];
      const sas = generateBlobSASQueryParameters(
        { containerName: container, permissions: ContainerSASPermissions.parse('rl'), expiresOn: new Date(Date.now() + 3600_000) },
        new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
      ).toString();
      return { OCTOPUSDR_OFFSITE_AZURESASTOKEN: sas };
    },
    secrets: () => [AZURITE_KEY],
    settings: (url) => ({ ...blank, offsiteUrl: url, azureConnectionString: server.connectionString }),
    store: (url) => openOffsiteStore(offsiteTargetFrom(p.settings(url))),
  };
  return p;
}
