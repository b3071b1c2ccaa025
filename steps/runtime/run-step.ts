// Runs one step: reads parameters (from a runner's environment, or the command line), sets up
// the context, handles cancel (SIGTERM from Octopus, Ctrl+C), reports failure as a result
// message, and returns the exit code. It never calls process.exit() with output pending.
import * as path from 'node:path';
import type { ParameterDefinition, ParameterValues, StepTemplate } from '../../templates/model';
import { environmentNameOf } from '../../templates/model';
import { helpText, parseCommandLine } from './cli';
import { processSink, type OutputSink } from './console-output';
import { CancelledError, ParameterError, StepFailure } from './errors';
import { exitCodeOf, failureMessage } from './failure';
import { parseParameters, takeParametersFromEnvironment, type RawParameters } from './parameters';
import { connectionStringProblems, knownSecrets, secretsInValues } from './secret-values';
import { StepContext } from './step-context';
import { toolVersion } from './version';

/** Set by the generated PowerShell and Bash runners. */
export const RUNNER_ENVIRONMENT_VARIABLE = 'OCTOPUSDR_RUNNER';

export type StepFunction<Ps extends Record<string, ParameterDefinition>> = (
  params: ParameterValues<Ps>,
  context: StepContext,
) => Promise<void>;

export interface RunOptions {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  sink?: OutputSink;
  /** Listen for SIGINT/SIGTERM (off in in-process tests, which pass `signal` instead). */
  handleSignals?: boolean;
  signal?: AbortSignal;
  /** How long a cancelled step may take to wind down before cleanup runs regardless. */
  cancelGraceMs?: number;
  program?: string;
}

