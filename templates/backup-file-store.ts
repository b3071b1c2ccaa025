import { stepDescription } from './description';
import { defineParameter, defineTemplate } from './model';
import { fileStoreBackupDirectory, fileStoreFolders, fileStoreHomeDirectory, lockWaitMinutes, nodePath, retentionDaysOf, retentionMinimumSets } from './parameters';

export const backupFileStore = defineTemplate({
  stepId: 'backup-file-store',
  name: 'Octopus DR - Back Up File Store',
  description: stepDescription(
    'Backs up the Octopus Server file store (task logs, artifacts, the built-in package repository, event exports) into ' +
      'one standard ZIP (ZIP64 where needed) that `unzip`, 7-Zip, Windows Explorer and Python can open. Streams with bounded ' +
      'memory whatever the size; stores already-compressed files and deflates text. A manifest inside and beside the ' +
      'archive lists every file with its SHA-256. Incremental mode stores only new and changed files and refers to the ' +
      'earlier archives for the rest. The archive gets its name only when complete; retention deletes only this tool\'s ' +
      'own old sets and never one that a newer set still needs.',
  ),
  id: 'b868de86-bc93-42e0-8418-5feb8a173530',
  bashId: '512a566e-06ba-4992-9d25-e78a1b28c824',
  version: 2,
  lastModified: '2026-12-01T00:00:00.000Z',
  category: 'octopus',
  params: {
    homeDirectory: fileStoreHomeDirectory,
    folders: fileStoreFolders,
    include: defineParameter({
      name: 'OctopusDr.FileStore.Include',
      label: 'Folders to back up',
      helpText:
        'Which folders to back up, one per line or comma-separated: TaskLogs, Artifacts, Packages, EventExports, Imports, ' +
        'Telemetry, Logs. The default is what the Octopus docs say to back up.',
      type: 'string',
      multiLine: true,
      required: false,
      defaultValue: 'TaskLogs\nArtifacts\nPackages\nEventExports',
      flag: 'include',
    }),
    backupDirectory: { ...fileStoreBackupDirectory, required: true },
    mode: defineParameter({
      name: 'OctopusDr.FileStore.Mode',
      label: 'Backup type',
      helpText:
        '`Full` stores every file. `Incremental` stores only files that are new or changed since the newest set in the ' +
        'backup directory and refers to the earlier archives for the rest (a full is taken when there is none).',
      type: 'enum',
      options: [
        { value: 'Full', label: 'Full' },
        { value: 'Incremental', label: 'Incremental' },
      ],
      required: false,
      defaultValue: 'Full',
      // Was --mode, which maintenance mode also had (On/Off); named like the database backup's kind of backup.
      flag: 'backup-type',
      aliases: [{ flag: 'mode' }],
    }),
    retentionDays: retentionDaysOf('OctopusDr.FileStore.RetentionDays', "this tool's own file-store sets"),
    retentionMinimumSets,
    allowEmpty: defineParameter({
      name: 'OctopusDr.FileStore.AllowEmpty',
      label: 'Allow an empty backup',
      helpText:
        'Succeed when the folders hold no files at all (a new server). When unchecked, a backup of 0 files fails: it ' +
        'usually means a wrong home directory or folder path. A single empty folder is fine either way, as long as it exists.',
      type: 'bool',
      required: false,
      defaultValue: 'False',
      flag: 'allow-empty',
    }),
    skipUnreadable: defineParameter({
      name: 'OctopusDr.FileStore.SkipUnreadable',
      label: 'Skip unreadable files',
      helpText:
        'Back up the rest when some files cannot be read (permissions, I/O errors), listing them as warnings. When unchecked, ' +
        'unreadable files fail the step (they are listed either way). A file store that stops answering (a share that drops) always fails the step.',
      type: 'bool',
      required: false,
      defaultValue: 'False',
      flag: 'skip-unreadable',
    }),
    lockWaitMinutes,
    nodePath,
  },
});
