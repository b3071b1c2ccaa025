// Parameters shared by several steps. Like dbatools, the same parameter means the same thing,
// with the same name, label and flag, in every step that takes it; so it is defined here once.
// Parameters used by one step only live in that step's template file.
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
    'Folder that holds the file-store backup sets (archives and their manifests), as this worker sees it: a local path, ' +
    'a mounted share or a UNC path such as `\\\\backup01\\octopus\\file-store`.',
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
