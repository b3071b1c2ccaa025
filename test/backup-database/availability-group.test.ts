// One database in an Always On availability group, backed up through its listener: after a
// failover the other replica (another server name) takes the backups, and SQL Server keeps one
// chain across them (the differential base, the log chain). Its sets are one origin: no "another
// server's backups" warning, no "restores only with backups that are not here", retention treats
// them as its own, and a restore from the folder restores the chain across both replicas. A copy
// of the database outside the group (staging restored from production) stays another origin.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { compareOrigins } from '../../steps/engines/database-backup/origin';
import { backup, Lab, octopusTables, restore } from '../database/harness';

const GROUP_DATABASE_ID = '5d4a3b2c-1e0f-4a9b-8c7d-6e5f4a3b2c1d';
const DAY = 24 * 60 * 60 * 1000;
const lab = new Lab();

beforeAll(() => lab.start({ server: { serverName: 'SQLAG-A' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables(), groupDatabaseId: GROUP_DATABASE_ID.toUpperCase() } as never]));
afterAll(() => lab.stop());

/** A failover: the same database, now primary on the other replica. */
function failOverTo(serverName: string): void {
  lab.sim.model.properties.serverName = serverName;
}

function age(manifestPath: string, days: number): void {
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  m.takenAt = new Date(Date.now() - days * DAY).toISOString();
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
}

test('after a failover the other replica continues the chain: no warning, and a restore from the folder restores across both replicas', async () => {
  const dir = path.join(lab.root, 'ag');
  mkdirSync(dir);
  failOverTo('SQLAG-A');
  const full = await backup(lab, 'Octopus', '--backup-directory', dir, '--no-copy-only');
  expect(full.code).toBe(0);
  expect(lab.readManifest(path.basename(full.outputs.ManifestPath), dir).groupDatabaseId).toBe(GROUP_DATABASE_ID);

  failOverTo('SQLAG-B');
  lab.insertProject('Octopus', 'Projects-AFTER-FAILOVER');
  const differential = await backup(lab, 'Octopus', '--backup-directory', dir, '--backup-type', 'Differential', '--verbose');
  expect(differential.code).toBe(0);
  expect(differential.stdout).not.toContain('holds backups taken on other servers');
  expect(differential.stdout).not.toContain('restores only together with backups that are not in');
  expect(differential.result).not.toMatch(/WARNING/);

  const restored = await restore(lab, '--source', dir, '--target-database', 'Octopus-ag-copy');
  expect(restored.code).toBe(0);
  expect(lab.projectIds('Octopus-ag-copy')).toContain('Projects-AFTER-FAILOVER');
});

test("after a failover, retention treats the first replica's old sets as its own (and keeps the newest verified full)", async () => {
  const dir = path.join(lab.root, 'ag-retention');
  mkdirSync(dir);
  failOverTo('SQLAG-A');
  const old: string[] = [];
  for (const days of [40, 30]) {
    const run = await backup(lab, 'Octopus', '--backup-directory', dir, '--no-copy-only');
    expect(run.code).toBe(0);
    age(run.outputs.ManifestPath, days);
    old.push(path.basename(run.outputs.ManifestPath));
  }
  failOverTo('SQLAG-B');
  const run = await backup(lab, 'Octopus', '--backup-directory', dir, '--no-copy-only', '--retention-days', '7', '--retention-minimum', '1', '--verbose');
  expect(run.code).toBe(0);
  const left = readdirSync(dir);
  expect(left).not.toContain(old[0]);
  expect(left).not.toContain(old[1]);
  expect(left).toContain(path.basename(run.outputs.ManifestPath));
  expect(run.outputs.RetentionDeleted).toBe('2');
  expect(run.stdout).not.toContain('holds backups taken on other servers');
});

test("origins: replicas of one group database are the same; a copy outside the group (staging restored from production) is another, and so is another group's", () => {
  const family = 'AAAA0000-0000-4000-8000-000000000001';
  const replicaA = { server: 'SQLAG-A', familyGuid: family, groupDatabaseId: GROUP_DATABASE_ID };
  const replicaB = { server: 'sqlag-b', familyGuid: family, groupDatabaseId: GROUP_DATABASE_ID.toUpperCase() };
  const beforeTheGroup = { server: 'SQLAG-A', familyGuid: family, groupDatabaseId: null };
  const staging = { server: 'STAGESQL', familyGuid: family, groupDatabaseId: null };
  const otherGroup = { server: 'SQLAG-B', familyGuid: family, groupDatabaseId: '11111111-2222-4333-8444-555555555555' };
  expect(compareOrigins(replicaA, replicaB)).toBe('same');
  expect(compareOrigins(replicaA, beforeTheGroup)).toBe('same');
  expect(compareOrigins(replicaB, beforeTheGroup)).toBe('other');
  expect(compareOrigins(replicaB, staging)).toBe('other');
  expect(compareOrigins(replicaA, staging)).toBe('other');
  expect(compareOrigins(replicaA, otherGroup)).toBe('other');
  expect(compareOrigins(replicaA, { ...replicaB, familyGuid: 'BBBB0000-0000-4000-8000-000000000002' })).toBe('other');
});
