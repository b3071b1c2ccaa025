// Encrypted offsite sets after a passphrase change, and damaged encrypted objects: restores through
// the built bundles (age-encryption is an ES module) against s3rver.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { makeStore, runBundle, silentLog, tempDir } from '../file-store/helpers';
import { startS3Server, type S3Server } from './servers';
import { quietEngineContext } from '../../steps/runtime/engine-context';

let s3: S3Server;
let work: string;
let fileStore: string;
let folders: ReturnType<typeof resolveFolders>['folders'];
const A = 'first passphrase, Qx7#2kLm';
const B = 'rotated passphrase, Zp4!9wRt';

beforeAll(async () => {
  s3 = await startS3Server();
  work = tempDir('octopus-dr-rt2-');
  const home = path.join(work, 'home');
  makeStore(home);
  fileStore = path.join(work, 'fs');
  mkdirSync(fileStore);
  folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
}, 60_000);
afterAll(() => s3?.stop());

const s3Args = () => ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1'];
const s3Env = (extra: NodeJS.ProcessEnv = {}) => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, ...extra });

async function fullBackup(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1100));
  await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
}

async function copy(url: string, passphrase: string): Promise<void> {
  const run = await runBundle('copy-offsite', [...s3Args(), '--offsite-url', url, '--file-store-backup-directory', fileStore], { env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: passphrase }) });
  if (run.code !== 0) throw new Error(`copy failed: ${resultMessageIn(run.stdout)}\n${run.stderr}`);
}

async function keys(bucket: string): Promise<string[]> {
  const c = s3.client();
  const out = ((await c.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
  c.destroy();
  return out.sort();
}

async function rewrite(bucket: string, key: string, change: (b: Buffer) => Buffer): Promise<void> {
  const c = s3.client();
  const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  const body = change(Buffer.from(await got.Body!.transformToByteArray()));
  await c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: head.Metadata }));
  c.destroy();
}

async function restore(url: string, name: string, passphrase: string) {
  const staging = path.join(work, `staging-${name}`);
  const target = path.join(work, `home-${name}`);
  const run = await runBundle('restore-file-store', [...s3Args(), '--source', url, '--download-directory', staging, '--home-directory', target], { env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: passphrase }) });
  const listing = existsSync(staging) ? readdirSync(staging) : [];
  const output = run.stdout + run.stderr;
  for (const secret of [A, B]) expect(output.toLowerCase()).not.toContain(secret.toLowerCase());
  return { run, result: resultMessageIn(run.stdout) ?? '', staging, target, listing };
}

const idOf = (key: string) => path.basename(key).replace(/\.offsite\.json$/, '');

test('after a passphrase change, the new passphrase restores the newest set (the older sets are skipped, named); the old one does not restore an older set in its place', async () => {
  await s3.createBucket('rotation');
  await fullBackup();
  await copy('s3://rotation/dr', A);
  // A new full set, copied after the passphrase was changed.
  rmSync(fileStore, { recursive: true });
  mkdirSync(fileStore);
  await fullBackup();
  await copy('s3://rotation/dr', B);
  const [older, newer] = (await keys('rotation')).filter((k) => k.endsWith('.offsite.json')).map(idOf);

  const withNew = await restore('s3://rotation/dr', 'rotation-new', B);
  expect(withNew.result).toMatch(/^Restored \d+ files/);
  expect(withNew.run.code).toBe(0);
  expect(withNew.run.stdout).toContain(`Skipping ${older} `);
  expect(withNew.listing.filter((f) => f.endsWith('.zip'))).toEqual([`${newer}.zip`]);

  // The old passphrase opens only the older set: the newest cannot be restored with it, and an older one is not restored instead.
  const withOld = await restore('s3://rotation/dr', 'rotation-old', A);
  expect(withOld.run.code).toBe(1);
  expect(withOld.result).toMatch(new RegExp(`^Cannot decrypt ${newer}: "Encryption passphrase"`));
  expect(withOld.listing).toEqual([]);
  expect(existsSync(withOld.target)).toBe(false);
  // Naming the older set's manifest restores it with the old passphrase.
  const named = await restore(`s3://rotation/dr/file-store/${older}.manifest.json`, 'rotation-named', A);
  expect(named.run.code).toBe(0);
}, 240_000);

test('a truncated or changed encrypted archive fails naming the object and what to do (not as an internal error); nothing is left in the download folder or restored', async () => {
  for (const [bucket, change] of [
    ['truncated', (b: Buffer) => b.subarray(0, b.length - 100)],
    ['flipped', (b: Buffer) => { const c = Buffer.from(b); c[Math.floor(c.length / 2)] ^= 1; return c; }],
  ] as const) {
    await s3.createBucket(bucket);
    await copy(`s3://${bucket}/dr`, A);
    const zip = (await keys(bucket)).find((k) => k.endsWith('.zip'))!;
    await rewrite(bucket, zip, change);
    const run = await restore(`s3://${bucket}/dr`, bucket, A);
    expect(run.run.code).toBe(1);
    expect(run.result).toMatch(new RegExp(`^s3://${bucket}/dr/file-store/${path.basename(zip).replace(/\./g, '\\.')} cannot be decrypted to the end \\(.*\\): it was truncated or changed offsite\\. Nothing was restored`));
    expect(run.listing).toEqual([]);
    expect(existsSync(run.target)).toBe(false);
  }
}, 240_000);

test('the newest set with a changed manifest offsite fails naming it (an older set is not restored in its place); named, the older set restores', async () => {
  await s3.createBucket('changed-manifest');
  rmSync(fileStore, { recursive: true });
  mkdirSync(fileStore);
  await fullBackup();
  await copy('s3://changed-manifest/dr', '');
  rmSync(fileStore, { recursive: true });
  mkdirSync(fileStore);
  await fullBackup();
  await copy('s3://changed-manifest/dr', '');
  const [older, newer] = (await keys('changed-manifest')).filter((k) => k.endsWith('.offsite.json')).map(idOf);
  await rewrite('changed-manifest', `dr/file-store/${newer}.manifest.json`, (b) => Buffer.from(b.toString('utf8').replace('"createdAt"', ' "createdAt"')));
  const run = await restore('s3://changed-manifest/dr', 'changed-manifest', '');
  expect(run.run.code).toBe(1);
  expect(run.result).toMatch(new RegExp(`^${newer} cannot be restored from s3://changed-manifest/dr: .*${newer}\\.manifest\\.json does not match its offsite record \\(SHA-256 differs\\)\\. Copy it offsite again, or end the URL with an older set's \\.manifest\\.json`));
  expect(run.listing).toEqual([]);
  expect(existsSync(run.target)).toBe(false);
  const named = await restore(`s3://changed-manifest/dr/file-store/${older}.manifest.json`, 'changed-manifest-older', '');
  expect(named.run.code).toBe(0);
}, 240_000);
