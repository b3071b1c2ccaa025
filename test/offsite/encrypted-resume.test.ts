// Resuming an interrupted encrypted copy with another key: an object an earlier run left offsite is
// reused only when the current key is proven to open it (a passphrase: decrypted and hashed); a
// recipient's public key cannot decrypt, so with a recipient nothing from an earlier run is reused.
// Through the built bundles (age-encryption is an ES module) against s3rver. An interrupted run
// leaves the set's data and manifest objects offsite without its .offsite.json record (the record
// goes last); deleting the record after a whole copy leaves exactly that.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { runBundle, tempDir } from '../file-store/helpers';
import { fileStoreFullBackup } from './fixtures';
import { startS3Server, type S3Server } from './servers';

const hasAge = spawnSync('age-keygen', ['--version']).status === 0;
let s3: S3Server;
let work: string;
let fileStore: string;
let archiveSha: string;
const A = 'Qx7#2kLm before, vT9@';
const B = 'Zp4!9wRt after, mK3%';

beforeAll(async () => {
  s3 = await startS3Server();
  work = tempDir('octopus-dr-offsite-resume-');
  const backup = await fileStoreFullBackup(work);
  fileStore = backup.fileStore;
  archiveSha = createHash('sha256').update(readFileSync(backup.archive)).digest('hex');
}, 60_000);
afterAll(() => s3?.stop());

const s3Args = () => ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1'];
const s3Env = (extra: NodeJS.ProcessEnv = {}) => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, ...extra });

async function copy(url: string, args: string[], env: NodeJS.ProcessEnv) {
  const run = await runBundle('copy-offsite', [...s3Args(), '--offsite-url', url, '--file-store-backup-directory', fileStore, '--verbose', ...args], { env: s3Env(env) });
  return { ...run, outputs: outputVariablesIn(run.stdout), result: resultMessageIn(run.stdout) ?? '' };
}

