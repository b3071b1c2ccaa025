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
 * Writes to a standard stream until its reader goes away (`| head`, a pager closed, a `tee` killed),
 * then drops what follows. Without a listener Node throws EPIPE as an uncaught error, which killed a
 * step half-way through its work, its cleanup not run; now the work goes on, and its exit code says
 * how it ended. Nothing is said on the other stream: the error arrives a moment after the write, so
 * a note would land after a failure's last line, which must stay last.
 */
function writerUntilClosed(stream: NodeJS.WriteStream): (text: string) => void {
  let closed = false;
  stream.on('error', () => {
    closed = true;
  });
  return (text) => {
    if (!closed && !stream.destroyed) stream.write(text);
  };
}

const writeStdout = writerUntilClosed(process.stdout);
const writeStderr = writerUntilClosed(process.stderr);

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
