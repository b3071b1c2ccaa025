// Client-side encryption (age) of offsite copies, on the built bundles against s3rver: Debian's
// `age` decrypts what we uploaded; Fetch Backups from Offsite decrypts with the right key and
// refuses a wrong or missing one before writing anything.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { runBundle, tempDir } from '../file-store/helpers';
import { fileStoreFullBackup } from './fixtures';
import { startS3Server, type S3Server } from './servers';

const hasAge = spawnSync('age', ['--version']).status === 0;
let s3: S3Server;
let work: string;
let fileStore: string;
let archive: Buffer;
const PASSPHRASE = 'correct horse battery staple offsite';

beforeAll(async () => {
  s3 = await startS3Server();
  work = tempDir('octopus-dr-offsite-age-');
  const backup = await fileStoreFullBackup(work);
  fileStore = backup.fileStore;
  archive = readFileSync(backup.archive);
}, 60_000);
afterAll(() => s3?.stop());

const s3Args = () => ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1'];
const s3Env = (extra: NodeJS.ProcessEnv = {}) => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, ...extra });

async function objects(bucket: string): Promise<Record<string, { body: Buffer; meta: Record<string, string> }>> {
  const c = s3.client();
  const out: Record<string, { body: Buffer; meta: Record<string, string> }> = {};
  for (const o of (await c.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []) {
    const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
    const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! }));
    out[o.Key!] = { body: Buffer.from(await got.Body!.transformToByteArray()), meta: head.Metadata ?? {} };
  }
  c.destroy();
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

(hasAge ? test : test.skip)('encrypted for a recipient: Debian age decrypts the archive; the record names the recipient; fetch decrypts, a wrong identity fails before writing', async () => {
  const identityFile = path.join(work, 'identity.txt');
  await promisify(execFile)('age-keygen', ['-o', identityFile]);
  const identity = readFileSync(identityFile, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
  const recipient = /public key: (age1\w+)/.exec(readFileSync(identityFile, 'utf8'))![1];
  await s3.createBucket('age-recipient');
  const copy = await runBundle('copy-offsite', [...s3Args(), '--offsite-url', 's3://age-recipient/dr', '--file-store-backup-directory', fileStore, '--encryption-recipient', recipient], { env: s3Env() });
  expect(copy.stderr).toBe('');
  expect(copy.code).toBe(0);

  const stored = await objects('age-recipient');
  const zipKey = Object.keys(stored).find((k) => k.endsWith('.zip'))!;
  expect(stored[zipKey].body.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
  const encryptedFile = path.join(work, 'archive.zip.age');
  writeFileSync(encryptedFile, stored[zipKey].body);
  // Asynchronously: s3rver answers from this process.
  const { stdout } = await promisify(execFile)('age', ['-d', '-i', identityFile, encryptedFile], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  expect(sha(stdout as unknown as Buffer)).toBe(sha(archive));
  const record = JSON.parse(stored[Object.keys(stored).find((k) => k.endsWith('.offsite.json'))!].body.toString('utf8'));
  expect(record.encryption).toEqual({ format: 'age', method: 'recipient', recipients: [recipient] });
  expect(JSON.stringify(Object.values(stored).map((o) => o.meta)) + JSON.stringify(record)).not.toContain(identity);

  const staging = path.join(work, 'staged-recipient');
  const fetched = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', 's3://age-recipient/dr', '--fetch', 'FileStore', '--download-directory', staging], {
    env: s3Env({ OCTOPUSDR_OFFSITE_DECRYPTIONIDENTITY: identity }),
  });
  expect(fetched.code).toBe(0);
  expect(sha(readFileSync(outputVariablesIn(fetched.stdout).FileStoreSource.replace('.manifest.json', '.zip')))).toBe(sha(archive));

  const other = (await promisify(execFile)('age-keygen', [], { encoding: 'utf8' })).stdout.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
  const wrongStaging = path.join(work, 'staged-wrong');
  const wrong = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', 's3://age-recipient/dr', '--fetch', 'FileStore', '--download-directory', wrongStaging], {
    env: s3Env({ OCTOPUSDR_OFFSITE_DECRYPTIONIDENTITY: other }),
  });
  expect(wrong.code).toBe(1);
  expect(resultMessageIn(wrong.stdout)).toMatch(/Cannot decrypt .*"Decryption identity" \(OctopusDr\.Offsite\.DecryptionIdentity\) is not the identity of age1/);
  expect(existsSync(wrongStaging)).toBe(false);
  expect(wrong.stdout + wrong.stderr).not.toContain(other);
}, 120_000);

test('encrypted with a passphrase: fetch decrypts with it; a wrong or missing passphrase fails before anything is written, and never shows', async () => {
  await s3.createBucket('age-passphrase');
  const copy = await runBundle('copy-offsite', [...s3Args(), '--offsite-url', 's3://age-passphrase/dr', '--file-store-backup-directory', fileStore], {
    env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE }),
  });
  expect(copy.code).toBe(0);
  expect(copy.stdout + copy.stderr).not.toContain(PASSPHRASE);
  const stored = await objects('age-passphrase');
  const text = Object.values(stored).map((o) => JSON.stringify(o.meta) + o.body.toString('latin1')).join('\n');
  expect(text).not.toContain(PASSPHRASE);
  const record = JSON.parse(stored[Object.keys(stored).find((k) => k.endsWith('.offsite.json'))!].body.toString('utf8'));
  expect(record.encryption).toEqual({ format: 'age', method: 'passphrase', recipients: [] });

  const good = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', 's3://age-passphrase/dr', '--fetch', 'FileStore', '--download-directory', path.join(work, 'pp-good')], {
    env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE }),
  });
  expect(good.code).toBe(0);
  expect(sha(readFileSync(outputVariablesIn(good.stdout).FileStoreSource.replace('.manifest.json', '.zip')))).toBe(sha(archive));

  const wrong = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', 's3://age-passphrase/dr', '--fetch', 'FileStore', '--download-directory', path.join(work, 'pp-wrong')], {
    env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: 'a wrong one, 7f3#kq' }),
  });
  expect(wrong.code).toBe(1);
  expect(resultMessageIn(wrong.stdout)).toMatch(/Cannot decrypt .*"Encryption passphrase" \(OctopusDr\.Offsite\.EncryptionPassphrase\) is not the one/);
  expect(existsSync(path.join(work, 'pp-wrong'))).toBe(false);
  expect(wrong.stdout + wrong.stderr).not.toContain('a wrong one, 7f3#kq');

  const missing = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', 's3://age-passphrase/dr', '--fetch', 'FileStore', '--download-directory', path.join(work, 'pp-missing')], { env: s3Env() });
  expect(missing.code).toBe(2);
  expect(resultMessageIn(missing.stdout)).toMatch(/encrypted offsite with a passphrase: set "Encryption passphrase"/);
  expect(existsSync(path.join(work, 'pp-missing'))).toBe(false);
}, 120_000);
