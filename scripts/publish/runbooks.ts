// What the publisher builds in the DR project, declared by step id and parameter name, so that
// templates still being written slot in when they are built. A runbook is composed only when every
// template it needs is built and has the parameters named here; otherwise it is skipped with a warning.

/** A project variable the runbooks need. Created as a placeholder only when absent; never overwritten. */
export interface ProjectVariableSpec {
  name: string;
  sensitive: boolean;
  description: string;
}

export interface StepSpec {
  /** Step and action name (unique in the runbook). */
  name: string;
  /** The template, by octopus-dr step id (`steps/<id>`). */
  stepId: string;
  /** `Always` runs even after an earlier step failed; `Variable` runs when `conditionExpression` is true. */
  condition?: 'Success' | 'Always' | 'Variable';
  /** For `Variable`: an Octostache expression; the step runs when it evaluates to True. */
  conditionExpression?: string;
  /** Parameter values set on the step; `#{...}` binds to variables. */
  values?: Record<string, string>;
  /**
   * Parameters left unset on the step because a project variable of the same name supplies them
   * (in Octopus a project variable takes precedence over a step template parameter of the same name).
   */
  fromProjectVariables?: readonly string[];
  /**
   * Project variables that must be empty for this step: a project variable cannot be overridden on
   * the step, so an empty value scoped to this step (the most specific scope) is added to the project.
   */
  blankProjectVariables?: readonly string[];
}

export type EnvironmentRole = 'backup' | 'restore';
export type ScheduleRole = 'backup' | 'test';

export interface RunbookSpec {
  name: string;
  description: string;
  /** Which `--environment` list the runbook may run in. */
  environments: EnvironmentRole;
  /** The scheduled trigger that runs it, if any. */
  schedule?: ScheduleRole;
  steps: readonly StepSpec[];
}

export const PROJECT_VARIABLES: readonly ProjectVariableSpec[] = [
  {
    name: 'OctopusDr.Octopus.ApiKey',
    sensitive: true,
    description: 'API key of a user with the AdministerSystem permission, used to turn maintenance mode on and off.',
  },
  {
    name: 'OctopusDr.Sql.ConnectionString',
    sensitive: true,
    description: 'Connection string of the Octopus database (scope a second value to the standby environment for restores).',
  },
  { name: 'OctopusDr.MasterKey', sensitive: true, description: 'The Octopus Server master key (Octopus.Server.exe show-master-key).' },
  { name: 'OctopusDr.Sql.BackupDirectory', sensitive: false, description: 'Where database backups are written, as the SQL Server service sees it.' },
  {
    name: 'OctopusDr.Sql.BackupDirectoryOnWorker',
    sensitive: false,
    description: 'The same folder as the workers see it, when their path differs (empty = the same path).',
  },
  { name: 'OctopusDr.FileStore.HomeDirectory', sensitive: false, description: 'The Octopus home directory (e.g. C:\\Octopus); the file store folders are derived from it.' },
  { name: 'OctopusDr.FileStore.BackupDirectory', sensitive: false, description: 'Where file store archives are written.' },
  {
    name: 'OctopusDr.Offsite.Url',
    sensitive: false,
    description: 'Where Back up Octopus copies the backups offsite (s3://bucket/prefix or https://<account>.blob.core.windows.net/<container>/<prefix>); empty = no offsite copy.',
  },
  { name: 'OctopusDr.Offsite.Region', sensitive: false, description: 'The S3 bucket\'s region (empty = the worker\'s AWS configuration).' },
  { name: 'OctopusDr.Offsite.AccessKeyId', sensitive: true, description: 'S3 access key ID (empty = the worker\'s AWS credentials or role).' },
  { name: 'OctopusDr.Offsite.SecretAccessKey', sensitive: true, description: 'S3 secret access key.' },
  { name: 'OctopusDr.Offsite.AzureConnectionString', sensitive: true, description: 'Azure storage connection string (or use a SAS token, or a managed identity).' },
  { name: 'OctopusDr.Offsite.AzureSasToken', sensitive: true, description: 'Azure container SAS token (racwl).' },
  {
    name: 'OctopusDr.Restore.ExpectedKeyId',
    sensitive: false,
    description: 'Key ID recorded in the manifest of the backup to restore; the restore checks the master key against it first.',
  },
];

const ENTER_MAINTENANCE = 'Enter maintenance mode';
/** The database backups as a worker reads them, and as SQL Server reads them. */
const SQL_BACKUPS_ON_WORKER = '#{if OctopusDr.Sql.BackupDirectoryOnWorker}#{OctopusDr.Sql.BackupDirectoryOnWorker}#{else}#{OctopusDr.Sql.BackupDirectory}#{/if}';
const SQL_BACKUPS_ON_SERVER = '#{OctopusDr.Sql.BackupDirectory}';
const previousMode = `Octopus.Action[${ENTER_MAINTENANCE}].Output.PreviousMaintenanceMode`;

