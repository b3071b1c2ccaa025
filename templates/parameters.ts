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
});

export const sqlConnectionString = defineParameter({
  name: 'OctopusDr.Sql.ConnectionString',
  label: 'SQL connection string',
  helpText:
    'ADO.NET connection string of the Octopus database, in the same form as the Octopus Server uses ' +
    '(e.g. `Server=sql01,1433;Database=Octopus;User ID=octopus-dr;Password=...;Encrypt=True`). ' +
    'Use SQL authentication, or a Windows account with an explicit `Domain\\User` and password: ' +
    '`Integrated Security` cannot be used from Node.js.',
  type: 'secret',
  required: true,
  defaultValue: '',
  flag: 'connection-string',
});

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

export const dryRun = defineParameter({
  name: 'OctopusDr.DryRun',
  label: 'Dry run',
  helpText: 'Print the plan, and what would be run, without changing anything.',
  type: 'bool',
  required: false,
  defaultValue: 'False',
  flag: 'dry-run',
});
