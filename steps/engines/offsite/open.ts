import { openAzureStore } from './azure-store';
import { openS3Store } from './s3-store';
import type { OffsiteStore } from './store';
import type { OffsiteTarget } from './target';

export function openOffsiteStore(target: OffsiteTarget): OffsiteStore {
  return target.kind === 's3' ? openS3Store(target) : openAzureStore(target);
}
