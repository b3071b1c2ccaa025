// Where a step's text goes. Tests pass their own sink; steps use the process streams.
export interface OutputSink {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is an interactive terminal (progress bars redraw in place). */
  readonly isTTY: boolean;
}

/** Typographic characters our messages use, and their ASCII spelling. */
const ASCII_SPELLING: Record<string, string> = {
  '\u2026': '...',
  '\u2013': '-',
  '\u2014': '-',
  '\u2018': "'",
  '\u2019': "'",
  '\u201C': '"',
  '\u201D': '"',
  '\u2192': '->',
  '\u00D7': 'x',
  '\u2264': '<=',
  '\u2265': '>=',
  '\u00A0': ' ',
};

/**
 * Text in a form that survives any code page: our typographic characters spelled in ASCII, every other
 * non-ASCII character (a name, a path) written as `<U+00E9>` (`<` and `>` cannot occur in a Windows
 * path, so the form is unambiguous there).
 */
export function asciiSafe(text: string): string {
  return text.replace(/[^\x00-\x7F]/gu, (character) => ASCII_SPELLING[character] ?? `<U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`);
}

/**
 * Whether the output must be ASCII. On Windows, Calamari reads a script's output in the OEM code page
 * (SilentProcessRunner sets StandardOutputEncoding from GetCPInfoEx(CP_OEMCP), for powershell.exe, pwsh
 * and bash alike), so UTF-8 from node arrives garbled and characters outside the OEM code page cannot
 * arrive at all; only ASCII is read back unchanged. Service messages are base64 and unaffected.
 * OCTOPUSDR_ASCII_OUTPUT=1 forces it (e.g. a consumer that decodes with a legacy code page), 0 turns it off.
 */
export function needsAsciiOutput(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): boolean {
  if (env.OCTOPUSDR_ASCII_OUTPUT === '1') return true;
  if (env.OCTOPUSDR_ASCII_OUTPUT === '0') return false;
  return platform === 'win32' && Boolean(env.OCTOPUSDR_RUNNER);
}

const ASCII_NOTE =
  'Note: characters outside ASCII are written as <U+XXXX> (Unicode code points), because Octopus reads the output of a script on Windows in the OEM code page.\n';

/**
 * Writes text through `asciiSafe`; with `explain`, says once what the form means, after the first line
 * that used it (stdout only: Octopus logs stderr lines as errors).
 */
export function asciiWriter(write: (text: string) => void, explain: boolean): (text: string) => void {
  let noteDue = false;
  let noted = false;
  return (text) => {
    const safe = asciiSafe(text);
    if (explain && !noted && /<U\+[0-9A-F]{4,6}>/.test(safe) && safe !== text) noteDue = true;
    write(safe);
    if (noteDue && !noted && safe.endsWith('\n')) {
      noted = true;
      write(ASCII_NOTE);
    }
  };
}

const asciiOutput = needsAsciiOutput(process.env, process.platform);

/**
 * Writes to standard error until its reader goes away, then drops what follows. Without a listener
 * Node throws EPIPE as an uncaught error, which killed a step half-way through its work, its cleanup
 * not run; now the work goes on, and its exit code says how it ended.
 */
function stderrWriter(stream: NodeJS.WriteStream): (text: string) => void {
  let closed = false;
  stream.on('error', () => {
    closed = true;
  });
  return (text) => {
    if (!closed && !stream.destroyed) stream.write(text);
  };
}

/**
 * Writes to standard output. When its reader goes away (EPIPE: `| head`, a pager closed, a `tee`
 * killed) what follows is dropped: nothing is said on the other stream, since the error arrives a
 * moment after the write and a note would land after a failure's last line. Any other failure (a
 * redirect to a full disk: ENOSPC; EIO) means nobody reads the run's output any more, although someone
 * would: so it is said once on standard error, and every line whose write failed, and all that
 * follows, goes there instead, so the summary and the output variables are not lost.
 */
function stdoutWriter(stream: NodeJS.WriteStream, fallback: (text: string) => void): (text: string) => void {
  // The first error decides: the writes that follow it fail as "destroyed", which says nothing new.
  let firstError: { code?: string; message: string } | undefined;
  let failedOver = false;
  const noteError = (error: Error): void => {
    firstError ??= { code: (error as NodeJS.ErrnoException).code, message: error.message };
  };
  stream.on('error', noteError);
  const failOver = (text: string): void => {
    if (!firstError || firstError.code === 'EPIPE') return;
    if (!failedOver) {
      failedOver = true;
      fallback(`Standard output could not be written (${firstError.message}); the rest of this run's output is written here, to standard error.\n`);
    }
    if (text !== '') fallback(text);
  };
  return (text) => {
    if (failedOver) return fallback(text);
    if (firstError || stream.destroyed) return failOver(text);
    stream.write(text, (error) => {
      if (!error) return;
      noteError(error);
      failOver(text);
    });
  };
}

const writeStderr = stderrWriter(process.stderr);
const writeStdout = stdoutWriter(process.stdout, writeStderr);

export const processSink: OutputSink = {
  stdout: asciiOutput ? asciiWriter(writeStdout, true) : writeStdout,
  stderr: asciiOutput ? asciiWriter(writeStderr, false) : writeStderr,
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
