import { maintenanceMode as template } from '../../templates/maintenance-mode';
import { environmentNameOf, type ParameterValues } from '../../templates/model';
import {
  connectToOctopus,
  getMaintenanceConfiguration,
  listRunningTasks,
  normaliseServerUrl,
  setMaintenanceMode,
  type OctopusConnection,
  type ServerTaskSummary,
} from '../engines/octopus';
import { StepFailure } from '../runtime/errors';
import type { StepContext } from '../runtime/step-context';
import { toolVersion } from '../runtime/version';

type Params = ParameterValues<typeof template.params>;

const { apiKey, drainTimeoutMinutes, serverUrl } = template.params;
const API_KEY_SOURCE = `the "${apiKey.label}" parameter (${apiKey.name}), or ${environmentNameOf(apiKey.name)} / --${apiKey.flag}-file on the command line`;

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

export interface DrainOptions {
  /** The task running this step, which is not waited for ('' outside Octopus). */
  currentTaskId: string;
  timeoutMs: number;
  signal: AbortSignal;
  onWait?: (others: readonly ServerTaskSummary[], waitedFraction: number) => void;
  /** First poll interval; later polls back off to every 10 seconds. */
  firstPollMs?: number;
}

/** Waits until no task but the current one executes; returns the tasks still executing at the timeout (or on cancel). */
export async function waitForOtherTasks(connection: OctopusConnection, options: DrainOptions): Promise<ServerTaskSummary[]> {
  const deadline = Date.now() + options.timeoutMs;
  let delay = options.firstPollMs ?? 1000;
  for (;;) {
    const others = (await listRunningTasks(connection, API_KEY_SOURCE)).filter((t) => t.Id !== options.currentTaskId);
    const remainingMs = deadline - Date.now();
    if (others.length === 0 || remainingMs <= 0 || options.signal.aborted) return others;
    options.onWait?.(others, 1 - remainingMs / options.timeoutMs);
    await sleep(Math.min(delay, remainingMs), options.signal);
    delay = nextPollDelay(delay);
  }
}

export async function runMaintenanceMode(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  // parseParameters has checked the URL against the definition's format.
  const url = normaliseServerUrl(params.serverUrl);
  if ('problem' in url) throw new StepFailure(`"${serverUrl.label}": ${url.problem}.`, { exitCode: 2 });
  const wantOn = params.mode === 'On';

  // The engine's errors (OctopusApiError) are StepFailures: runStep reports them as they are.
  const connection = await connectToOctopus({
    serverUrl: url.url,
    apiKey: params.apiKey,
    userAgentApp: `octopus-dr/${toolVersion} maintenance-mode`,
    apiKeySource: API_KEY_SOURCE,
  });
  log.verbose(`Connected to Octopus Server ${connection.version} at ${connection.serverUrl}.`);
  context.throwIfCancelled();

  const current = await getMaintenanceConfiguration(connection, API_KEY_SOURCE);
  const previous = current.IsInMaintenanceMode ? 'On' : 'Off';
  // Recorded before any change, so a final "restore" step has it even if this step fails later.
  context.setOutput('PreviousMaintenanceMode', previous);

  if (current.IsInMaintenanceMode === wantOn) {
    log.info(`Maintenance mode is already ${previous}; nothing to change.`);
  } else {
    context.throwIfCancelled();
    await setMaintenanceMode(connection, current, wantOn, API_KEY_SOURCE);
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
  let waitedMessage = '';
  const stillRunning = await waitForOtherTasks(connection, {
    currentTaskId,
    timeoutMs: timeoutMinutes * 60_000,
    signal: context.signal,
    onWait: (others, waitedFraction) => {
      const message = `Waiting for ${others.length} executing task(s) to finish: ${describeTasks(others)}`;
      if (message !== waitedMessage) log.info(message);
      waitedMessage = message;
      context.progress(waitedFraction * 100, `Draining: ${others.length} task(s) executing`);
    },
  });
  context.throwIfCancelled();
  if (stillRunning.length > 0) {
    throw new StepFailure(
      `${stillRunning.length} task(s) still executing after ${timeoutMinutes} minute(s): ${describeTasks(stillRunning)}. ` +
        `Maintenance mode is ${params.mode}; the runbook's final step puts back the previous mode. ` +
        `Wait for or cancel those tasks, or raise "${drainTimeoutMinutes.label}" (${drainTimeoutMinutes.name}).`,
    );
  }
  log.info('No other task is executing.');
  context.result(`Maintenance mode is ${params.mode} (was ${previous}); no other task is executing.`);
}
