import { maintenanceMode as template } from '../../templates/maintenance-mode';
import { environmentNameOf, type ParameterValues } from '../../templates/model';
import {
  connectToOctopus,
  getCurrentUser,
  getMaintenanceConfiguration,
  listRunningTasks,
  normaliseServerUrl,
  setMaintenanceMode,
  type MaintenanceConfiguration,
  type OctopusConnection,
  type ServerTaskSummary,
} from '../engines/octopus';
import { StepFailure } from '../runtime/errors';
import { exitCodeOf, failureMessage } from '../runtime/failure';
import { quoteValue } from '../runtime/parameters';
import type { StepContext } from '../runtime/step-context';
import { toolVersion } from '../runtime/version';

type Params = ParameterValues<typeof template.params>;

const { apiKey, drainTimeoutMinutes, onlyIfSetByThisRun, serverUrl } = template.params;
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

/** The work's result, or undefined as soon as the signal aborts (the work's late failure is then ignored). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve(undefined);
        else reject(error);
      },
    );
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
  let others: ServerTaskSummary[] = [];
  for (;;) {
    // A cancel does not wait for a slow answer (up to the request timeout): it returns what was last seen.
    const listed = await untilAborted(listRunningTasks(connection, API_KEY_SOURCE), options.signal);
    if (listed === undefined) return others;
    others = listed.filter((t) => t.Id !== options.currentTaskId);
    const remainingMs = deadline - Date.now();
    if (others.length === 0 || remainingMs <= 0 || options.signal.aborted) return others;
    options.onWait?.(others, 1 - remainingMs / options.timeoutMs);
    await sleep(Math.min(delay, remainingMs), options.signal);
    delay = nextPollDelay(delay);
  }
}

/** How long turning maintenance mode back off may take after a cancel (runStep's grace period is 20 s). */
const PUT_BACK_TIMEOUT_MS = 10_000;

/** " (set by admin at 2026-12-01T01:30:00Z)", or "" when Octopus does not say. */
function setterOf(configuration: MaintenanceConfiguration): string {
  const by = typeof configuration.LastModifiedBy === 'string' && configuration.LastModifiedBy.trim() !== '' ? configuration.LastModifiedBy.trim() : '';
  const on = typeof configuration.LastModifiedOn === 'string' && configuration.LastModifiedOn.trim() !== '' ? configuration.LastModifiedOn.trim() : '';
  if (by && on) return ` (set by ${by} at ${on})`;
  if (by) return ` (set by ${by})`;
  if (on) return ` (set at ${on})`;
  return '';
}

/** The two ways to turn maintenance mode off by hand, for a last line that leaves it on. */
export function howToTurnOff(serverUrl: string): string {
  return (
    'To turn it off: in Octopus, Configuration > Maintenance, switch maintenance mode off; or with the API, ' +
    `PUT ${serverUrl}/api/maintenanceconfiguration with the body {"IsInMaintenanceMode": false} and the header ` +
    'X-Octopus-ApiKey of a user with the AdministerSystem permission (or run this step with --maintenance-mode Off).'
  );
}

/**
 * Whether maintenance mode that is already On was left by an earlier octopus-dr run: the API key's
 * user turned it on last, that user is a service account (nobody signs in as it, so no person set
 * it in the web UI), and no other task is executing (so no run that is still going owns it). Any
 * doubt (Octopus does not say who set it, the user cannot be read) answers no.
 */
async function leftOverByEarlierRun(
  connection: OctopusConnection,
  configuration: MaintenanceConfiguration,
  othersExecuting: readonly ServerTaskSummary[],
): Promise<{ leftOver: boolean; why: string }> {
  const by = typeof configuration.LastModifiedBy === 'string' ? configuration.LastModifiedBy.trim() : '';
  if (!by) return { leftOver: false, why: 'Octopus does not say who turned it on' };
  let user;
  try {
    user = await getCurrentUser(connection, API_KEY_SOURCE);
  } catch (error) {
    return { leftOver: false, why: `the API key's user could not be read (${failureMessage(error, template.name)})` };
  }
  if (by !== user.Username && by !== user.Id) return { leftOver: false, why: `${by} turned it on, not ${user.Username} (this API key's user)` };
  if (user.IsService !== true) {
    return {
      leftOver: false,
      why: `${by}, this API key's user, turned it on, but ${by} is a person's account (not a service account), so it may be that person's own maintenance window`,
    };
  }
  if (othersExecuting.length > 0) return { leftOver: false, why: `other tasks are executing and may own it: ${describeTasks(othersExecuting)}` };
  return { leftOver: true, why: `${by}, the service account of this API key, turned it on, and no other task is executing` };
}

