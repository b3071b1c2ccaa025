// One Copy Offsite run at a time per target (target-lock.ts). Azurite keeps conditional writes as
// Azure does (create-only If-None-Match: *, If-Match on an ETag), so the real path runs against it;
// s3rver ignores them, as older MinIO and Ceph do, so the fallback (a probe, a warning, reading the
// lock back) runs against it. Two runs at once are two in-process runs of the step started together.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import * as os from 'node:os';
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { applyOffsiteRetention } from '../../steps/engines/offsite/retention';
import { acquireOffsiteLock, OFFSITE_LOCK_KEY, type OffsiteLockRecord } from '../../steps/engines/offsite/target-lock';
import type { OffsiteStore } from '../../steps/engines/offsite/store';
import { processIsAlive } from '../../steps/runtime/lock';
import { tempDir } from '../file-store/helpers';
import { datedFileStoreBackups, runCopy } from './fixtures';
import { azureProvider, s3Provider, type Provider } from './providers';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './servers';

const DAY = 24 * 3600 * 1000;
const folders: string[] = [];
let fileStore: string;
let sets: string[];

beforeAll(async () => {
  folders.push(tempDir('octopus-dr-target-lock-'));
  const b = datedFileStoreBackups(folders[0]);
  fileStore = b.fileStore;
  sets = [await b.fullAt(new Date(Date.now() - 2 * DAY)), await b.fullAt(new Date(Date.now() - DAY))];
}, 60_000);
afterAll(() => {
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

/** A pid that certainly does not run: a child that has exited. */
function deadPid(): number {
  const pid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  expect(processIsAlive(pid)).toBe(false);
  return pid;
}

const lines = (value: string | undefined) => (value ? value.split('\n') : []);

function lockRecord(over: Partial<OffsiteLockRecord>): Buffer {
  const record: OffsiteLockRecord = {
    tool: 'octopus-dr',
    host: 'dr-worker-02',
    pid: 4242,
    step: 'copy-offsite',
    resource: 'x',
    since: '2026-12-01T01:00:00.000Z',
    token: 'feedfacefeedface',
    expires: new Date(Date.now() + 10 * 60_000).toISOString(),
    ...over,
  };
  return Buffer.from(JSON.stringify(record));
}

async function lockOf(provider: Provider, url: string): Promise<OffsiteLockRecord | undefined> {
  const store = provider.store(url);
  try {
    const found = await store.read(OFFSITE_LOCK_KEY);
    return found && (JSON.parse(found.body.toString('utf8')) as OffsiteLockRecord);
  } finally {
    store.close();
  }
}

async function putLock(provider: Provider, url: string, body: Buffer): Promise<void> {
  const store = provider.store(url);
  await store.putIf(OFFSITE_LOCK_KEY, body, undefined);
  store.close();
}

const quiet = { info: () => undefined, verbose: () => undefined, warn: () => undefined };

describe.each([
  ['Azure (Azurite keeps the conditions)', azureProvider()],
  ['S3 (s3rver ignores them: the fallback)', s3Provider()],
])('%s', (name, provider) => {
  const kept = provider.name === 'azure';
  beforeAll(() => provider.start(), 60_000);
  afterAll(() => provider.stop());
  const copy = (url: string, ...more: string[]) => runCopy(['--offsite-url', url, ...provider.args(), '--file-store-backup-directory', fileStore, ...more], provider.env());

  test('a lone run takes the lock, says whether the store keeps conditions, and releases it', async () => {
    const url = await provider.newTarget();
    const run = await copy(url);
    expect(run.code).toBe(0);
    expect(lines(run.outputs.Copied)).toEqual(sets);
    const ignoredWarning = 'ignores conditional writes (a second create-only write of .octopus-dr/copy.lock was accepted), so it cannot keep two Copy Offsite runs apart reliably';
    if (kept) expect(run.out).not.toContain(ignoredWarning);
    else expect(run.out).toContain(ignoredWarning);
    expect(await lockOf(provider, url)).toBeUndefined();
    // The lock is not in the areas a listing reads.
    const store = provider.store(url);
    expect((await store.list('')).some((o) => o.key.includes('.octopus-dr'))).toBe(false);
    store.close();
  }, 60_000);

  test('two runs started at once: one copies, the other then finds every set offsite; nothing is copied twice', async () => {
    const url = await provider.newTarget();
    const [a, b] = await Promise.all([copy(url, '--lock-wait-minutes', '1'), copy(url, '--lock-wait-minutes', '1')]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const [first, second] = lines(a.outputs.Copied).length ? [a, b] : [b, a];
    expect(lines(first.outputs.Copied)).toEqual(sets);
    expect(second.outputs.Copied).toBe('');
    expect(second.outputs.AlreadyOffsite).toBe(String(sets.length));
    expect(await lockOf(provider, url)).toBeUndefined();
  }, 60_000);

  test('while another run holds the lock: with Lock wait 0 a run fails at once naming it and writes nothing; with a wait it waits, then copies', async () => {
    const url = await provider.newTarget();
    const store = provider.store(url);
    const holder = await acquireOffsiteLock({ store, step: 'copy-offsite', waitMs: 0, log: quiet, signal: new AbortController().signal, host: 'worker-a', settleMs: 100 });
    try {
      const refused = await copy(url, '--lock-wait-minutes', '0');
      expect(refused.code).toBe(1);
      const last = refused.result!.split('\n').pop()!;
      expect(last).toMatch(/^Another Copy Offsite run is writing to .*: copy-offsite \(process \d+ on worker-a, since [^)]+\), lock renewed until \S+\. Nothing was copied\./);
      expect(last).toContain('raise "Lock wait (minutes)" (OctopusDr.LockWaitMinutes)');
      expect(refused.outputs.Copied).toBeUndefined();
      expect((await store.list('file-store/')).length).toBe(0);

      const waiting = copy(url, '--lock-wait-minutes', '1');
      await new Promise((r) => setTimeout(r, 2500));
      await holder.release();
      const waited = await waiting;
      expect(waited.code).toBe(0);
      expect(waited.out).toMatch(/Waiting up to .+ for copy-offsite \(process \d+ on worker-a, since [^)]+\), which is copying to /);
      expect(lines(waited.outputs.Copied)).toEqual(sets);
      expect(await lockOf(provider, url)).toBeUndefined();
    } finally {
      await holder.release();
      store.close();
    }
  }, 60_000);

  test('a stopped run\'s lock: one that has not expired makes the next run fail naming it; an expired one, or one whose process is gone on this host, is taken over with a warning', async () => {
    const url = await provider.newTarget();
    await putLock(provider, url, lockRecord({}));
    const blocked = await copy(url, '--lock-wait-minutes', '0');
    expect(blocked.code).toBe(1);
    expect(blocked.result).toMatch(/Another Copy Offsite run is writing to .*: copy-offsite \(process 4242 on dr-worker-02, since 2026-12-01T01:00:00\.000Z\), lock renewed until /);
    expect(blocked.result).toContain('from another host once it expires (15 min after its last renewal); if no run holds it, delete ');
    expect((await lockOf(provider, url))?.token).toBe('feedfacefeedface');

    await putLock(provider, url, lockRecord({ expires: '2026-12-01T01:15:00.000Z' }));
    const expired = await copy(url, '--lock-wait-minutes', '0');
    expect(expired.code).toBe(0);
    expect(lines(expired.outputs.Copied)).toEqual(sets);
    expect(expired.out).toContain(
      '.octopus-dr/copy.lock held by copy-offsite (process 4242 on dr-worker-02, since 2026-12-01T01:00:00.000Z): it expired at 2026-12-01T01:15:00.000Z (its holder stopped renewing it).',
    );
    expect(await lockOf(provider, url)).toBeUndefined();

    const pid = deadPid();
    await putLock(provider, url, lockRecord({ host: os.hostname(), pid }));
    const gone = await copy(url, '--lock-wait-minutes', '0');
    expect(gone.code).toBe(0);
    expect(gone.out).toContain(`Took over the offsite lock`);
    expect(gone.out).toContain(`: process ${pid} no longer runs on ${os.hostname()}.`);
    expect(await lockOf(provider, url)).toBeUndefined();
  }, 60_000);

  test('a failed run releases its lock too', async () => {
    const url = await provider.newTarget();
    expect((await copy(url)).code).toBe(0);
    // A damaged record offsite fails the next run (after the other sets were checked).
    const store = provider.store(url);
    await store.upload(`file-store/${sets[0]}.offsite.json`, Readable.from([Buffer.from('{"cut short')]), { size: 11, metadata: {} });
    store.close();
    const failed = await copy(url);
    expect(failed.code).toBe(1);
    expect(failed.result).toMatch(/offsite record\(s\) cannot be read/);
    expect(await lockOf(provider, url)).toBeUndefined();
  }, 60_000);

  test('the engine: a holder renews its lock, so it never expires while it runs; a run that lost it stops before its next write', async () => {
    const url = await provider.newTarget();
    const signal = new AbortController().signal;
    // Renewed three times within each expiry (s3rver writes an object in place, so fewer writes there make a read in the middle of one rarer).
    const timings = { pollMs: 50, heartbeatMs: 300, staleAfterMs: 900, settleMs: 100 };
    const storeA: OffsiteStore = provider.store(url);
    const storeB: OffsiteStore = provider.store(url);
    try {
      const warned: string[] = [];
      const a = await acquireOffsiteLock({ store: storeA, step: 'copy-offsite', waitMs: 0, log: { ...quiet, warn: (m) => warned.push(m) }, signal, ...timings, host: 'worker-a' });
      // Over twice the expiry later, A still holds it: the renewals kept it alive.
      await new Promise((r) => setTimeout(r, 2000));
      await expect(acquireOffsiteLock({ store: storeB, step: 'copy-offsite', waitMs: 0, log: quiet, signal, ...timings, host: 'worker-b' })).rejects.toThrow(/process \d+ on worker-a/);
      await a.assertHeld();
      // Another run overwrites it (as one that took it over would): A notices at its next check, and says who.
      await putLock(provider, url, lockRecord({ host: 'worker-c', pid: 77 }));
      await expect(a.assertHeld()).rejects.toThrow(/^This run no longer holds the offsite lock .*: copy-offsite \(process 77 on worker-c, since [^)]+\) has it now/);
      await a.release();
      expect((await lockOf(provider, url))?.host).toBe('worker-c'); // left to that run
      expect(warned.filter((w) => /taken over by copy-offsite \(process 77 on worker-c/.test(w))).toHaveLength(1);
    } finally {
      storeA.close();
      storeB.close();
    }
  }, 60_000);

  test('retention of a run that lost the lock deletes nothing: it checks before each set', async () => {
    const url = await provider.newTarget();
    expect((await copy(url)).code).toBe(0);
    const store = provider.store(url);
    const signal = new AbortController().signal;
    try {
      const lock = await acquireOffsiteLock({ store, step: 'copy-offsite', waitMs: 0, log: quiet, signal, settleMs: 100 });
      await putLock(provider, url, lockRecord({ host: 'worker-c', pid: 77 }));
      const before = (await store.list('')).map((o) => o.key).sort();
      await expect(
        applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: new Date(Date.now() + 30 * DAY), beforeDelete: () => lock.assertHeld() }, { log: quiet, signal, progress: () => undefined, onCleanup: () => () => undefined, setSecret: () => undefined }),
      ).rejects.toThrow(/no longer holds the offsite lock .*process 77 on worker-c/);
      expect((await store.list('')).map((o) => o.key).sort()).toEqual(before);
      await lock.release();
    } finally {
      store.close();
    }
  }, 60_000);
});

