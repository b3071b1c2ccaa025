// The SqlClient transport: .NET System.Data.SqlClient in a PowerShell helper (sqlclient-helper.ps1,
// embedded in the bundle and unpacked beside it), so Integrated Security signs in as the worker's
// own Windows identity. One helper per process serves every open connection (sessions) over a
// line-based JSON protocol on stdin/stdout; the connection string travels on stdin only.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sqlConnectionString } from '../../../templates/parameters';
import type { SqlConnectionSettings } from './connection-string';
import { scrub, SqlError, type SqlServerMessage } from './errors';
import type { TypedParam } from './params';
import type { RunningStatement, SqlTransport, TransportInfo, TransportResult } from './transport';

declare const OCTOPUS_DR_SQLCLIENT_HELPER: string | undefined;

const HELPER_FILE = 'sqlclient-helper.ps1';

export interface SqlClientOptions {
  connectionString: string;
  cancelTimeoutMs?: number;
  /** `host[\instance][,port]`, for messages. */
  server: string;
  /** Scrubbed from anything the helper prints. */
  secrets: readonly string[];
}

/** The helper process ended while a request was outstanding. */
export class HelperExitedError extends Error {
  readonly code = 'ECONNCLOSED';
  constructor(message: string) {
    super(message);
    this.name = 'HelperExitedError';
  }
}

interface HelperMessage {
  id: number;
  t: 'opened' | 'closed' | 'done' | 'info' | 'columns' | 'row' | 'count' | 'error';
  [key: string]: unknown;
}

interface HelperError extends HelperMessage {
  cancelled: boolean;
  open: boolean;
  kind?: string;
  messages: { number: number; message: string; state: number; class: number; lineNumber?: number; procName?: string | null }[];
  text: string;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** Where the helper script is: the source file in development, else unpacked from the bundle. */
function helperScriptPath(): string {
  if (typeof OCTOPUS_DR_SQLCLIENT_HELPER !== 'string') return path.join(__dirname, HELPER_FILE);
  const text = OCTOPUS_DR_SQLCLIENT_HELPER;
  const name = `octopus-dr-sqlclient-${createHash('sha256').update(text).digest('hex').slice(0, 12)}.ps1`;
  const unpack = (folder: string): string => {
    const target = path.join(folder, name);
    if (existsSync(target) && readFileSync(target, 'utf8') === text) return target;
    // Temporary name, then rename: a concurrent run never reads a half-written script.
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, target);
    return target;
  };
  try {
    return unpack(__dirname);
  } catch {
    // The bundle's folder is read-only: a private temporary folder, removed when the step ends.
    const folder = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-sqlclient-'));
    process.once('exit', () => rmSync(folder, { recursive: true, force: true }));
    return unpack(folder);
  }
}

