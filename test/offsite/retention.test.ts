// Remote retention keeps chains whole: against s3rver, with two database chains (full, diff, two
// logs; then a newer full) and two file-store chains (full + incremental; then a newer full).
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders } from '../../steps/engines/file-store/folders';
import { applyOffsiteRetention } from '../../steps/engines/offsite/retention';
import { backup } from '../database/harness';
import { silentLog } from '../file-store/helpers';
import { dropBackups, makeBackups, runCopy, type Backups } from './fixtures';
import { s3Provider } from './providers';
import { quietEngineContext } from '../../steps/runtime/engine-context';

const provider = s3Provider();
let backups: Backups;
let url: string;
const later = new Date(Date.now() + 100 * 24 * 3600 * 1000);

beforeAll(async () => {
  await provider.start();
  backups = await makeBackups();
  await new Promise((r) => setTimeout(r, 1100));
  const run = await backup(backups.lab, 'Octo', '--backup-directory', backups.database, '--no-copy-only');
  if (run.code !== 0) throw new Error(run.stderr);
  const folders = resolveFolders({ homeDirectory: backups.home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  await backupFileStore({ folders, backupDirectory: backups.fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
}, 180_000);
afterAll(async () => {
  await dropBackups(backups);
  await provider.stop();
});

async function offsiteSets(): Promise<string[]> {
  const store = provider.store(url);
  const keys = (await store.list('')).map((o) => o.key).filter((k) => k.endsWith('.offsite.json')).map((k) => k.replace(/\.offsite\.json$/, '').replace(/_\d{8}T\d{6}Z(_[0-9a-f]{6})?|-\d{8}T\d{6}Z(-[0-9a-f]{6})?/, ''));
  store.close();
  return keys.sort();
}

test('off by default; keeping the newest two keeps the whole older chains a newest set needs', async () => {
  url = await provider.newTarget();
  const copied = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', backups.database, '--file-store-backup-directory', backups.fileStore], provider.env());
  expect(copied.code).toBe(0);
  expect(copied.outputs.CopiedSets).toBe('8');
  expect(copied.outputs.RetentionDeleted).toBe('');
  const all = await offsiteSets();
  expect(all).toHaveLength(8);

  // The newest two database sets are the new full and the last log of the older chain: that log needs its whole chain.
  const store = provider.store(url);
  const none = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 2, now: later }, quietEngineContext({ log: silentLog }));
  expect(none).toEqual([]);
  expect(await offsiteSets()).toEqual(all);
  store.close();
}, 120_000);

test('with only the newest kept, the older chains go, and nothing a kept set needs', async () => {
  const store = provider.store(url);
  const deleted = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: later }, quietEngineContext({ log: silentLog }));
  store.close();
  expect(deleted.map((d) => d.replace(/_\d{8}T\d{6}Z(_[0-9a-f]{6})?|-\d{8}T\d{6}Z(-[0-9a-f]{6})?/, '')).sort()).toEqual([
    'database/Octo_DIFF',
    'database/Octo_FULL',
    'database/Octo_LOG',
    'database/Octo_LOG',
    'file-store/octopus-file-store-full',
    'file-store/octopus-file-store-incremental',
  ]);
  expect(await offsiteSets()).toEqual(['database/Octo_FULL', 'file-store/octopus-file-store-full']);
  // Every object of the deleted sets is gone, not only their records.
  const s = provider.store(url);
  expect((await s.list('')).length).toBe(2 * 3);
  s.close();
}, 120_000);

test('recent sets are kept whatever their count', async () => {
  const store = provider.store(url);
  expect(await applyOffsiteRetention({ store, retentionDays: 30, keepAtLeast: 1, now: new Date() }, quietEngineContext({ log: silentLog }))).toEqual([]);
  store.close();
});

const DAY = 24 * 3600 * 1000;
const SETS_START = Date.now() - 20 * DAY;

