// Offsite retention after the encryption passphrase changed (or encryption was turned off): sets
// whose manifest the current key cannot decrypt are kept, with every older set of their area, and a
// warning names them and says why; newer sets are still retained; the copy's output variables are
// set and the step exits 0. Before, the whole run failed on the first old set's manifest, with
// advice to change the passphrase that did not name retention. Through the built bundle
// (age-encryption is an ES module) against s3rver, with file-store sets dated in the past.
import { readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { runBundle, tempDir } from '../file-store/helpers';
import { datedFileStoreBackups } from './fixtures';
import { startS3Server, type S3Server } from './servers';

let s3: S3Server;
let work: string;
let backups: ReturnType<typeof datedFileStoreBackups>;
let fileStore: string;
const A = 'Qx7#2kLm before, vT9@';
const B = 'Zp4!9wRt after, mK3%';
const DAY = 24 * 3600 * 1000;
const SETS_START = Date.now() - 20 * DAY;

beforeAll(async () => {
  s3 = await startS3Server();
  work = tempDir('octopus-dr-retention-key-');
  backups = datedFileStoreBackups(work);
  ({ fileStore } = backups);
}, 60_000);
afterAll(() => s3?.stop());

/** Full sets as if taken `daysIn` days after SETS_START; their names without ".zip". */
async function fullSetsOnDays(days: number[]): Promise<string[]> {
  const names: string[] = [];
  for (const daysIn of days) names.push(await backups.fullAt(new Date(SETS_START + daysIn * DAY)));
  return names;
}

const url = 's3://retention-key/dr';
async function copy(env: NodeJS.ProcessEnv, ...args: string[]) {
  const run = await runBundle('copy-offsite', ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1', '--offsite-url', url, '--file-store-backup-directory', fileStore, ...args], {
    env: { OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, ...env },
  });
  for (const secret of [A, B]) expect((run.stdout + run.stderr).toLowerCase()).not.toContain(secret.toLowerCase());
  return { ...run, outputs: outputVariablesIn(run.stdout), result: resultMessageIn(run.stdout) ?? '' };
}

async function setsOffsite(): Promise<string[]> {
  const c = s3.client();
  const keys = ((await c.send(new ListObjectsV2Command({ Bucket: 'retention-key' }))).Contents ?? []).map((o) => o.Key!);
  c.destroy();
  return keys.filter((k) => k.endsWith('.offsite.json')).map((k) => path.basename(k, '.offsite.json')).sort();
}

const warningsIn = (stdout: string) => stdout.split('\n').filter((l) => l.includes('Offsite retention: kept'));

test('after a passphrase change, the sets the new one cannot decrypt are kept with every older set, named in one warning; newer sets are still retained; exit 0 with the copy\'s outputs', async () => {
  await s3.createBucket('retention-key');
  const old = await fullSetsOnDays([0, 1]);
  const first = await copy({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: A });
  expect(first.code).toBe(0);
  // The passphrase is changed; two more sets, the older of them old enough to go and needed by none.
  const newer = await fullSetsOnDays([10, 11]);
  const run = await copy({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B }, '--offsite-retention-days', '5', '--keep-at-least', '1');
  // The older new set is not copied at all: retention would delete it as soon as it arrived (retention-churn.test.ts).
  expect(run.result).toMatch(/^Offsite copy to s3:\/\/retention-key\/dr: 1 set\(s\) copied/);
  expect(run.code).toBe(0);
  expect(run.outputs.Copied).toBe(newer[1]);
  expect(run.outputs.AlreadyOffsite).toBe('2');
  expect(run.outputs.NotCopied).toMatch(new RegExp(`^${newer[0]}: offsite retention \\(5 days\\) would delete it`));
  expect(run.outputs.RetentionDeleted).toBe('');
  expect(await setsOffsite()).toEqual([...old, newer[1]].sort());
  const warnings = warningsIn(run.stdout);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain(
    `Offsite retention: kept file-store/${old[1]}, file-store/${old[0]} and every older file-store set: their manifests offsite cannot be decrypted with "Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase) ` +
      '(encrypted with another passphrase, one used before it was changed?), so which sets they need is unknown. They are never deleted by retention while that is so: ' +
      'delete them by hand when no longer needed (each set\'s .offsite.json record first), or by the store\'s lifecycle rules.',
  );

  // Encryption turned off: every set offsite is encrypted, so nothing can be decided, and nothing goes.
  // (The set not copied above is moved away here: with no manifest offsite readable, retention would
  // keep it, so the copy would send it, unencrypted.)
  for (const suffix of ['.zip', '.manifest.json']) rmSync(path.join(fileStore, `${newer[0]}${suffix}`));
  const plain = await copy({}, '--offsite-retention-days', '5', '--keep-at-least', '1');
  expect(plain.code).toBe(0);
  expect(plain.outputs.RetentionDeleted).toBe('');
  expect(await setsOffsite()).toEqual([...old, newer[1]].sort());
  expect(warningsIn(plain.stdout)).toEqual([
    expect.stringContaining(
      `Offsite retention: kept file-store/${newer[1]}, file-store/${old[1]}, file-store/${old[0]} and every older file-store set: their manifests offsite are encrypted and "Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase) is not set, so which sets they need is unknown.`,
    ),
  ]);
}, 240_000);

test('retention that fails after a successful copy says so (the copy is done) and what to do; the copy\'s output variables are set all the same', async () => {
  await s3.createBucket('retention-fails');
  await fullSetsOnDays([12]); // at least one set to copy, when this test runs alone
  // A record offsite that is not one (cut short): retention cannot read the area.
  const c = s3.client();
  await c.send(new PutObjectCommand({ Bucket: 'retention-fails', Key: 'dr/file-store/octopus-file-store-20200101T000000Z-000000-full.offsite.json', Body: '{"cut short' }));
  c.destroy();
  const run = await runBundle('copy-offsite', ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1', '--offsite-url', 's3://retention-fails/dr', '--file-store-backup-directory', fileStore, '--offsite-retention-days', '5'], {
    env: { OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B },
  });
  const result = resultMessageIn(run.stdout) ?? '';
  const local = readdirSync(fileStore).filter((n) => n.endsWith('.manifest.json')).length;
  expect(local).toBeGreaterThan(0);
  const begins = `Offsite retention failed after the copy succeeded (${local} set(s) copied, 0 already offsite): s3://retention-fails/dr/file-store/octopus-file-store-20200101T000000Z-000000-full.offsite.json is not valid JSON`;
  expect(result.slice(0, begins.length)).toBe(begins);
  expect(result.split('\n').pop()).toBe('Offsite retention did not finish; the copy is done. Fix what is named above, or set "Offsite retention (days)" (OctopusDr.Offsite.RetentionDays) to 0, and run the copy again.');
  expect(run.code).toBe(1);
  const outputs = outputVariablesIn(run.stdout);
  expect(outputs.CopiedSets).toBe(String(local));
  expect(outputs.Copied.split('\n')).toHaveLength(local);
  expect(outputs.RetentionDeleted).toBeUndefined();
}, 120_000);
