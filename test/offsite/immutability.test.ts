// Offsite immutability: S3 Object Lock and Azure Blob immutability policies. s3rver and Azurite
// accept the lock headers but ignore them (neither implements locks), so these tests read the
// requests the SDKs send through a loopback recording proxy, answer some of them as a store that
// refuses the lock would, and check that retention never tries to delete a set still locked.
// The live suite (test/offsite/live-immutability.test.ts) proves the lock on a real bucket.
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { applyOffsiteRetention } from '../../steps/engines/offsite/retention';
import type { OffsiteStore } from '../../steps/engines/offsite/store';
import { backup } from '../database/harness';
import { runBundle, silentLog } from '../file-store/helpers';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { dropBackups, makeBackups, runCopy, type Backups } from './fixtures';
import { azureProvider, s3Provider } from './providers';
import { startRecordingProxy, type RecordedRequest, type RecordingProxy } from './recording-proxy';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './servers';

const DAY = 24 * 3600 * 1000;
let backups: Backups;
beforeAll(async () => {
  backups = await makeBackups();
}, 120_000);
afterAll(() => dropBackups(backups));

function near(value: number, expected: number, slackMs = 10 * 60 * 1000): void {
  expect(Math.abs(value - expected)).toBeLessThan(slackMs);
}

