// A restore from offsite killed mid-download leaves a hidden temporary file; the next restore into
// that download folder removes it (this machine's, of a process no longer running) and restores.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { bundlePath, makeStore, pseudoRandomBytes, runBundle, runInProcess, silentLog, tempDir, write } from '../file-store/helpers';
import { startS3Server, type S3Server } from './servers';

let s3: S3Server;
afterAll(() => s3?.stop());

test('a half-downloaded file a killed restore left is removed by the next restore into the folder; a running one\'s is kept', async () => {
  s3 = await startS3Server();
  const work = tempDir('octopus-dr-leftovers-');
  const home = path.join(work, 'home');
  makeStore(home);
  write(path.join(home, 'Packages', 'big.zip'), pseudoRandomBytes(100 * 1024 * 1024, 7));
  const fileStore = path.join(work, 'fs');
  mkdirSync(fileStore);
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['Packages'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  await s3.createBucket('leftovers');
  const env = { OCTOPUSDR_OFFSITE_ACCESSKEYID: s3.accessKeyId, OCTOPUSDR_OFFSITE_SECRETACCESSKEY: s3.secretAccessKey };
  const args = ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--source', 's3://leftovers/dr'];
  expect((await runBundle('copy-offsite', ['--service-messages', '--endpoint-url', s3.endpoint, '--path-style', '--offsite-url', 's3://leftovers/dr', '--file-store-backup-directory', fileStore], { env })).code).toBe(0);

  const staging = path.join(work, 'staging');
  const child = spawn(process.execPath, [bundlePath('restore-file-store'), ...args, '--download-directory', staging, '--home-directory', path.join(work, 'killed')], { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (existsSync(staging) && readdirSync(staging).some((f) => f.endsWith('.download'))) {
        child.kill('SIGKILL');
        clearInterval(timer);
        resolve();
      }
    }, 5);
    child.on('exit', () => {
      clearInterval(timer);
      resolve();
    });
  });
  await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.on('exit', r));
  expect(child.signalCode).toBe('SIGKILL');
  const [leftover] = readdirSync(staging).filter((f) => f.endsWith('.download'));
  expect(leftover).toMatch(new RegExp(`^\\..*\\.zip\\.${child.pid}-[0-9a-f]{8}@.*\\.download$`));
  // One that a running process (this one) is writing stays.
  const running = `.other.zip.${process.pid}@${hostname()}.download`;
  writeFileSync(path.join(staging, running), 'in progress');

  const again = await runBundle('restore-file-store', [...args, '--download-directory', staging, '--home-directory', path.join(work, 'again')], { env });
  expect(resultMessageIn(again.stdout)).toMatch(/^Restored \d+ files/);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain(`Removed ${leftover} from the download folder: a download a stopped run left unfinished.`);
  expect(readdirSync(staging).filter((f) => f.endsWith('.download'))).toEqual([running]);

  // A leftover with this very process id: an earlier run that had the same pid (in a container,
  // every run may be pid 7 on one host name). Not this run's download, so it is removed, not an EEXIST.
  const zip = readdirSync(staging).find((f) => f.endsWith('.zip'))!;
  const staging2 = path.join(work, 'staging2');
  mkdirSync(staging2);
  const samePid = [`.${zip}.${process.pid}@${hostname()}.download`, `.${zip}.${process.pid}-0badc0de@${hostname()}.download`];
  for (const name of samePid) writeFileSync(path.join(staging2, name), 'a killed run with this pid');
  const inProcess = await runInProcess('restore-file-store', [...args, '--download-directory', staging2, '--home-directory', path.join(work, 'same-pid')], { env });
  expect(resultMessageIn(inProcess.stdout)).toMatch(/^Restored \d+ files/);
  expect(inProcess.code).toBe(0);
  for (const name of samePid) expect(inProcess.stdout).toContain(`Removed ${name} from the download folder: a download a stopped run left unfinished.`);
  expect(readdirSync(staging2).filter((f) => f.endsWith('.download'))).toEqual([]);
}, 300_000);
