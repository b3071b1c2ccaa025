// Octopus documents in the database (Nevermore's Id + JSON/JSONBlob rows) and the master-key evidence
// read from them. Steps import from here, nothing deeper.
export {
  ENCRYPTED_VALUE_LIKE,
  findDocumentTables,
  readDocumentById,
  readSampleDocuments,
  tableLabel,
  type DocumentRow,
  type DocumentTable,
  type SampleQuery,
} from './documents';
export { collectMasterKeyEvidence, type CollectedEvidence, type EvidenceReporter } from './master-key-evidence';