/** Windows PowerShell 5.1 (always there on Windows), else PowerShell 7 (`pwsh`). */
export function findPowerShell(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  const windows = platform === 'win32';
  const names = windows ? ['powershell.exe', 'pwsh.exe'] : ['pwsh'];
  const folders = (env.PATH ?? env.Path ?? '').split(windows ? ';' : ':').filter(Boolean);
  if (windows && env.SystemRoot) folders.push(path.win32.join(env.SystemRoot, 'System32', 'WindowsPowerShell', 'v1.0'));
  for (const name of names) {
    for (const folder of folders) {
      const candidate = (windows ? path.win32 : path.posix).join(folder, name);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

class Helper {
  private static current: Helper | undefined;
  private readonly child: ChildProcess;
  private readonly handlers = new Map<number, (message: HelperMessage) => void>();
  private readonly exitHandlers = new Map<number, (error: HelperExitedError) => void>();
  private nextId = 1;
  private sessions = 0;
  private buffer = '';
  private stderr = '';
  private exited: HelperExitedError | undefined;

  static get(secrets: readonly string[]): Helper {
    if (!Helper.current || Helper.current.exited) Helper.current = new Helper();
    // Every connection's secrets are scrubbed from what the shared helper prints.
    Helper.current.secrets.push(...secrets);
    return Helper.current;
  }

  /** For tests: the helper's process id while one runs. */
  static get pid(): number | undefined {
    return Helper.current && !Helper.current.exited ? Helper.current.child.pid : undefined;
  }

  private readonly secrets: string[] = [];

  private constructor() {
    const powershell = findPowerShell();
    if (!powershell) {
      throw new SqlError(
        'configuration',
        'Integrated Security (and OCTOPUSDR_SQL_TRANSPORT=sqlclient) runs .NET SqlClient in PowerShell, but no PowerShell was found on this worker ' +
          `(${process.platform === 'win32' ? 'powershell.exe or pwsh.exe' : 'pwsh'} on the PATH). Install PowerShell 7 (https://aka.ms/powershell), ` +
          `or put a SQL Server login in the "${sqlConnectionString.label}" parameter (User ID=<login>;Password=<password>).`,
      );
    }
    const script = helperScriptPath();
    this.child = spawn(powershell, ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
      // Its own process group off Windows, so stopping it also stops what a launcher started
      // (the dotnet-tool `pwsh` is a shim that runs pwsh.dll as its child).
      detached: process.platform !== 'win32',
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.receive(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    this.child.stdin!.on('error', () => undefined); // a dead helper is reported by 'close'
    this.child.on('error', (error) => this.fail(`could not be started (${error.message})`));
    this.child.on('close', (code, signal) => this.fail(signal ? `was stopped by ${signal}` : `exited with code ${code}`));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private fail(how: string): void {
    if (this.exited) return;
    const output = scrub(this.stderr.replace(/\x1b\[[0-9;]*m/g, '').trim(), this.secrets);
    this.exited = new HelperExitedError(
      `The .NET SqlClient helper (PowerShell, process ${this.child.pid ?? '?'}) ${how} while a statement was outstanding; ` +
        'what SQL Server did with that statement is unknown. Check what stopped it (a killed process, antivirus, out of memory), then run the step again' +
        (output ? `. Its last output: ${output.slice(-1000)}` : '.'),
    );
    const waiting = [...this.exitHandlers.values()];
    this.handlers.clear();
    this.exitHandlers.clear();
    for (const reject of waiting) reject(this.exited);
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (!line) continue;
      let message: HelperMessage;
      try {
        message = JSON.parse(line) as HelperMessage;
      } catch {
        continue; // not protocol output (a host warning); stderr keeps diagnostics
      }
      this.handlers.get(message.id)?.(message);
    }
  }

  /** Sends a request; `onMessage` sees every reply with its id until `finish` is called. */
  request(body: Record<string, unknown>, onMessage: (message: HelperMessage, finish: () => void) => void, onExit: (error: HelperExitedError) => void): number {
    const id = this.nextId++;
    if (this.exited) {
      queueMicrotask(() => onExit(this.exited!));
      return id;
    }
    const finish = () => {
      this.handlers.delete(id);
      this.exitHandlers.delete(id);
      this.maybeEnd();
    };
    this.handlers.set(id, (message) => onMessage(message, finish));
    this.exitHandlers.set(id, onExit);
    this.send({ ...body, id });
    return id;
  }

  send(body: Record<string, unknown>): void {
    if (!this.exited) this.child.stdin!.write(`${JSON.stringify(body)}\n`);
  }

  sessionOpened(): void {
    this.sessions++;
  }

  sessionClosed(): void {
    this.sessions--;
    this.maybeEnd();
  }

  /** No session and nothing outstanding: end of input lets the helper exit, so Node can too. */
  private maybeEnd(): void {
    if (this.sessions <= 0 && this.handlers.size === 0 && !this.exited) {
      this.child.stdin!.end();
      if (Helper.current === this) Helper.current = undefined;
    }
  }

  kill(): void {
    try {
      if (process.platform !== 'win32' && this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
      else this.child.kill();
    } catch {
      this.child.kill();
    }
  }
}

/** For tests: the running helper's process id. */
export function sqlClientHelperPid(): number | undefined {
  return Helper.pid;
}

let nextSession = 1;

export class SqlClientTransport implements SqlTransport {
  readonly name = 'sqlclient' as const;
  readonly loginMessages: SqlServerMessage[] = [];
  private helper: Helper | undefined;
  private readonly session = nextSession++;
  private openState: 'new' | 'open' | 'closed' = 'new';

  constructor(
    private readonly settings: SqlConnectionSettings,
    private readonly options: SqlClientOptions,
  ) {}

  async open(): Promise<void> {
    if (this.settings.encrypt === 'strict') {
      throw new SqlError(
        'configuration',
        'Encrypt=Strict (TDS 8) is not available in .NET System.Data.SqlClient, which serves Integrated Security. Use Encrypt=True with a certificate the worker trusts.',
      );
    }
    const helper = Helper.get(this.options.secrets);
    this.helper = helper;
    helper.sessionOpened();
    try {
      await new Promise<void>((resolve, reject) => {
        helper.request(
          {
            op: 'open',
            session: this.session,
            cs: b64(this.options.connectionString),
            database: b64(this.settings.database),
            app: b64(this.settings.applicationName),
            encrypt: this.settings.encrypt === true,
            trust: this.settings.trustServerCertificate,
          },
          (message, finish) => {
            finish();
            if (message.t === 'opened') resolve();
            else reject(this.openFailure(message as HelperError));
          },
          reject,
        );
      });
      this.openState = 'open';
    } catch (error) {
      this.openState = 'closed';
      helper.sessionClosed();
      throw error;
    }
  }

  /** A failed open, shaped so the shared translation (SqlConnection.translate) explains it. */
  private openFailure(reply: HelperError): unknown {
    // .NET puts stack frames into some messages (GSSAPI): keep the sentences, drop the frames.
    const sentences = reply.text.split(/\r?\n/).filter((line) => !/^\s+at /.test(line));
    const text = scrub(sentences.join(' ').trim(), this.options.secrets);
    const serverMessages = reply.messages.filter((m) => m.number > 0 && m.class >= 11 && m.class <= 16);
    if (serverMessages.length) {
      this.loginMessages.push(...serverMessages.map((m) => ({ number: m.number, message: m.message, state: m.state, class: m.class })));
      return Object.assign(new Error(text), { code: 'ELOGIN' });
    }
    if (/^(ArgumentException|KeyNotFoundException|FormatException|InvalidOperationException)$/.test(reply.kind ?? '')) {
      return new SqlError('configuration', `.NET SqlClient refused the connection string: ${text}`);
    }
    if (this.settings.authentication.kind === 'integrated' && /SSPI|Kerberos|GSSAPI|Negotiate|NTLM|integrated|trusted/i.test(text)) {
      return new SqlError(
        'login',
        `Signing in to SQL Server ${this.options.server} as this worker's Windows identity (Integrated Security) failed: ${text} ` +
          'Run the worker (Tentacle service or the user running the CLI) as a domain account that has a login on the server, and check that the server\'s SPN is registered (setspn -L <service account>); ' +
          'off Windows, obtain a Kerberos ticket first (kinit). Or use a SQL Server login (User ID=<login>;Password=<password>).',
        { code: 'ESSPI' },
      );
    }
    if (/certificate|SSL|TLS|encrypt/i.test(text)) return Object.assign(new Error(text), { code: 'EENCRYPT' });
    return Object.assign(new Error(text), { code: 'ESOCKET' });
  }

  run(sql: string, params: ReadonlyMap<string, TypedParam>, onInfo: (info: TransportInfo) => void): RunningStatement {
    const helper = this.helper;
    if (!helper || this.openState !== 'open') {
      return { done: Promise.reject(Object.assign(new Error('The connection is closed.'), { code: 'ECONNCLOSED' })), cancel: () => undefined };
    }
    let id = 0;
    let cancelTimer: NodeJS.Timeout | undefined;
    const done = new Promise<TransportResult>((resolve, reject) => {
      const recordsets: Record<string, unknown>[][] = [];
      const rowsAffected: number[] = [];
      let names: string[] = [];
      id = helper.request(
        { op: 'run', session: this.session, sql: b64(sql), params: [...params].map(([name, p]) => encodeParam(name, p)) },
        (message, finish) => {
          switch (message.t) {
            case 'info':
              onInfo({ number: Number(message.number), message: String(message.message), class: Number(message.class), state: Number(message.state) });
              return;
            case 'columns':
              names = message.names as string[];
              recordsets.push([]);
              return;
            case 'row':
              recordsets[recordsets.length - 1].push(rowOf(names, message.values as unknown[]));
              return;
            case 'count':
              rowsAffected.push(Number(message.n));
              return;
            case 'done':
              finish();
              resolve({ recordsets, rowsAffected });
              return;
            case 'error': {
              finish();
              const reply = message as HelperError;
              if (!reply.open) this.markClosed();
              reject(statementFailure(reply));
              return;
            }
          }
        },
        reject,
      );
    }).finally(() => clearTimeout(cancelTimer));
    return {
      done,
      cancel: () => {
        helper.send({ op: 'cancel', id });
        // SqlClient waits for the server's acknowledgement. If the statement is still running well
        // after that (e.g. managed SNI off Windows cannot send the attention while it waits for a
        // silent server), the helper is stopped: the server then ends the session's request.
        cancelTimer ??= setTimeout(() => helper.kill(), Math.max(2_000, 2 * (this.options.cancelTimeoutMs ?? 5_000)));
      },
    };
  }

  private markClosed(): void {
    if (this.openState !== 'open') return;
    this.openState = 'closed';
    this.helper?.sessionClosed();
  }

  async close(): Promise<void> {
    const helper = this.helper;
    if (!helper || this.openState !== 'open') return;
    await new Promise<void>((resolve) => helper.request({ op: 'close', session: this.session }, (_m, finish) => (finish(), resolve()), () => resolve()));
    this.markClosed();
  }
}

/** Mirrors mssql's shapes: the last server error on top, the earlier ones in precedingErrors. */
function statementFailure(reply: HelperError): unknown {
  if (reply.cancelled) return Object.assign(new Error('Canceled.'), { code: reply.open ? 'ECANCEL' : 'ECONNCLOSED' });
  const shaped = reply.messages.map((m) =>
    Object.assign(new Error(m.message), { number: m.number, state: m.state, class: m.class, lineNumber: m.lineNumber, procName: m.procName ?? undefined }),
  );
  // A broken connection (transport-level errors, severity 20 and up) is a lost connection, not a server answer.
  if (!reply.open && reply.messages.every((m) => m.class >= 20)) return Object.assign(new Error(reply.text), { code: 'ECONNCLOSED' });
  const top = shaped.pop();
  if (!top) return Object.assign(new Error(reply.text), { code: reply.open ? 'EREQUEST' : 'ECONNCLOSED' });
  return Object.assign(top, { code: reply.open ? 'EREQUEST' : 'ECONNCLOSED', precedingErrors: shaped });
}

function encodeParam(name: string, p: TypedParam): Record<string, unknown> {
  const t = p.sqlType as { type: string; length?: number; precision?: number; scale?: number };
  const v = p.value;
  let value: string | null;
  if (v === null) value = null;
  else if (Buffer.isBuffer(v)) value = v.toString('base64');
  // tedious sends dates as UTC wall-clock time (useUTC); so does this.
  else if (v instanceof Date) value = b64(`${v.toISOString().slice(0, 23)}0000`);
  else if (typeof v === 'boolean') value = b64(v ? '1' : '0');
  else value = b64(String(v));
  return { name, type: t.type, length: t.length ?? null, precision: t.precision ?? null, scale: t.scale ?? null, value };
}

/** The helper's tagged values -> what tedious returns for the same column types. */
function valueOf(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const text = raw.slice(1);
  switch (raw[0]) {
    case 'S':
      return Buffer.from(text, 'base64').toString('utf8');
    case 'B':
      return Buffer.from(text, 'base64');
    case 'I':
      return text; // bigint: a string, as tedious returns it
    case 'D':
      return Number(text); // numeric: a number, as tedious returns it (cast LSNs to varchar)
    case 'T':
      return new Date(`${text.slice(0, 23)}Z`);
    case 'O':
      return new Date(text);
    default:
      return text; // G: uniqueidentifier, upper case as tedious returns it
  }
}

function rowOf(names: string[], values: unknown[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  names.forEach((name, i) => {
    const value = valueOf(values[i]);
    if (!(name in row)) row[name] = value;
    else row[name] = Array.isArray(row[name]) ? [...(row[name] as unknown[]), value] : [row[name], value];
  });
  return row;
}
