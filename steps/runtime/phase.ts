// A phase that reports no progress of its own (RESTORE VERIFYONLY, reading headers, CHECKDB), for
// engines: StepContext.phase for an EngineContext. It is logged, becomes the progress message, and
// while it lasts a line every `everyMs` says it is still running, so no phase is silent for long.
import type { EngineContext } from './engine-context';

export interface Phase {
  /** Names the current sub-phase (also the progress message). */
  update(message: string): void;
  stop(): void;
}

export function startPhase(context: EngineContext, message: string, percent: number, everyMs = 5000, now: () => number = Date.now): Phase {
  let current = message;
  let since = now();
  context.log.info(`${message}...`);
  context.progress(percent, message);
  const timer = setInterval(() => {
    const seconds = Math.round((now() - since) / 1000);
    context.log.info(`  still ${current.charAt(0).toLowerCase()}${current.slice(1)} (${seconds} s)`);
    context.progress(percent, `${current} (${seconds} s)`);
  }, everyMs);
  timer.unref();
  return {
    update: (next) => {
      current = next;
      since = now();
      context.progress(percent, next);
    },
    stop: () => clearInterval(timer),
  };
}

/** The context of a phase's work: each line it logs also names what the phase is doing now. */
export function reportingThrough(context: EngineContext, phase: Phase): EngineContext {
  return {
    ...pick(context),
    log: {
      info: (message) => {
        context.log.info(message);
        phase.update(message);
      },
      verbose: (message) => context.log.verbose(message),
      warn: (message) => context.log.warn(message),
    },
  };
}

/** The context of work that is one stretch of a step: its 0-100 % becomes start..start+span %. */
export function progressWithin(context: EngineContext, start: number, span: number): EngineContext {
  return { ...pick(context), progress: (percent, message) => context.progress(start + (percent * span) / 100, message) };
}

function pick(context: EngineContext): EngineContext {
  return {
    log: context.log,
    signal: context.signal,
    progress: (percent, message) => context.progress(percent, message),
    onCleanup: (cleanup) => context.onCleanup(cleanup),
    setSecret: (value) => context.setSecret(value),
  };
}
