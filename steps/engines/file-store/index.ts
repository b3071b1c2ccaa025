// The file-store engine's face: steps, the benchmark and the demo import from here, never from
// the files behind it. Back up (scan, plan, write, manifest, read back), verify, restore
// (destinations, check, extract, swap) and retention; each takes an EngineContext.
export { backupFileStore, type BackupOptions, type BackupResult } from './backup';
export { changeSincePreviousSet, RACY_WINDOW_MS, recordsInScanOrder, type ChangeVerdict } from './change';
export { FileStoreError } from './errors';
export { allowFullBackupToTurnOffOptimizingCompiler } from './heap';
export {
  DEFAULT_INCLUDED_FOLDERS,
  FILE_STORE_FOLDERS,
  parseFolderNames,
  resolveFolders,
  type FileStoreFolderName,
  type ResolvedFolder,
} from './folders';
export {
  archiveNameFor,
  isOwnArchiveName,
  listBackupSets,
  MANIFEST_ENTRY_NAME,
  MANIFEST_FORMAT,
  parseManifest,
  readManifestFile,
  type BackupMode,
  type BackupSet,
  type FileStoreManifest,
  type ManifestFile,
} from './manifest';
export { progressReporter, type FileStoreProgress } from './progress';
export {
  cleanRestoreLeftovers,
  DAMAGED_BACKUP_ADVICE,
  isRestoreStagingName,
  resolveBackupSource,
  restoreFileStore,
  verificationFailure,
  verifyFileStoreBackup,
  type RestoreOptions,
  type RestoreResult,
  type VerifyOptions,
  type VerifyResult,
} from './restore';
export { applyRetention, type RetentionOptions, type RetentionResult } from './retention';
