// A restore from an offsite URL refuses one database's sets from more than one server, as a restore
// from the folder does (refuseMixedOrigins). Copy Offsite copies a shared folder to one target, and
// red team 39 found a restore from the offsite URL (the disaster case: the site and its folder are
// gone) choosing "the newest" chain across every server's sets: it restored staging's database in
// production's place and exited 0.
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables } from '../database/harness';
import { runCopy } from './fixtures';
import { azureProvider } from './providers';

const provider = azureProvider();
const production = new Lab();
const staging = new Lab();

beforeAll(async () => {
  await provider.start();
  await production.start({ server: { serverName: 'PRODSQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
  await staging.start({ server: { serverName: 'STAGESQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
}, 120_000);
afterAll(async () => {
  await production.stop();
  await staging.stop();
  await provider.stop();
});

test("a restore from an offsite target holding two servers' sets of one database does not restore the other server's newest set in silence", async () => {
  const dir = path.join(production.root, 'two-servers');
  mkdirSync(dir);
  const prodFull = await backup(production, 'Octopus', '--backup-directory', dir, '--no-copy-only');
  production.insertProject('Octopus', 'Projects-PROD');
  const prodDiff = await backup(production, 'Octopus', '--backup-directory', dir, '--backup-type', 'Differential');
  // Staging's set is the newest (and, its server busier, its LSNs the higher: LSNs of two servers mean nothing to each other).
  for (let i = 1; i <= 20; i++) staging.insertProject('Octopus', `Projects-STAGE-${i}`);
  const stagingFull = await backup(staging, 'Octopus', '--backup-directory', dir);
  for (const run of [prodFull, prodDiff, stagingFull]) expect(run.code).toBe(0);

  const url = await provider.newTarget('shared');
  const copied = await runCopy(['--offsite-url', url, '--backup-directory', dir], provider.env());
  expect(copied.code).toBe(0);

  const download = path.join(production.root, 'download');
  const run = await production.run('restore-database', 'master', ['--source', url, '--download-directory', download, '--target-database', 'Octopus-copy'], { env: provider.env() });
  // As from the folder: refused naming each server (or, at the least, never staging's data restored as if it were the newest of this database).
  const restoredStaging = run.code === 0 && !production.projectIds('Octopus-copy').includes('Projects-PROD');
  expect({ code: run.code, restoredStaging, result: run.result }).toEqual({ code: 1, restoredStaging: false, result: expect.stringContaining("holds backups of 'Octopus' from more than one server or database (PRODSQL, family GUID") });
  expect(production.sim.model.database('Octopus-copy')).toBeUndefined();

  // Production's newest set named in the URL restores production's chain (its full and differential).
  const named = await production.run('restore-database', 'master', ['--source', `${url}/database/${path.basename(prodDiff.outputs.ManifestPath)}`, '--download-directory', path.join(production.root, 'download-named'), '--target-database', 'Octopus-copy'], { env: provider.env() });
  expect(named.code).toBe(0);
  expect(production.projectIds('Octopus-copy')).toContain('Projects-PROD');
}, 180_000);
