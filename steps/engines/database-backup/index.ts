// The database-backup engine: SQL Server backups of the Octopus database as octopus-dr keeps
// them (backup files plus a manifest per set), their retention, and restores from them. Steps
// import from here only; the files beside this one are its internals.
//
//   const backup = await takeDatabaseBackup({ connectionString, kind: 'Full', ... }, context);
//   await applyRetention({ database, location, manifestPath, verified }, { days: 14, minimumVerifiedSets: 1 }, context);
//
//   const plan = await planRestore(connection, { source, targetDatabase, ... }, context);  // changes nothing
//   const result = await restoreDatabase(connection, plan, context);
//
// Every failure is a StepFailure (SqlError, RestorePlanError, RestoreError, ...) whose message
// says what failed and what to do; a step reports it as it is.

// Back up: check, plan, back up, verify, record.
export {
  takeDatabaseBackup,
  checkBackup,
  planBackup,
  runBackup,
  verifyBackup,
  recordBackup,
  checkBackupKindAllowed,
  compressionFor,
  type DatabaseBackupRequest,
  type DatabaseBackupResult,
  type CheckedBackup,
  type PlannedBackup,
  type VerifiedBackup,
  type SourceDatabaseState,
} from './backup';

// Retention after a verified backup.
export { applyRetention, retentionCandidatesOf, type RetentionRequest, type RetentionBasis, type RetentionOutcome } from './apply-retention';
export { planRetention, type RetentionCandidate, type RetentionDecision, type RetentionPlan } from './retention';
// Whose a set is (server, database family): what retention and a new set's chain compare.
export { originOf, compareOrigins, splitByOrigin, originWarnings, missingBaseOf, type SetOrigin } from './origin';

// Restore: get the sets, select the chain, test it, build the plan; then run it.
export {
  planRestore,
  restoreImpossibleOn,
  getBackupSets,
  selectRestoreChain,
  setsOfTargetDatabase,
  withoutSafetyBackups,
  testRestoreChain,
  buildRestorePlan,
  formatRestorePlan,
  masterKeyIdOf,
  restoreDatabase,
  restoreSafetyBackup,
  readDatabaseState,
  RestorePlanError,
  RestoreError,
  type FoundBackupSets,
  type SelectedChain,
  type RestoreRequest,
  type RestorePlan,
  type PlannedStep,
  type PlanFailure,
  type RestoreResult,
  type DatabaseState,
} from './restore';
export { restoreWithRecovery, safetyRestoreCommand, type RecoveryTarget } from './restore-recovery';
export { lockRestoreTarget, tryLockRestoreTarget, RestoreTargetBusyError, type RestoreLock } from './restore-lock';
export { selectChain, ChainError, type RestoreChain, type ChainOptions } from './chain';

// What a folder of backups holds.
export { loadManifestSets, unreadableManifestsNewerThan, cleanBackupLeftovers, type FolderLocation, type ManifestSet } from './discovery';
export { readManifest, writeManifestAtomically, MANIFEST_FORMAT, type BackupManifest } from './manifest';
export { kindOf, normaliseLocalTime, type BackupHeader, type BackupSet, type BackupFile } from './backup-set';
export { manifestStampOf, parseBackupFileName, backupSetNames, type BackupKind } from './naming';

// Statements a step runs itself (dropping a half-restored or scratch database, CHECKDB).
export { checkDbStatement, dropIfRestoringStatement, formatStatement, quoteName, type Statement } from './tsql';
