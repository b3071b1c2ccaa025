// Parameters shared by several steps. Like dbatools, the same parameter means the same thing,
// with the same name, label and flag, in every step that takes it; so it is defined here once.
// Parameters used by one step only live in that step's template file.
import { KEY_ID_FORMAT, OCTOPUS_VERSION_FORMAT, SERVER_URL_FORMAT } from './formats';
import { defineParameter } from './model';

export const nodePath = defineParameter({
  name: 'OctopusDr.NodePath',
  label: 'Node.js executable',
  helpText:
    'Path to `node` (18 or newer) on the worker. Leave empty to use the `node` found on the PATH. ' +
    'The `octopusdeploy/worker-tools` container image has Node.js.',
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'node-path',
  runnerOnly: true,
});

const SQL_AUTHENTICATION_HELP =
  'Use SQL authentication, a Windows account with an explicit `Domain\\User` and password, or `Integrated Security=SSPI` ' +
  "to sign in as the worker's own Windows identity (served by .NET SqlClient through PowerShell; see the README).";

export const sqlConnectionString = defineParameter({
  name: 'OctopusDr.Sql.ConnectionString',
  label: 'SQL connection string',
  helpText:
    'ADO.NET connection string of the Octopus database, in the same form as the Octopus Server uses ' +
    '(e.g. `Server=sql01,1433;Database=Octopus;User ID=octopus-dr;Password=...;Encrypt=True`). ' +
    SQL_AUTHENTICATION_HELP,
  type: 'secret',
  required: true,
  defaultValue: '',
  flag: 'connection-string',
});

/** The same parameter, for a step that connects to another server than the Octopus database's. */
export function sqlConnectionStringOf(whatItConnectsTo: string): typeof sqlConnectionString {
  return { ...sqlConnectionString, helpText: `ADO.NET connection string of ${whatItConnectsTo}. ${SQL_AUTHENTICATION_HELP}` };
}

export const masterKey = defineParameter({
  name: 'OctopusDr.MasterKey',
  label: 'Master key',
  helpText:
    'The Octopus Server master key, as printed by `Octopus.Server.exe show-master-key` ' +
    '(the base64 text, the whole output, or its `--format=json` output).',
  type: 'secret',
  required: true,
  defaultValue: '',
  flag: 'master-key',
});

export const masterKeyExpectedKeyId = defineParameter({
  name: 'OctopusDr.MasterKey.ExpectedKeyId',
  label: 'Expected key ID',
  helpText:
    'Optional. The key ID a backup manifest records for the master key it needs (16 hexadecimal characters; the ' +
    '`KeyId` output variable of *Octopus DR - Verify Master Key*). The step fails when the master key has another ID. ' +
    'A key ID identifies a key without revealing it.',
  type: 'string',
  required: false,
  defaultValue: '',
  flag: 'expected-key-id',
  format: KEY_ID_FORMAT,
});

export const restoreSource = defineParameter({
  name: 'OctopusDr.Restore.Source',
  label: 'Backup to restore',
  helpText:
    'A backup manifest, a backup file or archive, or a backup directory (then the newest usable backup set in it is used).',
  type: 'path',
  required: true,
  defaultValue: '',
  flag: 'source',
});

export const restoreReplaceExisting = defineParameter({
  name: 'OctopusDr.Restore.ReplaceExisting',
  label: 'Replace existing',
  helpText:
    'Allow the restore to replace what is already at the destination. When unchecked the step refuses ' +
    'to touch an existing database or a non-empty folder.',
  type: 'bool',
  required: false,
  defaultValue: 'False',
  flag: 'replace-existing',
});

export const restoreRollBackOnFailure = defineParameter({
  name: 'OctopusDr.Restore.RollBackOnFailure',
  label: 'Roll back on failure',
  helpText:
    'When a restore fails after it began replacing what was there, put the previous content back at once (the database ' +
    'from its safety backup; the file-store folders from their `<folder>.before-restore-<timestamp>` copies) and say ' +
    'whether that worked. Unchecked: leave things as the failure left them; the message says their state and how to put ' +
    'them back. A cancel never rolls back: it stops, and says the same.',
  type: 'bool',
  required: false,
  defaultValue: 'True',
  flag: 'roll-back-on-failure',
});

export const restoreSourceOnServer = defineParameter({
  name: 'OctopusDr.Restore.SourceOnServer',
  label: 'Backup folder as SQL Server sees it',
  helpText:
    "The folder holding the backup files, as the SQL Server service sees it, when its path differs from this worker's " +
    '(e.g. `D:\\Restore` on the server, mounted at `/mnt/restore` on the worker). Empty = the same path as the source.',
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'source-on-server',
});

