// Runs a step in the test's own process, as its bundle runs it: the template and function that
// steps/<id>/main.ts hands to main(), through runStep() with our argv, env and an in-memory sink.
// What still needs a real process (a signal, another pid holding a lock, a working directory, a
// different user or Node.js) runs the built bundle instead: test/helpers/bundle.ts.
import { MemorySink } from '../../steps/runtime/console-output';
import type { StepFunction } from '../../steps/runtime/run-step';
import type { ParameterDefinition, StepTemplate } from '../../templates/model';

const RUN_STEP = '../../steps/runtime/run-step';

type AnyTemplate = StepTemplate<Record<string, ParameterDefinition>>;
type AnyStep = StepFunction<Record<string, ParameterDefinition>>;

interface EntryPoint {
  template: AnyTemplate;
  step: AnyStep;
}

const entryPoints = new Map<string, EntryPoint>();
/** Set by the stand-in main(); module-level, because Jest builds a mock once and keeps it. */
let recorded: EntryPoint | undefined;

/**
 * What steps/<stepId>/main.ts passes to main(): loaded with main() swapped for a recorder, so the
 * tests run exactly the entry point the bundle is built from, whatever the step's files are called.
 */
export function entryPointOf(stepId: string): EntryPoint {
  const known = entryPoints.get(stepId);
  if (known) return known;
  recorded = undefined;
  jest.doMock(RUN_STEP, () => ({
    ...jest.requireActual(RUN_STEP),
    main: (template: AnyTemplate, step: AnyStep) => {
      recorded = { template, step };
    },
  }));
  try {
    require(`../../steps/${stepId}/main`);
  } finally {
    jest.dontMock(RUN_STEP);
  }
  const entryPoint = recorded as EntryPoint | undefined;
  if (!entryPoint) throw new Error(`steps/${stepId}/main.ts did not call main(template, step) when loaded (was it loaded before, outside entryPointOf?)`);
  entryPoints.set(stepId, entryPoint);
  return entryPoint;
}

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface InProcessOptions {
  /** The step's whole environment (nothing from process.env is added; runStep reads only this). */
  env?: NodeJS.ProcessEnv;
  /** Sees all stdout so far after each write, as a child's 'data' events would. */
  onStdout?: (stdout: string) => void;
  signal?: AbortSignal;
}

/** Runs `stepId` with a command line (`--service-messages` etc. as the caller gives) and returns what it printed. */
export async function runStepInProcess(stepId: string, argv: string[], options: InProcessOptions = {}): Promise<InProcessRun> {
  const { template, step } = entryPointOf(stepId);
  const { runStep } = jest.requireActual(RUN_STEP) as typeof import('../../steps/runtime/run-step');
  const sink = new MemorySink();
  const observed = options.onStdout
    ? Object.assign(sink, {
        stdout(text: string) {
          sink.out += text;
          options.onStdout!(sink.out);
        },
      })
    : sink;
  const code = await runStep(template, step, {
    argv,
    env: { ...options.env },
    sink: observed,
    handleSignals: false,
    signal: options.signal,
    program: `node ${stepId}.js`,
  });
  return { code, stdout: sink.out, stderr: sink.err };
}
