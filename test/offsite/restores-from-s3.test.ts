// Restore SQL Database, Test Latest Backup and Restore File Store straight from an s3:// URL, plain
// and age-encrypted: back up, copy offsite to s3rver, delete the local backups, restore. Plain sets
// run in process; encrypted ones through the built bundles (age-encryption is an ES module, which
// Jest's in-process runs cannot load; the bundles can).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import type { Lab } from '../database/harness';
import { makeStore, runBundle, silentLog, snapshot } from '../file-store/helpers';
import { runStepInProcess } from '../helpers/in-process';
import { labWithOctopusChain, runCopy } from './fixtures';
import { startS3Server, type S3Server } from './servers';

const hasAge = spawnSync('age-keygen', ['--version']).status === 0;
const KEY = randomBytes(32);
const PASSPHRASE = 'Kx7#pQ2!vR9zL4@wN8 passphrase';
// s3rver checks the key ID, not the signature: any secret signs, so the tests use one a leak would show
// (with / and +, as AWS secrets have: a URL-encoded copy must not leak either).
const SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYzq81KEY42';
let s3: S3Server;
let lab: Lab;
let home: string;
let plainUrl: string;
let encryptedUrl: string;
let fileStore: string;

const s3Args = () => ['--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1'];
const s3Env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: SECRET_ACCESS_KEY, ...extra });
const secrets = [SECRET_ACCESS_KEY, encodeURIComponent(SECRET_ACCESS_KEY), PASSPHRASE];

beforeAll(async () => {
  s3 = await startS3Server();
  let backups: string;
  ({ lab, backups } = await labWithOctopusChain(KEY));

  home = path.join(lab.root, 'home');
  makeStore(home);
  fileStore = path.join(lab.root, 'fs');
  mkdirSync(fileStore);
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));

  await s3.createBucket('restores-plain');
  await s3.createBucket('restores-encrypted');
  plainUrl = 's3://restores-plain/site-a';
  encryptedUrl = 's3://restores-encrypted/site-a';
  const plain = await runCopy(['--offsite-url', plainUrl, ...s3Args(), '--backup-directory', backups, '--file-store-backup-directory', fileStore], s3Env());
  if (plain.code !== 0) throw new Error(`copy failed: ${plain.result}`);
  // Encrypting needs age-encryption: the built bundle.
  const encrypted = await runBundle('copy-offsite', ['--service-messages', '--offsite-url', encryptedUrl, ...s3Args(), '--backup-directory', backups, '--file-store-backup-directory', fileStore], {
    env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE }),
  });
  if (encrypted.code !== 0) throw new Error(`encrypted copy failed: ${resultMessageIn(encrypted.stdout)}\n${encrypted.stderr}`);
  // The site is gone: only the offsite copies are left (the file-store set stays for one more copy below).
  rmSync(backups, { recursive: true });
}, 240_000);
afterAll(async () => {
  await lab?.stop();
  await s3?.stop();
});

function rows(database: string): string {
  const db = lab.sim.model.database(database)!;
  return JSON.stringify([...db.tables.entries()].map(([name, t]) => [name, t.rows]));
}

function noSecretIn(text: string): void {
  for (const secret of secrets) expect(text.toLowerCase()).not.toContain(secret.toLowerCase());
}

const fileHashes = (root: string) =>
  Object.entries(snapshot(root))
    .filter(([, v]) => v.type === 'file')
    .map(([k, v]) => [k, (v as { sha256: string }).sha256]);