export const restoreDataDirectory = defineParameter({
  name: 'OctopusDr.Restore.DataDirectory',
  label: 'Data file directory',
  helpText: "Folder (on the SQL Server) for the restored database's data files. Empty = the instance's default data folder.",
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'data-directory',
});

export const restoreLogDirectory = defineParameter({
  name: 'OctopusDr.Restore.LogDirectory',
  label: 'Log file directory',
  helpText: "Folder (on the SQL Server) for the restored database's log files. Empty = the instance's default log folder.",
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'log-directory',
});

export const dryRun = defineParameter({
  name: 'OctopusDr.DryRun',
  label: 'Dry run',
  helpText: 'Print the plan, and what would be run, without changing anything.',
  type: 'bool',
  required: false,
  defaultValue: 'False',
  flag: 'dry-run',
});

export const fileStoreBackupDirectory = defineParameter({
  name: 'OctopusDr.FileStore.BackupDirectory',
  label: 'File store backup directory',
  helpText:
    'Folder that holds the file-store backup sets (archives and their manifests), as this worker sees it: an absolute ' +
    'local path or mounted share (e.g. `/mnt/backup/file-store`), or on a Windows worker a UNC path such as ' +
    '`\\\\backup01\\octopus\\file-store`. It must exist: it is never created.',
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'file-store-backup-directory',
});

export const fileStoreHomeDirectory = defineParameter({
  name: 'OctopusDr.FileStore.HomeDirectory',
  label: 'Octopus home directory',
  helpText:
    'The Octopus Server home directory (e.g. `C:\\Octopus`); the file-store folders default to its subfolders ' +
    '`TaskLogs`, `Artifacts`, `Packages`, `EventExports`, `Imports`, `Telemetry` and `Logs`. Leave empty when ' +
    '*File store folders* gives every folder.',
  type: 'path',
  required: false,
  defaultValue: '',
  flag: 'home-directory',
});

export const fileStoreFolders = defineParameter({
  name: 'OctopusDr.FileStore.Folders',
  label: 'File store folders',
  helpText:
    'Folders that are not below the home directory, one `Name=Path` per line: relocated folders, HA shared storage ' +
    '(e.g. `Packages=\\\\fs01\\OctopusShared\\Packages`) or the Linux container\'s volumes (`Packages=/repository`, ' +
    '`Artifacts=/artifacts`, `TaskLogs=/taskLogs`, `EventExports=/eventExports`). Names: TaskLogs, Artifacts, ' +
    'Packages, EventExports, Imports, Telemetry, Logs.',
  type: 'path',
  multiLine: true,
  required: false,
  defaultValue: '',
  flag: 'folders',
});

// The Octopus API key, shared by the steps that call the Octopus REST API (Set Maintenance Mode) and
// those that read a standby's version.
export const octopusApiKey = defineParameter({
  name: 'OctopusDr.Octopus.ApiKey',
  label: 'Octopus API key',
  helpText: 'An API key (`API-...`) of a user with the AdministerSystem permission. Bind it to a sensitive variable.',
  type: 'secret',
  required: true,
  defaultValue: '',
  flag: 'api-key',
});

/** The same key, optional, for reading the standby's version (`GET /api` needs no permission). */
export const standbyApiKey = defineParameter({
  ...octopusApiKey,
  required: false,
  helpText:
    'Optional. An API key (`API-...`) sent to the standby when its version is read from *Standby Octopus Server URL* ' +
    '(Octopus answers that request without one; a proxy in front of it may not). Bind it to a sensitive variable.',
});

// The standby an Octopus backup is restored onto, for the version gate (steps/engines/standby): a backup
// from a newer Octopus than the standby is refused, an older one is allowed with a warning.
export const standbyServerUrl = defineParameter({
  name: 'OctopusDr.Standby.ServerUrl',
  label: 'Standby Octopus Server URL',
  helpText:
    "Optional. The standby Octopus Server's address (e.g. `https://octopus-standby.example.com`), to read its Octopus version " +
    'from its API and refuse a backup from a newer Octopus before anything is restored. When its Octopus Server is stopped ' +
    '(as it should be while its database is restored), give *Standby Octopus version* as well: it is used when the API cannot be read.',
  type: 'string',
  required: false,
  defaultValue: '',
  flag: 'standby-server-url',
  format: SERVER_URL_FORMAT,
});

