// A database restored onto another server continues its chain there: a differential taken on the new
// server is based on the full restored from the first server's backup (its DatabaseBackupLSN is that
// full's checkpoint LSN). That is a staging server refreshed from production's full into the shared
// folder's database, or a DR restore onto a new server from an earlier full. Retention is per origin
// (origin.ts), and the first server's retention found that full old and needed by none of ITS kept
// sets: it deleted it, and the other server's newest backup no longer restored (red team 40). The
// simulator's server name is switched to model the restored copy: the same family and LSNs, another server.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables, restore } from '../database/harness';

const DAY = 24 * 60 * 60 * 1000;
const lab = new Lab();

beforeAll(() => lab.start({ server: { serverName: 'PRODSQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]));
afterAll(() => lab.stop());

function age(manifestPath: string, days: number): void {
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  m.takenAt = new Date(Date.now() - days * DAY).toISOString();
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
}

test("retention keeps the full another server's differential is based on (a database restored there from it), and that differential still restores", async () => {
  const dir = path.join(lab.root, 'restored-elsewhere');
  mkdirSync(dir);
  const take = async (...args: string[]) => {
    const run = await backup(lab, 'Octopus', '--backup-directory', dir, ...args);
    expect(run.code).toBe(0);
    return run;
  };
  // Production's full, 40 days ago; the database restored from it onto STAGESQL, whose backup is a differential on it.
  const restoredFrom = (await take('--no-copy-only')).outputs.ManifestPath;
  age(restoredFrom, 40);
  lab.sim.model.properties.serverName = 'STAGESQL';
  lab.insertProject('Octopus', 'Projects-STAGING');
  const stagingDiff = (await take('--backup-type', 'Differential')).outputs.ManifestPath;
  age(stagingDiff, 35);
  // Production goes on: newer fulls, then one with retention.
  lab.sim.model.properties.serverName = 'PRODSQL';
  const older = (await take('--no-copy-only')).outputs.ManifestPath;
  age(older, 30);
  const newer = (await take('--no-copy-only')).outputs.ManifestPath;
  age(newer, 20);
  const run = await take('--no-copy-only', '--retention-days', '7', '--verbose');

  const left = readdirSync(dir);
  expect(left).toContain(path.basename(stagingDiff));
  // The full STAGESQL's differential restores on: deleted before.
  expect(left).toContain(path.basename(restoredFrom));
  expect(run.stdout).toContain(`Retention: kept ${path.basename(restoredFrom)} (needed to restore ${path.basename(stagingDiff)}, taken on STAGESQL`);
  // Production's own retention otherwise as before: the oldest of its other fulls goes ("Minimum backups kept" 2).
  expect(left).not.toContain(path.basename(older));
  expect(left).toContain(path.basename(newer));
  expect(run.outputs.RetentionDeleted).toBe('1');

  // STAGESQL's differential, named, still restores (its full is there).
  const restored = await restore(lab, '--source', stagingDiff, '--target-database', 'Octopus-staging-copy');
  expect(restored.code).toBe(0);
  expect(lab.projectIds('Octopus-staging-copy')).toContain('Projects-STAGING');
});
