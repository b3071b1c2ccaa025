// The offsite lock (target-lock.ts) against the answers Amazon S3 documents for conditional writes and
// deletes, and against S3-compatible stores that keep only one of the two conditions. s3rver ignores
// conditions, so a proxy in front of it answers them (s3-conditions-proxy.ts):
// - AWS answers a PUT with If-Match on a key that has no current object with 404 NoSuchKey
//   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). A run taking over
//   an expired lock that its old holder (or a person, as the message advises) deleted meanwhile failed
//   on that answer ("The S3 store failed to write the offsite lock ... NoSuchKey"), with nothing to do.
// - A store that keeps If-None-Match but ignores If-Match passed the create-only probe, so two runs
//   taking over an expired lock at once both wrote it, and both went on believing they held it.
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { acquireOffsiteLock, OFFSITE_LOCK_KEY, type HeldOffsiteLock, type OffsiteLockRecord } from '../../steps/engines/offsite/target-lock';
import { openOffsiteStore } from '../../steps/engines/offsite/open';
import { offsiteTargetFrom } from '../../steps/engines/offsite/target';
import { s3Provider } from './providers';
import { startS3ConditionsProxy, type S3ConditionsOptions } from './s3-conditions-proxy';

const provider = s3Provider();
beforeAll(() => provider.start(), 60_000);
afterAll(() => provider.stop());

function logger() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(m), verbose: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) } };
}

/** A lock record of a run on another host that stopped renewing it an hour ago. */
function expiredLock(): Buffer {
  const record: OffsiteLockRecord = {
    tool: 'octopus-dr', host: 'dr-worker-02', pid: 4242, step: 'copy-offsite', resource: 'x', since: '2026-12-01T01:00:00.000Z',
    token: 'feedfacefeedface', expires: new Date(Date.now() - 3600_000).toISOString(),
  };
  return Buffer.from(JSON.stringify(record));
}

/** A fresh bucket reached through the conditions proxy; `body` gets a store through it and one straight to s3rver. */
async function throughConditions(options: Omit<S3ConditionsOptions, 'keys'>, body: (url: string, store: () => ReturnType<typeof provider.store>, direct: ReturnType<typeof provider.store>) => Promise<void>) {
  const url = await provider.newTarget();
  const proxy = await startS3ConditionsProxy(provider.server(), { ...options, keys: (key) => key.endsWith(OFFSITE_LOCK_KEY) });
  const stores: ReturnType<typeof provider.store>[] = [];
  const store = () => {
    const s = openOffsiteStore(offsiteTargetFrom({ ...provider.settings(url), endpoint: proxy.endpoint }));
    stores.push(s);
    return s;
  };
  const direct = provider.store(url);
  try {
    await body(url, store, direct);
  } finally {
    for (const s of stores) s.close();
    direct.close();
    await proxy.stop();
  }
}

const lockToken = async (direct: ReturnType<typeof provider.store>) => {
  const found = await direct.read(OFFSITE_LOCK_KEY);
  return found && (JSON.parse(found.body.toString('utf8')) as OffsiteLockRecord).token;
};

