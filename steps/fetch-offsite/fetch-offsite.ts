import type { fetchOffsite as template } from '../../templates/fetch-offsite';
import type { ParameterValues } from '../../templates/model';
import { decrypterFrom, isOffsiteUrl, localSourceFor } from '../engines/offsite';
import { ParameterError } from '../runtime/errors';
import { quoteValue } from '../runtime/parameters';
import { offsiteUrl } from '../../templates/offsite-parameters';
import type { StepContext } from '../runtime/step-context';

type Params = ParameterValues<typeof template.params>;

export async function fetchOffsiteStep(params: Params, context: StepContext): Promise<void> {
  if (!isOffsiteUrl(params.offsiteUrl)) {
    throw new ParameterError([`"Offsite URL" (OctopusDr.Offsite.Url) must be an s3://, https:// or (emulator) http:// URL, not ${quoteValue(params.offsiteUrl)}: set it in the step, or --offsite-url on the command line.`]);
  }
  const wanted = params.fetch;
  const decrypt = decrypterFrom(params, context);
  const fetched: string[] = [];
  if (wanted === 'Both' || wanted === 'Database') {
    const url = /\/file-store\/[^/]+\.manifest\.json$/.test(params.offsiteUrl) ? params.offsiteUrl.replace(/\/file-store\/[^/]+$/, '') : params.offsiteUrl;
    const local = await localSourceFor(url, params, context, 'database', { pointInTime: params.pointInTime, decrypt, urlParameter: offsiteUrl });
    context.setOutput('DatabaseSource', local.source);
    fetched.push(`database: ${local.source}`);
  }
  if (wanted === 'Both' || wanted === 'FileStore') {
    const url = /\/database\/[^/]+\.manifest\.json$/.test(params.offsiteUrl) ? params.offsiteUrl.replace(/\/database\/[^/]+$/, '') : params.offsiteUrl;
    const local = await localSourceFor(url, params, context, 'file-store', { decrypt, urlParameter: offsiteUrl });
    context.setOutput('FileStoreSource', local.source);
    fetched.push(`file store: ${local.source}`);
  }
  const summary = `Fetched from offsite and checked (every SHA-256 matches); restore from ${fetched.join('; ')}.`;
  context.log.highlight(summary);
  context.result(summary);
}
