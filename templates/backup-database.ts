import { stepDescription } from './description';
import { KEY_ID_FORMAT } from './formats';
import { defineParameter, defineTemplate } from './model';
import { lockWaitMinutes, nodePath, retentionDaysOf, retentionMinimumSets, sqlConnectionString } from './parameters';

export const backupDatabase = defineTemplate({
  stepId: 'backup-database',
  name: 'Octopus DR - Back Up SQL Database',
  description: stepDescription(
    'Backs up the Octopus SQL Server database: full, differential or log, always `WITH CHECKSUM` into fresh, uniquely ' +
      'named files (optionally striped), verified with `RESTORE VERIFYONLY`, with a JSON manifest beside the files that ' +
      'records what they hold (LSNs, times, server and Octopus versions, verification). Full and log backups are ' +
      'copy-only by default, so a DBA\'s own backup chain is never disturbed. Retention deletes only this tool\'s own ' +
      'backups, never the newest verified full backup nor anything a kept backup needs to restore.',
  ),
  id: '890345f0-1e86-4c78-b320-43e71ee12523',
  bashId: '6229589f-f1ff-4aa2-b3da-ca6d0761f690',
  version: 1,
  lastModified: '2026-11-27T00:00:00.000Z',
  category: 'octopus',
  params: {
    connectionString: sqlConnectionString,
    backupDirectory: defineParameter({
      name: 'OctopusDr.Sql.BackupDirectory',
      label: 'Backup directory',
      helpText:
        'Folder for the backup files, as the SQL Server service sees it (the server writes the files, with its service ' +
        "account's rights), e.g. `D:\\Backups\\Octopus` or `\\\\nas01\\dr\\octopus` (Windows) or `/var/opt/mssql/backup` (Linux): " +
        "an absolute path in the server's own syntax. The folder must exist. Empty = the instance's default backup folder.",
      type: 'path',
      required: false,
      defaultValue: '',
      flag: 'backup-directory',
    }),
    backupDirectoryOnWorker: defineParameter({
      name: 'OctopusDr.Sql.BackupDirectoryOnWorker',
      label: 'Backup directory on this worker',
      helpText:
        'The same folder as this worker sees it, when its path differs (e.g. the share mounted at `/mnt/octopus-dr`). ' +
        'The worker writes the manifest there, checks file sizes and applies retention. It must exist. Empty = the same path as ' +
        '*Backup directory* (which then must be a path this worker can open: set this when SQL Server runs on Windows and the worker on Linux).',
      type: 'path',
      required: false,
      defaultValue: '',
      flag: 'backup-directory-on-worker',
    }),
    backupType: defineParameter({
      name: 'OctopusDr.Sql.BackupType',
      label: 'Backup type',
      helpText:
        'Full: the whole database. Differential: changes since the last full backup that was not copy-only. ' +
        'Log: the transaction log since the last log backup (FULL or BULK_LOGGED recovery model only; allows point-in-time restore).',
      type: 'enum',
      options: [
        { value: 'Full', label: 'Full' },
        { value: 'Differential', label: 'Differential' },
        { value: 'Log', label: 'Log' },
      ],
      required: false,
      defaultValue: 'Full',
      flag: 'backup-type',
    }),
    copyOnly: defineParameter({
      name: 'OctopusDr.Sql.CopyOnly',
      label: 'Copy-only',
      helpText:
        'Take full and log backups `COPY_ONLY`, so backups taken by your DBA (their differential base and log chain) are not ' +
        'affected. Uncheck when octopus-dr is the only backup of this database: differential backups need a full backup that ' +
        'is not copy-only, and only log backups that are not copy-only truncate the log. Ignored for differential backups.',
      type: 'bool',
      required: false,
      defaultValue: 'True',
      flag: 'copy-only',
    }),
    compression: defineParameter({
      name: 'OctopusDr.Sql.Compression',
      label: 'Compression',
      helpText:
        "Auto: compress where the edition supports it (not Express or Web), otherwise use the server's default. " +
        'On: always compress (fails before backing up on Express or Web). Off: never compress.',
      type: 'enum',
      options: [
        { value: 'Auto', label: 'Auto' },
        { value: 'On', label: 'On' },
        { value: 'Off', label: 'Off' },
      ],
      required: false,
      defaultValue: 'Auto',
      flag: 'compression',
    }),
    stripes: defineParameter({
      name: 'OctopusDr.Sql.Stripes',
      label: 'Files (stripes)',
      helpText: 'Write the backup across this many files in parallel (1 to 64). Every file is needed to restore.',
      type: 'integer',
      required: false,
      defaultValue: '1',
      flag: 'stripes',
      min: 1,
      max: 64,
    }),
    verify: defineParameter({
      name: 'OctopusDr.Sql.Verify',
      label: 'Verify',
      helpText:
        'After the backup, check it with `RESTORE VERIFYONLY ... WITH CHECKSUM` (complete, readable, checksums match). ' +
        'Retention only runs after a verified backup.',
      type: 'bool',
      required: false,
      defaultValue: 'True',
      flag: 'verify',
    }),
    retentionDays: retentionDaysOf('OctopusDr.Sql.RetentionDays', "this tool's own backups of this database"),
    retentionMinimumSets,
    masterKeyId: defineParameter({
      name: 'OctopusDr.MasterKey.KeyId',
      label: 'Master key ID',
      helpText:
        'Optional. The ID of the master key this backup needs (16 hexadecimal characters, the `KeyId` output variable of ' +
        '*Octopus DR - Verify Master Key*), recorded in the manifest so a restore can check it has the right key. Not the key itself.',
      type: 'string',
      required: false,
      defaultValue: '',
      flag: 'master-key-id',
      format: KEY_ID_FORMAT,
    }),
    lockWaitMinutes,
    nodePath,
  },
});