test('Amazon S3: an expired lock deleted before the takeover write lands (If-Match answered 404 NoSuchKey): the run creates the lock and holds it', async () => {
  let deleted = false;
  let lockObject: { Bucket: string; Key: string } | undefined;
  const s3 = provider.server().client();
  try {
    await throughConditions(
      {
        before: async (r) => {
          // Its old holder (or a person) deletes the lock between this run's read and its takeover write.
          if (r.method === 'PUT' && r.ifMatch && !deleted && lockObject) {
            deleted = true;
            await s3.send(new DeleteObjectCommand(lockObject));
          }
        },
      },
      async (url, store, direct) => {
        const [bucket, ...prefix] = url.replace(/^s3:\/\//, '').split('/');
        lockObject = { Bucket: bucket, Key: [...prefix, OFFSITE_LOCK_KEY].join('/') };
        await direct.putIf(OFFSITE_LOCK_KEY, expiredLock(), undefined);
        const { lines, log } = logger();
        const lock = await acquireOffsiteLock({ store: store(), step: 'copy-offsite', waitMs: 0, log, signal: new AbortController().signal, pollMs: 50 });
        expect(deleted).toBe(true);
        expect(await lockToken(direct)).toBe(lock.holder.token);
        await expect(lock.assertHeld()).resolves.toBeUndefined();
        // S3 keeps the conditions: no warning that it does not.
        expect(lines.filter((l) => l.includes('ignores conditional writes'))).toEqual([]);
        await lock.release();
        expect(await direct.read(OFFSITE_LOCK_KEY)).toBeUndefined();
      },
    );
  } finally {
    s3.destroy();
  }
}, 60_000);

/** Two runs on two hosts taking over one expired lock at once: both read it before either writes. */
async function twoTakeovers(keeps: S3ConditionsOptions['keeps']) {
  let arrived = 0;
  let letFirstGo: () => void = () => undefined;
  const results: PromiseSettledResult<HeldOffsiteLock>[] = [];
  const logs = [logger(), logger()];
  await throughConditions(
    {
      keeps,
      before: async (r) => {
        // Hold the first takeover write until the second arrives, so both runs read the expired lock first.
        if (r.method !== 'PUT' || !r.ifMatch || arrived >= 2) return;
        arrived += 1;
        if (arrived === 1) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 5000);
            letFirstGo = () => (clearTimeout(timer), resolve());
          });
        } else letFirstGo();
      },
    },
    async (_url, store, direct) => {
      await direct.putIf(OFFSITE_LOCK_KEY, expiredLock(), undefined);
      const take = (host: string, i: number) =>
        acquireOffsiteLock({ store: store(), step: 'copy-offsite', waitMs: 0, log: logs[i].log, signal: new AbortController().signal, pollMs: 50, settleMs: 300, host });
      results.push(...(await Promise.allSettled([take('worker-b', 0), take('worker-c', 1)])));
      const held = results.filter((r): r is PromiseFulfilledResult<HeldOffsiteLock> => r.status === 'fulfilled').map((r) => r.value);
      // Exactly one run holds it, and the lock says so.
      expect(held).toHaveLength(1);
      expect(await lockToken(direct)).toBe(held[0].holder.token);
      const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      expect(String(refused.reason.message)).toMatch(/^Another Copy Offsite run is writing to .*: copy-offsite \(process \d+ on worker-[bc], since /);
      await held[0].release();
      expect(await direct.read(OFFSITE_LOCK_KEY)).toBeUndefined();
    },
  );
  expect(arrived).toBe(2);
  return logs.map((l) => l.lines);
}

test('a store that keeps If-None-Match but ignores If-Match: two runs taking over an expired lock at once, only one holds it, and the store is said to ignore conditions', async () => {
  const logs = await twoTakeovers('if-none-match');
  // The run that wrote the lock says so (a run refused before it wrote never probed).
  expect(logs.some((lines) => lines.some((l) => l.startsWith('WARN') && l.includes('ignores conditional writes')))).toBe(true);
}, 60_000);

test('a store that keeps If-Match but ignores If-None-Match: two runs taking over an expired lock at once, only one holds it, and the store is said to ignore conditions', async () => {
  const logs = await twoTakeovers('if-match');
  // The run that wrote the lock says so (a run refused before it wrote never probed).
  expect(logs.some((lines) => lines.some((l) => l.startsWith('WARN') && l.includes('ignores conditional writes')))).toBe(true);
}, 60_000);

test('Amazon S3 (both conditions kept): two runs taking over an expired lock at once, only one holds it, and no warning about the store', async () => {
  const logs = await twoTakeovers('both');
  for (const lines of logs) expect(lines.some((l) => l.includes('ignores conditional writes'))).toBe(false);
}, 60_000);
