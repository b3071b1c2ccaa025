import type { maintenanceMode as template } from '../../templates/maintenance-mode';
import type { ParameterValues } from '../../templates/model';
import { connectToOctopus, normaliseServerUrl, OctopusApiError } from '../shared/octopus/connection';
import { getMaintenanceConfiguration, listRunningTasks, setMaintenanceMode, type ServerTaskSummary } from '../shared/octopus/maintenance';
import { ParameterError, StepFailure } from '../shared/runtime/errors';
import type { StepContext } from '../shared/runtime/step-context';
import { toolVersion } from '../shared/runtime/version';

type Params = ParameterValues<typeof template.params>;

const API_KEY_SOURCE = 'the "Octopus API key" parameter (OctopusDr.Octopus.ApiKey), or OCTOPUSDR_OCTOPUS_APIKEY / --api-key-file on the command line';

/** Poll quickly at first (most drains are short), then back off to every 10 seconds. */
function nextPollDelay(previousMs: number): number {
  return Math.min(10_000, Math.round(previousMs * 1.5));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function describeTasks(tasks: readonly ServerTaskSummary[]): string {
  const shown = tasks.slice(0, 10).map((t) => `${t.Id} (${t.Description || t.Name}, ${t.State})`);
  return shown.join(', ') + (tasks.length > shown.length ? ` and ${tasks.length - shown.length} more` : '');
}

export async function runMaintenanceMode(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  const url = normaliseServerUrl(params.serverUrl);
  if ('problem' in url) throw new ParameterError([`"Octopus Server URL": ${url.problem}.`]);
  const wantOn = params.mode === 'On';

  const fail = (error: unknown): never => {
    if (error instanceof OctopusApiError) throw new StepFailure(error.message, { cause: error });
    throw error;
  };
  const connection = await connectToOctopus({
    serverUrl: url.url,
    apiKey: params.apiKey,
    userAgentApp: `octopus-dr/${toolVersion} maintenance-mode`,
    apiKeySource: API_KEY_SOURCE,
  }).catch(fail);
  log.verbose(`Connected to Octopus Server ${connection.version} at ${connection.serverUrl}.`);
  context.throwIfCancelled();

  const current = await getMaintenanceConfiguration(connection, API_KEY_SOURCE).catch(fail);
  const previous = current.IsInMaintenanceMode ? 'On' : 'Off';
  // Recorded before any change, so a final "restore" step has it even if this step fails later.
  context.setOutput('PreviousMaintenanceMode', previous);

  if (current.IsInMaintenanceMode === wantOn) {
    log.info(`Maintenance mode is already ${previous}; nothing to change.`);
  } else {
    context.throwIfCancelled();
    await setMaintenanceMode(connection, current, wantOn, API_KEY_SOURCE).catch(fail);
    log.highlight(`Maintenance mode turned ${params.mode} (it was ${previous}).`);
  }
  context.setOutput('MaintenanceMode', params.mode);
  context.setOutput('Changed', current.IsInMaintenanceMode === wantOn ? 'False' : 'True');

  const timeoutMinutes = params.drainTimeoutMinutes ?? 0;
  if (!wantOn || timeoutMinutes === 0) {
    context.result(`Maintenance mode is ${params.mode} (was ${previous}).`);
    return;
  }

  const currentTaskId = params.currentTaskId.trim();
  if (!currentTaskId) log.verbose('Not running under Octopus (no current task id): every executing task counts.');
  const deadline = Date.now() + timeoutMinutes * 60_000;
  let delay = 1000;
  let waitedMessage = '';
  for (;;) {
    context.throwIfCancelled();
    const others = (await listRunningTasks(connection, API_KEY_SOURCE).catch(fail)).filter((t) => t.Id !== currentTaskId);
    if (others.length === 0) break;
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) {
      throw new StepFailure(
        `${others.length} task(s) still executing after ${timeoutMinutes} minute(s): ${describeTasks(others)}. ` +
          `Maintenance mode is ${params.mode}; the runbook's final step puts back the previous mode. ` +
          `Wait for or cancel those tasks, or raise "Drain timeout (minutes)" (OctopusDr.Octopus.DrainTimeoutMinutes).`,
      );
    }
    const message = `Waiting for ${others.length} executing task(s) to finish: ${describeTasks(others)}`;
    if (message !== waitedMessage) log.info(message);
    waitedMessage = message;
    const waitedFraction = 1 - remainingMs / (timeoutMinutes * 60_000);
    context.progress(waitedFraction * 100, `Draining: ${others.length} task(s) executing`);
    await sleep(Math.min(delay, remainingMs), context.signal);
    delay = nextPollDelay(delay);
  }
  log.info('No other task is executing.');
  context.result(`Maintenance mode is ${params.mode} (was ${previous}); no other task is executing.`);
}