/** What an interrupted run leaves: the objects, no record. */
async function dropRecords(bucket: string): Promise<string[]> {
  const c = s3.client();
  const keys = ((await c.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
  for (const key of keys.filter((k) => k.endsWith('.offsite.json'))) await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  c.destroy();
  return keys.filter((k) => !k.endsWith('.offsite.json'));
}

/** One key fetches the whole set: the archive, byte for byte. */
async function expectFetchedWhole(url: string, name: string, env: NodeJS.ProcessEnv): Promise<void> {
  const fetched = await fetchArchive(url, name, env);
  expect(fetched.result).not.toMatch(/Cannot decrypt/);
  expect(fetched.code).toBe(0);
  expect(fetched.sha).toBe(archiveSha);
}

async function fetchArchive(url: string, name: string, env: NodeJS.ProcessEnv) {
  const run = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', url, '--fetch', 'FileStore', '--download-directory', path.join(work, name)], { env: s3Env(env) });
  const source = outputVariablesIn(run.stdout).FileStoreSource;
  const sha = source ? createHash('sha256').update(readFileSync(source.replace('.manifest.json', '.zip'))).digest('hex') : undefined;
  return { code: run.code, result: resultMessageIn(run.stdout) ?? '', sha };
}

test('a resume with another passphrase uploads again what the old one encrypted (warning names each object and why); the new passphrase restores the set; the same passphrase still resumes', async () => {
  await s3.createBucket('resume-passphrase');
  const url = 's3://resume-passphrase/dr';
  const first = await copy(url, [], { OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: A });
  expect(first.result).toMatch(/1 set\(s\) copied/);
  expect(first.code).toBe(0);
  const left = await dropRecords('resume-passphrase');
  expect(left).toHaveLength(2); // the archive and its manifest

  const resumed = await copy(url, [], { OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B });
  expect(resumed.result).toMatch(/1 set\(s\) copied/);
  expect(resumed.code).toBe(0);
  // One key restores the whole set: the new one.
  await expectFetchedWhole(url, 'fetched-new', { OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B });
  // Nothing the old passphrase encrypted was kept: both objects went up again, each named in a warning.
  expect(resumed.outputs.ResumedFiles).toBe('0');
  for (const key of left) {
    const name = key.replace(/^dr\//, '');
    expect(resumed.stdout).toMatch(new RegExp(`s3://resume-passphrase/dr/${name.replace(/\./g, '\\.')} is offsite from an earlier run, but "Encryption passphrase" \\(OctopusDr\\.Offsite\\.EncryptionPassphrase\\) does not open it \\(.+\\): it was encrypted with another key; uploading it again`));
  }
  for (const secret of [A, B]) expect((resumed.stdout + resumed.stderr).toLowerCase()).not.toContain(secret.toLowerCase());

  // Interrupted again, resumed with the same passphrase: proven to open, both objects are kept.
  await dropRecords('resume-passphrase');
  const again = await copy(url, [], { OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B });
  expect(again.code).toBe(0);
  expect(again.outputs.ResumedFiles).toBe('2');
  expect(again.outputs.UploadedBytes).toBe('0');
  expect(again.stdout).toMatch(/Already offsite \(decrypts with the current key to the same size and SHA-256\)/);

  // Interrupted again, and the archive cut short offsite (its metadata kept): the key opens it, the end does not decrypt; it goes up again.
  await dropRecords('resume-passphrase');
  const zip = left.find((k) => k.endsWith('.zip'))!;
  const c = s3.client();
  const got = await c.send(new GetObjectCommand({ Bucket: 'resume-passphrase', Key: zip }));
  const head = await c.send(new HeadObjectCommand({ Bucket: 'resume-passphrase', Key: zip }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  await c.send(new PutObjectCommand({ Bucket: 'resume-passphrase', Key: zip, Body: bytes.subarray(0, bytes.length - 100), Metadata: head.Metadata }));
  c.destroy();
  const cut = await copy(url, [], { OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B });
  expect(cut.code).toBe(0);
  expect(cut.outputs.ResumedFiles).toBe('1');
  expect(cut.stdout).toContain(`s3://resume-passphrase/${zip} is offsite from an earlier run and "Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase) opens it, but it cannot be decrypted to the end (`);
  const afterCut = await fetchArchive(url, 'fetched-after-cut', { OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B });
  expect(afterCut.code).toBe(0);
  expect(afterCut.sha).toBe(archiveSha);
}, 240_000);

(hasAge ? test : test.skip)('a resume encrypted for a recipient never reuses an encrypted object of an earlier run (a public key cannot prove what it was encrypted for): uploaded again, said in the verbose log; the new identity restores the set', async () => {
  const keys = [1, 2].map((n) => {
    const file = path.join(work, `recipient-${n}.key`);
    execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    return { identity: text.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!, recipient: /public key: (age1\w+)/.exec(text)![1] };
  });
  await s3.createBucket('resume-recipient');
  const url = 's3://resume-recipient/dr';
  const first = await copy(url, ['--encryption-recipient', keys[0].recipient], {});
  expect(first.code).toBe(0);
  const left = await dropRecords('resume-recipient');

  const resumed = await copy(url, ['--encryption-recipient', keys[1].recipient], {});
  expect(resumed.code).toBe(0);
  await expectFetchedWhole(url, 'fetched-recipient', { OCTOPUSDR_OFFSITE_DECRYPTIONIDENTITY: keys[1].identity });
  expect(resumed.outputs.ResumedFiles).toBe('0');
  for (const key of left) {
    const name = key.replace(/^dr\//, '');
    expect(resumed.stdout).toContain(`s3://resume-recipient/dr/${name} is offsite from an earlier run, encrypted; a recipient's public key cannot decrypt it to prove it was encrypted for ${keys[1].recipient}, so it is uploaded again`);
  }
}, 240_000);