export async function runStep<Ps extends Record<string, ParameterDefinition>>(
  template: StepTemplate<Ps>,
  step: StepFunction<Ps>,
  options: RunOptions = {},
): Promise<number> {
  const env = options.env ?? process.env;
  const sink = options.sink ?? processSink;
  const underRunner = env[RUNNER_ENVIRONMENT_VARIABLE] !== undefined;
  const program = options.program ?? `node ${path.basename(process.argv[1] ?? `${template.stepId}.js`)}`;

  let raw: RawParameters;
  let serviceMessages = underRunner;
  let verbose = false;
  let deprecations: string[] = [];
  if (underRunner) {
    raw = takeParametersFromEnvironment(template.parameters, env);
  } else {
    let invocation;
    try {
      invocation = parseCommandLine(template, options.argv ?? process.argv.slice(2), env);
    } catch (error) {
      sink.stderr(`ERROR: ${failureMessage(error, template.name)}\n`);
      return exitCodeOf(error);
    }
    if (invocation.help) {
      sink.stdout(helpText(template, program));
      return 0;
    }
    if (invocation.version) {
      sink.stdout(`octopus-dr ${toolVersion}\n`);
      return 0;
    }
    raw = invocation.raw;
    serviceMessages = invocation.serviceMessages;
    verbose = invocation.verbose;
    deprecations = invocation.warnings;
    // The CLI read secrets from the environment too; keep them from child processes.
    for (const p of template.parameters) if (p.type === 'secret') delete env[environmentNameOf(p.name)];
  }

  const controller = new AbortController();
  if (options.signal) {
    if (options.signal.aborted) controller.abort(options.signal.reason);
    else options.signal.addEventListener('abort', () => controller.abort(options.signal!.reason), { once: true });
  }
  const context = new StepContext({ sink, serviceMessages, verbose, signal: controller.signal });

  // Mask secrets before anything else is printed: each whole value, and the secrets inside
  // (a connection string's password, client secret, token) on their own.
  for (const p of template.parameters) {
    const value = raw[p.name];
    if (p.type === 'secret' && value) {
      context.setSecret(value);
      if (value.trim() !== value) context.setSecret(value.trim());
    }
  }
  const secrets = knownSecrets(template.parameters, raw);
  for (const secret of secrets) for (const part of secret.parts) context.setSecret(part);
  for (const deprecation of deprecations) context.log.warn(deprecation);

  let signalCount = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signalCount += 1;
    if (signalCount === 1) {
      context.log.warn(`${signal} received: cancelling and cleaning up...`);
      controller.abort(new CancelledError(signal));
    }
  };
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  let exitCode = 0;
  try {
    const refused = [...secretsInValues(template, raw, secrets), ...connectionStringProblems(template, raw)];
    if (refused.length > 0) throw new ParameterError(refused);
    const params = parseParameters(template, raw);
    context.log.verbose(`octopus-dr ${toolVersion}, ${template.name}, Node.js ${process.version} on ${process.platform}-${process.arch}`);
    const running = step(params, context);
    // A cancelled step gets a grace period to stop on its own; then cleanup runs regardless.
    const grace = new Promise<'timeout'>((resolve) => {
      const start = () => {
        const timer = setTimeout(() => resolve('timeout'), options.cancelGraceMs ?? 20_000);
        running.finally(() => clearTimeout(timer)).catch(() => undefined);
      };
      if (controller.signal.aborted) start();
      else controller.signal.addEventListener('abort', start, { once: true });
    });
    const outcome = await Promise.race([running.then(() => 'done' as const), grace]);
    if (outcome === 'timeout') throw controller.signal.reason;
    if (controller.signal.aborted) throw controller.signal.reason;
  } catch (error) {
    const failure = controller.signal.aborted && !(error instanceof StepFailure && !(error instanceof CancelledError))
      ? (controller.signal.reason as StepFailure)
      : error;
    exitCode = exitCodeOf(failure);
    const finished = failure instanceof CancelledError ? context.finishedBeforeCancel : undefined;
    const message = failureMessage(failure, template.name) + (finished ? ` ${finished}` : '');
    context.log.error(message);
    if (!(failure instanceof StepFailure) && failure instanceof Error && failure.stack) context.log.verbose(failure.stack);
    context.result(message);
  } finally {
    await context.runCleanups();
    if (handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  return exitCode;
}

/** The entry point of a bundled step: run, set the exit code, let the output drain. */
export function main<Ps extends Record<string, ParameterDefinition>>(template: StepTemplate<Ps>, step: StepFunction<Ps>): void {
  // Node exits, with code 0, when nothing is left to wait for, even while a promise is pending:
  // a step stuck on work that no longer exists (a lost callback, a thread that was let go) would
  // then end green without a last line. It ends as a failure instead.
  let settled = false;
  const stuck = () => {
    if (settled) return;
    settled = true;
    processSink.stderr(
      `ERROR: ${template.name} stopped before it finished: it was waiting for work that no longer exists (an internal error). ` +
        'Nothing it was doing can be taken as done; run it again, with --verbose, and report this if it persists.\n',
    );
    process.exitCode = 1;
  };
  process.once('beforeExit', stuck);
  runStep(template, step).then(
    (code) => {
      settled = true;
      process.off('beforeExit', stuck);
      process.exitCode = code;
      // Sockets or timers a cancelled step left behind must not keep the process alive;
      // wait for stdout and stderr to drain before leaving.
      const leave = () => process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
      const timer = setTimeout(leave, 2000);
      timer.unref();
      // The step has ended and said how: a cancel now (runStep no longer listens) would otherwise
      // kill the process by the signal's default action, and a finished, complete run would end
      // as killed (no exit code) instead of with its own.
      process.once('SIGINT', leave);
      process.once('SIGTERM', leave);
    },
    (error) => {
      settled = true;
      process.off('beforeExit', stuck);
      // runStep failed before its context could report (it catches everything a step throws):
      // still one last line that says what failed, through the same ASCII-safe sink, without a stack.
      const reason = error instanceof Error ? error.message : String(error);
      processSink.stderr(`ERROR: ${template.name} could not start: ${reason} Run it again with --verbose, and report this if it persists.\n`);
      process.exitCode = 1;
    },
  );
}
