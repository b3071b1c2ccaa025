// Two servers back up a database of the same name (the installer's default, Octopus) to one share
// (red team 38): each one's retention considers only its own sets (the server and the database's
// family GUID its backup headers record), never deletes the other's, never calls the other's set
// "the newest verified full backup", and warns that the folder holds another server's backups.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables, restore } from '../database/harness';

const DAY = 24 * 60 * 60 * 1000;
const production = new Lab();
const staging = new Lab();

beforeAll(async () => {
  await production.start({ server: { serverName: 'PRODSQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
  await staging.start({ server: { serverName: 'STAGESQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
});
afterAll(async () => {
  await production.stop();
  await staging.stop();
});

function edit(manifestPath: string, change: (m: any) => void): void {
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  change(m);
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
}
const age = (manifestPath: string, days: number) => edit(manifestPath, (m) => void (m.takenAt = new Date(Date.now() - days * DAY).toISOString()));

test("staging's retention keeps production's sets in a shared folder, and says the folder holds another server's backups", async () => {
  const shared = production.backups;
  const prodSets: string[] = [];
  for (const days of [30, 20, 10]) {
    const run = await backup(production, 'Octopus', '--backup-directory', shared, '--retention-days', '90');
    expect(run.code).toBe(0);
    age(run.outputs.ManifestPath, days);
    prodSets.push(path.basename(run.outputs.ManifestPath));
  }
  // Staging's own old sets: these are retention's to delete (two kept by "Minimum backups kept", the newest verified).
  const stagingOld: string[] = [];
  for (const days of [40, 35, 30]) {
    const run = await backup(staging, 'Octopus', '--backup-directory', shared);
    expect(run.code).toBe(0);
    age(run.outputs.ManifestPath, days);
    stagingOld.push(path.basename(run.outputs.ManifestPath));
  }

  const stagingRun = await backup(staging, 'Octopus', '--backup-directory', shared, '--retention-days', '7', '--verbose');
  expect(stagingRun.code).toBe(0);
  const left = readdirSync(shared);
  for (const m of prodSets) expect(left).toContain(m);
  // Staging's oldest went; the newest two verified (the new one and the 30-day-old one) stayed.
  expect(left).not.toContain(stagingOld[0]);
  expect(left).not.toContain(stagingOld[1]);
  expect(left).toContain(stagingOld[2]);
  expect(stagingRun.outputs.RetentionDeleted).toBe('2');
  for (const m of prodSets) {
    expect(stagingRun.stdout).not.toContain(`Retention: kept ${m} (the newest verified full backup)`);
    expect(stagingRun.stdout).toContain(`Retention: kept ${m} (taken on PRODSQL`);
  }
  expect(stagingRun.stdout).toContain(`${shared} holds backups taken on other servers than STAGESQL (PRODSQL: 3 sets)`);
  expect(stagingRun.stdout).toMatch(/Retention \(7 days\): 2 backup sets deleted, 5 kept \(3 of them another server's or database's\)/);

  // And production's retention, in turn, keeps staging's set.
  const prodRun = await backup(production, 'Octopus', '--backup-directory', shared, '--retention-days', '15', '--retention-minimum', '1');
  expect(prodRun.code).toBe(0);
  expect(readdirSync(shared)).toContain(stagingOld[2]);
  expect(readdirSync(shared)).toContain(path.basename(stagingRun.outputs.ManifestPath));
  expect(prodRun.stdout).toContain('holds backups taken on other servers than PRODSQL (STAGESQL: 2 sets)');
  expect(readdirSync(shared)).not.toContain(prodSets[0]);
  expect(readdirSync(shared)).not.toContain(prodSets[1]);
});

test('a set whose header records no family GUID (whose it is cannot be told) is kept with a warning; another family on the same server too', async () => {
  const dir = path.join(production.root, 'unknown-origin');
  mkdirSync(dir);
  const a = await backup(production, 'Octopus', '--backup-directory', dir);
  const b = await backup(production, 'Octopus', '--backup-directory', dir);
  for (const run of [a, b]) expect(run.code).toBe(0);
  age(a.outputs.ManifestPath, 30);
  edit(a.outputs.ManifestPath, (m) => void (m.header.familyGuid = null));
  age(b.outputs.ManifestPath, 30);
  edit(b.outputs.ManifestPath, (m) => void (m.header.familyGuid = '00000000-0000-0000-0000-000000000001'));
  const run = await backup(production, 'Octopus', '--backup-directory', dir, '--retention-days', '7', '--retention-minimum', '1');
  expect(run.code).toBe(0);
  expect(readdirSync(dir)).toContain(path.basename(a.outputs.ManifestPath));
  expect(readdirSync(dir)).toContain(path.basename(b.outputs.ManifestPath));
  expect(run.outputs.RetentionDeleted).toBe('0');
  expect(run.stdout).toContain(`${path.basename(a.outputs.ManifestPath)} records no server or no database family GUID`);
  expect(run.stdout).toContain(`${path.basename(b.outputs.ManifestPath)} is a backup of another database named 'Octopus' on PRODSQL (family GUID 00000000-0000-0000-0000-000000000001`);
});

test("a restore from a folder holding two servers' backups of one database is refused, naming each; a named set restores its own server's chain", async () => {
  const dir = path.join(production.root, 'two-servers');
  mkdirSync(dir);
  const prodFull = await backup(production, 'Octopus', '--backup-directory', dir, '--no-copy-only');
  production.insertProject('Octopus', 'Projects-PROD');
  const prodDiff = await backup(production, 'Octopus', '--backup-directory', dir, '--backup-type', 'Differential');
  // Staging's set is the newest: a restore that took "the newest" would restore staging's data.
  const stagingFull = await backup(staging, 'Octopus', '--backup-directory', dir);
  for (const run of [prodFull, prodDiff, stagingFull]) expect(run.code).toBe(0);

  const before = production.sim.model.database('Octopus-copy');
  const refused = await restore(production, '--source', dir, '--target-database', 'Octopus-copy');
  expect(refused.code).not.toBe(0);
  expect(refused.result).toMatch(new RegExp(`^Nothing was changed\\. ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} holds backups of 'Octopus' from more than one server or database \\(PRODSQL, family GUID [0-9A-Fa-f-]+: 2 sets, the newest .*; STAGESQL, family GUID [0-9A-Fa-f-]+: 1 set, the newest`));
  expect(refused.result).toMatch(/Name the backup to restore up to as "Backup to restore" \(its \.manifest\.json or backup file\), or move each server's backups into a folder of its own\.$/);
  expect(refused.code).toBe(1);
  expect(before).toBeUndefined();
  expect(production.sim.model.database('Octopus-copy')).toBeUndefined();

  // Naming production's newest set restores production's full and differential.
  const named = await restore(production, '--source', prodDiff.outputs.ManifestPath, '--target-database', 'Octopus-copy');
  expect(named.code).toBe(0);
  expect(production.projectIds('Octopus-copy')).toContain('Projects-PROD');
});
