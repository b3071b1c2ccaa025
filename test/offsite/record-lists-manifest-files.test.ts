// Fetch Backups from Offsite downloads the files a set's .offsite.json record lists, each checked
// against the record, and its manifest, checked the same way. A record that does not list a file
// the manifest names (edited offsite; a set whose object was left out) gave a download folder
// without that backup file, and Fetch still ended with exit 0, "every SHA-256 matches; restore
// from ..." and a restore from it then failed. The record must list every file the manifest names.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { fetchOffsiteStep } from '../../steps/fetch-offsite/fetch-offsite';
import { MemorySink } from '../../steps/runtime/console-output';
import { runStep } from '../../steps/runtime/run-step';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { fetchOffsite } from '../../templates/fetch-offsite';
import type { Lab } from '../database/harness';
import { labWithOctopusChain, runCopy } from './fixtures';
import { startS3Server, type S3Server } from './servers';

let s3: S3Server;
let lab: Lab;
const url = 's3://record-files/site-a';
const s3Args = () => ['--endpoint-url', s3.endpoint, '--path-style', '--region', 'us-east-1'];
const s3Env = () => ({ OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey });

beforeAll(async () => {
  s3 = await startS3Server();
  let backups: string;
  ({ lab, backups } = await labWithOctopusChain(randomBytes(32)));
  await s3.createBucket('record-files');
  const copied = await runCopy(['--offsite-url', url, ...s3Args(), '--backup-directory', backups], s3Env());
  if (copied.code !== 0) throw new Error(`copy failed: ${copied.result}`);
}, 240_000);
afterAll(async () => {
  await lab?.stop();
  await s3?.stop();
});

async function fetchDatabase(staging: string) {
  const sink = new MemorySink();
  const code = await runStep(fetchOffsite, fetchOffsiteStep, {
    argv: ['--service-messages', '--offsite-url', url, ...s3Args(), '--fetch', 'Database', '--download-directory', staging],
    env: s3Env(),
    sink,
    handleSignals: false,
  });
  return { code, outputs: outputVariablesIn(sink.out), result: resultMessageIn(sink.out), out: sink.out };
}

test('a record that lists another set\'s backup file instead of its own fails the fetch naming the file; nothing is said to be restorable', async () => {
  const client = s3.client();
  const read = async (key: string) => JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: 'record-files', Key: key }))).Body!.transformToString());
  const keys = ((await client.send(new ListObjectsV2Command({ Bucket: 'record-files', Prefix: 'site-a/database/' }))).Contents ?? []).map((o) => o.Key!);
  const logs = keys.filter((k) => /_LOG_.*\.offsite\.json$/.test(k)).sort();
  expect(logs).toHaveLength(2);
  const [older, newer] = await Promise.all(logs.map(read));
  const ownFile = newer.files[0].name as string;
  // The newest log's record now lists the older log's .trn (which is offsite, with that size and hash).
  await client.send(new PutObjectCommand({ Bucket: 'record-files', Key: logs[1], Body: JSON.stringify({ ...newer, files: older.files }) }));
  client.destroy();

  const staging = path.join(lab.root, 'staging-record-files');
  const fetched = await fetchDatabase(staging);
  expect(fetched.result).toContain(ownFile);
  expect(fetched.result).toMatch(/does not list .*which its manifest names/);
  expect(fetched.code).toBe(1);
  expect(fetched.outputs.DatabaseSource).toBeUndefined();
  expect(existsSync(path.join(staging, newer.manifest.name))).toBe(false);
  expect(existsSync(staging) ? readdirSync(staging).filter((f) => f.endsWith('.download')) : []).toEqual([]);
}, 120_000);