describe('a plain set (in process)', () => {
  test('Restore SQL Database from the s3:// URL: the newest chain downloaded and checked, rows identical', async () => {
    const staging = path.join(lab.root, 'staging-s3-restore');
    const run = await lab.run('restore-database', 'master', ['--source', plainUrl, ...s3Args(), '--download-directory', staging, '--target-database', 'Octopus-s3'], { env: s3Env() });
    expect(run.stderr).toBe('');
    expect(run.result).toMatch(/^Restored 'Octopus-s3'/);
    expect(run.code).toBe(0);
    expect(rows('Octopus-s3')).toBe(rows('Octopus'));
    expect(run.stdout).toMatch(/Downloaded .* from s3:\/\/restores-plain\/site-a .*every SHA-256 matches/);
    // The full and both logs with their manifests; no file-store archive, nothing else.
    expect(readdirSync(staging).filter((f) => f.endsWith('.manifest.json'))).toHaveLength(3);
    expect(readdirSync(staging).filter((f) => !/\.(bak|trn|manifest\.json)$/.test(f))).toEqual([]);
    noSecretIn(run.stdout + run.stderr);
  }, 120_000);

  test('Test Latest Backup from the s3:// URL: restored under a scratch name, the key proven, the report written', async () => {
    const staging = path.join(lab.root, 'staging-s3-test');
    const reports = path.join(lab.root, 'reports-s3');
    mkdirSync(reports);
    const run = await lab.run('test-restore', 'master', ['--source', plainUrl, ...s3Args(), '--download-directory', staging, '--report-directory', reports], {
      env: s3Env({ OCTOPUSDR_MASTERKEY: KEY.toString('base64') }),
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(readFileSync(run.artifacts.find((a) => a.endsWith('.json'))!, 'utf8'));
    expect(report.masterKey.status).toBe('passed');
    expect(report.backup.sets).toHaveLength(3);
    noSecretIn(run.stdout + run.stderr + JSON.stringify(report));
  }, 180_000);

  test('a missing bucket: the store error names "Backup to restore", the parameter the user set, not "Offsite URL"', async () => {
    const staging = path.join(lab.root, 'staging-s3-missing');
    const run = await lab.run('restore-database', 'master', ['--source', 's3://no-such-bucket-here/dr', ...s3Args(), '--download-directory', staging], { env: s3Env() });
    expect(run.code).toBe(1);
    expect(run.result).toMatch(/^The bucket "no-such-bucket-here" does not exist .*: check "Backup to restore" \(OctopusDr\.Restore\.Source\) and "S3 endpoint URL"/);
    expect(run.result).not.toContain('Offsite URL');
    const test = await lab.run('test-restore', 'master', ['--source', 's3://no-such-bucket-here/dr', ...s3Args(), '--download-directory', staging], {
      env: s3Env({ OCTOPUSDR_MASTERKEY: KEY.toString('base64') }),
    });
    expect(test.code).toBe(1);
    expect(test.result).toContain('check "Backup to restore" (OctopusDr.Restore.Source)');
    // Fetch takes the URL as "Offsite URL", and says so.
    const fetched = await runStepInProcess('fetch-offsite', ['--service-messages', '--offsite-url', 's3://no-such-bucket-here/dr', ...s3Args(), '--fetch', 'Database', '--download-directory', staging], { env: s3Env() });
    expect(resultMessageIn(fetched.stdout)).toContain('check "Offsite URL" (OctopusDr.Offsite.Url)');
  }, 60_000);

  test("a file of a set's name already in the download folder is never overwritten: the fetch fails naming it, the file untouched; before, it was replaced (red-team finding)", async () => {
    const staging = path.join(lab.root, 'staging-s3-occupied');
    const first = await runStepInProcess('fetch-offsite', ['--service-messages', '--offsite-url', plainUrl, ...s3Args(), '--fetch', 'Database', '--download-directory', staging], { env: s3Env() });
    expect(first.code).toBe(0);
    const occupied = path.join(lab.root, 'staging-s3-occupied-2');
    mkdirSync(occupied);
    const name = readdirSync(staging).find((n) => n.endsWith('.bak'))!;
    writeFileSync(path.join(occupied, name), 'the only copy of something else');
    const second = await runStepInProcess('fetch-offsite', ['--service-messages', '--offsite-url', plainUrl, ...s3Args(), '--fetch', 'Database', '--download-directory', occupied], { env: s3Env() });
    expect(second.code).toBe(1);
    expect(resultMessageIn(second.stdout)).toContain(`${path.join(occupied, name)} already exists and is not the offsite copy (another size or SHA-256); nothing was overwritten.`);
    expect(readFileSync(path.join(occupied, name), 'utf8')).toBe('the only copy of something else');
    // The same fetch again where the files are the offsite copies: nothing to do, exit 0.
    const again = await runStepInProcess('fetch-offsite', ['--service-messages', '--offsite-url', plainUrl, ...s3Args(), '--fetch', 'Database', '--download-directory', staging], { env: s3Env() });
    expect(again.code).toBe(0);
  }, 60_000);

  test('an S3 URL with an unreachable endpoint: the local folders are checked first (exit 2), nothing connects', async () => {
    const staging = path.join(lab.root, 'staging-s3-early');
    const run = await lab.run(
      'test-restore',
      'master',
      ['--source', plainUrl, '--endpoint-url', 'http://127.0.0.1:9', '--path-style', '--download-directory', staging, '--file-store-backup-directory', path.join(lab.root, 'no-such-fs')],
      { env: s3Env({ OCTOPUSDR_MASTERKEY: KEY.toString('base64') }) },
    );
    expect(run.code).toBe(2);
    expect(run.result).toMatch(/no-such-fs/);
    expect(run.stdout + run.stderr).not.toMatch(/Cannot reach|ECONNREFUSED/);
  }, 60_000);
});

describe('an age-encrypted set (built bundles)', () => {
  test('Restore SQL Database decrypts it with "Encryption passphrase": rows identical, the passphrase never shown', async () => {
    const staging = path.join(lab.root, 'staging-enc-restore');
    const run = await lab.run('restore-database', 'master', ['--source', encryptedUrl, ...s3Args(), '--download-directory', staging, '--target-database', 'Octopus-enc'], {
      env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE }),
      bundle: true,
    });
    expect(run.stderr).toBe('');
    expect(run.result).toMatch(/^Restored 'Octopus-enc'/);
    expect(run.code).toBe(0);
    expect(rows('Octopus-enc')).toBe(rows('Octopus'));
    // Decrypted on the way in: the staged backups are plain (a SQL Server reads them).
    const bak = readdirSync(staging).find((f) => f.endsWith('.bak'))!;
    expect(readFileSync(path.join(staging, bak)).subarray(0, 21).toString()).not.toBe('age-encryption.org/v1');
    noSecretIn(run.stdout + run.stderr);
  }, 120_000);

  test('Test Latest Backup decrypts it too', async () => {
    const reports = path.join(lab.root, 'reports-enc');
    mkdirSync(reports);
    const run = await lab.run('test-restore', 'master', ['--source', encryptedUrl, ...s3Args(), '--download-directory', path.join(lab.root, 'staging-enc-test'), '--report-directory', reports], {
      env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE, OCTOPUSDR_MASTERKEY: KEY.toString('base64') }),
      bundle: true,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.result).toMatch(/^Backup of 'Octopus' restored and checked/);
    noSecretIn(run.stdout + run.stderr);
  }, 180_000);

  test('a wrong passphrase fails naming the parameter and the fix; nothing is written locally, nothing restored', async () => {
    const staging = path.join(lab.root, 'staging-enc-wrong');
    const wrong = 'not the passphrase, 3x!Q9';
    const run = await lab.run('restore-database', 'master', ['--source', encryptedUrl, ...s3Args(), '--download-directory', staging, '--target-database', 'Octopus-wrong'], {
      env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: wrong }),
      bundle: true,
    });
    expect(run.code).toBe(1);
    expect(run.result).toMatch(/^Cannot decrypt .*"Encryption passphrase" \(OctopusDr\.Offsite\.EncryptionPassphrase\) is not the one it was encrypted with: set it to the passphrase Copy Backups Offsite used/);
    // Nothing written: the download folder, created for the check, is gone again.
    expect(existsSync(staging)).toBe(false);
    expect(lab.sim.model.database('Octopus-wrong')).toBeUndefined();
    expect((run.stdout + run.stderr).toLowerCase()).not.toContain(wrong.toLowerCase());
  }, 60_000);

  test('no passphrase: exit 2 naming "Encryption passphrase" and how to set it; nothing written', async () => {
    const staging = path.join(lab.root, 'staging-enc-missing');
    const run = await lab.run('test-restore', 'master', ['--source', encryptedUrl, ...s3Args(), '--download-directory', staging], {
      env: s3Env({ OCTOPUSDR_MASTERKEY: KEY.toString('base64') }),
      bundle: true,
    });
    expect(run.code).toBe(2);
    expect(run.result).toMatch(
      /was encrypted offsite with a passphrase: set "Encryption passphrase" \(OctopusDr\.Offsite\.EncryptionPassphrase\) in the step, or environment variable OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE or --encryption-passphrase-file on the command line/,
    );
    // Nothing written: the download folder, created for the check, is gone again.
    expect(existsSync(staging)).toBe(false);
  }, 60_000);

  test('Restore File Store restores an encrypted set, identical to what was backed up', async () => {
    const target = path.join(lab.root, 'restored-home');
    const staging = path.join(lab.root, 'staging-enc-fs');
    const run = await runBundle('restore-file-store', ['--service-messages', '--source', encryptedUrl, ...s3Args(), '--download-directory', staging, '--home-directory', target], {
      env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE }),
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(fileHashes(target)).toEqual(fileHashes(home).filter(([k]) => ['TaskLogs', 'Artifacts', 'Packages'].includes(String(k).split('/')[0])));
    noSecretIn(run.stdout + run.stderr);
    // A wrong passphrase restores nothing and writes nothing.
    const wrongTarget = path.join(lab.root, 'restored-home-wrong');
    const wrongStaging = path.join(lab.root, 'staging-enc-fs-wrong');
    const wrong = await runBundle('restore-file-store', ['--service-messages', '--source', encryptedUrl, ...s3Args(), '--download-directory', wrongStaging, '--home-directory', wrongTarget], {
      env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: 'the wrong one, 8Kp#' }),
    });
    expect(wrong.code).toBe(1);
    expect(resultMessageIn(wrong.stdout)).toMatch(/^Cannot decrypt .*"Encryption passphrase"/);
    expect(existsSync(wrongTarget)).toBe(false);
    expect(existsSync(wrongStaging)).toBe(false);
  }, 120_000);

  (hasAge ? test : test.skip)('a set encrypted for a recipient: Restore File Store decrypts it with "Decryption identity"; without one, exit 2 naming it', async () => {
    const keyFile = path.join(lab.root, 'offsite.key');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const identity = readFileSync(keyFile, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    const recipient = /public key: (age1\w+)/.exec(readFileSync(keyFile, 'utf8'))![1];
    await s3.createBucket('restores-recipient');
    const url = 's3://restores-recipient/site-a';
    const copied = await runBundle('copy-offsite', ['--service-messages', '--offsite-url', url, ...s3Args(), '--file-store-backup-directory', fileStore, '--encryption-recipient', recipient], { env: s3Env() });
    expect(copied.code).toBe(0);
    const target = path.join(lab.root, 'restored-home-recipient');
    const run = await runBundle('restore-file-store', ['--service-messages', '--source', url, ...s3Args(), '--download-directory', path.join(lab.root, 'staging-recipient'), '--home-directory', target], {
      env: s3Env({ OCTOPUSDR_OFFSITE_DECRYPTIONIDENTITY: identity }),
    });
    expect(run.code).toBe(0);
    expect(fileHashes(target)).toEqual(fileHashes(home).filter(([k]) => ['TaskLogs', 'Artifacts', 'Packages'].includes(String(k).split('/')[0])));
    expect((run.stdout + run.stderr).toLowerCase()).not.toContain(identity.toLowerCase());
    const missing = await runBundle('restore-file-store', ['--service-messages', '--source', url, ...s3Args(), '--download-directory', path.join(lab.root, 'staging-recipient-missing'), '--home-directory', path.join(lab.root, 'restored-recipient-missing')], {
      env: s3Env({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: PASSPHRASE }),
    });
    expect(missing.code).toBe(2);
    expect(resultMessageIn(missing.stdout)).toMatch(new RegExp(`was encrypted offsite for ${recipient}: set "Decryption identity" \\(OctopusDr\\.Offsite\\.DecryptionIdentity\\) in the step`));
    expect(existsSync(path.join(lab.root, 'staging-recipient-missing'))).toBe(false);
  }, 120_000);
});
