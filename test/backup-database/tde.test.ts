// A database encrypted with TDE: its backups restore only where master holds the certificate that
// protects its encryption key, with the private key. Like the Octopus master key, a backup without
// it is useless, and a drill on the server that has it cannot show that. Back Up SQL Database says
// so on every backup and records the certificate in the manifest; a restore on a server without it
// is refused before anything changes, naming the certificate and how to create it.
import * as path from 'node:path';
import { backup, Lab, octopusTables, restore } from '../database/harness';

const THUMBPRINT = 'C0FFEE00112233445566778899AABBCCDDEEFF01';
const production = new Lab();
const drServer = new Lab();

beforeAll(async () => {
  await production.start({ server: { serverName: 'PRODSQL' } as never, certificates: [{ name: 'Octopus]TDE', thumbprint: THUMBPRINT }] } as never, [
    { name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables(), tdeCertificate: 'Octopus]TDE' } as never,
  ]);
  await drServer.start({ server: { serverName: 'DRSQL' } as never });
});
afterAll(async () => {
  await production.stop();
  await drServer.stop();
});

test('the backup warns that the certificate must be kept with the master key, and the manifest names it', async () => {
  const run = await backup(production, 'Octopus', '--verbose');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(
    `'Octopus' is encrypted with TDE by certificate 'Octopus]TDE' (thumbprint 0x${THUMBPRINT}) in master on PRODSQL: its backups restore only on a SQL Server that holds that certificate with its private key`,
  );
  expect(run.stdout).toContain("BACKUP CERTIFICATE [Octopus]]TDE] TO FILE = '...' WITH PRIVATE KEY");
  expect(production.readManifest(path.basename(run.outputs.ManifestPath)).tde).toEqual({ thumbprint: THUMBPRINT, certificate: 'Octopus]TDE' });
});

test("a login that cannot read which certificate it is (no VIEW SERVER STATE) still backs up, and the warning says the certificate is unknown", async () => {
  const sa = production.sim.model.logins.get('sa')!;
  sa.viewServerState = false;
  try {
    const run = await backup(production, 'Octopus', '--backup-directory', production.root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("'Octopus' is encrypted with TDE by a certificate this login cannot name (reading it needs VIEW SERVER STATE");
    expect(production.readManifest(path.basename(run.outputs.ManifestPath), production.root).tde).toEqual({ thumbprint: null, certificate: null });
  } finally {
    sa.viewServerState = true;
  }
});

test('a restore on a server without the certificate is refused before anything changes, naming it; with it, the restore runs', async () => {
  const refused = await restore(drServer, '--source', production.backups, '--target-database', 'Octopus');
  expect(refused.code).toBe(1);
  expect(refused.result).toMatch(/^Nothing was changed\. Octopus_FULL_\S+\.manifest\.json is a backup of a database encrypted with TDE, and \S+ does not hold certificate 'Octopus\]TDE' \(thumbprint 0x[0-9A-F]{40}\)/);
  expect(refused.result).toContain("CREATE CERTIFICATE [Octopus]]TDE] FROM FILE = '...' WITH PRIVATE KEY (FILE = '...', DECRYPTION BY PASSWORD = '...')), then run this again.");
  expect(drServer.sim.model.database('Octopus')).toBeUndefined();

  drServer.sim.model.certificates.set(THUMBPRINT, 'Octopus]TDE');
  const restored = await restore(drServer, '--source', production.backups, '--target-database', 'Octopus');
  expect(restored.code).toBe(0);
  expect(drServer.sim.model.database('Octopus')?.state).toBe('ONLINE');
});

test('a database without TDE gets no such warning, and its manifest records none', async () => {
  const plain = await backup(drServer, 'Octopus', '--backup-directory', drServer.backups);
  expect(plain.code).toBe(0);
  expect(plain.stdout).not.toContain('encrypted with TDE');
  expect(drServer.readManifest(path.basename(plain.outputs.ManifestPath)).tde).toBeNull();
});
