// Driver and server errors -> one error type with an actionable message. The server's own number
// and text are kept (DBAs search for them); secrets are scrubbed from every message we build.
import { StepFailure } from '../../runtime/errors';
import { redactAll } from '../../runtime/redactor';

export interface SqlServerMessage {
  number: number;
  message: string;
  state?: number;
  class?: number;
  lineNumber?: number;
  procName?: string;
}

export type SqlErrorKind =
  | 'configuration'
  | 'login'
  | 'connection'
  | 'server'
  | 'timeout'
  | 'cancelled'
  | 'identifier';

/** A SQL failure whose message says what to do; a configuration problem is bad input (exit 2). */
export class SqlError extends StepFailure {
  readonly kind: SqlErrorKind;
  /** The SQL Server error number of the root cause, if the server sent one. */
  readonly number?: number;
  /** Every message the server sent for this failure, root cause first. */
  readonly serverMessages: SqlServerMessage[];
  /** The driver's error code (ELOGIN, ESOCKET, ETIMEOUT, ECANCEL, EREQUEST, ...). */
  readonly code?: string;

  constructor(
    kind: SqlErrorKind,
    message: string,
    details: { number?: number; serverMessages?: SqlServerMessage[]; code?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause, exitCode: kind === 'configuration' ? 2 : 1 });
    this.name = 'SqlError';
    this.kind = kind;
    this.number = details.number;
    this.serverMessages = details.serverMessages ?? [];
    this.code = details.code;
  }
}

/** The same failure, with what was being done said first ("Cannot connect to SQL Server: ..."). */
export function sqlErrorWhile(what: string, error: SqlError): SqlError {
  const { number, serverMessages, code, cause } = error;
  return new SqlError(error.kind, `${what}: ${error.message}`, { number, serverMessages, code, cause });
}

/** What a hint may use to be specific. */
export interface ErrorContext {
  server: string;
  database?: string;
  userName?: string;
}

type Hint = (m: SqlServerMessage, context: ErrorContext) => string;

/** Keyed by SQL Server error number: what it means for the user and what to do. */
const HINTS: Record<number, Hint> = {
  18456: (_m, c) =>
    `SQL Server ${c.server} rejected the login${c.userName ? ` for '${c.userName}'` : ''}. Check User ID and Password in the connection string, ` +
    'that the login exists and is enabled, and that the server accepts SQL Server authentication (mixed mode) for SQL logins; ' +
    'the server error log has the reason (the state there says which).',
  18452: (_m, c) =>
    `SQL Server ${c.server} refused the Windows or Microsoft Entra sign-in${c.userName ? ` of '${c.userName}'` : ''}: the account's domain is not trusted by the server, ` +
    'or the server does not accept this kind of sign-in. Check the domain and user name, or use a SQL Server login (User ID=<login>;Password=<password>).',
  18470: (_m, c) => `The login${c.userName ? ` '${c.userName}'` : ''} is disabled on SQL Server ${c.server}. Enable it (ALTER LOGIN ... ENABLE) or use another login.`,
  18487: (_m, c) => `The password of${c.userName ? ` '${c.userName}'` : ' the login'} has expired on SQL Server ${c.server}. Change it, then update the connection string.`,
  18488: (_m, c) => `The password of${c.userName ? ` '${c.userName}'` : ' the login'} must be changed on SQL Server ${c.server} before it can be used. Change it, then update the connection string.`,
  4060: (_m, c) =>
    `Database '${c.database ?? '?'}' on ${c.server} does not exist or the login cannot open it. Check Database (Initial Catalog) ` +
    'in the connection string and that the login has a user in that database.',
  3201: () =>
    'SQL Server could not open the backup file. The path is opened by the SQL Server service on the server host (not by this worker): ' +
    'check that the folder exists there and that the SQL Server service account may write to it (operating system error 5 = access denied, 3 = path not found).',
  3013: () => 'The backup or restore was stopped by SQL Server.',
  3101: (_m, c) =>
    `Database '${c.database ?? '?'}' is in use, so SQL Server could not get exclusive access. Stop the Octopus Server nodes (and other clients) using it, then retry.`,
  3159: () =>
    'The database uses the FULL recovery model and the tail of its log has not been backed up. Back up the log first (BACKUP LOG ... WITH NORECOVERY), ' +
    'or explicitly opt in to replacing the existing database.',
  3154: () =>
    'The backup holds a different database than the one being restored over. Restore to a new database name, or explicitly opt in to replacing the existing database.',
  1844: () =>
    'This SQL Server edition (e.g. Express or Web) cannot compress backups. Turn backup compression off for this server.',
  3241: () => 'The backup file is damaged or not a SQL Server backup (its media family is invalid). Use another backup file.',
  3242: () => 'The backup file is damaged or not a SQL Server backup. Use another backup file.',
  3183: () => 'The backup file failed its integrity check (damaged during copy or storage). Use another backup file.',
  3132: () => 'The backup is striped over several files and not all were given. Pass every file of the backup set.',
  3102: () => 'A database cannot be restored while this connection uses it; connect to master (Initial Catalog=master).',
  3145: () => 'Point-in-time restore (STOPAT) needs the FULL or BULK_LOGGED recovery model.',
  3156: () => 'A database file would be restored onto a path that is not usable; relocate the files (MOVE) to the server\'s data and log folders.',
  3187: () => 'The backup was written without checksums, so it cannot be verified WITH CHECKSUM.',
  3021: () => 'BACKUP and RESTORE cannot run inside a transaction.',
  3117: () => 'The log or differential backup cannot be restored because the database was already recovered. Restore the full backup again WITH NORECOVERY.',
  4305: () => 'The log backups are not contiguous with what was restored before (a log backup is missing from the chain).',
  5030: (_m, c) => `Database '${c.database ?? '?'}' is in use. Stop the Octopus Server nodes (and other clients) using it, then retry.`,
  262: () => 'The login lacks the permission for this statement (backup needs sysadmin or db_owner/db_backupoperator; restore needs CREATE DATABASE or sysadmin).',
  229: () => 'The login lacks a permission this step needs on the database (see the server message for which).',
  208: () => 'An object the step expected does not exist (see the server message).',
  2812: () => 'A stored procedure the step expected does not exist on this server (see the server message).',
};

