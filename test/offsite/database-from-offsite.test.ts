// Restore SQL Database and Test Latest Backup taking an Azure Blob URL as "Backup to restore":
// back up, copy offsite (Azurite), delete the local backups, then run the steps with the
// URL (S3 URLs and encrypted sets: restores-from-s3.test.ts). The chain is downloaded to "Download folder", checked, and restored as from a folder.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../database/harness';
import { findNode18 } from '../helpers/node18';
import { labWithOctopusChain, runCopy } from './fixtures';
import { azureProvider } from './providers';

const provider = azureProvider();
const KEY = randomBytes(32);
let lab: Lab;
let url: string;
let backups: string;

beforeAll(async () => {
  await provider.start();
  ({ lab, backups } = await labWithOctopusChain(KEY));
  url = await provider.newTarget('site-a');
  const copied = await runCopy(['--offsite-url', url, '--backup-directory', backups], provider.env());
  if (copied.code !== 0) throw new Error(`copy failed: ${copied.result}`);
  // The site is gone: only the offsite copy is left.
  rmSync(backups, { recursive: true });
}, 180_000);
afterAll(async () => {
  await lab?.stop();
  await provider.stop();
});

function rows(database: string): string {
  const db = lab.sim.model.database(database)!;
  return JSON.stringify([...db.tables.entries()].map(([name, t]) => [name, t.rows]));
}

test('Restore SQL Database from the URL: the newest chain downloaded and checked, rows identical', async () => {
  const staging = path.join(lab.root, 'staging-restore');
  const run = await lab.run('restore-database', 'master', ['--source', url, '--download-directory', staging, '--target-database', 'Octopus-offsite'], { env: provider.env() });
  expect(run.stderr).toBe('');
  expect(run.result).toMatch(/^Restored 'Octopus-offsite'/);
  expect(run.code).toBe(0);
  expect(rows('Octopus-offsite')).toBe(rows('Octopus'));
  expect(run.stdout).toMatch(/Downloaded .* from .*every SHA-256 matches/);
  // The full and both logs, each with its manifest; nothing else.
  expect(readdirSync(staging).filter((f) => f.endsWith('.manifest.json'))).toHaveLength(3);
  expect(readdirSync(staging).filter((f) => !/\.(bak|trn|manifest\.json)$/.test(f))).toEqual([]);
  for (const secret of provider.secrets()) expect(run.stdout + run.stderr).not.toContain(secret);
}, 120_000);

test('a set named in the URL: only its chain is downloaded (the full alone)', async () => {
  const store = provider.store(url);
  const full = (await store.list('database/')).map((o) => o.key).find((k) => /_FULL_.*\.manifest\.json$/.test(k))!;
  store.close();
  const staging = path.join(lab.root, 'staging-full');
  const run = await lab.run('restore-database', 'master', ['--source', `${url}/${full}`, '--download-directory', staging, '--target-database', 'Octopus-full'], { env: provider.env() });
  expect(run.code).toBe(0);
  expect(readdirSync(staging).sort()).toEqual([path.basename(full), path.basename(full).replace('.manifest.json', '.bak')].sort());
  expect(lab.projectIds('Octopus-full')).not.toContain('Projects-2');
}, 120_000);

test('Test Latest Backup from the URL: the newest chain restored under a scratch name, the key proven, the report written', async () => {
  const staging = path.join(lab.root, 'staging-test');
  const reports = path.join(lab.root, 'reports');
  mkdirSync(reports);
  const run = await lab.run('test-restore', 'master', ['--source', url, '--download-directory', staging, '--report-directory', reports], {
    env: { ...provider.env(), OCTOPUSDR_MASTERKEY: KEY.toString('base64') },
  });
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const report = JSON.parse(readFileSync(run.artifacts.find((a) => a.endsWith('.json'))!, 'utf8'));
  expect(report.masterKey.status).toBe('passed');
  expect(report.backup.sets).toHaveLength(3);
  expect([...lab.sim.model.databases.values()].map((d) => d.name).filter((n) => n.startsWith('octopus-dr-test-'))).toEqual([]);
}, 180_000);

