// Opens a store for reading, whichever the provider: what the restores load (lazily, for a URL
// only) instead of open.ts, which carries the upload code too.
import { openAzureStore } from './azure-store';
import { openS3Reader } from './s3-reader';
import type { OffsiteReader } from './store';
import type { OffsiteTarget } from './target';

export function openOffsiteReader(target: OffsiteTarget): OffsiteReader {
  return target.kind === 's3' ? openS3Reader(target) : openAzureStore(target);
}
