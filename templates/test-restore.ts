import { stepDescription } from './description';
import { defineParameter, defineTemplate } from './model';
import { SCRATCH_PREFIX_FORMAT } from './formats';
import { OFFSITE_SOURCE_HELP, offsiteDecryptionParams, offsiteRestoreParams } from './offsite-parameters';
import {
  agreementDays,
  fileStoreBackupDirectory,
  masterKey,
  nodePath,
  restoreDataDirectory,
  restoreLogDirectory,
  restoreSource,
  restoreSourceOnServer,
  sqlConnectionStringOf,
  restoreLockWaitMinutes,
  missingFilesFailPercent,
  standbyApiKey,
  standbyOctopusVersion,
  standbyServerUrl,
} from './parameters';

export const testRestore = defineTemplate({
  stepId: 'test-restore',
  name: 'Octopus DR - Test Latest Backup',
  description: stepDescription(
    'Proves the newest backup can be restored: restores the newest database backup set under a unique scratch name ' +
      '(files relocated, the original database and its files never touched), runs DBCC CHECKDB, proves the master key ' +
      'decrypts the restored copy, verifies the newest file-store archive by its hashes and that it holds the files the database names, and reports the recovery point ' +
      '(age of the backup) and the measured restore time. The scratch database and its files are dropped afterwards, ' +
      'also after a failure, unless *Keep scratch database* is set.',
    'Point it at a SQL Server where a scratch database may be created, ideally not the production one. The report is ' +
      'written beside the backups (or to *Report directory*), attached to the task as artifacts (JSON, and an HTML page with the trend across drills) and summarised in the log; ' +
      'each drill is added to the DR record beside the backups. With a standby URL or version, a backup from a newer Octopus fails the test before anything is restored.',
  ),
  id: '1d3403d8-ab6d-4970-856b-77e2a19cb378',
  bashId: '4f6bbc97-b4a7-4abb-9f57-f60154707b67',
  version: 4,
  lastModified: '2026-12-02T00:00:00.000Z',
  category: 'octopus',
  params: {
    connectionString: sqlConnectionStringOf('a SQL Server where a scratch database may be created (ideally not production)'),
    source: { ...restoreSource, helpText: `${restoreSource.helpText} ${OFFSITE_SOURCE_HELP}` },
    sourceOnServer: restoreSourceOnServer,
    masterKey,
    fileStoreBackupDirectory: {
      ...fileStoreBackupDirectory,
      helpText: `${fileStoreBackupDirectory.helpText} Optional here: when set, the newest file-store backup in it is verified too.`,
    },
    scratchPrefix: defineParameter({
      name: 'OctopusDr.Test.ScratchPrefix',
      label: 'Scratch database prefix',
      helpText: 'Name prefix of the scratch database; a UTC timestamp and a random suffix make each name unique.',
      type: 'string',
      required: false,
      defaultValue: 'octopus-dr-test-',
      flag: 'scratch-prefix',
      format: SCRATCH_PREFIX_FORMAT,
    }),
    maxAgeHours: defineParameter({
      name: 'OctopusDr.Test.MaxAgeHours',
      label: 'Maximum backup age (hours)',
      helpText:
        'Recovery point objective: the step fails when the newest backup finished longer ago than this. ' +
        '26 suits a daily backup with some slack; the maximum, 87600 (10 years), in effect turns the check off.',
      type: 'integer',
      required: false,
      defaultValue: '26',
      flag: 'max-age-hours',
      min: 1,
      max: 87_600,
    }),
    keepDatabase: defineParameter({
      name: 'OctopusDr.Test.KeepDatabase',
      label: 'Keep scratch database',
      helpText: 'Leave the restored scratch database in place for inspection (drop it yourself afterwards).',
      type: 'bool',
      required: false,
      defaultValue: 'False',
      flag: 'keep-database',
    }),
    reportDirectory: defineParameter({
      name: 'OctopusDr.Test.ReportDirectory',
      label: 'Report directory',
      helpText:
        'Folder on the worker where the JSON and HTML reports are written (both are also attached to the task). Leave empty to write it ' +
        'beside the backups: in *Backup to restore* (its folder, when that is a file). It must exist and be writable; this is ' +
        'checked before anything connects.',
      type: 'path',
      required: false,
      defaultValue: '',
      flag: 'report-directory',
    }),
    agreementDays,
    missingFilesFailPercent,
    standbyServerUrl,
    standbyOctopusVersion,
    standbyApiKey,
    dataDirectory: restoreDataDirectory,
    logDirectory: restoreLogDirectory,
    lockWaitMinutes: restoreLockWaitMinutes,
    ...offsiteRestoreParams,
    ...offsiteDecryptionParams,
    nodePath,
  },
});
