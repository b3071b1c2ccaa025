// The offsite engine's face: copying verified sets to S3 or Azure Blob, offsite retention, and
// fetching a chain back for a restore. The storage SDKs are loaded only when a store is opened
// (they need Node.js 20; a restore from a local folder runs on 18). The database restores use the
// lighter face ./url-source, which carries only what reads a store.
export { encryptionFrom } from './age';
export { decrypterFrom } from './decrypt';
export { copyOffsite, OffsiteError, type CopyOptions, type CopyResult } from './copy';
export { openOffsiteStore } from './open';
export { localSourceFor, type LocalSource, type OffsiteRestoreParams } from './restore-source';
export { applyOffsiteRetention, type OffsiteRetentionOptions } from './retention';
export { acquireOffsiteLock, OFFSITE_LOCK_KEY, type HeldOffsiteLock } from './target-lock';
export { databaseSets, fileStoreSets, type Area, type LocalSet } from './sets';
export { isOffsiteUrl, offsiteTargetFrom, secretPartsOf, type OffsiteTarget } from './target';
