import { backupDatabase } from './backup-database';
import { stepDescription } from './description';
import { defineParameter, defineTemplate } from './model';
import { offsiteConnectionParams, offsiteEncryptionPassphrase, offsiteEncryptionRecipient, offsiteImmutabilityDays, offsiteImmutabilityMode } from './offsite-parameters';
import { fileStoreBackupDirectory, nodePath, offsiteLockWaitMinutes } from './parameters';

import { OFFSITE_MINIMUM_NODE_MAJOR } from './offsite-parameters';

export { OFFSITE_MINIMUM_NODE_MAJOR };

export const copyOffsite = defineTemplate({
  stepId: 'copy-offsite',
  name: 'Octopus DR - Copy Backups Offsite',
  description: stepDescription(
    'Copies every complete, verified backup set (database and file store) that is not yet offsite to Amazon S3, an ' +
      'S3-compatible store or Azure Blob Storage: the data files first, then the set\'s manifest, then an offsite record, ' +
      'so a set is visible offsite only when whole. Files already offsite with the same size and SHA-256 are not sent ' +
      'again, so a rerun after a failure continues. Every object\'s size and checksum are checked after upload. ' +
      'Needs Node.js 20 or newer.',
  ),
  id: '6f1c2f7e-3b0a-4d55-9a43-0d6d8f3c1e21',
  bashId: 'c7b0e0c4-2a6e-4f4b-8f9e-5c1d2a7b9e30',
  version: 2,
  lastModified: '2026-12-05T00:00:00.000Z',
  category: 'octopus',
  minimumNodeMajor: OFFSITE_MINIMUM_NODE_MAJOR,
  params: {
    ...offsiteConnectionParams,
    databaseBackupDirectory: {
      ...backupDatabase.params.backupDirectory,
      helpText:
        'The database backup folder (the one *Back Up SQL Database* writes to). Empty = do not copy database backups. ' +
        'When this worker sees it under another path, set *Backup directory on this worker* too.',
    },
    databaseBackupDirectoryOnWorker: backupDatabase.params.backupDirectoryOnWorker,
    fileStoreBackupDirectory: {
      ...fileStoreBackupDirectory,
      helpText: `${fileStoreBackupDirectory.helpText} Empty = do not copy file-store backups.`,
    },
    verifyByDownload: defineParameter({
      name: 'OctopusDr.Offsite.VerifyByDownload',
      label: 'Read back after upload',
      helpText:
        'After uploading, read every new object back and check its SHA-256 (doubles the traffic; may cost egress). Unchecked, ' +
        'each object\'s size and recorded SHA-256 are checked, and restores check every byte anyway.',
      type: 'bool',
      required: false,
      defaultValue: 'False',
      flag: 'verify-by-download',
    }),
    retentionDays: defineParameter({
      name: 'OctopusDr.Offsite.RetentionDays',
      label: 'Offsite retention (days)',
      helpText:
        'After a successful copy, delete offsite sets older than this many days, except the newest verified full database ' +
        'backup, the newest sets (*Keep at least*) and every set a kept one needs to restore (its full, differential, earlier ' +
        'logs; the archives an incremental refers to). A local set it would delete at once is not copied (it is listed under ' +
        'NotCopied). 0 (the default) never deletes anything offsite.',
      type: 'integer',
      required: false,
      defaultValue: '0',
      flag: 'offsite-retention-days',
      min: 0,
      max: 36500,
    }),
    keepAtLeast: defineParameter({
      name: 'OctopusDr.Offsite.KeepAtLeast',
      label: 'Keep at least',
      helpText: 'Offsite retention never deletes the newest this many database sets, nor this many file-store sets (nor what they need).',
      type: 'integer',
      required: false,
      defaultValue: '3',
      flag: 'keep-at-least',
      min: 1,
      max: 100000,
    }),
    immutabilityDays: offsiteImmutabilityDays,
    immutabilityMode: offsiteImmutabilityMode,
    encryptionPassphrase: offsiteEncryptionPassphrase,
    encryptionRecipient: offsiteEncryptionRecipient,
    lockWaitMinutes: offsiteLockWaitMinutes,
    nodePath: {
      ...nodePath,
      helpText: nodePath.helpText.replace('(18 or newer)', `(${OFFSITE_MINIMUM_NODE_MAJOR} or newer: the storage SDKs need it)`),
    },
  },
});