export function hintFor(number: number): ((m: SqlServerMessage, c: ErrorContext) => string) | undefined {
  return HINTS[number];
}

/** Removes every secret from text (the password, the whole connection string, ...), whatever its
 * letter case: a host-name lookup error quotes `Server=<value>` lower-cased. */
export function scrub(text: string, secrets: readonly string[]): string {
  return redactAll(text, secrets);
}

/** The root-cause-first list of server messages carried by an mssql RequestError. */
export function serverMessagesOf(error: unknown): SqlServerMessage[] {
  const e = error as {
    number?: number;
    message?: string;
    state?: number;
    class?: number;
    lineNumber?: number;
    procName?: string;
    precedingErrors?: unknown[];
    originalError?: { message?: string };
  };
  const toMessage = (x: typeof e): SqlServerMessage | undefined =>
    typeof x.number === 'number'
      ? { number: x.number, message: x.originalError?.message ?? x.message ?? '', state: Number(x.state), class: Number(x.class), lineNumber: x.lineNumber, procName: x.procName || undefined }
      : undefined;
  const list: SqlServerMessage[] = [];
  for (const p of e.precedingErrors ?? []) {
    const m = toMessage(p as typeof e);
    if (m) list.push(m);
  }
  const top = toMessage(e);
  if (top) list.push(top);
  return list;
}

/** Builds "<what to do> (SQL Server error N: <server text>; ...)" from server messages. */
export function describeServerMessages(messages: SqlServerMessage[], context: ErrorContext): { text: string; number?: number } {
  if (messages.length === 0) return { text: 'SQL Server reported an error without a message.' };
  // The root cause is the first message with a specific hint; 3013 ("terminating abnormally") is a follow-up.
  const root = messages.find((m) => HINTS[m.number] && m.number !== 3013) ?? messages[0];
  const hint = HINTS[root.number]?.(root, context);
  const server = messages.map((m) => `SQL Server error ${m.number}: ${m.message}`).join('; ');
  return { text: hint ? `${hint} (${server})` : server, number: root.number };
}

/** What a TLS hint needs to know about the connection. */
export interface TlsContext {
  server: string;
  encrypt: boolean | 'strict';
  trustServerCertificate: boolean;
  /** True while connecting and logging in (a dropped handshake means something else mid-statement). */
  connecting: boolean;
}

/**
 * A TLS problem in a driver's error text -> what to change; undefined when it is none. Shared by
 * both transports (tedious and System.Data.SqlClient word the same problems differently).
 */
