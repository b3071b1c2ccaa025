// One set's .offsite.json record damaged offsite (cut short, a bad edit) is that set's problem: the
// other sets are still copied, and the step then fails naming the record and what to do. Before,
// the copy stopped at that set with a bare "is not valid JSON" on every run, and no later set ever
// went offsite (red team, stop 37). Against s3rver, plain, the step in process.
import * as path from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { tempDir } from '../file-store/helpers';
import { runCopy } from './fixtures';
import { datedFileStoreBackups } from './fixtures';
import { startS3Server, type S3Server } from './servers';

let s3: S3Server;
let backups: ReturnType<typeof datedFileStoreBackups>;
let fileStore: string;
const DAY = 24 * 3600 * 1000;
const START = Date.now() - 20 * DAY;

beforeAll(async () => {
  s3 = await startS3Server();
  backups = datedFileStoreBackups(tempDir('octopus-dr-offsite-record-'));
  ({ fileStore } = backups);
}, 60_000);
afterAll(() => s3?.stop());

const fullOn = (day: number): Promise<string> => backups.fullAt(new Date(START + day * DAY));

const args = (url: string) => ['--offsite-url', url, '--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1', '--file-store-backup-directory', fileStore];
const env = () => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey });

async function records(bucket: string): Promise<string[]> {
  const c = s3.client();
  const keys = ((await c.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
  c.destroy();
  return keys.filter((k) => k.endsWith('.offsite.json')).map((k) => path.basename(k, '.offsite.json')).sort();
}

test('a damaged record of an old set: the newer sets are still copied; the step fails naming the record and what to do; deleting it and copying again sends that set again, reusing its objects', async () => {
  await s3.createBucket('record');
  const url = 's3://record/dr';
  const old = await fullOn(0);
  expect((await runCopy(args(url), env())).code).toBe(0);
  const c = s3.client();
  await c.send(new PutObjectCommand({ Bucket: 'record', Key: `dr/file-store/${old}.offsite.json`, Body: '{"format":"octopus-dr/offsite-set","formatVer' }));
  const newer = [await fullOn(1), await fullOn(2)];

  const r = await runCopy(args(url), env());
  expect(r.code).toBe(1);
  expect(r.outputs).toEqual({}); // a failed run sets no outputs; what was copied is in the log
  expect(await records('record')).toEqual([old, ...newer].sort());
  const lines = r.result!.split('\n');
  expect(lines[0]).toBe('1 offsite record(s) cannot be read, so their set(s) were not checked (the other sets were not held up):');
  expect(lines[1]).toMatch(new RegExp(`^  - s3://record/dr/file-store/${old}\\.offsite\\.json is not valid JSON \\(.+\\)\\.$`));
  expect(lines.pop()).toBe(
    'Delete each record named (the .offsite.json object) offsite and run the copy again: its set is then sent again, and the objects already there are reused if intact.',
  );

  // The advice followed: the set is sent again, its objects (intact) reused.
  await c.send(new DeleteObjectCommand({ Bucket: 'record', Key: `dr/file-store/${old}.offsite.json` }));
  c.destroy();
  const again = await runCopy(args(url), env());
  expect(again.code).toBe(0);
  expect(again.outputs.Copied).toBe(old);
  expect(again.outputs.ResumedFiles).toBe('2');
  expect(again.outputs.AlreadyOffsite).toBe('2');
}, 180_000);

test('a record that parses but is not an offsite record is named the same way; the new set is still copied', async () => {
  await s3.createBucket('record-shape');
  const url = 's3://record-shape/dr';
  expect((await runCopy(args(url), env())).code).toBe(0);
  const [first] = await records('record-shape');
  const c = s3.client();
  await c.send(new PutObjectCommand({ Bucket: 'record-shape', Key: `dr/file-store/${first}.offsite.json`, Body: '{"format":"something else"}' }));
  c.destroy();
  const added = await fullOn(3);
  const r = await runCopy(args(url), env());
  expect(r.code).toBe(1);
  expect(await records('record-shape')).toContain(added);
  expect(r.result).toContain(`  - s3://record-shape/dr/file-store/${first}.offsite.json is not a valid octopus-dr offsite record (format octopus-dr/offsite-set version 1).`);
}, 180_000);
