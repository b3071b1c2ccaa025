// The standby's file-store agreement check (Test Latest Backup): a face of its own because it reads the
// restored database through the SQL engine, which the restore-file-store bundle must not carry.
export { checkFileStoreAgreement, compareWithFileStore, readExpectedFiles, summariseAgreement, THRESHOLD_LABEL } from './file-store-agreement';
export type { AgreementOutcome, AgreementResult, AgreementSummary, ExpectedFiles, FileStoreAgreementOptions, StoreFile } from './file-store-agreement';
