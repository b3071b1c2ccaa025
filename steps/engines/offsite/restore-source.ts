// Fetch Backups from Offsite's call: an offsite URL (S3 or Azure Blob) downloaded to a local
// folder, through the readers (no upload code). The restores call url-source/, which does the same.
import type { StepContext } from '../../runtime/step-context';
import { localSourceThrough, type LocalSource, type LocalSourceOptions, type OffsiteRestoreParams } from './local-source';
import type { Area } from './sets';

export type { LocalSource, OffsiteRestoreParams } from './local-source';

export function localSourceFor(
  source: string,
  params: OffsiteRestoreParams,
  context: StepContext,
  area: Area,
  options: Omit<LocalSourceOptions, 'open'> = {},
): Promise<LocalSource> {
  return localSourceThrough(source, params, context, area, { ...options, open: () => (require('./readers') as typeof import('./readers')).openOffsiteReader });
}