export function describeTlsFailure(driverText: string, c: TlsContext): string | undefined {
  const t = driverText.toLowerCase();
  const installCa =
    'install the certificate authority that issued it on this worker (for Node.js, point NODE_EXTRA_CA_CERTS at its PEM file; on Windows, add it to the trusted root store)';
  if (/self[- ]signed|unable to (get|verify)|certificate (has expired|is not yet valid)|certificate chain|not trusted|untrusted|cert_untrusted|unknown ca/.test(t)) {
    return (
      `SQL Server ${c.server} presented a TLS certificate this worker does not trust (${driverText.trim()}). ` +
      (c.encrypt === 'strict'
        ? `With Encrypt=Strict the certificate is always checked: ${installCa}.`
        : `Either ${installCa}, or, on a network you trust, add TrustServerCertificate=True to the connection string.`)
    );
  }
  if (/hostname\/ip does not match|altnames|does not match certificate|certificate name|name mismatch/.test(t)) {
    return (
      `SQL Server ${c.server} presented a TLS certificate issued for another name (${driverText.trim()}). Use the name the certificate was issued for ` +
      `in Server=${c.encrypt === 'strict' ? '' : ', or, on a network you trust, add TrustServerCertificate=True to the connection string'}.`
    );
  }
  if (/requires encryption|encryption is required|encrypt.*config option to true/.test(t)) {
    return `SQL Server ${c.server} requires encrypted connections (Force Encryption is on), but the connection string sets Encrypt=False: set Encrypt=True (the default), or Encrypt=Strict if the server is set up for it.`;
  }
  if (c.connecting && c.encrypt === 'strict' && /wrong version number|unsupported protocol|no application protocol|alpn|packet length too long|unexpected (eof|message)|socket hang up|econnreset/.test(t)) {
    return (
      `SQL Server ${c.server} did not accept Encrypt=Strict (TDS 8.0 needs SQL Server 2022 or later with a TLS certificate) (${driverText.trim()}): ` +
      'set Encrypt=True in the connection string, or set the server up for strict encryption.'
    );
  }
  if (c.connecting && c.encrypt !== 'strict' && /socket hang up|econnreset|connection lost|forcibly closed|connection was closed/.test(t)) {
    return (
      `SQL Server ${c.server} closed the connection during the handshake (${driverText.trim()}). If the server requires strict encryption ` +
      '(SQL Server 2022 with "Force Strict Encryption"), set Encrypt=Strict in the connection string; otherwise check that the port is SQL Server\'s ' +
      'and the server\'s error log for the reason.'
    );
  }
  if (/\b(ssl|tls)\b|handshake|certificate/.test(t)) {
    return (
      `TLS with SQL Server ${c.server} failed (${driverText.trim()}). Check Encrypt (True, Strict or False) and TrustServerCertificate in the connection string, ` +
      `or ${installCa}.`
    );
  }
  return undefined;
}

/** A network failure while connecting -> what to check; undefined when the text is none. Shared by both transports. */
export function describeNetworkFailure(driverText: string, server: string): string | undefined {
  const t = driverText.toLowerCase();
  const text = driverText.trim();
  if (/enotfound|eai_again|eai_noname|no such host|name or service not known|could not resolve|not known/.test(t)) {
    return (
      `The name of SQL Server ${server} cannot be resolved to an address (${text}). Check Server= in the connection string (a name this ` +
      "worker's DNS knows, or an IP address) and the worker's DNS settings."
    );
  }
  // tedious tries each address of the name in turn and reports only "Could not connect (sequence)".
  if (/econnrefused|actively refused|could not connect \(sequence\)/.test(t)) {
    return (
      `SQL Server ${server} refused the connection (${text}). Check the port (Server=<host>,<port>; 1433 unless an instance is named), ` +
      'that SQL Server listens on TCP there (SQL Server Configuration Manager), and that no firewall rejects it.'
    );
  }
  if (/etimedout|timed out|timeout|failed to connect .* in \d+ ?ms/.test(t)) {
    return (
      `SQL Server ${server} did not answer in time (${text}). Check the name and port, that no firewall drops the connection, ` +
      'or raise Connect Timeout in the connection string (seconds) for a slow network.'
    );
  }
  if (/ehostunreach|enetunreach|no route to host|network is unreachable/.test(t)) {
    return `SQL Server ${server} cannot be reached from this worker (${text}). Check the address, the worker's network and routing, and any VPN the server needs.`;
  }
  return undefined;
}
