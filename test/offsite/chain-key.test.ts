// A key change in the middle of a chain: Copy Offsite sends a set only when every earlier set its
// restore needs that is offsite already opens with the current key (a passphrase: its manifest
// offsite decrypts with it; a recipient: its record names it; encryption off: it is plain). Before,
// an incremental encrypted with a new passphrase went offsite on top of a full under the old one,
// exit 0, and no single key restored the newest point (red team, stop 37). Through the built bundles
// (age-encryption is an ES module) against s3rver.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { runBundle, silentLog, tempDir, write } from '../file-store/helpers';
import { dropBackups, fileStoreFullBackup, makeBackups, type Backups } from './fixtures';
import { startS3Server, type S3Server } from './servers';

const hasAge = spawnSync('age-keygen', ['--version']).status === 0;
const A = 'first passphrase, Qx7#2kLm';
const B = 'rotated passphrase, Zp4!9wRt';
const ADVICE = /Take a new full backup \(Backup type Full\) so the chain starts again under the current key, then run the copy again; or run it with the previous passphrase\.$/;
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3Server();
}, 60_000);
afterAll(() => s3?.stop());

const s3Args = () => ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1'];
const s3Env = (extra: NodeJS.ProcessEnv = {}) => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey, ...extra });
const passphrase = (p: string) => ({ OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: p });

async function copy(url: string, folderArgs: string[], env: NodeJS.ProcessEnv, args: string[] = []) {
  const run = await runBundle('copy-offsite', [...s3Args(), '--offsite-url', url, ...folderArgs, ...args], { env: s3Env(env) });
  return { ...run, result: resultMessageIn(run.stdout) ?? '', outputs: outputVariablesIn(run.stdout) };
}