describe('Azure: credentials without delete (or an immutable container)', () => {
  const provider = azureProvider();
  beforeAll(() => provider.start(), 60_000);
  afterAll(() => provider.stop());

  test('the lock cannot be deleted, so it is released by marking it free; the next run takes it at once', async () => {
    const url = await provider.newTarget();
    const container = new URL(url).pathname.split('/')[2];
    const sas = generateBlobSASQueryParameters(
      { containerName: container, permissions: ContainerSASPermissions.parse('racwl'), expiresOn: new Date(Date.now() + 3600_000) },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
    const copy = () => runCopy(['--offsite-url', url, '--file-store-backup-directory', fileStore, '--lock-wait-minutes', '0', '--verbose'], { OCTOPUSDR_OFFSITE_AZURESASTOKEN: sas });
    const first = await copy();
    expect(first.result).toMatch(/^Offsite copy to /);
    expect(first.code).toBe(0);
    expect(first.out).toContain('by marking it free (the store refused its delete');
    expect((await lockOf(provider, url))?.free).toBe(true);
    const second = await copy();
    expect(second.code).toBe(0);
    expect(second.out).not.toContain('Took over');
    expect(second.outputs.AlreadyOffsite).toBe(String(sets.length));
    expect((await lockOf(provider, url))?.free).toBe(true);
  }, 60_000);
});