/** The step that leaves maintenance mode, when the entering step did not set it: changes nothing and says what it leaves. */
async function leaveAsItIs(params: Params, context: StepContext, url: string, report: string): Promise<void> {
  const { log } = context;
  const reason =
    report.toLowerCase() === 'false'
      ? 'the entering step reports that this run did not set maintenance mode (it was already On, set by someone else, or the step turned it back off itself)'
      : `the entering step reported nothing ("${onlyIfSetByThisRun.label}" is ${quoteValue(report)}, not True): ` +
        'it failed before it read maintenance mode, or did not run';
  let state = '';
  let isOn: boolean | undefined;
  try {
    const connection = await connectToOctopus({ serverUrl: url, apiKey: params.apiKey, userAgentApp: `octopus-dr/${toolVersion} maintenance-mode`, apiKeySource: API_KEY_SOURCE });
    context.throwIfCancelled();
    const current = await getMaintenanceConfiguration(connection, API_KEY_SOURCE);
    isOn = current.IsInMaintenanceMode;
    state = `${isOn ? 'On' : 'Off'}${isOn ? setterOf(current) : ''}`;
    context.setOutput('PreviousMaintenanceMode', isOn ? 'On' : 'Off');
    context.setOutput('MaintenanceMode', isOn ? 'On' : 'Off');
  } catch (error) {
    context.throwIfCancelled();
    state = `unknown: it could not be read (${failureMessage(error, template.name)})`;
  }
  context.setOutput('Changed', 'False');
  const message = `Maintenance mode not changed: ${reason}. It is left as it is: ${state}.`;
  if (isOn === false) {
    log.info(message);
    context.result(message);
    return;
  }
  // On, or unknown: the one case where deployments may stay blocked, so it is a warning with the way out.
  const full = `${message} If nobody should be holding it on: ${howToTurnOff(url).replace(/^To turn it off: /, '')}`;
  log.warn(full);
  context.result(full);
}

export async function runMaintenanceMode(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  // parseParameters has checked the URL against the definition's format.
  const url = normaliseServerUrl(params.serverUrl);
  if ('problem' in url) throw new StepFailure(`"${serverUrl.label}": ${url.problem}.`, { exitCode: 2 });
  const wantOn = params.mode === 'On';
  const report = params.onlyIfSetByThisRun.trim();
  if (report !== '' && report.toLowerCase() !== 'true') {
    await leaveAsItIs(params, context, url.url, report);
    return;
  }
  if (report !== '') log.info(`The entering step reports that this run set maintenance mode: turning it ${params.mode}.`);

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
  // Recorded before any change: who reads it knows what this step found.
  context.setOutput('PreviousMaintenanceMode', previous);

  if (!wantOn) {
    await turnOff(connection, current, context, url.url);
    return;
  }

  let changed = false;
  let configuration = current;
  let was = current.IsInMaintenanceMode ? `On${setterOf(current)}` : 'Off';
  if (current.IsInMaintenanceMode) {
    log.info(`Maintenance mode is already On${setterOf(current)}; nothing to change.`);
    context.finished(`Maintenance mode is On, as it was before this run${setterOf(current)}; this run did not change it.`);
  } else {
    context.throwIfCancelled();
    configuration = await setMaintenanceMode(connection, current, true, API_KEY_SOURCE);
    changed = true;
    // The runbook's leaving step turns it off only when this says True; set before anything else can fail.
    context.setOutput('SetByThisRun', 'True');
    log.highlight('Maintenance mode turned On (it was Off).');
    context.finished(`Maintenance mode is On: this run turned it on and could not turn it back off before the cancel ended it. ${howToTurnOff(url.url)}`);
  }
  context.setOutput('MaintenanceMode', 'On');
  context.setOutput('Changed', changed ? 'True' : 'False');
  if (!changed) context.setOutput('SetByThisRun', 'False');

  try {
    context.throwIfCancelled();
    const timeoutMinutes = params.drainTimeoutMinutes ?? 0;
    let othersExecuting: ServerTaskSummary[] | undefined;
    if (timeoutMinutes > 0) othersExecuting = await drain(connection, params, context, timeoutMinutes);
    context.throwIfCancelled();

    if (!changed) {
      // Decided after the drain: a run that was still going and owned maintenance mode has ended by now.
      const after = await abortable(getMaintenanceConfiguration(connection, API_KEY_SOURCE), context);
      if (!after.IsInMaintenanceMode) {
        // Turned off while this step waited (by the run that owned it): this run needs it, and owns it now.
        configuration = await setMaintenanceMode(connection, after, true, API_KEY_SOURCE);
        changed = true;
        context.setOutput('SetByThisRun', 'True');
        context.setOutput('Changed', 'True');
        log.highlight(`Maintenance mode turned On again: it was turned off while this step waited${setterOf(after)}.`);
        was = `${previous}, then turned off while this step waited; turned on again`;
        context.finished(`Maintenance mode is On: this run turned it on and could not turn it back off before the cancel ended it. ${howToTurnOff(url.url)}`);
      } else {
        othersExecuting ??= (await abortable(listRunningTasks(connection, API_KEY_SOURCE), context)).filter((t) => t.Id !== params.currentTaskId.trim());
        const verdict = await abortable(leftOverByEarlierRun(connection, after, othersExecuting), context);
        if (verdict.leftOver) {
          context.setOutput('SetByThisRun', 'True');
          log.warn(
            `Maintenance mode was already On${setterOf(after)}, left on by an earlier octopus-dr run (${verdict.why}): ` +
              'that run was cancelled or killed before it could turn it off, and deployments have been blocked since. ' +
              'This run takes it over, so that its leaving step turns it off.',
          );
          context.finished(`Maintenance mode is On: an earlier octopus-dr run left it on${setterOf(after)}, and the next run takes it over again. ${howToTurnOff(url.url)}`);
        } else {
          log.warn(
            `Maintenance mode was already On before this run${setterOf(after)}, and this run leaves it On at the end: ` +
              `it is not known to be a leftover of octopus-dr (${verdict.why}). If nobody is holding it on, deployments are blocked. ${howToTurnOff(url.url)}`,
          );
        }
      }
    }
    if (timeoutMinutes > 0) log.info('No other task is executing.');
  } catch (error) {
    if (!changed) {
      if (context.signal.aborted) throw error;
      throw new StepFailure(`${failureMessage(error, template.name)} Maintenance mode is On, as it was before this run${setterOf(current)}; this run did not change it.`, {
        exitCode: exitCodeOf(error),
        cause: error,
      });
    }
    const putBack = await turnBackOff(connection, configuration, context, url.url);
    if (context.signal.aborted) {
      context.finished(putBack);
      throw context.signal.reason instanceof Error ? context.signal.reason : error;
    }
    throw new StepFailure(`${failureMessage(error, template.name)} ${putBack}`, { exitCode: exitCodeOf(error), cause: error });
  }
  const timeoutMinutes = params.drainTimeoutMinutes ?? 0;
  const drained = timeoutMinutes > 0 ? '; no other task is executing' : '';
  context.result(`Maintenance mode is On (was ${was})${drained}.`);
  // Nothing awaits after this check, so a cancel cannot slip in between it and the step's end.
  context.throwIfCancelled();
}