export const RUNBOOKS: readonly RunbookSpec[] = [
  {
    name: 'Back up Octopus',
    description:
      'Puts Octopus into maintenance mode, proves the master key decrypts the database, backs up the database (recording ' +
      'the key ID) and the file store, and puts maintenance mode back as it was (also after a failure). Published by octopus-dr.',
    environments: 'backup',
    schedule: 'backup',
    steps: [
      { name: ENTER_MAINTENANCE, stepId: 'maintenance-mode', values: { 'OctopusDr.Octopus.MaintenanceMode': 'On' }, fromProjectVariables: ['OctopusDr.Octopus.ApiKey'] },
      // Before the backup, so that the database backup's manifest records the key ID a restore needs.
      // The backups run even when it fails (a backup is better than none; the run still fails).
      { name: 'Verify the master key', stepId: 'verify-master-key', fromProjectVariables: ['OctopusDr.MasterKey', 'OctopusDr.Sql.ConnectionString'] },
      {
        name: 'Back up the database',
        stepId: 'backup-database',
        condition: 'Always',
        // Only a key that passed is recorded; unset (left unsubstituted, read as empty) otherwise.
        values: { 'OctopusDr.MasterKey.KeyId': '#{Octopus.Action[Verify the master key].Output.VerifiedKeyId}' },
        fromProjectVariables: ['OctopusDr.Sql.ConnectionString', 'OctopusDr.Sql.BackupDirectory', 'OctopusDr.Sql.BackupDirectoryOnWorker'],
      },
      {
        name: 'Back up the file store',
        stepId: 'backup-file-store',
        condition: 'Always',
        fromProjectVariables: ['OctopusDr.FileStore.HomeDirectory', 'OctopusDr.FileStore.BackupDirectory'],
      },
      {
        name: 'Leave maintenance mode',
        stepId: 'maintenance-mode',
        condition: 'Always',
        // Back to what the first step found; Off if that step never got to read it.
        values: {
          'OctopusDr.Octopus.MaintenanceMode': `#{if ${previousMode}}#{${previousMode}}#{else}Off#{/if}`,
          'OctopusDr.Octopus.DrainTimeoutMinutes': '0',
        },
        fromProjectVariables: ['OctopusDr.Octopus.ApiKey'],
      },
      // Last, outside maintenance mode; only complete, verified sets are sent, so it runs after a failed step too.
      {
        name: 'Copy backups offsite',
        stepId: 'copy-offsite',
        condition: 'Variable',
        conditionExpression: '#{if OctopusDr.Offsite.Url}True#{else}False#{/if}',
        fromProjectVariables: [
          'OctopusDr.Offsite.Url', 'OctopusDr.Offsite.Region', 'OctopusDr.Offsite.AccessKeyId', 'OctopusDr.Offsite.SecretAccessKey',
          'OctopusDr.Offsite.AzureConnectionString', 'OctopusDr.Offsite.AzureSasToken',
          'OctopusDr.Sql.BackupDirectory', 'OctopusDr.Sql.BackupDirectoryOnWorker', 'OctopusDr.FileStore.BackupDirectory',
        ],
      },
    ],
  },
  {
    name: 'Test Octopus backups',
    description:
      'Restores the newest backup to a scratch database, checks it with DBCC CHECKDB, proves the master key decrypts the ' +
      'restored copy, verifies the newest file store archive, and reports the recovery point and time. Published by octopus-dr.',
    environments: 'backup',
    schedule: 'test',
    steps: [
      {
        name: 'Test the latest backup',
        stepId: 'test-restore',
        values: { 'OctopusDr.Restore.Source': SQL_BACKUPS_ON_WORKER, 'OctopusDr.Restore.SourceOnServer': SQL_BACKUPS_ON_SERVER },
        fromProjectVariables: ['OctopusDr.Sql.ConnectionString', 'OctopusDr.MasterKey', 'OctopusDr.FileStore.BackupDirectory'],
      },
    ],
  },
  {
    name: 'Restore Octopus',
    description:
      'For a standby Octopus instance: checks the master key matches the backup, restores the database and the file store ' +
      '(never replacing existing data unless told to), and proves the master key decrypts the restored database. Published by octopus-dr.',
    environments: 'restore',
    steps: [
      {
        name: 'Check the master key matches the backup',
        stepId: 'verify-master-key',
        values: { 'OctopusDr.MasterKey.ExpectedKeyId': '#{OctopusDr.Restore.ExpectedKeyId}' },
        fromProjectVariables: ['OctopusDr.MasterKey'],
        // A key ID check needs no database, and on a standby there is none yet.
        blankProjectVariables: ['OctopusDr.Sql.ConnectionString'],
      },
      {
        name: 'Restore the database',
        stepId: 'restore-database',
        values: { 'OctopusDr.Restore.Source': SQL_BACKUPS_ON_WORKER, 'OctopusDr.Restore.SourceOnServer': SQL_BACKUPS_ON_SERVER },
        fromProjectVariables: ['OctopusDr.Sql.ConnectionString'],
      },
      {
        name: 'Restore the file store',
        stepId: 'restore-file-store',
        values: { 'OctopusDr.Restore.Source': '#{OctopusDr.FileStore.BackupDirectory}' },
        fromProjectVariables: ['OctopusDr.FileStore.HomeDirectory'],
      },
      { name: 'Verify the master key on the restored database', stepId: 'verify-master-key', fromProjectVariables: ['OctopusDr.MasterKey', 'OctopusDr.Sql.ConnectionString'] },
    ],
  },
];

/** Default schedules: Octopus cron has 6 fields (second minute hour day-of-month month day-of-week). */
export const DEFAULT_SCHEDULES: Record<ScheduleRole, { triggerName: string; cron: string; runbook: string }> = {
  backup: { triggerName: 'Daily backup', cron: '0 30 1 * * *', runbook: 'Back up Octopus' },
  test: { triggerName: 'Weekly backup test', cron: '0 0 5 * * Sun', runbook: 'Test Octopus backups' },
};
