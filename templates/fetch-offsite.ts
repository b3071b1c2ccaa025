import { stepDescription } from './description';
import { defineParameter, defineTemplate } from './model';
import { OFFSITE_MINIMUM_NODE_MAJOR } from './copy-offsite';
import { offsiteDecryptionParams, offsiteRestoreParams, offsiteStagingDirectory, offsiteUrl } from './offsite-parameters';
import { nodePath } from './parameters';
import { restoreDatabase } from './restore-database';

export const fetchOffsite = defineTemplate({
  stepId: 'fetch-offsite',
  name: 'Octopus DR - Fetch Backups from Offsite',
  description: stepDescription(
    'Downloads a backup from offsite (Amazon S3, an S3-compatible store or Azure Blob Storage, as *Copy Backups Offsite* ' +
      'wrote it) into a local folder, for a restore to start from: the newest database chain (or the one reaching *Point in ' +
      'time*) and the newest complete file-store set, and nothing the chosen chains do not need. Every file\'s SHA-256 is ' +
      'checked against the offsite record. Output variables name what the restore steps take as *Backup to restore*. ' +
      'Needs Node.js 20 or newer.',
  ),
  id: '3d7e6a51-9c0b-4f0e-8b8e-2a4f6c1d9b72',
  bashId: 'e2a9c4d1-7b35-4c8a-9f06-1b3d5e7a8c94',
  version: 1,
  lastModified: '2026-12-01T00:00:00.000Z',
  category: 'octopus',
  minimumNodeMajor: OFFSITE_MINIMUM_NODE_MAJOR,
  params: {
    offsiteUrl: {
      ...offsiteUrl,
      helpText: `${offsiteUrl.helpText} To fetch one particular set, end the URL with its manifest, e.g. \`.../database/Octopus_LOG_20261127T143000Z.manifest.json\`.`,
    },
    fetch: defineParameter({
      name: 'OctopusDr.Offsite.Fetch',
      label: 'What to fetch',
      helpText: '`Both` (the database chain and the file store), `Database` or `FileStore`.',
      type: 'enum',
      options: [
        { value: 'Both', label: 'Database and file store' },
        { value: 'Database', label: 'Database' },
        { value: 'FileStore', label: 'File store' },
      ],
      required: false,
      defaultValue: 'Both',
      flag: 'fetch',
    }),
    pointInTime: restoreDatabase.params.pointInTime,
    ...offsiteRestoreParams,
    offsiteStagingDirectory: { ...offsiteStagingDirectory, required: true, helpText: 'The local folder the backups are downloaded to. For a database restore, SQL Server must be able to read it (see *Backup folder as SQL Server sees it* in the restore).' },
    ...offsiteDecryptionParams,
    nodePath: {
      ...nodePath,
      helpText: nodePath.helpText.replace('(18 or newer)', `(${OFFSITE_MINIMUM_NODE_MAJOR} or newer: the storage SDKs need it)`),
    },
  },
});
