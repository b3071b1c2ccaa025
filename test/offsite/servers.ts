// Real storage servers on loopback for the offsite tests: s3rver (an S3-compatible server) in
// process, and Azurite (Microsoft's Azure Storage emulator) as a child process. Each test file
// starts what it needs and stops it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';

const ROOT = path.resolve(__dirname, '../..');

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  directory: string;
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const S3rver = require('s3rver');
  const directory = mkdtempSync(path.join(tmpdir(), 'octopus-dr-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = 'S3RVER';
  const secretAccessKey = 'S3RVER';
  const client = () =>
    new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    directory,
    client,
    async createBucket(name) {
      const c = client();
      await c.send(new CreateBucketCommand({ Bucket: name }));
      c.destroy();
    },
    async stop() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Azurite's documented development account (public, the same in every Azurite). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  port: number;
  accountUrl: string;
  connectionString: string;
  service(): BlobServiceClient;
  createContainer(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAzurite(): Promise<AzuriteServer> {
  const location = mkdtempSync(path.join(tmpdir(), 'octopus-dr-azurite-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/azurite/dist/src/blob/main.js'),
      '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence',
      '--disableTelemetry', '--skipApiVersionCheck',
    ],
    // In its own empty folder: Azurite may write a debug log or config beside it.
    { cwd: location, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`Azurite did not start: ${text}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
    child.on('exit', (code) => reject(new Error(`Azurite exited (${code}): ${text}`)));
  });
  const accountUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${accountUrl};`;
  const service = () => BlobServiceClient.fromConnectionString(connectionString);
  return {
    port,
    accountUrl,
    connectionString,
    service,
    async createContainer(name) {
      await service().getContainerClient(name).create();
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(location, { recursive: true, force: true });
    },
  };
}
