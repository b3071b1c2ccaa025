// Retention through the built backup step: old sets go, what kept sets need stays.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables, restore } from './harness';

const lab = new Lab();
beforeAll(() => lab.start({}, [{ name: 'Kept', recoveryModel: 'FULL', tables: octopusTables() }, { name: 'Other', recoveryModel: 'FULL', tables: octopusTables() }, { name: 'Damaged', recoveryModel: 'FULL', tables: octopusTables() }, { name: 'Copied', recoveryModel: 'FULL', tables: octopusTables() }, { name: 'Piped', recoveryModel: 'FULL', tables: octopusTables() }, { name: 'Cased', recoveryModel: 'FULL', tables: octopusTables() }]));
afterAll(() => lab.stop());

const DAY = 24 * 60 * 60 * 1000;
let otherFull = '';

/** Pretends a backup set was taken `days` ago (retention reads the manifest's takenAt). */
function age(manifestPath: string, days: number): void {
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  m.takenAt = new Date(Date.now() - days * DAY).toISOString();
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
}

async function take(database: string, ...args: string[]): Promise<string> {
  const run = await backup(lab, database, '--no-copy-only', ...args);
  expect(run.code).toBe(0);
  return path.basename(run.outputs.ManifestPath, '.manifest.json');
}

test('deletes only old sets no kept set needs; keeps the chain of kept logs, other databases and foreign files', async () => {
  const f1 = await take('Kept');
  lab.insertProject('Kept', 'P-a');
  const l1 = await take('Kept', '--backup-type', 'Log');
  const f2 = await take('Kept');
  lab.insertProject('Kept', 'P-b');
  const l2 = await take('Kept', '--backup-type', 'Log');
  lab.insertProject('Kept', 'P-c');
  const l3 = await take('Kept', '--backup-type', 'Log');
  const other = await take('Other');
  otherFull = other;
  for (const [stem, days] of [[f1, 40], [l1, 39], [f2, 20], [l2, 19], [l3, 1], [other, 60]] as const) {
    age(path.join(lab.backups, `${stem}.manifest.json`), days);
  }
  writeFileSync(path.join(lab.backups, 'someone-elses.bak'), 'not ours');

  lab.insertProject('Kept', 'P-d');
  const run = await backup(lab, 'Kept', '--backup-type', 'Log', '--no-copy-only', '--retention-days', '7', '--verbose');
  expect(run.code).toBe(0);
  expect(run.outputs.RetentionDeleted).toBe('2');
  expect(run.stdout).toContain(`Retention: deleted ${f1}.manifest.json`);
  expect(run.stdout).toContain(`Retention: kept ${f2}.manifest.json (the newest verified full backup)`);
  expect(run.stdout).toMatch(new RegExp(`Retention: kept ${l2}\\.manifest\\.json \\(needed to restore Kept_LOG_\\d{8}T\\d{6}Z_[0-9a-f]{6}\\.manifest\\.json\\)`));
  const left = readdirSync(lab.backups);
  for (const stem of [f1, l1]) expect(left.filter((f) => f.startsWith(stem))).toEqual([]);
  for (const stem of [f2, l2, l3, other]) expect(left.filter((f) => f.startsWith(stem))).toHaveLength(2);
  expect(left).toContain('someone-elses.bak');
});

