// Copy Backups Offsite against real local servers: s3rver (S3-compatible) and Azurite (Azure Blob).
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { Readable } from 'node:stream';
import { copyOffsite } from '../../steps/engines/offsite/copy';
import { databaseSets, fileStoreSets } from '../../steps/engines/offsite/sets';
import { META_SHA256, type OffsiteStore } from '../../steps/engines/offsite/store';
import { dropBackups, makeBackups, runCopy, type Backups } from './fixtures';
import { azureProvider, s3Provider, type Provider } from './providers';

let backups: Backups;
beforeAll(async () => {
  backups = await makeBackups();
}, 120_000);
afterAll(() => dropBackups(backups));

async function readAll(store: OffsiteStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store.download(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const silent = { info: () => undefined, verbose: () => undefined, warn: () => undefined };

describe.each([['s3', s3Provider()], ['azure', azureProvider()]] as const)('%s', (_name, provider: Provider) => {
  beforeAll(() => provider.start(), 60_000);
  afterAll(() => provider.stop());

  const copy = (url: string, ...extra: string[]) =>
    runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', backups.database, '--file-store-backup-directory', backups.fileStore, ...extra], provider.env());

  test('copies every complete set, each set\'s record last; a rerun sends nothing and checks what is there', async () => {
    const url = await provider.newTarget();
    const first = await copy(url);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.outputs.CopiedSets).toBe('6'); // 4 database sets, 2 file-store sets
    expect(first.result).toMatch(/6 set\(s\) copied/);
    const store = provider.store(url);
    const keys = (await store.list('')).map((o) => o.key).sort();
    const dbRecords = keys.filter((k) => k.startsWith('database/') && k.endsWith('.offsite.json'));
    expect(dbRecords).toHaveLength(4);
    expect(keys.filter((k) => k.startsWith('file-store/') && k.endsWith('.zip'))).toHaveLength(2);
    // Each record lists the set's files with the sizes and hashes the objects have.
    const record = JSON.parse((await readAll(store, dbRecords[0])).toString('utf8'));
    expect(record.format).toBe('octopus-dr/offsite-set');
    for (const f of [...record.files, record.manifest]) {
      const head = await store.head(`database/${f.name}`);
      expect(head?.size).toBe(f.size);
      expect(head?.metadata[META_SHA256]).toBe(f.sha256);
    }
    expect(first.out).toMatch(/##octopus\[progress/);

    const second = await copy(url);
    expect(second.code).toBe(0);
    expect(second.outputs.CopiedSets).toBe('0');
    expect(second.outputs.AlreadyOffsite).toBe('6');
    expect(second.outputs.UploadedBytes).toBe('0');
    store.close();
  }, 120_000);

  test('a rerun after a failure mid-set continues without sending the finished files again', async () => {
    const url = await provider.newTarget();
    const real = provider.store(url);
    const sets = [...(await databaseSets(backups.database, () => undefined)), ...(await fileStoreSets(backups.fileStore)).sets];
    const uploads: string[] = [];
    let failAt = 'file-store/octopus-file-store-'; // the first archive: after every database set, before its manifest
    const failing: OffsiteStore = {
      ...real,
      list: real.list,
      head: real.head,
      download: real.download,
      upload: async (key, body, options) => {
        if (failAt && key.startsWith(failAt) && key.endsWith('.manifest.json')) {
          body.resume();
          throw new Error('connection dropped (simulated)');
        }
        uploads.push(key);
        return real.upload(key, body, options);
      },
    };
    await expect(copyOffsite({ store: failing, sets, toolVersion: 'test' }, quietEngineContext({ log: silent }))).rejects.toThrow(/connection dropped/);
    const sentBefore = [...uploads];
    const archive = sentBefore.find((k) => k.startsWith('file-store/') && k.endsWith('.zip'))!;
    expect(archive).toBeDefined();
    // The set is not visible offsite: its record was never written.
    expect((await real.list('file-store/')).map((o) => o.key).some((k) => k.endsWith('.offsite.json'))).toBe(false);

    uploads.length = 0;
    failAt = '';
    const result = await copyOffsite({ store: failing, sets, toolVersion: 'test' }, quietEngineContext({ log: silent }));
    expect(uploads).not.toContain(archive);
    expect(uploads.filter((k) => sentBefore.includes(k) && !k.endsWith('.offsite.json'))).toEqual([]);
    expect(result.resumedFiles).toBe(1);
    expect(result.copied).toHaveLength(2);
    expect(result.alreadyOffsite).toHaveLength(4);
    real.close();
  }, 120_000);

  test('a truncated object offsite fails verification and names it; a same-size tampered one fails the read-back', async () => {
    const url = await provider.newTarget();
    expect((await copy(url)).code).toBe(0);
    const store = provider.store(url);
    const archive = (await store.list('file-store/')).find((o) => o.key.endsWith('-full.zip'))!;
    const head = (await store.head(archive.key))!;
    const original = await readAll(store, archive.key);
    const truncated = original.subarray(0, original.length - 100);
    await store.upload(archive.key, Readable.from([truncated]), { size: truncated.length, metadata: head.metadata });
    const run = await copy(url);
    expect(run.code).toBe(1);
    expect(run.result).toContain(`${archive.key} is ${truncated.length} bytes, but its record says ${original.length}`);
    expect(run.result).toMatch(/Nothing was deleted/);

    // Same size, same metadata, one byte changed: only reading it back shows it.
    const url2 = await provider.newTarget();
    const store2 = provider.store(url2);
    const sets = [...(await fileStoreSets(backups.fileStore)).sets];
    const tamper: OffsiteStore = {
      ...store2,
      upload: async (key, body, options) => {
        if (!key.endsWith('-full.zip')) return store2.upload(key, body, options);
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        const bytes = Buffer.concat(chunks);
        bytes[1000] ^= 0xff;
        return store2.upload(key, Readable.from([bytes]), options);
      },
    };
    await expect(copyOffsite({ store: tamper, sets, toolVersion: 'test', verifyByDownload: true }, quietEngineContext({ log: silent }))).rejects.toThrow(/does not match its record: read back/);
    expect((await store2.list('file-store/')).some((o) => o.key.endsWith('-full.offsite.json'))).toBe(false);
    store.close();
    store2.close();
  }, 120_000);

  test('wrong credentials, a missing bucket or container, and missing permission each say which parameter to fix', async () => {
    const url = await provider.newTarget();
    const wrong = await runCopy(['--offsite-url', url, ...provider.args(), '--file-store-backup-directory', backups.fileStore], provider.wrongCredentialsEnv());
    expect(wrong.code).toBe(1);
    expect(wrong.result).toMatch(provider.name === 's3' ? /rejected the credentials.*"S3 access key ID" \(OctopusDr\.Offsite\.AccessKeyId\)/ : /rejected the credentials.*"Azure storage connection string" \(OctopusDr\.Offsite\.AzureConnectionString\)/);
    expect(wrong.result).not.toMatch(/Unexpected error/);

    const missing = await runCopy(['--offsite-url', provider.missingUrl(), ...provider.args(), '--file-store-backup-directory', backups.fileStore], provider.env());
    expect(missing.code).toBe(1);
    expect(missing.result).toMatch(/does not exist.*"Offsite URL" \(OctopusDr\.Offsite\.Url\)/);

    const readOnly = provider.readOnlyEnv(url);
    if (readOnly) {
      const denied = await runCopy(['--offsite-url', url, ...provider.args(), '--file-store-backup-directory', backups.fileStore], readOnly);
      expect(denied.code).toBe(1);
      // The first write is the run's offsite lock.
      expect(denied.result).toMatch(/no permission to write the offsite lock .*"Azure SAS token" \(OctopusDr\.Offsite\.AzureSasToken\)/);
    }
    for (const run of [wrong, missing]) for (const secret of provider.secrets()) expect(run.out + run.err).not.toContain(secret);
  }, 120_000);

  test('no secret in the output, the object metadata or the offsite records', async () => {
    const url = await provider.newTarget();
    const run = await copy(url, '--verbose');
    expect(run.code).toBe(0);
    const store = provider.store(url);
    const everything: string[] = [run.out, run.err];
    for (const o of await store.list('')) {
      everything.push(JSON.stringify((await store.head(o.key))!.metadata));
      if (o.key.endsWith('.json')) everything.push((await readAll(store, o.key)).toString('utf8'));
    }
    const text = everything.join('\n');
    for (const secret of provider.secrets()) expect(text).not.toContain(secret);
    store.close();
  }, 120_000);
});

test('bad parameters are reported together, by label, with exit 2, before anything connects', async () => {
  const run = await runCopy(['--offsite-url', 's3://Bad_Bucket/x', '--endpoint-url', 'ftp://nope'], { OCTOPUSDR_OFFSITE_ACCESSKEYID: 'AKIAEXAMPLE' });
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/"Offsite URL" names the bucket "bad_bucket"|"Offsite URL" names the bucket "Bad_Bucket"/);
  expect(run.result).toMatch(/"S3 secret access key" is needed/);
  expect(run.result).toMatch(/"S3 endpoint URL" must be an http\(s\) URL/);
  const none = await runCopy(['--offsite-url', 'https://acct.blob.core.windows.net/backups/x']);
  expect(none.code).toBe(2);
  expect(none.result).toMatch(/Nothing to copy/);
});
