// A second, lighter face of the offsite engine (as standby/agreement is of standby), for the database
// restores: importing the main face would bundle the S3 client too. Their one call for an offsite source: an Azure Blob URL becomes a local
// folder (the chain downloaded to the download folder and checked); anything else is returned
// as it is. Azure only: their templates carry the SQL driver, and with it the S3 client does not
// fit the 700 KB budget (the Azure SDK shares @azure/core-* and @azure/identity with tedious).
import { ParameterError } from '../../../runtime/errors';
import type { StepContext } from '../../../runtime/step-context';
import { localSourceThrough } from '../local-source';
import { isOffsiteUrl, type OffsiteTarget } from '../target';

export interface AzureSourceParams {
  source: string;
  pointInTime?: string;
  azureConnectionString: string;
  azureSasToken: string;
  offsiteStagingDirectory: string;
}

export async function databaseSourceFrom(params: AzureSourceParams, context: StepContext): Promise<string> {
  if (!isOffsiteUrl(params.source)) return params.source;
  const noS3 = { region: '', endpoint: '', pathStyle: false, requestChecksums: 'WhenSupported', accessKeyId: '', secretAccessKey: '' };
  const local = await localSourceThrough(
    params.source,
    { ...noS3, azureConnectionString: params.azureConnectionString, azureSasToken: params.azureSasToken, offsiteStagingDirectory: params.offsiteStagingDirectory },
    context,
    'database',
    {
      pointInTime: params.pointInTime,
      accept: (target) => {
        if (target.kind === 's3') {
          throw new ParameterError([
            '"Backup to restore" (OctopusDr.Restore.Source) is an S3 URL, and this step takes Azure Blob URLs only (the S3 client does not fit in its ' +
              'template beside the SQL driver): run "Octopus DR - Fetch Backups from Offsite" first (What to fetch: Database) and set "Backup to restore" ' +
              'to its DatabaseSource output.',
          ]);
        }
      },
      open: () => {
        const { openAzureStore } = require('../azure-store') as typeof import('../azure-store');
        return (target: OffsiteTarget) => openAzureStore(target as Extract<OffsiteTarget, { kind: 'azure' }>);
      },
    },
  );
  return local.source;
}
