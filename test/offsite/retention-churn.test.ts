// Offsite retention shorter than what the local folder keeps (stop 37 red team): a set offsite
// retention deletes was still in the local folder, so every run uploaded it again ("Copied") and its
// retention deleted it again. Now Copy Offsite asks the same retention plan before it sends anything,
// and a set that would be deleted at once is listed under NotCopied instead. Against s3rver behind a
// recording proxy (to count every upload), the step in process, file-store sets dated as a test needs.
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir as newTempDir } from '../file-store/helpers';
import { datedFileStoreBackups, runCopy, type InProcessRun } from './fixtures';
import { s3Provider } from './providers';
import { startRecordingProxy, type RecordingProxy } from './recording-proxy';

const DAY = 24 * 3600 * 1000;
const START = Date.now() - 20 * DAY;
const provider = s3Provider();
let proxy: RecordingProxy;
const folders: string[] = [];
const tempDir = (prefix: string) => {
  folders.push(newTempDir(prefix));
  return folders[folders.length - 1];
};

beforeAll(async () => {
  await provider.start();
  proxy = await startRecordingProxy(provider.server().endpoint);
}, 60_000);
afterAll(async () => {
  for (const f of folders) rmSync(f, { recursive: true, force: true });
  await proxy.stop();
  await provider.stop();
});

const args = (url: string, folder: string, ...more: string[]) => ['--offsite-url', url, '--endpoint-url', proxy.url, '--path-style', '--region', 'us-east-1', '--file-store-backup-directory', folder, ...more];
const lines = (value: string | undefined) => (value ? value.split('\n') : []);

