// Parameters that say where the offsite copy lives and how to sign in to it. Shared by the
// step that uploads (Copy Backups Offsite) and the code that restores from there.
import { defineParameter } from './model';

/** The storage SDKs need Node.js 20 or newer (the other steps run on 18). Here, not in copy-offsite.ts, so restore bundles do not carry that template. */
export const OFFSITE_MINIMUM_NODE_MAJOR = 20;

export const offsiteUrl = defineParameter({
  name: 'OctopusDr.Offsite.Url',
  label: 'Offsite URL',
  helpText:
    'Where the offsite copies go: `s3://<bucket>/<prefix>` (Amazon S3, or an S3-compatible store with *S3 endpoint URL*), ' +
    '`https://<account>.blob.core.windows.net/<container>/<prefix>` (Azure Blob Storage), or Azurite\'s ' +
    '`http://127.0.0.1:10000/<account>/<container>/<prefix>`. Database sets go below `<prefix>/database/`, file-store sets below `<prefix>/file-store/`.',
  type: 'string',
  required: true,
  defaultValue: '',
  flag: 'offsite-url',
});

export const offsiteRegion = defineParameter({
  name: 'OctopusDr.Offsite.Region',
  label: 'S3 region',
  helpText: 'The bucket\'s AWS region (e.g. `eu-west-1`). Empty = the region of the AWS environment or profile (`AWS_REGION`), else `us-east-1`.',
  type: 'string',
  required: false,
  defaultValue: '',
  flag: 'region',
});

export const offsiteEndpoint = defineParameter({
  name: 'OctopusDr.Offsite.Endpoint',
  label: 'S3 endpoint URL',
  helpText:
    'For S3-compatible stores only (MinIO, Ceph, Wasabi, Backblaze B2, ...): the service URL, e.g. `https://minio.example.com:9000`. Empty = Amazon S3.',
  type: 'string',
  required: false,
  defaultValue: '',
  flag: 'endpoint-url',
});

export const offsitePathStyle = defineParameter({
  name: 'OctopusDr.Offsite.PathStyle',
  label: 'S3 path-style addressing',
  helpText: 'Address the bucket as `<endpoint>/<bucket>` instead of `<bucket>.<endpoint>`. Most S3-compatible stores need this.',
  type: 'bool',
  required: false,
  defaultValue: 'False',
  flag: 'path-style',
});

export const offsiteRequestChecksums = defineParameter({
  name: 'OctopusDr.Offsite.RequestChecksums',
  label: 'S3 request checksums',
  helpText:
    '`WhenSupported` (the AWS SDK default) sends a CRC checksum with every upload. Some S3-compatible stores reject those ' +
    'requests (errors such as `XAmzContentSHA256Mismatch` or `InvalidArgument`): choose `WhenRequired` for them.',
  type: 'enum',
  options: [
    { value: 'WhenSupported', label: 'When supported (AWS default)' },
    { value: 'WhenRequired', label: 'Only when required' },
  ],
  required: false,
  defaultValue: 'WhenSupported',
  flag: 'request-checksums',
});

export const offsiteAccessKeyId = defineParameter({
  name: 'OctopusDr.Offsite.AccessKeyId',
  label: 'S3 access key ID',
  helpText: 'S3 access key ID. Empty (with the secret empty too) = the AWS default credentials: environment, profile, or the instance or task role.',
  type: 'secret',
  required: false,
  defaultValue: '',
  flag: 'access-key-id',
});

export const offsiteSecretAccessKey = defineParameter({
  name: 'OctopusDr.Offsite.SecretAccessKey',
  label: 'S3 secret access key',
  helpText: 'The secret of the S3 access key. Bind it to a sensitive variable.',
  type: 'secret',
  required: false,
  defaultValue: '',
  flag: 'secret-access-key',
});

export const offsiteAzureConnectionString = defineParameter({
  name: 'OctopusDr.Offsite.AzureConnectionString',
  label: 'Azure storage connection string',
  helpText:
    'Connection string of the storage account (`DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...`). Leave empty to use a SAS ' +
    'token, or the Azure default credentials (environment, workload or managed identity).',
  type: 'secret',
  required: false,
  defaultValue: '',
  flag: 'azure-connection-string',
});

export const offsiteAzureSas = defineParameter({
  name: 'OctopusDr.Offsite.AzureSasToken',
  label: 'Azure SAS token',
  helpText:
    'A shared access signature for the container (`sv=...&sig=...`, with or without the leading `?`). Uploads need read, add, create, ' +
    'write and list; restores need read and list; retention also delete.',
  type: 'secret',
  required: false,
  defaultValue: '',
  flag: 'azure-sas-token',
});

/** Everything that says where the offsite store is and how to sign in, for `offsiteTargetFrom`. */
export const offsiteConnectionParams = {
  offsiteUrl,
  region: offsiteRegion,
  endpoint: offsiteEndpoint,
  pathStyle: offsitePathStyle,
  requestChecksums: offsiteRequestChecksums,
  accessKeyId: offsiteAccessKeyId,
  secretAccessKey: offsiteSecretAccessKey,
  azureConnectionString: offsiteAzureConnectionString,
  azureSasToken: offsiteAzureSas,
};

