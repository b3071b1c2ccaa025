// A database restored onto another server continues its chain there: a differential taken on the new
// server is based on the full restored from the first server's backup (its DatabaseBackupLSN is that
// full's checkpoint LSN), so its restore needs a set of another origin. That is a staging server
// refreshed from production's full, or a DR restore onto a new server from an earlier full (a point
// before the damage). Offsite retention is per origin (origin.ts), and the first server's retention
// found that full old and not needed by any of ITS kept sets: it deleted it, and the other server's
// newest set offsite could no longer be restored (red team 40). The simulator's server name is
// switched to model the restored copy: the same database family and LSNs on another server.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyOffsiteRetention } from '../../steps/engines/offsite/retention';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { backup, Lab, octopusTables } from '../database/harness';
import { silentLog } from '../file-store/helpers';
import { runCopy } from './fixtures';
import { s3Provider } from './providers';

const DAY = 24 * 3600 * 1000;
const provider = s3Provider();
const lab = new Lab();

beforeAll(async () => {
  await provider.start();
  await lab.start({ server: { serverName: 'PRODSQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
}, 120_000);
afterAll(async () => {
  await lab.stop();
  await provider.stop();
});

function age(manifestPath: string, days: number): void {
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  m.takenAt = new Date(Date.now() - days * DAY).toISOString();
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
}

const id = (manifestPath: string) => path.basename(manifestPath, '.manifest.json');

test("offsite retention keeps the full another server's kept differential is based on (a database restored there from it)", async () => {
  const dir = path.join(lab.root, 'restored-elsewhere');
  mkdirSync(dir);
  const take = async (...args: string[]) => {
    const run = await backup(lab, 'Octopus', '--backup-directory', dir, ...args);
    expect(run.code).toBe(0);
    return run.outputs.ManifestPath;
  };
  // Production's full, 40 days ago.
  const restoredFrom = await take('--no-copy-only');
  age(restoredFrom, 40);
  // The database restored from it onto STAGESQL, whose backup is a differential on that full.
  lab.sim.model.properties.serverName = 'STAGESQL';
  lab.insertProject('Octopus', 'Projects-STAGING');
  const stagingDiff = await take('--backup-type', 'Differential');
  age(stagingDiff, 35);
  // Production goes on with newer fulls.
  lab.sim.model.properties.serverName = 'PRODSQL';
  const prodFulls = [await take('--no-copy-only'), await take('--no-copy-only')];
  age(prodFulls[0], 30);
  age(prodFulls[1], 20);

  const url = await provider.newTarget();
  const copied = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', dir], provider.env());
  expect(copied.code).toBe(0);
  const store = provider.store(url);
  const deleted = await applyOffsiteRetention({ store, retentionDays: 7, keepAtLeast: 1, now: new Date() }, quietEngineContext({ log: silentLog }));
  store.close();
  // STAGESQL's only (newest verified) set stays, and so must the full it restores on. The full was deleted.
  expect(deleted).not.toContain(`database/${id(stagingDiff)}`);
  expect(deleted).not.toContain(`database/${id(restoredFrom)}`);
  // Production's own retention is as before: its older full goes, its newest stays.
  expect(deleted).toEqual([`database/${id(prodFulls[0])}`]);
}, 180_000);
