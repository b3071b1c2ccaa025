// The one call a restore step makes at its start: a local source is returned as it is; an
// offsite URL is turned into a local folder (the chosen set, and what its chain needs,
// downloaded, decrypted when it was encrypted, and checked), which the step then restores from as
// usual. The store is opened by the caller's `open`, loaded only for a URL: restore-source.ts
// (Fetch) and url-source/ (the restores) both open readers, with no upload code.
import type { ParameterDefinition } from '../../../templates/model';
import { OFFSITE_MINIMUM_NODE_MAJOR, offsiteUrl } from '../../../templates/offsite-parameters';
import { restoreSource } from '../../../templates/parameters';
import { howToSet } from '../../runtime/parameters';
import { ParameterError, StepFailure } from '../../runtime/errors';
import { formatBytes } from '../../runtime/format';
import type { StepContext } from '../../runtime/step-context';
import type { Area } from './sets';
import { splitSourceUrl, stageFromOffsite, type Decrypt } from './stage';
import type { OffsiteReader } from './store';
import { isOffsiteUrl, offsiteTargetFrom, secretPartsOf, type OffsiteSettings, type OffsiteTarget } from './target';

export interface OffsiteRestoreParams extends Omit<OffsiteSettings, 'offsiteUrl'> {
  offsiteStagingDirectory: string;
}

export interface LocalSource {
  /** A manifest or folder on this worker. */
  source: string;
  /** True when it was downloaded from offsite. */
  fromOffsite: boolean;
}

export interface LocalSourceOptions {
  pointInTime?: string;
  decrypt?: Decrypt;
  /** Loads the SDK and returns the store opener; called only for a URL (the SDKs need Node 20, a local restore runs on 18). */
  open: () => (target: OffsiteTarget) => OffsiteReader;
  /** The parameter that holds the URL, named in its problems: *Backup to restore* unless said otherwise. */
  urlParameter?: ParameterDefinition;
}

/**
 * The offsite target a source URL names, and the set named at its end, checked without touching the
 * network: no credentials or query in the URL (checked whole, before any part of it can appear in a
 * message), a set of this area.
 */
export function offsiteSourceOf(
  source: string,
  params: OffsiteRestoreParams,
  area: Area,
  options: Pick<LocalSourceOptions, 'urlParameter'> = {},
): { target: OffsiteTarget; setName?: string } {
  const named = options.urlParameter ?? restoreSource;
  withUrlNamedAs(named, () => offsiteTargetFrom({ ...params, offsiteUrl: source.trim() }));
  const { rootUrl, setName } = withUrlNamedAs(named, () => splitSourceUrl(source, area));
  // Store errors name the parameter the user set: *Backup to restore* in a restore, "Offsite URL" in Fetch.
  const target = { ...withUrlNamedAs(named, () => offsiteTargetFrom({ ...params, offsiteUrl: rootUrl })), urlLabel: `"${named.label}" (${named.name})` };
  return { target, setName };
}

/** What a restore from a URL needs before anything is opened: a download folder, and Node.js 20 for the SDKs. */
export function requireDownloadFolderAndNode(params: Pick<OffsiteRestoreParams, 'offsiteStagingDirectory'>): void {
  if (!params.offsiteStagingDirectory) {
    throw new ParameterError([
      `"Download folder" (OctopusDr.Offsite.StagingDirectory) is required when "Backup to restore" is an offsite URL: set it in the step, or --download-directory on the command line.`,
    ]);
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major < OFFSITE_MINIMUM_NODE_MAJOR) {
    throw new StepFailure(
      `Restoring from an offsite URL needs Node.js ${OFFSITE_MINIMUM_NODE_MAJOR} or newer (the storage SDKs do), and this is Node.js ${process.versions.node}. ` +
        `Run the step with a newer node (Node.js executable, OctopusDr.NodePath), or download the backup first with Octopus DR - Fetch Backups from Offsite and restore from its folder.`,
    );
  }
}

export async function localSourceThrough(
  source: string,
  params: OffsiteRestoreParams,
  context: StepContext,
  area: Area,
  options: LocalSourceOptions,
): Promise<LocalSource> {
  if (!isOffsiteUrl(source)) return { source, fromOffsite: false };
  const { target, setName } = offsiteSourceOf(source, params, area, options);
  for (const part of secretPartsOf(target)) context.setSecret(part);
  requireDownloadFolderAndNode(params);
  const store = options.open()(target);
  try {
    const started = Date.now();
    const result = await stageFromOffsite({
      store,
      area,
      stagingDirectory: params.offsiteStagingDirectory,
      setName,
      pointInTime: options.pointInTime || undefined,
      decrypt: options.decrypt,
      onProgress: (done, total) => context.progress(total > 0 ? (done / total) * 100 : 100, `Downloaded ${formatBytes(done)} of ${formatBytes(total)} from offsite`),
    }, context);
    const seconds = (Date.now() - started) / 1000;
    context.log.info(
      `Downloaded ${result.sets.join(' + ')} from ${target.display} (${formatBytes(result.downloadedBytes)} in ${seconds.toFixed(1)} s` +
        `${result.reusedFiles ? `, ${result.reusedFiles} file(s) already in the download folder` : ''}); every SHA-256 matches. Restoring from ${result.localSource}.`,
    );
    return { source: result.localSource, fromOffsite: true };
  } finally {
    store.close();
  }
}

/** The target checks name "Offsite URL"; in a restore the URL arrived as *Backup to restore*, so they name that. */
function withUrlNamedAs<T>(parameter: ParameterDefinition, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof ParameterError) || parameter.name === offsiteUrl.name) throw error;
    throw new ParameterError([
      error.message
        .split(howToSet(offsiteUrl)).join(howToSet(parameter))
        .split(`"${offsiteUrl.label}"`).join(`"${parameter.label}"`),
    ]);
  }
}
