// Restore from an offsite URL with either provider (S3 or Azure Blob): Restore File Store and
// Fetch Backups from Offsite, whose templates have room for both SDKs.
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
  return localSourceThrough(source, params, context, area, { ...options, open: () => (require('./open') as typeof import('./open')).openOffsiteStore });
}
