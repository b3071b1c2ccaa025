// A second, lighter face of the offsite engine (as standby/agreement is of standby), for the three
// restores: an offsite URL (S3 or Azure Blob) as *Backup to restore* becomes a local folder (the
// chain downloaded to the download folder, decrypted when encrypted, and checked); anything else
// is returned as it is. It carries only what reads a store: the S3 client with its three read
// commands (no lib-storage), the Azure client, and age's Decrypter, each loaded when first used
// (the SDKs need Node.js 20; a restore from a folder runs on 18).
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { offsiteStagingDirectory } from '../../../../templates/offsite-parameters';
import type { EngineContext } from '../../../runtime/engine-context';
import { ParameterError } from '../../../runtime/errors';
import { howToSet } from '../../../runtime/parameters';
import type { StepContext } from '../../../runtime/step-context';
import { decrypterFrom, type DecryptionSettings } from '../decrypt';
import { localSourceThrough, offsiteSourceOf, requireDownloadFolderAndNode, type LocalSource, type OffsiteRestoreParams } from '../local-source';
import type { Area } from '../sets';
import { isOffsiteUrl } from '../target';

export { isOffsiteUrl } from '../target';
export type { LocalSource } from '../local-source';

/** What a restore step passes: its source, and the offsite parameters it shares with Fetch Backups from Offsite. */
export interface UrlSourceParams extends OffsiteRestoreParams, DecryptionSettings {
  source: string;
  pointInTime?: string;
}

/**
 * Where a restore's backups will be on this worker, found without touching the network, so that every
 * local path is checked (exit 2) before anything is downloaded: the source itself, or for an offsite
 * URL (checked whole: provider, bucket or container, credentials) the download folder, created if missing.
 */
export async function plannedSource(params: UrlSourceParams, area: Area, context?: Pick<EngineContext, 'onCleanup'>): Promise<string> {
  if (!isOffsiteUrl(params.source)) return params.source;
  offsiteSourceOf(params.source, params, area);
  requireDownloadFolderAndNode(params);
  const folder = path.resolve(params.offsiteStagingDirectory);
  const created = await fs.mkdir(folder, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new ParameterError([`"${offsiteStagingDirectory.label}" ${params.offsiteStagingDirectory} cannot be created (${error.code ?? error.message}): ${howToSet(offsiteStagingDirectory)}, as a folder this worker can write to.`]);
  });
  // Created only to be checked: if the step ends before anything lands in it (a later check fails
  // with exit 2, the store cannot be reached), it goes again, with the parents it needed.
  if (created && context) context.onCleanup(() => removeEmptyFolders(folder, created));
  return params.offsiteStagingDirectory;
}

/** Removes `folder` and its parents up to `top`, each only while it is empty. */
async function removeEmptyFolders(folder: string, top: string): Promise<void> {
  for (let current = folder; ; current = path.dirname(current)) {
    try {
      await fs.rmdir(current);
    } catch {
      return;
    }
    if (current === top || path.dirname(current) === current) return;
  }
}

/** The local source to restore from: the source itself, or the chain an offsite URL names, downloaded, decrypted and checked. */
export function localSourceFrom(params: UrlSourceParams, context: StepContext, area: Area): Promise<LocalSource> {
  return localSourceThrough(params.source, params, context, area, {
    pointInTime: params.pointInTime,
    // Only for a URL: a restore from a folder neither needs nor checks the decryption settings.
    decrypt: isOffsiteUrl(params.source) ? decrypterFrom(params, context) : undefined,
    open: () => (require('../readers') as typeof import('../readers')).openOffsiteReader,
  });
}

/** A database restore's source (Restore SQL Database, Test Latest Backup): a manifest, file or folder on this worker. */
export async function databaseSourceFrom(params: UrlSourceParams, context: StepContext): Promise<string> {
  return (await localSourceFrom(params, context, 'database')).source;
}