async function readText(store: OffsiteStore, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await store.download(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('S3 Object Lock (s3rver behind a recording proxy)', () => {
  const provider = s3Provider();
  let proxy: RecordingProxy;
  beforeAll(async () => {
    await provider.start();
    proxy = await startRecordingProxy(provider.server().endpoint);
  }, 60_000);
  afterAll(async () => {
    await proxy.stop();
    await provider.stop();
  });
  const args = () => ['--endpoint-url', proxy.url, '--path-style', '--region', 'us-east-1'];
  const isLockedWrite = (r: RecordedRequest) => r.headers['x-amz-object-lock-mode'] !== undefined;

  test('every object carries the lock: PutObject, and CreateMultipartUpload for a file in parts; the record says until when', async () => {
    const url = await provider.newTarget();
    const bucket = new URL(url).hostname;
    proxy.requests.length = 0;
    const started = Date.now();
    const run = await runCopy(
      ['--offsite-url', url, ...args(), '--backup-directory', backups.database, '--file-store-backup-directory', backups.fileStore, '--immutability-days', '7', '--immutability-mode', 'Compliance'],
      provider.env(),
    );
    expect(run.result).toMatch(/6 set\(s\) copied/);
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/locked for 7 day\(s\) \(Compliance mode\)/);
    const allWrites = proxy.requests.filter((r) => r.url.startsWith(`/${bucket}/`) && ((r.method === 'PUT' && !/[?&]partNumber=/.test(r.url)) || (r.method === 'POST' && /[?&]uploads/.test(r.url))));
    // The run's own offsite lock (target-lock.ts) is renewed and released by overwriting it: never locked.
    const lockWrites = allWrites.filter((r) => r.url.includes('/.octopus-dr/copy.lock'));
    expect(lockWrites.length).toBeGreaterThanOrEqual(1);
    for (const w of lockWrites) expect(w.headers['x-amz-object-lock-mode']).toBeUndefined();
    const writes = allWrites.filter((w) => !lockWrites.includes(w));
    const creates = writes.filter((r) => r.method === 'POST');
    expect(creates.length).toBeGreaterThanOrEqual(1); // the 19 MiB archive goes in parts
    expect(writes.length).toBeGreaterThanOrEqual(6 * 3); // data, manifest and record of every set
    for (const w of writes) {
      expect(w.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
      near(Date.parse(String(w.headers['x-amz-object-lock-retain-until-date'])), started + 7 * DAY);
    }
    // S3 refuses a locked PutObject without a checksum header; the SDK's default CRC one is there.
    for (const put of writes.filter((r) => r.method === 'PUT')) {
      expect(Object.keys(put.headers).some((h) => h.startsWith('x-amz-checksum-') || h === 'content-md5' || h === 'x-amz-sdk-checksum-algorithm')).toBe(true);
    }
    // The parts themselves carry no lock (S3 takes it from CreateMultipartUpload).
    const parts = proxy.requests.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url));
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const p of parts) expect(p.headers['x-amz-object-lock-mode']).toBeUndefined();

    const store = provider.store(url);
    const recordKey = (await store.list('file-store/')).map((o) => o.key).find((k) => k.endsWith('.offsite.json'))!;
    const record = JSON.parse(await readText(store, recordKey));
    expect(record.immutability.mode).toBe('Compliance');
    near(Date.parse(record.immutability.until), started + 7 * DAY);
    // A rerun finds everything offsite and locks nothing again.
    proxy.requests.length = 0;
    const again = await runCopy(['--offsite-url', url, ...args(), '--backup-directory', backups.database, '--immutability-days', '7'], provider.env());
    expect(again.code).toBe(0);
    expect(proxy.requests.filter(isLockedWrite)).toEqual([]);
    store.close();
  }, 120_000);

  test('a bucket without Object Lock: the copy fails naming the parameter and the fix, and no set becomes visible', async () => {
    const url = await provider.newTarget();
    // What Amazon S3 answers a locked upload into a bucket created without Object Lock.
    proxy.refuse = (r) =>
      isLockedWrite(r)
        ? {
            status: 400,
            headers: { 'content-type': 'application/xml' },
            body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>Bucket is missing Object Lock Configuration</Message><RequestId>R1</RequestId><HostId>H1</HostId></Error>',
          }
        : undefined;
    try {
      const run = await runCopy(['--offsite-url', url, ...args(), '--file-store-backup-directory', backups.fileStore, '--immutability-days', '30'], provider.env());
      expect(run.code).toBe(1);
      expect(run.result).toMatch(/refused to lock .*Bucket is missing Object Lock Configuration/);
      expect(run.result).toContain('"Offsite immutability (days)" (OctopusDr.Offsite.ImmutabilityDays) needs a bucket with Object Lock enabled');
      expect(run.result).toMatch(/or set "Offsite immutability \(days\)" \(OctopusDr\.Offsite\.ImmutabilityDays\) to 0\.$/);
      const store = provider.store(url);
      expect((await store.list('')).filter((o) => o.key.endsWith('.offsite.json'))).toEqual([]);
      store.close();
    } finally {
      proxy.refuse = undefined;
    }
  }, 120_000);

  test('the lock refusal quotes the store, and no secret (key, its URL-encoded form, passphrase) reaches the output whatever the store says', async () => {
    const url = await provider.newTarget();
    // s3rver checks the key ID only, so any secret signs; the passphrase needs the bundle (age-encryption is an ES module).
    const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYlockKEY0042';
    const passphrase = 'lock test passphrase, 9#Kq!x';
    const said = `Object Lock refused: ${secret} ${encodeURIComponent(secret)} ${secret.toUpperCase()} ${passphrase}`;
    proxy.refuse = (r) =>
      isLockedWrite(r)
        ? { status: 400, headers: { 'content-type': 'application/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>${said}</Message><RequestId>R2</RequestId></Error>` }
        : undefined;
    try {
      const run = await runBundle('copy-offsite', ['--service-messages', '--offsite-url', url, ...args(), '--file-store-backup-directory', backups.fileStore, '--immutability-days', '30'], {
        env: { OCTOPUSDR_OFFSITE_ACCESSKEYID: provider.server().accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: secret, OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: passphrase },
      });
      expect(run.code).toBe(1);
      // The store's own words are there, with every secret in them masked.
      expect(resultMessageIn(run.stdout)).toMatch(/refused to lock .*\(InvalidRequest, HTTP 400: Object Lock refused: \*{8} \*{8} \*{8} \*{8}\)/);
      const output = (run.stdout + run.stderr).toLowerCase();
      for (const s of [secret, encodeURIComponent(secret), passphrase]) expect(output).not.toContain(s.toLowerCase());
    } finally {
      proxy.refuse = undefined;
    }
  }, 120_000);

  test('retention skips sets still locked (and says so), and deletes them once the lock has ended', async () => {
    const url = await provider.newTarget();
    const copyArgs = ['--offsite-url', url, ...args(), '--backup-directory', backups.database, '--file-store-backup-directory', backups.fileStore];
    expect((await runCopy([...copyArgs, '--immutability-days', '7'], provider.env())).code).toBe(0);
    // Newer, unlocked chains: without the locks, the older ones could go.
    await new Promise((r) => setTimeout(r, 1100));
    const full = await backup(backups.lab, 'Octo', '--backup-directory', backups.database, '--no-copy-only');
    expect(full.code).toBe(0);
    const folders = resolveFolders({ homeDirectory: backups.home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
    await backupFileStore({ folders, backupDirectory: backups.fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
    expect((await runCopy(copyArgs, provider.env())).outputs.CopiedSets).toBe('2');

    const real = provider.store(url);
    const removed: string[] = [];
    const store: OffsiteStore = { ...real, remove: async (key) => { removed.push(key); return real.remove(key); } };
    const said: string[] = [];
    const log = { info: (m: string) => said.push(m), verbose: () => undefined, warn: (m: string) => said.push(m) };
    const whileLocked = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: new Date(Date.now() + 3 * DAY) }, quietEngineContext({ log: log }));
    expect(whileLocked).toEqual([]);
    expect(removed).toEqual([]);
    expect(said.filter((m) => /is locked offsite until .*Offsite immutability/.test(m))).toHaveLength(6);

    const afterwards = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: new Date(Date.now() + 8 * DAY) }, quietEngineContext({ log: silentLog }));
    expect(afterwards).toHaveLength(6);
    expect(removed.length).toBe(6 * 3);
    real.close();
  }, 180_000);
});

describe('Azure Blob immutability policy (Azurite behind a recording proxy)', () => {
  const provider = azureProvider();
  let proxy: RecordingProxy;
  beforeAll(async () => {
    await provider.start();
    proxy = await startRecordingProxy(`http://127.0.0.1:${provider.server().port}`);
  }, 60_000);
  afterAll(async () => {
    await proxy.stop();
    await provider.stop();
  });
  const proxied = async () => {
    const direct = await provider.newTarget();
    const container = new URL(direct).pathname.split('/')[2];
    const accountUrl = `${proxy.url}/${AZURITE_ACCOUNT}`;
    return {
      url: `${accountUrl}/${container}/dr`,
      env: { OCTOPUSDR_OFFSITE_AZURECONNECTIONSTRING: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${accountUrl};` },
      direct,
    };
  };
  const isCommit = (r: RecordedRequest) => r.method === 'PUT' && /[?&]comp=blocklist/.test(r.url);

  test('every blob is committed with the policy (Put Block List carries expiry and mode); the blocks do not need it', async () => {
    const { url, env } = await proxied();
    proxy.requests.length = 0;
    const started = Date.now();
    const run = await runCopy(['--offsite-url', url, '--backup-directory', backups.database, '--file-store-backup-directory', backups.fileStore, '--immutability-days', '3'], env);
    expect(run.code).toBe(0);
    // (The S3 retention test above added a newer set of each kind to the shared backups.)
    const sets = Number(run.outputs.CopiedSets);
    expect(sets).toBeGreaterThanOrEqual(6);
    const commits = proxy.requests.filter(isCommit);
    expect(commits.length).toBe(sets * 3);
    for (const c of commits) {
      expect(c.headers['x-ms-immutability-policy-mode']).toBe('Unlocked');
      near(Date.parse(String(c.headers['x-ms-immutability-policy-until-date'])), started + 3 * DAY);
    }
    // Nothing is written any other way (a Put Blob without the policy would be an unlocked blob).
    // (But the run's own offsite lock, target-lock.ts, which is overwritten to renew it, so never locked.)
    const putBlobs = proxy.requests.filter((r) => r.method === 'PUT' && !/[?&]comp=(block|blocklist)(&|$)/.test(r.url) && /\/dr\//.test(r.url));
    expect(putBlobs.length).toBeGreaterThanOrEqual(1);
    for (const r of putBlobs) {
      expect(r.url).toMatch(/\/\.octopus-dr\/copy\.lock$/);
      expect(r.headers['x-ms-immutability-policy-until-date']).toBeUndefined();
    }
  }, 120_000);

  test('a store that refuses the policy: the copy fails naming the parameter and what the container and credentials need', async () => {
    const { url, env, direct } = await proxied();
    proxy.requests.length = 0;
    // What Azure answers a policy the credentials may not set (e.g. a role without the immutability permission).
    proxy.refuse = (r) =>
      isCommit(r) && r.headers['x-ms-immutability-policy-until-date']
        ? {
            status: 403,
            headers: { 'content-type': 'application/xml', 'x-ms-error-code': 'AuthorizationPermissionMismatch' },
            body: '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>',
          }
        : undefined;
    try {
      const run = await runCopy(['--offsite-url', url, '--file-store-backup-directory', backups.fileStore, '--immutability-days', '3', '--immutability-mode', 'Compliance'], env);
      expect(run.code).toBe(1);
      expect(run.result).toContain('The upload asked for a lock ("Offsite immutability (days)" (OctopusDr.Offsite.ImmutabilityDays)), which needs a container with version-level immutability');
      expect(run.result).toMatch(/or set it to 0\.$/);
      const store = provider.store(direct);
      expect((await store.list('')).filter((o) => o.key.endsWith('.offsite.json'))).toEqual([]);
      store.close();
      // Compliance mode asks Azure for a locked policy.
      expect(proxy.requests.filter(isCommit).every((r) => r.headers['x-ms-immutability-policy-mode'] === 'Locked')).toBe(true);
    } finally {
      proxy.refuse = undefined;
    }
  }, 120_000);

  test('a refused commit quotes the store, and neither the account key nor its URL-encoded form reaches the output', async () => {
    const { url, env } = await proxied();
    const said = `Refused for ${AZURITE_KEY} ${encodeURIComponent(AZURITE_KEY)} ${AZURITE_KEY.toLowerCase()}`;
    proxy.refuse = (r) =>
      isCommit(r)
        ? { status: 400, headers: { 'content-type': 'application/xml', 'x-ms-error-code': 'InvalidHeaderValue' }, body: `<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidHeaderValue</Code><Message>${said}</Message></Error>` }
        : undefined;
    try {
      const run = await runCopy(['--offsite-url', url, '--file-store-backup-directory', backups.fileStore, '--immutability-days', '3'], env);
      expect(run.code).toBe(1);
      expect(run.result).toMatch(/\(InvalidHeaderValue, HTTP 400: Refused for \*{8} \*{8} \*{8}\)/);
      const output = (run.out + run.err).toLowerCase();
      for (const s of [AZURITE_KEY, encodeURIComponent(AZURITE_KEY)]) expect(output).not.toContain(s.toLowerCase());
    } finally {
      proxy.refuse = undefined;
    }
  }, 120_000);
});

test('a store error naming the lock is explained by the parameter (Azure)', () => {
  const { describeAzureError } = require('../../steps/engines/offsite/azure-store') as typeof import('../../steps/engines/offsite/azure-store');
  const e = describeAzureError({ statusCode: 409, details: { errorCode: 'ImmutableStorageWithVersioningNotEnabled' }, message: 'x' }, { kind: 'azure', accountUrl: 'https://a.blob.core.windows.net', account: 'a', container: 'c', prefix: '', display: 'https://a.blob.core.windows.net/c' }, 'upload database/x.bak');
  expect(e.message).toMatch(/refused the immutability policy for database\/x\.bak .*version-level immutability/);
});