test('a missing container: the store error names "Backup to restore", the parameter the user set', async () => {
  const staging = path.join(lab.root, 'staging-missing');
  const run = await lab.run('restore-database', 'master', ['--source', provider.missingUrl(), '--download-directory', staging], { env: provider.env() });
  expect(run.code).toBe(1);
  expect(run.result).toMatch(/^The container "no-such-container" does not exist .*: check "Backup to restore" \(OctopusDr\.Restore\.Source\), or create the container\.$/);
  // The step created the download folder to check it; nothing landed in it, so it is gone again.
  expect(existsSync(staging)).toBe(false);
}, 60_000);

test('a URL with a password in it, naming a set of the other area, is refused without showing the password, before anything connects', async () => {
  const staging = path.join(lab.root, 'staging-userinfo');
  const run = await lab.run('restore-database', 'master', ['--source', 'https://backup:Pw1secret@acct.blob.core.windows.net/backups/p/file-store/2026.manifest.json', '--download-directory', staging], { env: provider.env() });
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/^"Backup to restore" must not hold credentials or a query/);
  expect(run.stdout + run.stderr).not.toContain('Pw1secret');
  expect(existsSync(staging)).toBe(false);
  const wrongArea = await lab.run('restore-database', 'master', ['--source', `${url}/file-store/2026.manifest.json`, '--download-directory', staging], { env: provider.env() });
  expect(wrongArea.code).toBe(2);
  expect(wrongArea.result).toMatch(/^"Backup to restore" names a file-store set \(2026\.manifest\.json\), and this step restores a database: .*--source on the command line\.$/);
}, 60_000);

test('Test Latest Backup from a URL checks its local folders before it downloads anything: a missing file-store backup folder is exit 2, the store untouched', async () => {
  const staging = path.join(lab.root, 'staging-early', 'downloads');
  const unreachable = 'http://127.0.0.1:9/devstoreaccount1/backups/p';
  const run = await lab.run('test-restore', 'master', ['--source', unreachable, '--download-directory', staging, '--file-store-backup-directory', path.join(lab.root, 'no-such-fs')], {
    env: { ...provider.env(), OCTOPUSDR_MASTERKEY: KEY.toString('base64') },
  });
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/no-such-fs/);
  expect(run.stdout + run.stderr).not.toMatch(/Cannot reach|ECONNREFUSED/);
  // Exit 2 changes nothing: the download folder (and the parent it needed) created for the check are gone.
  expect(existsSync(path.dirname(staging))).toBe(false);
  expect(existsSync(lab.root)).toBe(true);
}, 60_000);

test('an Azure URL without a download folder is a parameter error naming it', async () => {
  const run = await lab.run('test-restore', 'master', ['--source', url], { env: { ...provider.env(), OCTOPUSDR_MASTERKEY: KEY.toString('base64') } });
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/"Download folder" \(OctopusDr\.Offsite\.StagingDirectory\) is required/);
}, 60_000);

test('a malformed URL is a parameter error naming "Backup to restore" and --source, before anything connects', async () => {
  const run = await lab.run('restore-database', 'master', ['--source', 'https://acct.blob.core.windows.net/c/prefix', '--download-directory', path.join(lab.root, 'nowhere')], { env: provider.env() });
  expect(run.code).toBe(2);
  expect(run.result).toMatch(/^"Backup to restore" must name a container .*not "c": set "Backup to restore" \(OctopusDr\.Restore\.Source\) in the step, or --source on the command line\.$/);
}, 60_000);

(findNode18() ? test : test.skip)('on Node.js 18 a URL fails saying it needs Node.js 20 (a folder source still runs there)', () => {
  const child = spawnSync(findNode18()!, [path.join(__dirname, '../../build/steps/restore-database.js'), '--source', url, '--download-directory', path.join(lab.root, 'staging-18')], {
    env: { PATH: process.env.PATH, OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('master'), ...provider.env() },
    encoding: 'utf8',
  });
  expect(child.status).toBe(1);
  expect(child.stdout + child.stderr).toMatch(/Restoring from an offsite URL needs Node\.js 20 or newer .*this is Node\.js 18\./);
  expect(existsSync(path.join(lab.root, 'staging-18'))).toBe(false);
}, 60_000);
