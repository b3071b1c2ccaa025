// Where a step's text goes. Tests pass their own sink; steps use the process streams.
export interface OutputSink {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is an interactive terminal (progress bars redraw in place). */
  readonly isTTY: boolean;
}

export const processSink: OutputSink = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  get isTTY() {
    return Boolean(process.stdout.isTTY);
  },
};

/** Collects output in memory; for tests. */
export class MemorySink implements OutputSink {
  out = '';
  err = '';
  readonly isTTY = false;
  stdout(text: string): void {
    this.out += text;
  }
  stderr(text: string): void {
    this.err += text;
  }
}
