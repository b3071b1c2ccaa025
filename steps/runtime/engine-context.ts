// The one contract between a step and the domain engines below it (SQL access, database backup,
// file store, master key, Octopus API, offsite). An engine takes an EngineContext, never a
// StepContext, so it can be driven from a test, the benchmark or the demo without a task log;
// StepContext satisfies it as it is. Progress leaves an engine through this, as restic's archiver
// reports through callbacks, and an engine fails only by throwing a StepFailure (errors.ts) whose
// message the user can act on: runStep reports it as it is.
import type { Cleanup } from './step-context';

export interface EngineLog {
  info(message: string): void;
  verbose(message: string): void;
  warn(message: string): void;
}

export interface EngineContext {
  readonly log: EngineLog;
  /** Aborted on cancel (Octopus cancel, Ctrl+C): stop soon and throw. */
  readonly signal: AbortSignal;
  /** Overall progress of the step, 0..100, with a short message. */
  progress(percent: number, message: string): void;
  /** Runs on success, failure and cancel, last registered first; returns a function that unregisters it. */
  onCleanup(cleanup: Cleanup): () => void;
  /** Registers a secret for masking before anything derived from it can be logged. */
  setSecret(value: string): void;
}

/**
 * An EngineContext for callers without a task log (benchmarks, the demo, unit tests). They call
 * `runCleanups()` when done, as runStep does for a step: last registered first.
 */
export function quietEngineContext(overrides: Partial<EngineContext> = {}): EngineContext & { runCleanups(): Promise<void> } {
  const cleanups: Cleanup[] = [];
  return {
    log: { info: () => undefined, verbose: () => undefined, warn: () => undefined },
    signal: new AbortController().signal,
    progress: () => undefined,
    onCleanup: (cleanup) => {
      cleanups.push(cleanup);
      return () => {
        const index = cleanups.indexOf(cleanup);
        if (index >= 0) cleanups.splice(index, 1);
      };
    },
    setSecret: () => undefined,
    runCleanups: async () => {
      while (cleanups.length > 0) await cleanups.pop()!();
    },
    ...overrides,
  };
}
