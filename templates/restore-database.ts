import { stepDescription } from './description';
import { LOCAL_DATE_TIME_FORMAT } from './formats';
import { defineParameter, defineTemplate } from './model';
import { OFFSITE_SOURCE_HELP, offsiteDecryptionParams, offsiteRestoreParams } from './offsite-parameters';
import {
  dryRun,
  nodePath,
  restoreDataDirectory,
  restoreLogDirectory,
  restoreReplaceExisting,
  restoreRollBackOnFailure,
  restoreSource,
  restoreSourceOnServer,
  sqlConnectionStringOf,
  restoreLockWaitMinutes,
  standbyApiKey,
  standbyOctopusVersion,
  standbyServerUrl,
} from './parameters';

export const restoreDatabase = defineTemplate({
  stepId: 'restore-database',
  name: 'Octopus DR - Restore SQL Database',
  description: stepDescription(
    'Restores the Octopus SQL Server database from a backup manifest, a backup file or a folder of backups (then the ' +
      'newest usable chain is chosen): full, differential and log backups in LSN order, optionally to a point in time. ' +
      'Before anything changes it checks every file is present, verifies the backups (`RESTORE VERIFYONLY`), checks the ' +
      "chain has no gap and the server is new enough, and prints the plan. An existing database is never replaced " +
      'unless you ask, and then only after a copy-only safety backup (a replace that fails is rolled back from it). Files are renamed after the target database, so a ' +
      'copy restores beside the original without collisions. Dry run prints the plan and T-SQL and changes nothing.',
  ),
  id: '994fc3d7-e097-44af-81f3-494930ee1633',
  bashId: 'f0fda316-d0b6-4e5e-a564-f05071b7154f',
  version: 3,
  lastModified: '2026-12-02T00:00:00.000Z',
  category: 'octopus',
  params: {
    connectionString: sqlConnectionStringOf(
      'the SQL Server to restore onto (the step connects to `master`; a Database in the string is ignored)',
    ),
    source: { ...restoreSource, helpText: `${restoreSource.helpText} ${OFFSITE_SOURCE_HELP}` },
    sourceOnServer: restoreSourceOnServer,
    targetDatabase: defineParameter({
      name: 'OctopusDr.Restore.TargetDatabase',
      label: 'Target database',
      helpText: 'Name to restore the database as. Empty = the name it was backed up from.',
      type: 'string',
      required: false,
      defaultValue: '',
      flag: 'target-database',
    }),
    pointInTime: defineParameter({
      name: 'OctopusDr.Restore.PointInTime',
      label: 'Point in time',
      helpText:
        "Optional. Restore to this moment, in the SQL Server's local time, ISO-8601 without offset " +
        '(e.g. `2026-11-27T14:30:00`). Needs log backups that reach it (FULL recovery model). Empty = the latest the backups reach.',
      type: 'string',
      required: false,
      defaultValue: '',
      flag: 'point-in-time',
      format: LOCAL_DATE_TIME_FORMAT,
    }),
    replaceExisting: restoreReplaceExisting,
    rollBackOnFailure: restoreRollBackOnFailure,
    dataDirectory: restoreDataDirectory,
    logDirectory: restoreLogDirectory,
    safetyBackup: defineParameter({
      name: 'OctopusDr.Restore.SafetyBackup',
      label: 'Safety backup',
      helpText:
        "Before replacing an existing database, take a copy-only full backup of it into the instance's default backup folder, " +
        'so the replacement can be undone.',
      type: 'bool',
      required: false,
      defaultValue: 'True',
      flag: 'safety-backup',
    }),
    checkDb: defineParameter({
      name: 'OctopusDr.Restore.CheckDb',
      label: 'Run DBCC CHECKDB',
      helpText: 'After the restore, check the database for corruption with `DBCC CHECKDB` (takes time on large databases).',
      type: 'bool',
      required: false,
      defaultValue: 'False',
      flag: 'check-db',
    }),
    dryRun,
    standbyServerUrl,
    standbyOctopusVersion,
    standbyApiKey,
    lockWaitMinutes: restoreLockWaitMinutes,
    ...offsiteRestoreParams,
    ...offsiteDecryptionParams,
    nodePath,
  },
});