export const standbyOctopusVersion = defineParameter({
  name: 'OctopusDr.Standby.OctopusVersion',
  label: 'Standby Octopus version',
  helpText:
    'Optional. The Octopus Server version installed on the standby (e.g. `2025.4.100`; Configuration > About in Octopus, or the ' +
    "installer's version). A backup from a newer Octopus is refused (Octopus cannot start on a newer database schema); " +
    "an older one is restored with a warning, because the standby upgrades the schema when it starts. *Standby Octopus Server URL* takes precedence when it answers.",
  type: 'string',
  required: false,
  defaultValue: '',
  flag: 'standby-octopus-version',
  format: OCTOPUS_VERSION_FORMAT,
});

// Database and file store agree (Test Latest Backup): which recent records to check, and when missing
// files fail the test rather than warn.
export const agreementDays = defineParameter({
  name: 'OctopusDr.Test.AgreementDays',
  label: 'File check window (days)',
  helpText:
    'How many days before the backup to check: server tasks started and artifacts created in that time must have their task log ' +
    'and file in the file-store backup (every package of the built-in feed is checked).',
  type: 'integer',
  required: false,
  defaultValue: '7',
  flag: 'agreement-days',
  min: 1,
  max: 365,
});

export const missingFilesFailPercent = defineParameter({
  name: 'OctopusDr.Test.MissingFilesFailPercent',
  label: 'Missing files: fail above (%)',
  helpText:
    'Task logs, artifacts or packages the restored database names but the file-store backup lacks are a warning; when more than ' +
    'this share of one kind is missing the test fails (the file-store backup does not belong with the database, or misses a folder). ' +
    '100 only ever warns.',
  type: 'integer',
  required: false,
  defaultValue: '10',
  flag: 'missing-files-fail-percent',
  min: 0,
  max: 100,
});
export const lockWaitMinutes = defineParameter({
  name: 'OctopusDr.LockWaitMinutes',
  label: 'Lock wait (minutes)',
  helpText:
    'Only one run at a time writes to a backup directory for the same database (or file store). When another run holds ' +
    'it, wait up to this many minutes for it to finish, then fail naming that run (host, process, step, since when). ' +
    '0 fails at once. A lock left by a killed run is taken over automatically.',
  type: 'integer',
  required: false,
  defaultValue: '30',
  flag: 'lock-wait-minutes',
  min: 0,
  max: 1440,
});

/** The same parameter in a restore step, which takes no lock but waits for a backup being written. */
export const restoreLockWaitMinutes: typeof lockWaitMinutes = {
  ...lockWaitMinutes,
  helpText:
    'When a backup is being written to the backup directory this step reads (its lock is held), wait up to this many ' +
    'minutes for it to finish before choosing the newest set, then fail naming it. 0 fails at once. Restoring a named ' +
    'manifest or archive does not wait.',
};

export const offsiteLockWaitMinutes: typeof lockWaitMinutes = {
  ...lockWaitMinutes,
  helpText:
    'Only one Copy Backups Offsite run at a time writes to an offsite target (bucket or container and prefix). When another run ' +
    'is copying there, wait up to this many minutes for it to finish, then fail naming that run (host, process, since when). ' +
    '0 fails at once. A lock left by a stopped run is taken over: at once on the same host, from another host 15 minutes after its last renewal.',
};

/**
 * One retention rule for both backup steps (each keeps its own variable name, so the two can
 * differ in a runbook): the same label, flag, bounds and meaning of 0 and empty.
 */
export function retentionDaysOf(name: string, whatIsDeleted: string) {
  return defineParameter({
    name,
    label: 'Retention (days)',
    helpText:
      `After the new backup set is verified, delete ${whatIsDeleted} older than this many days. Empty or 0 keeps ` +
      'everything (no retention). Retention never deletes the newest verified set, nor anything a kept set needs to ' +
      'restore, and always leaves at least *Minimum backups kept* verified sets.',
    type: 'integer',
    required: false,
    defaultValue: '',
    flag: 'retention-days',
    min: 0,
    max: 36500,
  });
}

export const retentionMinimumSets = defineParameter({
  name: 'OctopusDr.Retention.MinimumSets',
  label: 'Minimum backups kept',
  helpText:
    'Retention never leaves fewer than this many verified backup sets, however old they are: the newest ones are kept, ' +
    'each with every older backup it needs to restore. At least 1 (the newest verified set is never deleted).',
  type: 'integer',
  required: false,
  defaultValue: '2',
  flag: 'retention-minimum',
  min: 1,
  max: 1000,
});
