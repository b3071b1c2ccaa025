// A second, lighter face of the offsite engine (as standby/agreement is of standby), for the database
// restores: importing the main face would bundle the S3 client too. Their one call for an offsite source: an Azure Blob URL becomes a local
// folder (the chain downloaded to the download folder and checked); anything else is returned
// as it is. Azure only: their templates carry the SQL driver, and with it the S3 client does not
// fit the 700 KB budget (the Azure SDK shares @azure/core-* and @azure/identity with tedious).
import { promises as fs } from 'node:fs';
import { offsiteStagingDirectory } from '../../../../templates/offsite-parameters';
import { ParameterError } from '../../../runtime/errors';
import { howToSet } from '../../../runtime/parameters';
import type { StepContext } from '../../../runtime/step-context';
import { localSourceThrough, offsiteSourceOf, requireDownloadFolderAndNode } from '../local-source';
import { isOffsiteUrl, type OffsiteTarget } from '../target';

export interface AzureSourceParams {
  source: string;
  pointInTime?: string;
  azureConnectionString: string;
  azureSasToken: string;
  offsiteStagingDirectory: string;
}

function onlyAzure(target: OffsiteTarget): void {
  if (target.kind === 's3') {
    throw new ParameterError([
      '"Backup to restore" (OctopusDr.Restore.Source) is an S3 URL, and this step takes Azure Blob URLs only (the S3 client does not fit in its ' +
        'template beside the SQL driver): run "Octopus DR - Fetch Backups from Offsite" first (What to fetch: Database) and set "Backup to restore" ' +
        'to its DatabaseSource output.',
    ]);
  }
}

/**
 * Where a database restore's backups will be on this worker, found without touching the network, so
 * that every local path is checked (exit 2) before anything is downloaded: the source itself, or for
 * an offsite URL (checked) the download folder, created if missing.
 */
export async function plannedDatabaseSource(params: AzureSourceParams): Promise<string> {
  if (!isOffsiteUrl(params.source)) return params.source;
  offsiteSourceOf(params.source, offsiteParamsOf(params), 'database', { accept: onlyAzure });
  requireDownloadFolderAndNode(params);
  await fs.mkdir(params.offsiteStagingDirectory, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new ParameterError([`"${offsiteStagingDirectory.label}" ${params.offsiteStagingDirectory} cannot be created (${error.code ?? error.message}): ${howToSet(offsiteStagingDirectory)}, as a folder this worker can write to.`]);
  });
  return params.offsiteStagingDirectory;
}

/** The offsite settings of a database restore: Azure only. */
function offsiteParamsOf(params: AzureSourceParams) {
  const noS3 = { region: '', endpoint: '', pathStyle: false, requestChecksums: 'WhenSupported', accessKeyId: '', secretAccessKey: '' };
  return { ...noS3, azureConnectionString: params.azureConnectionString, azureSasToken: params.azureSasToken, offsiteStagingDirectory: params.offsiteStagingDirectory };
}

export async function databaseSourceFrom(params: AzureSourceParams, context: StepContext): Promise<string> {
  if (!isOffsiteUrl(params.source)) return params.source;
  const local = await localSourceThrough(
    params.source,
    offsiteParamsOf(params),
    context,
    'database',
    {
      pointInTime: params.pointInTime,
      accept: onlyAzure,
      open: () => {
        const { openAzureStore } = require('../azure-store') as typeof import('../azure-store');
        return (target: OffsiteTarget) => openAzureStore(target as Extract<OffsiteTarget, { kind: 'azure' }>);
      },
    },
  );
  return local.source;
}