test('the newest verified full backup is kept however old; no retention after an unverified backup', async () => {
  const unverified = await backup(lab, 'Other', '--no-copy-only', '--no-verify', '--retention-days', '1');
  expect(unverified.code).toBe(0);
  expect(unverified.stdout).toMatch(/Retention skipped: the new backup was not verified/);
  const before = readdirSync(lab.backups).length;
  // Everything of 'Other' is now older than 1 day except the unverified full; the verified one stays.
  age(unverified.outputs.ManifestPath, 2);
  const log = await backup(lab, 'Other', '--backup-type', 'Log', '--no-copy-only', '--retention-days', '1', '--verbose');
  expect(log.code).toBe(0);
  expect(log.stdout).toMatch(/kept Other_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json \(needed to restore Other_LOG_/);
  expect(readdirSync(lab.backups).length).toBeGreaterThanOrEqual(before);
  // The 60-day-old verified full is the newest *verified* full: kept.
  expect(log.stdout).toContain(`kept ${otherFull}.manifest.json (the newest verified full backup)`);
  expect(readdirSync(lab.backups).filter((f) => f.startsWith(otherFull))).toHaveLength(2);
});

test('a set whose manifest cannot be read keeps every backup taken up to it, with a warning; before, the full it was built on was deleted', async () => {
  const f1 = await take('Damaged');
  lab.insertProject('Damaged', 'P-a');
  const l1 = await take('Damaged', '--backup-type', 'Log');
  const f2 = await take('Damaged');
  for (const [stem, days] of [[f1, 40], [l1, 39], [f2, 20]] as const) age(path.join(lab.backups, `${stem}.manifest.json`), days);
  // The log's manifest is damaged: which backups it needs is unknown.
  writeFileSync(path.join(lab.backups, `${l1}.manifest.json`), '{"format": ');

  lab.insertProject('Damaged', 'P-b');
  const run = await backup(lab, 'Damaged', '--backup-type', 'Log', '--no-copy-only', '--retention-days', '7', '--verbose');
  expect(run.code).toBe(0);
  expect(run.outputs.RetentionDeleted).toBe('0');
  expect(run.stdout).toContain(`Cannot tell which backups ${l1}.manifest.json needs (its manifest cannot be read); keeping every backup of this database taken no later.`);
  expect(run.stdout).toContain(`Retention: kept ${f1}.manifest.json (may be needed by ${l1}.manifest.json, whose manifest cannot be read)`);
  const left = readdirSync(lab.backups);
  for (const stem of [f1, l1, f2]) expect(left.filter((f) => f.startsWith(stem))).toHaveLength(2);

  // Moved away, as the warning says: the old full goes.
  for (const f of left.filter((n) => n.startsWith(l1))) renameSync(path.join(lab.backups, f), path.join(lab.root, f));
  lab.insertProject('Damaged', 'P-c');
  const after = await backup(lab, 'Damaged', '--backup-type', 'Log', '--no-copy-only', '--retention-days', '7', '--verbose');
  expect(after.code).toBe(0);
  expect(after.stdout).not.toContain('Cannot tell which backups');
  expect(readdirSync(lab.backups).filter((f) => f.startsWith(f1))).toEqual([]);
});

test("a manifest replaced by another set's is skipped, not taken for that set: the other set's backup file is never deleted with it", async () => {
  const f1 = await take('Copied');
  lab.insertProject('Copied', 'P-a');
  const l1 = await take('Copied', '--backup-type', 'Log');
  for (const [stem, days] of [[f1, 20], [l1, 19]] as const) age(path.join(lab.backups, `${stem}.manifest.json`), days);
  // The log's manifest now holds the full's (a wrong copy put back, say).
  writeFileSync(path.join(lab.backups, `${l1}.manifest.json`), readFileSync(path.join(lab.backups, `${f1}.manifest.json`)));

  const run = await backup(lab, 'Copied', '--backup-type', 'Differential', '--retention-days', '7', '--retention-minimum', '1', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`Skipping ${l1}.manifest.json: it lists ${f1}.bak, which is not a file of this set (${l1}): it is another set's manifest, or was edited.`);
  expect(run.stdout).toContain(`Cannot tell which backups ${l1}.manifest.json needs`);
  const left = readdirSync(lab.backups);
  expect(left).toContain(`${f1}.bak`);
  expect(left).toContain(`${l1}.trn`);
  expect(run.outputs.RetentionDeleted).toBe('0');

  // Named as the source, it is refused too: before, the restore took it for the log's set and restored the full's older content, exit 0.
  const named = await restore(lab, '--source', path.join(lab.backups, `${l1}.manifest.json`), '--target-database', 'Copied-restored');
  expect(named.code).toBe(1);
  expect(named.stdout).toContain(`${l1}.manifest.json cannot be restored from: it lists ${f1}.bak, which is not a file of this set (${l1})`);
  expect(lab.projectIds('Copied-restored')).toEqual([]);
});

test('a pipe named like a manifest is refused at once, naming it, and keeps older backups; before, the step waited on it forever', async () => {
  const f1 = await take('Piped');
  age(path.join(lab.backups, `${f1}.manifest.json`), 20);
  const fifo = path.join(lab.backups, 'Piped_LOG_20300101T000000Z_abcdef.manifest.json');
  execFileSync('mkfifo', [fifo]);
  try {
    lab.insertProject('Piped', 'P-a');
    const run = await backup(lab, 'Piped', '--backup-type', 'Log', '--no-copy-only', '--retention-days', '7', '--retention-minimum', '1', '--verbose');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Skipping Piped_LOG_20300101T000000Z_abcdef.manifest.json: ${fifo} is not a regular file (a pipe with a manifest's name); it is no backup set. Move it out of the backup folder, then run this again.`);
    expect(run.stdout).toContain(`Retention: kept ${f1}.manifest.json (`);
    expect(run.outputs.RetentionDeleted).toBe('0');
  } finally {
    rmSync(fifo, { force: true });
  }
}, 60_000);

test('backups taken through another spelling of the database name are one database to retention: the full a kept log needs stays; before, it was deleted', async () => {
  const f1 = await take('Cased');
  age(path.join(lab.backups, `${f1}.manifest.json`), 40);
  lab.insertProject('Cased', 'P-a');
  // The same database, as another connection string spells it (SQL Server compares names by its collation).
  const l1 = await take('cased', '--backup-type', 'Log');
  age(path.join(lab.backups, `${l1}.manifest.json`), 1);
  // Named and recorded as the server names the database, whatever the spelling.
  expect(l1).toMatch(/^Cased_LOG_/);
  expect(lab.readManifest(`${l1}.manifest.json`).database).toBe('Cased');

  // A manifest written before names followed the server (the connection's spelling in its name and database).
  const older = lab.readManifest(`${l1}.manifest.json`);
  const olderStem = l1.replace(/^Cased_/, 'cased_');
  older.database = 'cased';
  older.files = older.files.map((f: { name: string }) => ({ ...f, name: f.name.replace(/^Cased_/, 'cased_') }));
  writeFileSync(path.join(lab.backups, `${olderStem}.manifest.json`), JSON.stringify(older, null, 2));
  renameSync(path.join(lab.backups, `${l1}.trn`), path.join(lab.backups, `${olderStem}.trn`));
  rmSync(path.join(lab.backups, `${l1}.manifest.json`));

  lab.insertProject('Cased', 'P-b');
  const run = await backup(lab, 'Cased', '--no-copy-only', '--retention-days', '7', '--retention-minimum', '1', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`Retention: kept ${f1}.manifest.json (needed to restore ${olderStem}.manifest.json)`);
  expect(run.outputs.RetentionDeleted).toBe('0');
  expect(readdirSync(lab.backups)).toContain(`${f1}.bak`);

  // The same for a damaged manifest spelled the other way: it pins every backup taken up to it.
  writeFileSync(path.join(lab.backups, `${olderStem}.manifest.json`), '{"format": ');
  lab.insertProject('Cased', 'P-c');
  const damaged = await backup(lab, 'Cased', '--backup-type', 'Log', '--no-copy-only', '--retention-days', '7', '--retention-minimum', '1', '--verbose');
  expect(damaged.code).toBe(0);
  expect(damaged.stdout).toContain(`Cannot tell which backups ${olderStem}.manifest.json needs (its manifest cannot be read)`);
  expect(damaged.outputs.RetentionDeleted).toBe('0');
  expect(readdirSync(lab.backups)).toContain(`${f1}.bak`);
});