/** Full file-store sets of the task logs in a directory of their own, each as if taken `daysIn` days after SETS_START; their names without ".zip". */
async function fullSetsOnDays(name: string, days: number[]): Promise<{ directory: string; names: string[] }> {
  const directory = path.join(backups.home, '..', name);
  mkdirSync(directory, { recursive: true });
  const folders = resolveFolders({ homeDirectory: backups.home, overrides: [], include: ['TaskLogs'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  const names: string[] = [];
  for (const daysIn of days) {
    const set = await backupFileStore({ folders, backupDirectory: directory, mode: 'Full', skipUnreadable: false, toolVersion: 'test', now: () => new Date(SETS_START + daysIn * DAY) }, quietEngineContext({ log: silentLog }));
    names.push(path.basename(set.archivePath, '.zip'));
  }
  return { directory, names };
}

test('a file-store set whose creation time was edited to look older is aged by the time in its name, and kept', async () => {
  const target = await provider.newTarget();
  const { directory, names } = await fullSetsOnDays('file-store-edited-time', [0, 10, 11]);
  // The set of day 10 now claims to be from 2001.
  const sidecar = path.join(directory, `${names[1]}.manifest.json`);
  writeFileSync(sidecar, readFileSync(sidecar, 'utf8').replace(/"createdAt": "\d{4}/, '"createdAt": "2001'));
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--file-store-backup-directory', directory], provider.env());
  expect(copied.code).toBe(0);

  const store = provider.store(target);
  const deleted = await applyOffsiteRetention({ store, retentionDays: 5, keepAtLeast: 1, now: new Date(SETS_START + 12 * DAY) }, quietEngineContext({ log: silentLog }));
  store.close();
  expect(deleted).toEqual([`file-store/${names[0]}`]);
}, 120_000);

test('a file-store set with no manifest beside its archive is not copied, says how to put it back, and offsite retention still reads the area', async () => {
  const target = await provider.newTarget();
  const { directory, names } = await fullSetsOnDays('file-store-no-manifest', [0, 10]);
  rmSync(path.join(directory, `${names[0]}.manifest.json`));
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--file-store-backup-directory', directory], provider.env());
  expect(copied.code).toBe(0);
  expect(copied.outputs.CopiedSets).toBe('1');
  expect(copied.outputs.NotCopied).toBe(
    `${names[0]}: no manifest beside its archive; put back ${names[0]}.manifest.json from the copy inside the archive ` +
      `(for example: unzip -p ${names[0]}.zip octopus-dr-manifest.json > ${names[0]}.manifest.json) so that the set can be copied`,
  );

  const store = provider.store(target);
  const deleted = await applyOffsiteRetention({ store, retentionDays: 5, keepAtLeast: 1, now: new Date(SETS_START + 12 * DAY) }, quietEngineContext({ log: silentLog }));
  store.close();
  expect(deleted).toEqual([]);
}, 120_000);

test('a file-store set whose manifest offsite cannot be read (an earlier build sent its archive in its place) is kept with every older set, said in a warning; the rest of the area is retained', async () => {
  const target = await provider.newTarget();
  const { directory, names } = await fullSetsOnDays('file-store-archive-as-manifest', [0, 1, 5, 10, 11]);
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--file-store-backup-directory', directory], provider.env());
  expect(copied.code).toBe(0);
  // What copy-offsite sent before eb93a9a for a set without a manifest beside its archive.
  const store = provider.store(target);
  const archive = readFileSync(path.join(directory, `${names[1]}.zip`));
  await store.upload(`file-store/${names[1]}.manifest.json`, Readable.from([archive]), { size: archive.length, metadata: {} });

  const warnings: string[] = [];
  const log = { ...silentLog, warn: (message: string) => warnings.push(message) };
  const deleted = await applyOffsiteRetention({ store, retentionDays: 3, keepAtLeast: 1, now: new Date(SETS_START + 12 * DAY) }, quietEngineContext({ log }));
  store.close();
  // Day 5 is old enough and needed by no kept set; days 0 and 1 are kept: the set of day 1 may need them.
  expect(deleted).toEqual([`file-store/${names[2]}`]);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(
    new RegExp(
      `^Offsite retention: kept file-store/${names[1]} and every older file-store set: its manifest offsite \\(file-store/${names[1]}\\.manifest\\.json\\) cannot be read \\(.* is not valid JSON .*\\), ` +
        `so which sets it needs is unknown\\. If the set is still in its local backup directory, delete its objects offsite \\(its record file-store/${names[1]}\\.offsite\\.json first\\) and run Copy Offsite again to send it anew\\.$`,
    ),
  );
  // The archive's bytes quoted by the JSON error are not written to the log as they are.
  expect(warnings[0]).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
}, 120_000);

test('a database set whose manifest offsite cannot be read is kept with every older set, said in a warning; newer sets no kept set needs still go', async () => {
  const target = await provider.newTarget();
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--backup-directory', backups.database], provider.env());
  expect(copied.code).toBe(0);
  const store = provider.store(target);
  const diffRecord = (await store.list('database/')).map((o) => o.key).find((k) => k.includes('_DIFF') && k.endsWith('.offsite.json'))!;
  const chunks: Buffer[] = [];
  for await (const chunk of await store.download(diffRecord)) chunks.push(chunk as Buffer);
  const record = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; manifest: { name: string } };
  await store.upload(`database/${record.manifest.name}`, Readable.from([Buffer.from('{"cut short')]), { size: 11, metadata: {} });

  const warnings: string[] = [];
  const log = { ...silentLog, warn: (message: string) => warnings.push(message) };
  const deleted = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: later }, quietEngineContext({ log }));
  store.close();
  // Without the damage the older chain's full, differential and both logs went (the test above); the
  // differential's chain is unknown now, so it and the full before it stay.
  expect(deleted.map((d) => d.replace(/_\d{8}T\d{6}Z(_[0-9a-f]{6})?|-\d{8}T\d{6}Z(-[0-9a-f]{6})?/, '')).sort()).toEqual(['database/Octo_LOG', 'database/Octo_LOG']);
  expect(warnings).toEqual([expect.stringMatching(new RegExp(`^Offsite retention: kept database/${record.id} and every older database set: its manifest offsite \\(database/${record.manifest.name}\\) cannot be read \\(`))]);
}, 120_000);

test("each database's sets are retained on their own: another database's only full is never deleted because this one has newer sets; before, it was", async () => {
  const folder = path.join(backups.lab.root, 'two-databases');
  mkdirSync(folder, { recursive: true });
  for (const name of readdirSync(backups.database)) copyFileSync(path.join(backups.database, name), path.join(folder, name));
  // A second database's only backup: a copy of Octo's first full, named and recorded as Other's (older LSNs than Octo's newest full).
  const first = readdirSync(folder).filter((n) => n.startsWith('Octo_FULL_') && n.endsWith('.manifest.json')).sort()[0];
  const manifest = JSON.parse(readFileSync(path.join(folder, first), 'utf8'));
  const rename = (n: string) => n.replace(/^Octo_/, 'Other_');
  for (const f of manifest.files) copyFileSync(path.join(folder, f.name), path.join(folder, rename(f.name)));
  manifest.files = manifest.files.map((f: { name: string; serverPath: string }) => ({ ...f, name: rename(f.name), serverPath: f.serverPath.replace(f.name, rename(f.name)) }));
  manifest.database = 'Other';
  manifest.header.databaseName = 'Other';
  writeFileSync(path.join(folder, rename(first)), JSON.stringify(manifest, null, 2));

  const target = await provider.newTarget();
  const copied = await runCopy(['--offsite-url', target, ...provider.args(), '--backup-directory', folder], provider.env());
  expect(copied.code).toBe(0);
  const store = provider.store(target);
  const deleted = await applyOffsiteRetention({ store, retentionDays: 1, keepAtLeast: 1, now: later }, quietEngineContext({ log: silentLog }));
  store.close();
  const stems = deleted.map((d) => d.replace(/_\d{8}T\d{6}Z(_[0-9a-f]{6})?/, '')).sort();
  expect(stems).toEqual(['database/Octo_DIFF', 'database/Octo_FULL', 'database/Octo_LOG', 'database/Octo_LOG']);
  url = target;
  expect(await offsiteSets()).toEqual(['database/Octo_FULL', 'database/Other_FULL']);
}, 120_000);
