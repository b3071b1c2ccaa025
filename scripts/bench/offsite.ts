// `npm run bench -- offsite [--size=<MiB>] [--rounds=<n>]`: upload and download throughput of the
// built copy-offsite and fetch-offsite steps against local servers (s3rver for S3, Azurite for
// Azure Blob), next to a plain `aws s3 cp` and boto3 of the same file in the same run, with peak
// RSS (GNU time). The servers run as child processes, so they do not share the step's memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const ROOT = path.resolve(__dirname, '../..');
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const HAS_GNU_TIME = existsSync('/usr/bin/time');

interface Measurement {
  wall: number;
  rssMiB?: number;
}

function measure(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = HAS_GNU_TIME ? spawn('/usr/bin/time', ['-f', '%M', command, ...args], { env: { ...process.env, ...env } }) : spawn(command, args, { env: { ...process.env, ...env } });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} failed (${code}):\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
      const last = stderr.trim().split('\n').at(-1) ?? '';
      resolve({ wall, rssMiB: HAS_GNU_TIME && /^\d+$/.test(last) ? Number(last) / 1024 : undefined });
    });
  });
}

function startChild(args: string[], pattern: RegExp, cwd: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) resolve({ child, port: Number(m[1]) });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${text}`)));
  });
}

function writeRandom(file: string, bytes: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  for (let left = bytes; left > 0; left -= 8 << 20) writeSync(fd, randomBytes(Math.min(left, 8 << 20)));
  closeSync(fd);
}

export async function run(args: string[]): Promise<void> {
  const sizeMiB = Number(args.find((a) => a.startsWith('--size='))?.slice(7) ?? 512);
  const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 1);
  for (const step of ['copy-offsite', 'fetch-offsite']) {
    if (!existsSync(path.join(ROOT, 'build/steps', `${step}.js`))) throw new Error(`build/steps/${step}.js is missing: run npm run build first.`);
  }
  const work = mkdtempSync(path.join(tmpdir(), 'octopus-dr-bench-offsite-'));
  const servers: ChildProcess[] = [];
  try {
    const home = path.join(work, 'home');
    writeRandom(path.join(home, 'Packages', 'feeds-builtin', 'Acme.Big.1.0.0.zip'), sizeMiB * 1024 * 1024);
    for (let i = 0; i < 50; i++) writeRandom(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), 20_000);
    const fsDir = path.join(work, 'fs');
    mkdirSync(fsDir);
    const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs', 'Packages'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
    const log = { info: () => undefined, verbose: () => undefined, warn: () => undefined };
    await backupFileStore({ folders, backupDirectory: fsDir, mode: 'Full', skipUnreadable: false, toolVersion: 'bench' }, quietEngineContext({ log }));
    const archive = path.join(fsDir, readdirSync(fsDir).find((f) => f.endsWith('.zip'))!);
    const bytes = statSync(archive).size;

    const s3data = path.join(work, 's3data');
    mkdirSync(s3data);
    const s3 = await startChild(
      ['-e', `const S=require('s3rver');new S({port:0,address:'127.0.0.1',silent:true,directory:${JSON.stringify(s3data)}}).run().then(a=>console.log('S3 PORT '+a.port))`],
      /S3 PORT (\d+)/,
      ROOT,
    );
    servers.push(s3.child);
    const azDir = path.join(work, 'azurite');
    mkdirSync(azDir);
    const az = await startChild(
      [path.join(ROOT, 'node_modules/azurite/dist/src/blob/main.js'), '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--disableTelemetry', '--skipApiVersionCheck'],
      /listens on http:\/\/127\.0\.0\.1:(\d+)/,
      azDir,
    );
    servers.push(az.child);
    const endpoint = `http://127.0.0.1:${s3.port}`;
    const azureAccountUrl = `http://127.0.0.1:${az.port}/devstoreaccount1`;
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=${azureAccountUrl};`;
    const s3Env = { OCTOPUSDR_OFFSITE_ACCESSKEYID: 'S3RVER', OCTOPUSDR_OFFSITE_SECRETACCESSKEY: 'S3RVER', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_DEFAULT_REGION: 'us-east-1' };
    const azEnv = { OCTOPUSDR_OFFSITE_AZURECONNECTIONSTRING: connectionString };
    const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    client.destroy();
    const { BlobServiceClient } = await import('@azure/storage-blob');
    await BlobServiceClient.fromConnectionString(connectionString).getContainerClient('bench').create();

    const node = process.execPath;
    const copy = path.join(ROOT, 'build/steps/copy-offsite.js');
    const fetch = path.join(ROOT, 'build/steps/fetch-offsite.js');
    const s3Args = ['--endpoint-url', endpoint, '--path-style', '--region', 'us-east-1'];
    const hasAws = (await measure('bash', ['-c', 'command -v aws'], {}).then(() => true, () => false));
    const hasBoto3 = (await measure('python3', ['-c', 'import boto3'], {}).then(() => true, () => false));
    const boto3 = (op: 'upload' | 'download', key: string, file: string) => [
      '-c',
      `import boto3,sys;from boto3.s3.transfer import TransferConfig;c=boto3.client('s3',endpoint_url=sys.argv[1],region_name='us-east-1');` +
        `getattr(c,'${op}_file')(*( [sys.argv[3],'bench',sys.argv[2]] if '${op}'=='upload' else ['bench',sys.argv[2],sys.argv[3]] ),Config=TransferConfig(multipart_chunksize=8*1024*1024,max_concurrency=4))`,
      endpoint, key, file,
    ];

    const rows: { operation: string; tool: string; m: Measurement }[] = [];
    const loadBefore = loadavg().map((l) => l.toFixed(2)).join(', ');
    for (let round = 1; round <= rounds; round++) {
      const down = (name: string) => { const d = path.join(work, `down-${name}-${round}`); return d; };
      rows.push({ operation: 'upload', tool: 'octopus-dr copy-offsite (S3)', m: await measure(node, [copy, '--offsite-url', `s3://bench/ours-${round}`, ...s3Args, '--file-store-backup-directory', fsDir], s3Env) });
      if (hasAws) rows.push({ operation: 'upload', tool: '`aws s3 cp` (S3)', m: await measure('aws', ['s3', 'cp', '--only-show-errors', '--endpoint-url', endpoint, archive, `s3://bench/aws-${round}/${path.basename(archive)}`], s3Env) });
      if (hasBoto3) rows.push({ operation: 'upload', tool: 'boto3 upload_file (S3)', m: await measure('python3', boto3('upload', `boto3-${round}/${path.basename(archive)}`, archive), s3Env) });
      rows.push({ operation: 'upload', tool: 'octopus-dr copy-offsite (S3, age passphrase)', m: await measure(node, [copy, '--offsite-url', `s3://bench/age-${round}`, ...s3Args, '--file-store-backup-directory', fsDir], { ...s3Env, OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: 'bench passphrase 123' }) });
      rows.push({ operation: 'upload', tool: 'octopus-dr copy-offsite (Azure)', m: await measure(node, [copy, '--offsite-url', `${azureAccountUrl}/bench/ours-${round}`, '--file-store-backup-directory', fsDir], azEnv) });
      rows.push({ operation: 'download', tool: 'octopus-dr fetch-offsite (S3)', m: await measure(node, [fetch, '--offsite-url', `s3://bench/ours-${round}`, ...s3Args, '--fetch', 'FileStore', '--download-directory', down('ours-s3')], s3Env) });
      if (hasAws) rows.push({ operation: 'download', tool: '`aws s3 cp` (S3)', m: await measure('aws', ['s3', 'cp', '--only-show-errors', '--endpoint-url', endpoint, `s3://bench/aws-${round}/${path.basename(archive)}`, path.join(down('aws'), path.basename(archive))], s3Env) });
      if (hasBoto3) rows.push({ operation: 'download', tool: 'boto3 download_file (S3)', m: await measure('python3', boto3('download', `boto3-${round}/${path.basename(archive)}`, path.join(work, `boto3-down-${round}.zip`)), s3Env) });
      rows.push({ operation: 'download', tool: 'octopus-dr fetch-offsite (S3, age passphrase)', m: await measure(node, [fetch, '--offsite-url', `s3://bench/age-${round}`, ...s3Args, '--fetch', 'FileStore', '--download-directory', down('age-s3')], { ...s3Env, OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: 'bench passphrase 123' }) });
      rows.push({ operation: 'download', tool: 'octopus-dr fetch-offsite (Azure)', m: await measure(node, [fetch, '--offsite-url', `${azureAccountUrl}/bench/ours-${round}`, '--fetch', 'FileStore', '--download-directory', down('ours-az')], azEnv) });
      for (const d of readdirSync(work).filter((n) => n.startsWith('down-') || n.startsWith('boto3-down'))) rmSync(path.join(work, d), { recursive: true, force: true });
    }
    process.stdout.write(`Archive ${(bytes / 1e6).toFixed(0)} MB (one ${sizeMiB} MiB incompressible package + 50 logs), ${rounds} round(s), loopback servers (s3rver, Azurite in memory).\n`);
    process.stdout.write(`Machine: ${cpus().length} CPUs; load average (1, 5, 15 min) ${loadBefore} before, ${loadavg().map((l) => l.toFixed(2)).join(', ')} after.\n`);
    process.stdout.write('Our steps also hash the file before uploading and after downloading (SHA-256 against the record); the plain clients do not.\n\n');
    process.stdout.write('| operation | tool | wall s | MB/s | peak RSS MiB |\n|---|---|---|---|---|\n');
    for (const r of rows) {
      process.stdout.write(`| ${r.operation} | ${r.tool} | ${r.m.wall.toFixed(2)} | ${(bytes / 1e6 / r.m.wall).toFixed(0)} | ${r.m.rssMiB?.toFixed(0) ?? '?'} |\n`);
    }
  } finally {
    for (const s of servers) s.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}