/** The sets whose record is offsite now. */
async function offsiteSets(url: string): Promise<string[]> {
  const store = provider.store(url);
  const keys = (await store.list('file-store/')).map((o) => o.key).filter((k) => k.endsWith('.offsite.json'));
  store.close();
  return keys.map((k) => k.replace(/^file-store\//, '').replace(/\.offsite\.json$/, '')).sort();
}

/** How often each object of `url` was written through the proxy (PutObject, or a multipart upload's start). */
function writesOf(url: string): Map<string, number> {
  const bucket = url.replace(/^s3:\/\//, '').split('/')[0];
  const counts = new Map<string, number>();
  for (const r of proxy.requests) {
    const [where, query = ''] = r.url.split('?');
    const isWrite = (r.method === 'PUT' && !/partNumber=/.test(query)) || (r.method === 'POST' && /(^|&)uploads(=|&|$)/.test(query));
    // Not the run's own offsite lock (target-lock.ts), which every run writes.
    if (!isWrite || !where.startsWith(`/${bucket}/`) || where.endsWith('/.octopus-dr/copy.lock')) continue;
    const key = decodeURIComponent(where.slice(bucket.length + 2));
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Every set a run names as Copied is offsite when it ends (the broken runs named sets their own retention had deleted). */
async function expectCopiedOffsite(run: InProcessRun, url: string): Promise<void> {
  const offsite = await offsiteSets(url);
  for (const copied of lines(run.outputs.Copied)) expect(offsite).toContain(copied);
}

test('three sets 20, 19 and 18 days old, offsite retention 5 days, Keep at least 1: the newest is copied once, the two older never, over three runs', async () => {
  const url = await provider.newTarget('churn');
  const b = datedFileStoreBackups(tempDir('octopus-dr-churn-'));
  const sets = [await b.fullAt(new Date(START)), await b.fullAt(new Date(START + DAY)), await b.fullAt(new Date(START + 2 * DAY))];
  const runs: InProcessRun[] = [];
  for (let i = 0; i < 3; i++) {
    const run = await runCopy(args(url, b.fileStore, '--offsite-retention-days', '5', '--keep-at-least', '1'), provider.env());
    runs.push(run);
    expect({ code: run.code, result: run.result }).toEqual({ code: 0, result: expect.stringContaining('2 set(s) not copied (NotCopied says why)') });
    await expectCopiedOffsite(run, url);
    expect(run.outputs.RetentionDeleted).toBe('');
    // The two older sets, each with the reason; and one warning saying what to change.
    expect(lines(run.outputs.NotCopied).map((l) => l.split(': ')[0]).sort()).toEqual(sets.slice(0, 2).sort());
    for (const l of lines(run.outputs.NotCopied)) expect(l).toContain('offsite retention (5 days) would delete it as soon as it was copied');
    expect(run.out).toContain('Offsite retention is shorter than what the local backup folders keep: 2 local set(s) older than 5 days');
    expect(run.out).toMatch(/"Offsite retention \(days\)" \(OctopusDr\.Offsite\.RetentionDays\) to at least 21;/);
  }
  expect(runs.map((r) => lines(r.outputs.Copied))).toEqual([[sets[2]], [], []]);
  expect(runs.map((r) => r.outputs.AlreadyOffsite)).toEqual(['0', '1', '1']);
  expect(Number(runs[0].outputs.UploadedBytes)).toBeGreaterThan(0);
  expect(runs.slice(1).map((r) => r.outputs.UploadedBytes)).toEqual(['0', '0']);
  expect(await offsiteSets(url)).toEqual([sets[2]]);
  // Nothing was uploaded twice, and nothing of the two older sets at all.
  const writes = writesOf(url);
  expect([...writes.values()].every((n) => n === 1)).toBe(true);
  expect([...writes.keys()].filter((k) => sets.slice(0, 2).some((s) => k.includes(s)))).toEqual([]);
  expect(writes.size).toBe(3); // the archive, its manifest, its record
}, 120_000);

test('retention turned on later deletes the old sets once; the runs after it neither copy nor delete them again', async () => {
  const url = await provider.newTarget('later');
  const b = datedFileStoreBackups(tempDir('octopus-dr-churn-later-'));
  const sets = [await b.fullAt(new Date(START)), await b.fullAt(new Date(START + DAY)), await b.fullAt(new Date(START + 2 * DAY))];
  const first = await runCopy(args(url, b.fileStore), provider.env());
  expect(first.code).toBe(0);
  expect(first.outputs.CopiedSets).toBe('3');

  const withRetention = () => runCopy(args(url, b.fileStore, '--offsite-retention-days', '5', '--keep-at-least', '1'), provider.env());
  const second = await withRetention();
  expect(second.code).toBe(0);
  expect(second.outputs.Copied).toBe('');
  expect(lines(second.outputs.RetentionDeleted).sort()).toEqual(sets.slice(0, 2).map((s) => `file-store/${s}`).sort());
  expect(await offsiteSets(url)).toEqual([sets[2]]);
  const writesBefore = writesOf(url);
  for (let i = 0; i < 2; i++) {
    const run = await withRetention();
    expect(run.code).toBe(0);
    expect(run.outputs.Copied).toBe('');
    expect(run.outputs.UploadedBytes).toBe('0');
    expect(run.outputs.RetentionDeleted).toBe('');
    expect(lines(run.outputs.NotCopied)).toHaveLength(2);
  }
  expect(writesOf(url)).toEqual(writesBefore);
  expect(await offsiteSets(url)).toEqual([sets[2]]);
}, 120_000);

test('the same rule keeps what retention keeps: an old full a recent incremental needs is copied, and so are the newest Keep at least sets', async () => {
  const b = datedFileStoreBackups(tempDir('octopus-dr-churn-chain-'));
  const full = await b.fullAt(new Date(START));
  const taskLogs = resolveFolders({ homeDirectory: b.home, overrides: [], include: ['TaskLogs'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  const incremental = path.basename(
    (await backupFileStore({ folders: taskLogs, backupDirectory: b.fileStore, mode: 'Incremental', skipUnreadable: false, toolVersion: 'test', now: () => new Date(START + 19 * DAY) }, quietEngineContext({ log: silentLog }))).archivePath,
    '.zip',
  );
  const url = await provider.newTarget('chain');
  const run = await runCopy(args(url, b.fileStore, '--offsite-retention-days', '5', '--keep-at-least', '1'), provider.env());
  expect(run.code).toBe(0);
  expect(lines(run.outputs.Copied).sort()).toEqual([full, incremental].sort());
  expect(run.outputs.NotCopied).toBe('');
  expect(run.outputs.RetentionDeleted).toBe('');
  expect(run.out).not.toContain('Offsite retention is shorter');

  // Three old fulls, Keep at least 2: the newest two go offsite, the oldest does not.
  const old = datedFileStoreBackups(tempDir('octopus-dr-churn-keep-'));
  const fulls = [await old.fullAt(new Date(START)), await old.fullAt(new Date(START + DAY)), await old.fullAt(new Date(START + 2 * DAY))];
  const keepTwo = await provider.newTarget('keep-two');
  const kept = await runCopy(args(keepTwo, old.fileStore, '--offsite-retention-days', '5', '--keep-at-least', '2'), provider.env());
  expect(kept.code).toBe(0);
  expect(lines(kept.outputs.Copied)).toEqual(fulls.slice(1));
  expect(lines(kept.outputs.NotCopied).map((l) => l.split(': ')[0])).toEqual([fulls[0]]);
  expect(await offsiteSets(keepTwo)).toEqual(fulls.slice(1).sort());
}, 120_000);
