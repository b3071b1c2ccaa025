/**
 * A failure the user can act on: its message is the step's result message, reported by runStep as
 * it is. Every domain error (SqlError, RestorePlanError, OffsiteError, ...) extends it, so there is
 * one way to fail and no step translates an engine's errors.
 */
export class StepFailure extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StepFailure';
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Bad input: names the parameter by its label and says how to fix it. */
export class ParameterError extends StepFailure {
  constructor(problems: string[]) {
    super(
      problems.length === 1
        ? problems[0]
        : `${problems.length} parameters need attention:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { exitCode: 2 },
    );
    this.name = 'ParameterError';
  }
}

/** The step was cancelled (Octopus cancel, Ctrl+C). */
export class CancelledError extends StepFailure {
  constructor(signal: string) {
    super(`Cancelled (${signal}); cleanup has run.`, { exitCode: signal === 'SIGINT' ? 130 : 143 });
    this.name = 'CancelledError';
  }
}

export const EXIT_CODES = [
  { code: 0, meaning: 'Success.' },
  { code: 1, meaning: 'A check or operation failed; the result message says which and why.' },
  { code: 2, meaning: 'A parameter is missing or invalid.' },
  { code: 130, meaning: 'Cancelled by Ctrl+C (SIGINT).' },
  { code: 143, meaning: 'Cancelled by Octopus (SIGTERM).' },
] as const;
