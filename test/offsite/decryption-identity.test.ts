// *Decryption identity* as people hold it: the key file age-keygen writes (comment lines included),
// and a mistyped key. Through the built bundles (age-encryption is an ES module) against s3rver.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { runBundle, tempDir } from '../file-store/helpers';
import { fileStoreFullBackup } from './fixtures';
import { startS3Server, type S3Server } from './servers';

const hasAge = spawnSync('age-keygen', ['--version']).status === 0;
let s3: S3Server;
let work: string;
let keyFile: string;
let identity: string;
const url = 's3://identity-forms/dr';

beforeAll(async () => {
  s3 = await startS3Server();
  work = tempDir('octopus-dr-identity-');
  if (!hasAge) return;
  const { fileStore } = await fileStoreFullBackup(work, ['TaskLogs']);
  keyFile = path.join(work, 'offsite.key');
  execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
  identity = readFileSync(keyFile, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
  const recipient = /public key: (age1\w+)/.exec(readFileSync(keyFile, 'utf8'))![1];
  await s3.createBucket('identity-forms');
  const copied = await runBundle('copy-offsite', ['--service-messages', '--offsite-url', url, '--endpoint-url', s3.endpoint, '--path-style', '--file-store-backup-directory', fileStore, '--encryption-recipient', recipient], {
    env: { OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey },
  });
  if (copied.code !== 0) throw new Error(`copy failed: ${resultMessageIn(copied.stdout)}`);
}, 120_000);
afterAll(() => s3?.stop());

function restore(name: string, args: string[], env: NodeJS.ProcessEnv = {}, endpoint = s3.endpoint) {
  return runBundle(
    'restore-file-store',
    ['--service-messages', '--source', url, '--endpoint-url', endpoint, '--path-style', '--download-directory', path.join(work, `staging-${name}`), '--home-directory', path.join(work, `home-${name}`), ...args],
    { env: { OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, ...env } },
  );
}

(hasAge ? test : test.skip)('the key file age-keygen writes, comments and all, is taken as the identity', async () => {
  const run = await restore('key-file', ['--decryption-identity-file', keyFile]);
  expect(resultMessageIn(run.stdout)).toMatch(/^Restored \d+ files/);
  expect(run.code).toBe(0);
  expect((run.stdout + run.stderr).toLowerCase()).not.toContain(identity.toLowerCase());
}, 60_000);

(hasAge ? test : test.skip)('a mistyped identity (its checksum wrong): exit 2 naming "Decryption identity", before anything connects, never quoting it', async () => {
  // One character changed: still AGE-SECRET-KEY-1 and the bech32 alphabet, so only the checksum tells.
  const at = identity.length - 10;
  const typo = identity.slice(0, at) + (identity[at] === 'Q' ? 'P' : 'Q') + identity.slice(at + 1);
  const typoFile = path.join(work, 'typo.key');
  writeFileSync(typoFile, `${typo}\n`);
  // An endpoint nothing listens on: the identity must be refused before the store is tried.
  const run = await restore('typo', ['--decryption-identity-file', typoFile], {}, 'http://127.0.0.1:9');
  const output = run.stdout + run.stderr;
  expect(resultMessageIn(run.stdout)).toMatch(/^"Decryption identity" \(OctopusDr\.Offsite\.DecryptionIdentity\) must be an age identity .*: set "Decryption identity" \(OctopusDr\.Offsite\.DecryptionIdentity\) in the step/);
  expect(run.code).toBe(2);
  expect(output).not.toMatch(/Cannot reach|ECONNREFUSED/);
  // No part of it: not the key, nor its data part.
  expect(output.toLowerCase()).not.toContain(typo.slice('AGE-SECRET-KEY-1'.length, -6).toLowerCase());
  expect(existsSync(path.join(work, 'staging-typo'))).toBe(false);
}, 60_000);
