// Live offsite immutability on a real store: Copy Backups Offsite with "Offsite immutability
// (days)" 1, then the store itself is asked what lock each object carries. Skipped unless the
// variables below point at a real bucket or container (recipe in test/README.md). Objects are
// locked for a day (governance mode, an unlocked Azure policy): use a scratch bucket or container.
//   S3:    OCTOPUS_DR_LIVE_S3_LOCK_URL=s3://<bucket with Object Lock>/<prefix>, OCTOPUS_DR_LIVE_S3_REGION,
//          credentials from the AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or a profile);
//          optional OCTOPUS_DR_LIVE_S3_PLAIN_URL=s3://<bucket without Object Lock>/<prefix>, which must be refused.
//   Azure: OCTOPUS_DR_LIVE_AZURE_LOCK_URL=https://<account>.blob.core.windows.net/<container with version-level
//          immutability>/<prefix>, OCTOPUS_DR_LIVE_AZURE_CONNECTION_STRING; optional OCTOPUS_DR_LIVE_AZURE_PLAIN_URL
//          (a container without it), which must be refused.
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { makeStore, silentLog, tempDir } from '../file-store/helpers';
import { runCopy } from '../offsite/fixtures';

const s3Url = process.env.OCTOPUS_DR_LIVE_S3_LOCK_URL;
const azureUrl = process.env.OCTOPUS_DR_LIVE_AZURE_LOCK_URL;
const azureConnection = process.env.OCTOPUS_DR_LIVE_AZURE_CONNECTION_STRING ?? '';
const DAY = 24 * 3600 * 1000;
let fileStore: string;
let root: string;

beforeAll(async () => {
  if (!s3Url && !azureUrl) return;
  root = tempDir('octopus-dr-live-lock-');
  const home = path.join(root, 'home');
  makeStore(home);
  fileStore = path.join(root, 'fs');
  mkdirSync(fileStore);
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'live' }, quietEngineContext({ log: silentLog }));
}, 120_000);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

(s3Url ? describe : describe.skip)('live S3 Object Lock', () => {
  const region = process.env.OCTOPUS_DR_LIVE_S3_REGION ?? '';
  const prefix = `live-${Date.now()}`;
  test('every object is locked in governance mode until a day from now', async () => {
    const url = `${s3Url!.replace(/\/$/, '')}/${prefix}`;
    const started = Date.now();
    const run = await runCopy(['--offsite-url', url, '--region', region, '--file-store-backup-directory', fileStore, '--immutability-days', '1'], process.env);
    expect(run.result).toMatch(/1 set\(s\) copied/);
    const target = new URL(url);
    const client = new S3Client(region ? { region } : {});
    const listed = await client.send(new ListObjectsV2Command({ Bucket: target.hostname, Prefix: `${target.pathname.slice(1)}/file-store/` }));
    for (const suffix of ['.zip', '.manifest.json', '.offsite.json']) {
      const key = listed.Contents!.map((o) => o.Key!).find((k) => k.endsWith(suffix))!;
      const head = await client.send(new HeadObjectCommand({ Bucket: target.hostname, Key: key }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
      expect(Math.abs(head.ObjectLockRetainUntilDate!.getTime() - (started + DAY))).toBeLessThan(10 * 60 * 1000);
    }
    client.destroy();
  }, 300_000);

  (process.env.OCTOPUS_DR_LIVE_S3_PLAIN_URL ? test : test.skip)('a bucket without Object Lock refuses, and the message names the parameter', async () => {
    const run = await runCopy(['--offsite-url', `${process.env.OCTOPUS_DR_LIVE_S3_PLAIN_URL!.replace(/\/$/, '')}/${prefix}`, '--region', region, '--file-store-backup-directory', fileStore, '--immutability-days', '1'], process.env);
    expect(run.code).toBe(1);
    expect(run.result).toContain('"Offsite immutability (days)" (OctopusDr.Offsite.ImmutabilityDays)');
  }, 300_000);
});

(azureUrl ? describe : describe.skip)('live Azure Blob immutability policy', () => {
  const prefix = `live-${Date.now()}`;
  const env = { OCTOPUSDR_OFFSITE_AZURECONNECTIONSTRING: azureConnection };
  test('every blob carries an unlocked policy that ends a day from now', async () => {
    const url = `${azureUrl!.replace(/\/$/, '')}/${prefix}`;
    const started = Date.now();
    const run = await runCopy(['--offsite-url', url, '--file-store-backup-directory', fileStore, '--immutability-days', '1'], env);
    expect(run.result).toMatch(/1 set\(s\) copied/);
    const container = BlobServiceClient.fromConnectionString(azureConnection).getContainerClient(new URL(url).pathname.split('/')[1]);
    let checked = 0;
    for await (const blob of container.listBlobsFlat({ prefix: `${prefix}/` })) {
      const properties = await container.getBlobClient(blob.name).getProperties();
      expect(properties.immutabilityPolicyMode).toBe('Unlocked');
      expect(Math.abs(properties.immutabilityPolicyExpiresOn!.getTime() - (started + DAY))).toBeLessThan(10 * 60 * 1000);
      checked += 1;
    }
    expect(checked).toBe(3);
  }, 300_000);

  (process.env.OCTOPUS_DR_LIVE_AZURE_PLAIN_URL ? test : test.skip)('a container without version-level immutability refuses, and the message names the parameter', async () => {
    const run = await runCopy(['--offsite-url', `${process.env.OCTOPUS_DR_LIVE_AZURE_PLAIN_URL!.replace(/\/$/, '')}/${prefix}`, '--file-store-backup-directory', fileStore, '--immutability-days', '1'], env);
    expect(run.code).toBe(1);
    expect(run.result).toContain('"Offsite immutability (days)" (OctopusDr.Offsite.ImmutabilityDays)');
  }, 300_000);
});

if (!s3Url && !azureUrl) test.skip('live offsite immutability (set OCTOPUS_DR_LIVE_S3_LOCK_URL or OCTOPUS_DR_LIVE_AZURE_LOCK_URL)', () => undefined);
