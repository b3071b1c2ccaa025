// What the publisher builds in the DR project, declared with the template objects, so every step id
// and parameter name comes from the one definition (test/publish/runbooks.test.ts proves each exists
// in the template it is bound to). A runbook is composed only when every template it needs is built
// and has the parameters named here; otherwise it is skipped with a warning.
import { backupDatabase } from '../../templates/backup-database';
import { backupFileStore } from '../../templates/backup-file-store';
import { copyOffsite } from '../../templates/copy-offsite';
import { maintenanceMode } from '../../templates/maintenance-mode';
import { restoreDatabase } from '../../templates/restore-database';
import { restoreFileStore } from '../../templates/restore-file-store';
import { testRestore } from '../../templates/test-restore';
import { verifyMasterKey } from '../../templates/verify-master-key';

/** A project variable the runbooks need. Created as a placeholder only when absent; never overwritten. */
export interface ProjectVariableSpec {
  name: string;
  /** The variable's earlier name: when only that exists in the project, its values are copied to the new name. */
  formerName?: string;
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

// The parameters the runbooks bind, by their definitions.
const apiKey = maintenanceMode.params.apiKey.name;
const maintenanceModeName = maintenanceMode.params.mode.name;
const onlyIfSetByThisRun = maintenanceMode.params.onlyIfSetByThisRun.name;
const drainTimeout = maintenanceMode.params.drainTimeoutMinutes.name;
const connectionString = verifyMasterKey.params.connectionString.name;
const masterKey = verifyMasterKey.params.masterKey.name;
const expectedKeyId = verifyMasterKey.params.expectedKeyId.name;
const sqlBackupDirectory = backupDatabase.params.backupDirectory.name;
const sqlBackupDirectoryOnWorker = backupDatabase.params.backupDirectoryOnWorker.name;
const recordedKeyId = backupDatabase.params.masterKeyId.name;
const homeDirectory = backupFileStore.params.homeDirectory.name;
const fileStoreBackupDirectory = backupFileStore.params.backupDirectory.name;
const restoreSource = restoreDatabase.params.source.name;
const restoreSourceOnServer = restoreDatabase.params.sourceOnServer.name;
const offsite = copyOffsite.params;

export const PROJECT_VARIABLES: readonly ProjectVariableSpec[] = [
  {
    name: apiKey,
    sensitive: true,
    description: 'API key of a user with the AdministerSystem permission, used to turn maintenance mode on and off.',
  },
  {
    name: connectionString,
    sensitive: true,
    description: 'Connection string of the Octopus database (scope a second value to the standby environment for restores).',
  },
  { name: masterKey, sensitive: true, description: 'The Octopus Server master key (Octopus.Server.exe show-master-key).' },
  { name: sqlBackupDirectory, sensitive: false, description: 'Where database backups are written, as the SQL Server service sees it.' },
  {
    name: sqlBackupDirectoryOnWorker,
    sensitive: false,
    description: 'The same folder as the workers see it, when their path differs (empty = the same path).',
  },
  { name: homeDirectory, sensitive: false, description: 'The Octopus home directory (e.g. C:\\Octopus); the file store folders are derived from it.' },
  { name: fileStoreBackupDirectory, sensitive: false, description: 'Where file store archives are written.' },
  {
    name: offsite.offsiteUrl.name,
    sensitive: false,
    description: 'Where Back up Octopus copies the backups offsite (s3://bucket/prefix or https://<account>.blob.core.windows.net/<container>/<prefix>); empty = no offsite copy.',
  },
  { name: offsite.region.name, sensitive: false, description: 'The S3 bucket\'s region (empty = the worker\'s AWS configuration).' },
  { name: offsite.accessKeyId.name, sensitive: true, description: 'S3 access key ID (empty = the worker\'s AWS credentials or role).' },
  { name: offsite.secretAccessKey.name, sensitive: true, description: 'S3 secret access key.' },
  { name: offsite.azureConnectionString.name, sensitive: true, description: 'Azure storage connection string (or use a SAS token, or a managed identity).' },
  { name: offsite.azureSasToken.name, sensitive: true, description: 'Azure container SAS token (racwl).' },
  {
    name: offsite.immutabilityDays.name,
    sensitive: false,
    description: 'Lock every object copied offsite for this many days (S3 Object Lock or an Azure immutability policy; the store must support it); empty or 0 = no lock.',
  },
  { name: offsite.immutabilityMode.name, sensitive: false, description: 'Governance (an administrator with the bypass right can lift the lock) or Compliance (nobody can); empty = Governance.' },
  {
    name: offsite.encryptionPassphrase.name,
    sensitive: true,
    description: 'Encrypt the offsite copies with this passphrase (age format); keep it with the master key, the restores need it. Empty = not encrypted (or use a recipient).',
  },
  {
    name: offsite.encryptionRecipient.name,
    sensitive: false,
    description: 'Or encrypt the offsite copies for this age public key (age1...); its identity, kept offline, decrypts them. Empty = no recipient.',
  },
  {
    // The verify step's own parameter, so the key ID has one name (it was OctopusDr.Restore.ExpectedKeyId, bound to it).
    name: expectedKeyId,
    formerName: 'OctopusDr.Restore.ExpectedKeyId',
    sensitive: false,
    description: 'Key ID recorded in the manifest of the backup to restore; the restore checks the master key against it first.',
  },
];

const ENTER_MAINTENANCE = 'Enter maintenance mode';
/** The database backups as a worker reads them, and as SQL Server reads them. */
const SQL_BACKUPS_ON_WORKER = `#{if ${sqlBackupDirectoryOnWorker}}#{${sqlBackupDirectoryOnWorker}}#{else}#{${sqlBackupDirectory}}#{/if}`;
const SQL_BACKUPS_ON_SERVER = `#{${sqlBackupDirectory}}`;
const setByThisRun = `Octopus.Action[${ENTER_MAINTENANCE}].Output.SetByThisRun`;

export const RUNBOOKS: readonly RunbookSpec[] = [
  {
    name: 'Back up Octopus',
    description:
      'Puts Octopus into maintenance mode, proves the master key decrypts the database, backs up the database (recording ' +
      'the key ID) and the file store, and turns maintenance mode off again if this run turned it on (also after a failure). Published by octopus-dr.',
    environments: 'backup',
    schedule: 'backup',
    steps: [
      { name: ENTER_MAINTENANCE, stepId: maintenanceMode.stepId, values: { [maintenanceModeName]: 'On' }, fromProjectVariables: [apiKey] },
      // Before the backup, so that the database backup's manifest records the key ID a restore needs.
      // The backups run even when it fails (a backup is better than none; the run still fails).
      {
        name: 'Verify the master key',
        stepId: verifyMasterKey.stepId,
        fromProjectVariables: [masterKey, connectionString],
        // The expected key ID is the restore's (the key a backup needs); the key being backed up is checked against the database.
        blankProjectVariables: [expectedKeyId],
      },
      {
        name: 'Back up the database',
        stepId: backupDatabase.stepId,
        condition: 'Always',
        // Only a key that passed is recorded; unset (left unsubstituted, read as empty) otherwise.
        values: { [recordedKeyId]: '#{Octopus.Action[Verify the master key].Output.VerifiedKeyId}' },
        fromProjectVariables: [connectionString, sqlBackupDirectory, sqlBackupDirectoryOnWorker],
      },
      {
        name: 'Back up the file store',
        stepId: backupFileStore.stepId,
        condition: 'Always',
        fromProjectVariables: [homeDirectory, fileStoreBackupDirectory],
      },
      {
        name: 'Leave maintenance mode',
        stepId: maintenanceMode.stepId,
        condition: 'Always',
        // Off only when the first step says this run set it (it turned it on, or took over one an earlier run left
        // on); "Unknown" when that step never got to say (an unresolved binding would read as empty: unconditional).
        // A cancelled run runs no later step, so the first step turns it back off itself when cancelled while draining.
        values: {
          [maintenanceModeName]: 'Off',
          [onlyIfSetByThisRun]: `#{if ${setByThisRun}}#{${setByThisRun}}#{else}Unknown#{/if}`,
          [drainTimeout]: '0',
        },
        fromProjectVariables: [apiKey],
      },
      // Last, outside maintenance mode; only complete, verified sets are sent, so it runs after a failed step too.
      {
        name: 'Copy backups offsite',
        stepId: copyOffsite.stepId,
        condition: 'Variable',
        conditionExpression: `#{if ${offsite.offsiteUrl.name}}True#{else}False#{/if}`,
        fromProjectVariables: [
          offsite.offsiteUrl.name, offsite.region.name, offsite.accessKeyId.name, offsite.secretAccessKey.name,
          offsite.azureConnectionString.name, offsite.azureSasToken.name, offsite.immutabilityDays.name, offsite.immutabilityMode.name,
          offsite.encryptionPassphrase.name, offsite.encryptionRecipient.name,
          offsite.databaseBackupDirectory.name, offsite.databaseBackupDirectoryOnWorker.name, offsite.fileStoreBackupDirectory.name,
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
        stepId: testRestore.stepId,
        values: { [testRestore.params.source.name]: SQL_BACKUPS_ON_WORKER, [testRestore.params.sourceOnServer.name]: SQL_BACKUPS_ON_SERVER },
        fromProjectVariables: [testRestore.params.connectionString.name, testRestore.params.masterKey.name, testRestore.params.fileStoreBackupDirectory.name],
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
        stepId: verifyMasterKey.stepId,
        fromProjectVariables: [masterKey, expectedKeyId],
        // A key ID check needs no database, and on a standby there is none yet.
        blankProjectVariables: [connectionString],
      },
      {
        name: 'Restore the database',
        stepId: restoreDatabase.stepId,
        values: { [restoreSource]: SQL_BACKUPS_ON_WORKER, [restoreSourceOnServer]: SQL_BACKUPS_ON_SERVER },
        fromProjectVariables: [restoreDatabase.params.connectionString.name],
      },
      {
        name: 'Restore the file store',
        stepId: restoreFileStore.stepId,
        values: { [restoreFileStore.params.source.name]: `#{${fileStoreBackupDirectory}}` },
        fromProjectVariables: [restoreFileStore.params.homeDirectory.name],
      },
      {
        name: 'Verify the master key on the restored database',
        stepId: verifyMasterKey.stepId,
        fromProjectVariables: [masterKey, connectionString, expectedKeyId],
      },
    ],
  },
];

/** Default schedules: Octopus cron has 6 fields (second minute hour day-of-month month day-of-week). */
export const DEFAULT_SCHEDULES: Record<ScheduleRole, { triggerName: string; cron: string; runbook: string }> = {
  backup: { triggerName: 'Daily backup', cron: '0 30 1 * * *', runbook: 'Back up Octopus' },
  test: { triggerName: 'Weekly backup test', cron: '0 0 5 * * Sun', runbook: 'Test Octopus backups' },
};
