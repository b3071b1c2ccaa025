// The friendly API a step uses: logging, output variables, secrets, artifacts, progress,
// cancellation and cleanup. It speaks service messages under an Octopus runner and plain,
// human-readable text on the command line.
import { statSync } from 'node:fs';
import * as path from 'node:path';
import type { OutputSink } from './console-output';
import type { EngineContext } from './engine-context';
import { startPhase, type Phase } from './phase';
import { Redactor, REDACTED } from './redactor';
import { serviceMessages } from './service-messages';

export interface StepLogger {
  info(message: string): void;
  verbose(message: string): void;
  highlight(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface OutputVariable {
  name: string;
  value: string;
  sensitive: boolean;
}

export type Cleanup = () => void | Promise<void>;

export interface StepContextOptions {
  sink: OutputSink;
  /** Emit Octopus service messages (under a runner, or `--service-messages`). */
  serviceMessages: boolean;
  /** Show verbose lines on the command line (`--verbose`). Under Octopus they are always sent, as verbose. */
  verbose?: boolean;
  signal?: AbortSignal;
  now?: () => number;
}

export class StepContext {
  readonly log: StepLogger;
  readonly signal: AbortSignal;
  readonly outputs: OutputVariable[] = [];
  readonly artifacts: string[] = [];
  private readonly redactor = new Redactor();
  private readonly cleanups: Cleanup[] = [];
  private readonly sink: OutputSink;
  private readonly useServiceMessages: boolean;
  private readonly showVerbose: boolean;
  private readonly now: () => number;
  private lastProgress = { percent: -1, message: '', at: 0 };
  private progressLineOpen = false;
  private finishedWork: string | undefined;

  constructor(options: StepContextOptions) {
    this.sink = options.sink;
    this.useServiceMessages = options.serviceMessages;
    this.showVerbose = options.verbose ?? false;
    this.signal = options.signal ?? new AbortController().signal;
    this.now = options.now ?? Date.now;
    this.log = {
      info: (m) => this.line('default', m),
      verbose: (m) => this.line('verbose', m),
      highlight: (m) => this.line('highlight', m),
      warn: (m) => this.line('warning', m),
      error: (m) => this.line('error', m),
    };
  }

  get underOctopus(): boolean {
    return this.useServiceMessages;
  }

  /** Registers a secret: Octopus masks it in the task log and we redact it from all our output. */
  setSecret(value: string): void {
    if (!this.redactor.add(value)) return;
    if (this.useServiceMessages) this.sink.stdout(serviceMessages.mask(value) + '\n');
  }

  redact(text: string): string {
    return this.redactor.redact(text);
  }

  setOutput(name: string, value: string | number | boolean, options: { sensitive?: boolean } = {}): void {
    const text = String(value);
    const sensitive = options.sensitive ?? false;
    if (sensitive) this.setSecret(text);
    this.outputs.push({ name, value: text, sensitive });
    if (this.useServiceMessages) {
      // Redact non-sensitive values too: a derived secret must never reach a variable by accident.
      this.sink.stdout(serviceMessages.setVariable(name, sensitive ? text : this.redact(text), sensitive) + '\n');
    } else {
      this.line('verbose', `output ${name} = ${sensitive ? REDACTED : this.redact(text)}`);
    }
  }

  /** Attaches a file to the Octopus task (never a file holding secrets: artifacts are not masked). */
  createArtifact(filePath: string, name = path.basename(filePath)): void {
    const absolute = path.resolve(filePath);
    const length = statSync(absolute).size;
    this.artifacts.push(absolute);
    if (this.useServiceMessages) this.sink.stdout(serviceMessages.createArtifact(absolute, name, length) + '\n');
    else this.line('default', `Artifact: ${absolute}`);
  }

  /** Progress bar in Octopus; a redrawn line on a terminal; occasional lines otherwise. */
  progress(percent: number, message: string): void {
    const whole = Math.max(0, Math.min(100, Math.floor(percent)));
    const text = this.redact(message);
    const now = this.now();
    const last = this.lastProgress;
    const changed = whole !== last.percent || text !== last.message;
    if (!changed) return;
    if (this.useServiceMessages) {
      if (whole !== 100 && now - last.at < 1000 && whole - last.percent < 5) return;
      this.sink.stdout(serviceMessages.progress(whole, text) + '\n');
    } else if (this.sink.isTTY) {
      const width = 30;
      const filled = Math.round((whole / 100) * width);
      this.sink.stdout(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(whole).padStart(3)}% ${text}\x1b[K`);
      this.progressLineOpen = whole < 100;
      if (whole === 100) this.sink.stdout('\n');
    } else {
      if (whole !== 100 && Math.floor(whole / 10) === Math.floor(last.percent / 10) && now - last.at < 10_000) return;
      this.sink.stdout(`${String(whole).padStart(3)}% ${text}\n`);
    }
    this.lastProgress = { percent: whole, message: text, at: now };
  }

  /**
   * A phase that reports no progress of its own (RESTORE VERIFYONLY, reading headers, CHECKDB):
   * it is logged, becomes the Octopus progress message, and while it lasts a line every
   * `everyMs` says it is still running, so no phase is silent for long. `update` names the
   * current sub-phase; call `stop` when it is done.
   */
  phase(message: string, percent: number, everyMs = 5000): Phase {
    return startPhase(this, message, percent, everyMs, this.now);
  }

  /** Runs on success, failure and cancel, last registered first. Returns a function that unregisters it. */
  /**
   * Says what this run has already finished and kept (a backup set renamed into place), so that a
   * cancel arriving after it does not read as "nothing was done": the cancel's last line adds this
   * sentence. Each call replaces the last; say also what did not run.
   */
  finished(sentence: string): void {
    this.finishedWork = sentence;
  }

  /** The last sentence given to finished(), if any. */
  get finishedBeforeCancel(): string | undefined {
    return this.finishedWork;
  }

  onCleanup(cleanup: Cleanup): () => void {
    this.cleanups.push(cleanup);
    return () => {
      const index = this.cleanups.indexOf(cleanup);
      if (index >= 0) this.cleanups.splice(index, 1);
    };
  }

  async runCleanups(): Promise<void> {
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop()!;
      try {
        await cleanup();
      } catch (error) {
        this.log.warn(`Cleanup failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  throwIfCancelled(): void {
    if (this.signal.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new Error('Cancelled');
  }

  /** The final result message: Octopus shows it as the step's summary. */
  result(message: string): void {
    if (this.useServiceMessages) this.sink.stdout(serviceMessages.resultMessage(this.redact(message)) + '\n');
  }

  private line(level: 'default' | 'verbose' | 'highlight' | 'warning' | 'error', message: string): void {
    const text = this.redact(message);
    if (this.progressLineOpen) {
      this.sink.stdout('\n');
      this.progressLineOpen = false;
    }
    if (this.useServiceMessages) {
      if (level === 'default') this.sink.stdout(text + '\n');
      else {
        this.sink.stdout(
          `${serviceMessages.stdoutLevel(level)}\n${text}\n${serviceMessages.stdoutLevel('default')}\n`,
        );
      }
      return;
    }
    switch (level) {
      case 'verbose':
        if (this.showVerbose) this.sink.stdout(text + '\n');
        break;
      case 'warning':
        this.sink.stderr(`WARNING: ${text}\n`);
        break;
      case 'error':
        this.sink.stderr(`ERROR: ${text}\n`);
        break;
      default:
        this.sink.stdout(text + '\n');
    }
  }
}

// StepContext is the engines' context as it is (checked here, so a change to either is caught).
const _stepContextIsAnEngineContext = (context: StepContext): EngineContext => context;
void _stepContextIsAnEngineContext;