export const offsiteStagingDirectory = defineParameter({
  name: 'OctopusDr.Offsite.StagingDirectory',
  label: 'Download folder',
  helpText:
    'When *Backup to restore* is an offsite URL: the local folder the chosen backup set (and the sets its chain needs) is ' +
    'downloaded to and checked in, before it is restored from there. Files already in it with the right SHA-256 are not ' +
    'downloaded again. For a database restore, SQL Server must be able to read it (see *Backup folder as SQL Server sees it*).',
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'download-directory',
});

/** What a restore needs when its source is an offsite URL: the sign-in parameters and the download folder. */
export const offsiteRestoreParams = {
  region: offsiteRegion,
  endpoint: offsiteEndpoint,
  pathStyle: offsitePathStyle,
  requestChecksums: offsiteRequestChecksums,
  accessKeyId: offsiteAccessKeyId,
  secretAccessKey: offsiteSecretAccessKey,
  azureConnectionString: offsiteAzureConnectionString,
  azureSasToken: offsiteAzureSas,
  offsiteStagingDirectory,
};

export const offsiteEncryptionPassphrase = defineParameter({
  name: 'OctopusDr.Offsite.EncryptionPassphrase',
  label: 'Encryption passphrase',
  helpText:
    'Optional. Encrypt what leaves the site with this passphrase, in the `age` format (`age -d` decrypts it). Keep it with the master ' +
    'key: without it the offsite copies cannot be restored. Bind it to a sensitive variable.',
  type: 'secret',
  required: false,
  defaultValue: '',
  flag: 'encryption-passphrase',
});

export const offsiteEncryptionRecipient = defineParameter({
  name: 'OctopusDr.Offsite.EncryptionRecipient',
  label: 'Encryption recipient',
  helpText:
    'Optional, instead of a passphrase. Encrypt for this `age` public key (`age1...`, from `age-keygen`); only its identity (the ' +
    '`AGE-SECRET-KEY-1...` line, kept offline) can decrypt. The offsite record names the recipient.',
  type: 'string',
  required: false,
  defaultValue: '',
  flag: 'encryption-recipient',
});

export const offsiteDecryptionIdentity = defineParameter({
  name: 'OctopusDr.Offsite.DecryptionIdentity',
  label: 'Decryption identity',
  helpText:
    'For sets encrypted for a recipient: the `age` identity (`AGE-SECRET-KEY-1...`) that decrypts them. For sets encrypted with a ' +
    'passphrase, set *Encryption passphrase* instead. Bind it to a sensitive variable.',
  type: 'secret',
  required: false,
  defaultValue: '',
  flag: 'decryption-identity',
});

export const offsiteImmutabilityDays = defineParameter({
  name: 'OctopusDr.Offsite.ImmutabilityDays',
  label: 'Offsite immutability (days)',
  helpText:
    'Optional. Lock every object uploaded for this many days, so nobody (not even these credentials, nor ransomware holding ' +
    'them) can change or delete it before then: S3 Object Lock (the bucket must have been created with Object Lock enabled) or an ' +
    'Azure Blob immutability policy (the container needs version-level immutability). Offsite retention skips sets that are still ' +
    'locked. 0 (the default) locks nothing.',
  type: 'integer',
  required: false,
  defaultValue: '0',
  flag: 'immutability-days',
  min: 0,
  max: 36500,
});

export const offsiteImmutabilityMode = defineParameter({
  name: 'OctopusDr.Offsite.ImmutabilityMode',
  label: 'Offsite immutability mode',
  helpText:
    'With *Offsite immutability (days)*: `Governance` (S3 governance mode, an unlocked Azure policy: an administrator with the ' +
    'bypass permission can still remove the lock) or `Compliance` (S3 compliance mode, a locked Azure policy: nobody, not even ' +
    'the account owner, can delete the objects before the date).',
  type: 'enum',
  options: [
    { value: 'Governance', label: 'Governance (an administrator can lift it)' },
    { value: 'Compliance', label: 'Compliance (nobody can lift it)' },
  ],
  required: false,
  defaultValue: 'Governance',
  flag: 'immutability-mode',
});

/** How a restore or Fetch decrypts sets Copy Backups Offsite encrypted (the same parameters, one name per meaning). */
export const offsiteDecryptionParams = {
  encryptionPassphrase: {
    ...offsiteEncryptionPassphrase,
    helpText: 'For sets encrypted offsite with a passphrase: that passphrase. Bind it to a sensitive variable.',
  },
  decryptionIdentity: offsiteDecryptionIdentity,
};

/** *Backup to restore*'s help in the restores, which take an offsite URL. */
export const OFFSITE_SOURCE_HELP =
  'Or an offsite URL as *Copy Backups Offsite* writes (`s3://<bucket>/<prefix>`, `https://<account>.blob.core.windows.net/<container>/<prefix>`, ' +
  'or one ending in a set\'s `.manifest.json`): the chain is downloaded to *Download folder*, decrypted (sets encrypted offsite need ' +
  '*Encryption passphrase* or *Decryption identity*), checked, and restored from there. An offsite URL needs Node.js 20 or newer.';
