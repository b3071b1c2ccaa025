import { stepDescription } from './description';
import { defineParameter, defineTemplate } from './model';
import { masterKey, masterKeyExpectedKeyId, nodePath, sqlConnectionString } from './parameters';

/** Exit code when no encrypted value of the known form exists: neither a pass nor a wrong key. */
export const INCONCLUSIVE_EXIT_CODE = 3;

export const verifyMasterKey = defineTemplate({
  stepId: 'verify-master-key',
  name: 'Octopus DR - Verify Master Key',
  description: stepDescription(
    'Proves that an Octopus master key decrypts the encrypted data in an Octopus database (the live one or a restored ' +
      'copy): the server certificate and a sample of sensitive values, AES-128 or AES-256. Decryption happens on the ' +
      'worker; the key never goes to SQL Server and is never printed. Reports the key ID, which backup manifests record, ' +
      'and can check a key against an expected key ID without a database.',
    'Fails on a wrong key, with hints about rotated keys and key sizes; ends **inconclusive (exit code 3)** when the ' +
      'database holds no encrypted values of the known form.',
  ),
  id: '01fb6021-8f66-4a8b-9725-a21f55c837fc',
  bashId: '0face908-86f6-4e19-9376-785a64721bd6',
  version: 1,
  lastModified: '2026-11-27T00:00:00.000Z',
  category: 'octopus',
  params: {
    masterKey,
    connectionString: {
      ...sqlConnectionString,
      required: false,
      helpText: `${sqlConnectionString.helpText} Leave empty to only compare the key with *Expected key ID*.`,
    },
    sampleSize: defineParameter({
      name: 'OctopusDr.MasterKey.SampleSize',
      label: 'Sample size',
      helpText:
        'How many encrypted values to try besides the server certificate: sensitive variables (current and release ' +
        'snapshots) first, then other documents. More values find more damaged data; 0 tries the certificate only.',
      type: 'integer',
      required: false,
      defaultValue: '25',
      flag: 'sample-size',
      min: 0,
      max: 10_000,
    }),
    expectedKeyId: masterKeyExpectedKeyId,
    nodePath,
  },
  exitCodes: [
    {
      code: INCONCLUSIVE_EXIT_CODE,
      meaning:
        'Inconclusive: no encrypted values of the known form were found (not an Octopus database, or the storage format changed), or too few to prove the key.',
    },
  ],
});
