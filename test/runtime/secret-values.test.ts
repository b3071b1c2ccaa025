// A secret pasted into another field is refused; but a connection string that is a secret as a
// whole (Azure storage) also names public things (account, endpoint) that other fields repeat.
import { secretsInValues } from '../../steps/runtime/secret-values';
import { copyOffsite } from '../../templates/copy-offsite';

const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const AZURE = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;`;

test('an Azure storage connection string: the URL may repeat its account and endpoint, but not its key', () => {
  const raw = (url: string) => ({ 'OctopusDr.Offsite.AzureConnectionString': AZURE, 'OctopusDr.Offsite.Url': url });
  expect(secretsInValues(copyOffsite, raw('http://127.0.0.1:10000/devstoreaccount1/octopus/prod'))).toEqual([]);
  const pasted = secretsInValues(copyOffsite, raw(`http://127.0.0.1:10000/devstoreaccount1/${ACCOUNT_KEY.slice(10, 30)}`));
  expect(pasted).toHaveLength(1);
  expect(pasted[0]).toMatch(/^"Offsite URL" contains the secret "Azure storage connection string", or a part of it/);
  expect(pasted[0]).not.toContain(ACCOUNT_KEY.slice(10, 30));
});

test('a secret that is not a connection string counts whole', () => {
  const raw = { 'OctopusDr.Offsite.SecretAccessKey': 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'OctopusDr.Offsite.Url': 's3://bucket/wJalrXUtnFEMI' };
  expect(secretsInValues(copyOffsite, raw)).toHaveLength(1);
});