async function keys(bucket: string): Promise<string[]> {
  const c = s3.client();
  const list = ((await c.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
  c.destroy();
  return list;
}
const recordIds = async (bucket: string, area: string) =>
  (await keys(bucket)).filter((k) => k.startsWith(`dr/${area}/`) && k.endsWith('.offsite.json')).map((k) => path.basename(k, '.offsite.json')).sort();

/** A file-store home with a full set in `<work>/fs`; `take` adds a set after a distinct time stamp. */
async function fileStoreChain(prefix: string) {
  const work = tempDir(prefix);
  const { home, fileStore } = await fileStoreFullBackup(work);
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  const take = async (mode: 'Full' | 'Incremental', note: string) => {
    write(path.join(home, 'TaskLogs', `servertasks-${note}.log.txt`), `${note}\n`);
    await new Promise((r) => setTimeout(r, 1100));
    const set = await backupFileStore({ folders, backupDirectory: fileStore, mode, skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
    return path.basename(set.archivePath, '.zip');
  };
  const ids = async () => readdirSync(fileStore).filter((n) => n.endsWith('.zip')).map((n) => n.replace(/\.zip$/, '')).sort();
  return { work, fileStore, take, ids, args: ['--file-store-backup-directory', fileStore] };
}

async function fetchNewest(url: string, work: string, name: string, env: NodeJS.ProcessEnv) {
  const run = await runBundle('fetch-offsite', [...s3Args(), '--offsite-url', url, '--fetch', 'FileStore', '--download-directory', path.join(work, name)], { env: s3Env(env) });
  return { code: run.code, result: resultMessageIn(run.stdout) ?? '', source: outputVariablesIn(run.stdout).FileStoreSource ?? '' };
}

test('passphrase changed between a full and its incremental: the incremental is not copied, exit 1 naming it, its base and what to do; the old passphrase copies it; a new full under the new one is copied and the left-out incremental only warned about', async () => {
  const chain = await fileStoreChain('octopus-dr-chain-key-fs-');
  const [full] = await chain.ids();
  await s3.createBucket('chain-rotated');
  const url = 's3://chain-rotated/dr';
  const first = await copy(url, chain.args, passphrase(A));
  expect(first.result).toMatch(/1 set\(s\) copied/);
  expect(first.code).toBe(0);
  const incremental = await chain.take('Incremental', 'after-rotation');

  const refused = await copy(url, chain.args, passphrase(B));
  expect(refused.code).toBe(1);
  const lastLine = refused.result.split('\n').pop()!;
  expect(lastLine).toContain(`Not copied: file-store/${incremental}, whose base file-store/${full} is offsite under another key.`);
  expect(lastLine).toMatch(ADVICE);
  expect(refused.result).toContain(`file-store/${full} was encrypted offsite with another passphrase: "Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase) does not open its manifest file-store/${full}.manifest.json`);
  expect(await recordIds('chain-rotated', 'file-store')).toEqual([full]);
  // Nothing of the incremental went up.
  expect((await keys('chain-rotated')).some((k) => k.includes(incremental))).toBe(false);
  for (const secret of [A, B]) expect((refused.stdout + refused.stderr).toLowerCase()).not.toContain(secret.toLowerCase());

  // The same key as the base: copied, and one key fetches the newest point.
  const withA = await copy(url, chain.args, passphrase(A));
  expect(withA.code).toBe(0);
  expect(withA.outputs.Copied).toBe(incremental);
  const fetched = await fetchNewest(url, chain.work, 'fetched-a', passphrase(A));
  expect(fetched.code).toBe(0);
  expect(fetched.source).toContain(incremental);

  // Another incremental under B, then the advice: a new full, and the copy again under B.
  const second = await chain.take('Incremental', 'second');
  expect((await copy(url, chain.args, passphrase(B))).code).toBe(1);
  const newFull = await chain.take('Full', 'new-full');
  const afterFull = await copy(url, chain.args, passphrase(B));
  expect(afterFull.result).not.toMatch(/under another key, and no single key/);
  expect(afterFull.code).toBe(0);
  expect(afterFull.outputs.Copied).toBe(newFull);
  expect(afterFull.outputs.NotCopied).toContain(`${second}: its chain is offsite under another key`);
  expect(afterFull.stdout).toContain(`Not copied: ${second}: its chain is offsite under another key`);
  const fetchedB = await fetchNewest(url, chain.work, 'fetched-b', passphrase(B));
  expect(fetchedB.code).toBe(0);
  expect(fetchedB.source).toContain(newFull);
}, 300_000);

test('encryption turned off under an encrypted base: refused (the current settings cannot open it); turned on over a plain base: copied, and the new passphrase fetches the newest point', async () => {
  const chain = await fileStoreChain('octopus-dr-chain-key-onoff-');
  const [full] = await chain.ids();
  await s3.createBucket('chain-off');
  expect((await copy('s3://chain-off/dr', chain.args, passphrase(A))).code).toBe(0);
  const incremental = await chain.take('Incremental', 'plain');
  const off = await copy('s3://chain-off/dr', chain.args, {});
  expect(off.code).toBe(1);
  expect(off.result).toContain(`file-store/${full} is encrypted offsite (age, a passphrase), and encryption is off now`);
  expect(off.result.split('\n').pop()).toContain(`Not copied: file-store/${incremental}, whose base file-store/${full}`);
  expect(off.result).toMatch(ADVICE);

  // Plain base, encrypted now: a plain set needs no key, so B alone restores the chain.
  await s3.createBucket('chain-on');
  const plainFirst = await fileStoreChain('octopus-dr-chain-key-on-');
  expect((await copy('s3://chain-on/dr', plainFirst.args, {})).code).toBe(0);
  const encrypted = await plainFirst.take('Incremental', 'encrypted');
  const on = await copy('s3://chain-on/dr', plainFirst.args, passphrase(B));
  expect(on.result).toMatch(/1 set\(s\) copied/);
  expect(on.code).toBe(0);
  const fetched = await fetchNewest('s3://chain-on/dr', plainFirst.work, 'fetched-on', passphrase(B));
  expect(fetched.code).toBe(0);
  expect(fetched.source).toContain(encrypted);
}, 300_000);

(hasAge ? test : test.skip)('recipient changed between a full and its incremental: refused naming the recipient the base was encrypted for; the same recipient copies it', async () => {
  const chain = await fileStoreChain('octopus-dr-chain-key-recipient-');
  const [full] = await chain.ids();
  const recipients = [1, 2].map((n) => {
    const file = path.join(chain.work, `recipient-${n}.key`);
    execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
    return /public key: (age1\w+)/.exec(readFileSync(file, 'utf8'))![1];
  });
  await s3.createBucket('chain-recipient');
  const url = 's3://chain-recipient/dr';
  expect((await copy(url, chain.args, {}, ['--encryption-recipient', recipients[0]])).code).toBe(0);
  const incremental = await chain.take('Incremental', 'recipient');
  const refused = await copy(url, chain.args, {}, ['--encryption-recipient', recipients[1]]);
  expect(refused.code).toBe(1);
  expect(refused.result).toContain(`file-store/${full} is encrypted offsite for ${recipients[0]}, not for the current recipient`);
  expect(refused.result.split('\n').pop()).toMatch(/or run it with the previous recipient\.$/);
  // A passphrase over a recipient's base is another method.
  const other = await copy(url, chain.args, passphrase(B));
  expect(other.code).toBe(1);
  expect(other.result).toContain(`file-store/${full} is encrypted offsite with recipient ${recipients[0]}, and "Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase) is set now`);
  const same = await copy(url, chain.args, {}, ['--encryption-recipient', recipients[0]]);
  expect(same.code).toBe(0);
  expect(same.outputs.Copied).toBe(incremental);
}, 300_000);

describe('database chains (by the backup headers)', () => {
  let backups: Backups | undefined;
  beforeAll(async () => {
    backups = await makeBackups();
  }, 180_000);
  afterAll(() => dropBackups(backups));

  test('a differential and logs whose full is offsite under another passphrase are not copied; each is named with the full', async () => {
    const args = ['--backup-directory', backups!.database];
    await s3.createBucket('chain-database');
    const url = 's3://chain-database/dr';
    expect((await copy(url, args, passphrase(A))).code).toBe(0);
    const all = await recordIds('chain-database', 'database');
    expect(all).toHaveLength(4);
    const full = all.find((id) => /_FULL_/.test(id))!;
    // Everything but the full is not offsite yet (as if the passphrase was changed after the full was copied).
    const c = s3.client();
    for (const id of all.filter((i) => i !== full)) await c.send(new DeleteObjectCommand({ Bucket: 'chain-database', Key: `dr/database/${id}.offsite.json` }));
    c.destroy();
    const refused = await copy(url, args, passphrase(B));
    expect(refused.code).toBe(1);
    expect(refused.result).toMatch(/^3 set\(s\) not copied: /m);
    for (const id of all.filter((i) => i !== full)) expect(refused.result).toMatch(new RegExp(`  - database/${id}: database/${full} was encrypted offsite with another passphrase`));
    expect(refused.result).toMatch(ADVICE);
    expect(await recordIds('chain-database', 'database')).toEqual([full]);
    const withA = await copy(url, args, passphrase(A));
    expect(withA.code).toBe(0);
    expect(await recordIds('chain-database', 'database')).toEqual(all);
  }, 300_000);
});
