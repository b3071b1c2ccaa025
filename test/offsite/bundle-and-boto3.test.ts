// The built copy-offsite bundle, run as an operator runs it, against s3rver; what it uploaded is
// then read by a client we did not write (boto3, Debian's python3-boto3).
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { outputVariablesIn } from '../../steps/runtime/service-messages';
import { runBundle, tempDir } from '../file-store/helpers';
import { fileStoreFullBackup } from './fixtures';
import { startS3Server, type S3Server } from './servers';

const hasBoto3 = spawnSync('python3', ['-c', 'import boto3'], { encoding: 'utf8' }).status === 0;
let s3: S3Server;
let fileStore: string;
beforeAll(async () => {
  s3 = await startS3Server();
  ({ fileStore } = await fileStoreFullBackup(tempDir('octopus-dr-offsite-bundle-')));
}, 60_000);
afterAll(() => s3?.stop());

test('the bundle copies a set offsite; boto3 lists it and reads back the same bytes and metadata', async () => {
  await s3.createBucket('bundle-check');
  const run = await runBundle(
    'copy-offsite',
    ['--service-messages', '--offsite-url', 's3://bundle-check/site-a', '--endpoint-url', s3.endpoint, '--path-style', '--request-checksums', 'WhenRequired', '--file-store-backup-directory', fileStore],
    { env: { OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey } },
  );
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(outputVariablesIn(run.stdout).CopiedSets).toBe('1');
  if (!hasBoto3) return; // .ci/run installs python3-boto3
  const script = `
import boto3, hashlib, json, sys
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER', region_name='us-east-1')
out = {}
for o in s3.list_objects_v2(Bucket='bundle-check', Prefix='site-a/')['Contents']:
    h = s3.head_object(Bucket='bundle-check', Key=o['Key'])
    body = s3.get_object(Bucket='bundle-check', Key=o['Key'])['Body'].read()
    out[o['Key']] = {'size': o['Size'], 'meta': h['Metadata'], 'sha256': hashlib.sha256(body).hexdigest()}
print(json.dumps(out))
`;
  // Asynchronously: s3rver runs in this process and must keep answering.
  const { stdout } = await promisify(execFile)('python3', ['-c', script, s3.endpoint], { encoding: 'utf8' });
  const seen = JSON.parse(stdout) as Record<string, { size: number; meta: Record<string, string>; sha256: string }>;
  const archive = readFileSync(path.join(fileStore, require('node:fs').readdirSync(fileStore).find((f: string) => f.endsWith('.zip'))));
  const archiveKey = Object.keys(seen).find((k) => k.endsWith('.zip'))!;
  expect(archiveKey).toMatch(/^site-a\/file-store\/octopus-file-store-\d{8}T\d{6}Z-[0-9a-f]{6}-full\.zip$/);
  const sha = createHash('sha256').update(archive).digest('hex');
  expect(seen[archiveKey]).toEqual({ size: archive.length, sha256: sha, meta: expect.objectContaining({ octopusdrsha256: sha, octopusdrsize: String(archive.length) }) });
  const recordKey = Object.keys(seen).find((k) => k.endsWith('.offsite.json'))!;
  expect(recordKey).toBeDefined();
  expect(Object.keys(seen)).toHaveLength(3); // archive, manifest, record
}, 60_000);
