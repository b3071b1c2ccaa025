// Copy Offsite with a container SAS, as its page says (racwl; d for retention). A set's first upload
// asks whether its blob is there; Azure answers a missing blob with 404 and x-ms-error-code BlobNotFound.
// The store used to ask the container whether it exists too (Get Container Properties), which a
// container SAS may not do (403 AuthorizationPermissionMismatch), so every new set failed with
// "no permission to read". Against Azurite.
import { rmSync } from 'node:fs';
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { tempDir } from '../file-store/helpers';
import { fileStoreFullBackup, runCopy } from './fixtures';
import { azureProvider } from './providers';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './servers';

const provider = azureProvider();
let work: string;
beforeAll(() => provider.start(), 60_000);
afterAll(async () => {
  await provider.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function containerSas(url: string, permissions: string): string {
  const containerName = new URL(url).pathname.split('/')[2];
  return generateBlobSASQueryParameters(
    { containerName, permissions: ContainerSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 3600_000) },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
}

test('a container SAS with racwl copies a new set, and a missing container still says so', async () => {
  work = tempDir('octopus-dr-azure-sas-');
  const { fileStore } = await fileStoreFullBackup(work, ['TaskLogs']);
  const url = await provider.newTarget();
  const run = await runCopy(['--offsite-url', url, '--file-store-backup-directory', fileStore], { OCTOPUSDR_OFFSITE_AZURESASTOKEN: containerSas(url, 'racwl') });
  expect(run.result).toMatch(/^Offsite copy to .*: 1 set\(s\) copied/);
  expect(run.code).toBe(0);

  const missing = provider.missingUrl();
  const none = await runCopy(['--offsite-url', missing, '--file-store-backup-directory', fileStore], provider.env());
  expect(none.code).toBe(1);
  expect(none.result).toMatch(/The container "no-such-container" does not exist/);
}, 60_000);
