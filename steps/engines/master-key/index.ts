// Master-key verification without SQL: key parsing and key ID, finding encrypted values in JSON
// documents, checking them, and the verdict. Used by verify-master-key and the restore steps.
export { parseMasterKey, keyIdOf, KEY_ID_PATTERN, KEY_ID_MESSAGE, type MasterKey, type AesKeyBits } from './key';
export { findEncryptedValues, parseDocument, parseEncryptedValue, type EncryptedValue, type MalformedValue, type ExtractedValues } from './extract';
export { checkEncryptedValue, type ValueOutcome, type ExpectedPlaintext } from './decrypt';
export {
  decide,
  allowedFailures,
  rotationHint,
  keySizeHint,
  CERTIFICATE_DOCUMENT_ID,
  MINIMUM_VALUES_WITHOUT_CERTIFICATE,
  type Evidence,
  type TestedValue,
  type MalformedFinding,
  type DocumentRef,
  type Verdict,
  type VerdictStatus,
  type VerdictReason,
  type VerdictCounts,
} from './decide';
export { EvidenceCollector } from './evidence';