/** The work's result; on a cancel, throws the cancel at once instead of waiting for a slow answer. */
async function abortable<T>(work: Promise<T>, context: StepContext): Promise<T> {
  const result = await untilAborted(work, context.signal);
  context.throwIfCancelled();
  return result as T;
}

/** Waits for other tasks; throws when some are still executing at the timeout. Returns those seen last (none). */
async function drain(connection: OctopusConnection, params: Params, context: StepContext, timeoutMinutes: number): Promise<ServerTaskSummary[]> {
  const { log } = context;
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
        `Wait for or cancel those tasks, or raise "${drainTimeoutMinutes.label}" (${drainTimeoutMinutes.name}).`,
    );
  }
  return stillRunning;
}

/**
 * Puts back Off what this step turned On, after a failure or cancel (a cancelled Octopus task runs no
 * later step, not even one that always runs). Returns the sentence for the last line.
 */
async function turnBackOff(connection: OctopusConnection, configuration: MaintenanceConfiguration, context: StepContext, url: string): Promise<string> {
  const stillOn = (why: string) => `Maintenance mode is still On: this run turned it on, and turning it back off failed (${why}). ${howToTurnOff(url)}`;
  // Said first, in case the attempt outlives a cancel's grace period.
  context.finished(stillOn('it did not finish in time'));
  try {
    await setMaintenanceMode({ ...connection, requestTimeoutMs: Math.min(connection.requestTimeoutMs, PUT_BACK_TIMEOUT_MS) }, configuration, false, API_KEY_SOURCE);
  } catch (error) {
    const sentence = stillOn(failureMessage(error, template.name).replace(/\.$/, ''));
    context.log.error(sentence);
    return sentence;
  }
  context.setOutput('SetByThisRun', 'False');
  context.setOutput('MaintenanceMode', 'Off');
  context.setOutput('Changed', 'False');
  const sentence = 'Maintenance mode was turned back Off: this run had turned it on.';
  context.log.highlight(sentence);
  return sentence;
}

/** Mode Off: turns it off when it is on. */
async function turnOff(connection: OctopusConnection, current: MaintenanceConfiguration, context: StepContext, url: string): Promise<void> {
  const { log } = context;
  context.setOutput('SetByThisRun', 'False');
  if (!current.IsInMaintenanceMode) {
    log.info('Maintenance mode is already Off; nothing to change.');
    context.setOutput('MaintenanceMode', 'Off');
    context.setOutput('Changed', 'False');
    context.result('Maintenance mode is Off (was Off).');
    return;
  }
  context.throwIfCancelled();
  try {
    await setMaintenanceMode(connection, current, false, API_KEY_SOURCE);
  } catch (error) {
    throw new StepFailure(`${failureMessage(error, template.name)} Maintenance mode is still On. ${howToTurnOff(url)}`, { exitCode: exitCodeOf(error), cause: error });
  }
  log.highlight(`Maintenance mode turned Off (it was On${setterOf(current)}).`);
  context.setOutput('MaintenanceMode', 'Off');
  context.setOutput('Changed', 'True');
  context.result('Maintenance mode is Off (was On).');
}
