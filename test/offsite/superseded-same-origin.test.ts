// After a passphrase change, Copy Offsite leaves out a set whose chain is offsite under the old key
// when a newer full of the same database is offsite (the newest point restores with one key). "The
// same database" means the same origin: red team 39 found it meant the database NAME, so in a shared
// folder staging's newer full of its own 'Octopus' made production's newest differential
// "superseded", production's newest point was never sent offsite, and the run exited 0.
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { backup, Lab, octopusTables } from '../database/harness';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { runBundle } from '../file-store/helpers';
import { azureProvider } from './providers';

const provider = azureProvider();
const production = new Lab();
const staging = new Lab();
const A = 'first passphrase, Qx7#2kLm';
const B = 'rotated passphrase, Zp4!9wRt';

beforeAll(async () => {
  await provider.start();
  await production.start({ server: { serverName: 'PRODSQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
  await staging.start({ server: { serverName: 'STAGESQL' } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]);
}, 120_000);
/** The built step (age encryption is an ES module the in-process run cannot load under Jest). */
async function runCopy(argv: string[], env: NodeJS.ProcessEnv) {
  const run = await runBundle('copy-offsite', ['--service-messages', ...provider.args(), ...argv], { env });
  return { ...run, result: resultMessageIn(run.stdout) ?? '', outputs: outputVariablesIn(run.stdout) };
}

afterAll(async () => {
  await production.stop();
  await staging.stop();
  await provider.stop();
});

test("another server's newer full never makes this server's newest set 'superseded': it is copied, or the run fails naming it", async () => {
  const dir = path.join(production.root, 'two-servers');
  mkdirSync(dir);
  const url = await provider.newTarget('shared');
  const prodFull = await backup(production, 'Octopus', '--backup-directory', dir, '--no-copy-only');
  expect(prodFull.code).toBe(0);
  const first = await runCopy(['--offsite-url', url, '--backup-directory', dir], { ...provider.env(), OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: A });
  expect(first.code).toBe(0);

  // The passphrase is changed; production takes a differential (its base offsite under A), staging a full.
  production.insertProject('Octopus', 'Projects-PROD');
  const prodDiff = await backup(production, 'Octopus', '--backup-directory', dir, '--backup-type', 'Differential');
  const stagingFull = await backup(staging, 'Octopus', '--backup-directory', dir);
  for (const run of [prodDiff, stagingFull]) expect(run.code).toBe(0);
  const second = await runCopy(['--offsite-url', url, '--backup-directory', dir], { ...provider.env(), OCTOPUSDR_OFFSITE_ENCRYPTIONPASSPHRASE: B });
  const diffId = path.basename(prodDiff.outputs.ManifestPath, '.manifest.json');
  // Production's newest point is not offsite: the run must not pass. It was left out as "superseded" by staging's full, exit 0.
  expect((second.outputs.Copied ?? '').split('\n')).not.toContain(diffId);
  expect({ code: second.code, names: second.result.includes(`Not copied: database/${diffId}, whose base`) }).toEqual({ code: 1, names: true });
}, 180_000);
