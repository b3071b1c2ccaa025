// One logical SQL Server connection (one session, so state such as SINGLE_USER or the current
// database survives between statements), over tedious or .NET SqlClient (transport.ts).
import { parseSqlConnectionString, secretsOf, sensitiveValuesOf, SqlConnectionStringError, type SqlConnectionSettings } from './connection-string';
import { describeNetworkFailure, describeServerMessages, describeTlsFailure, scrub, serverMessagesOf, SqlError, sqlErrorWhile, type ErrorContext, type SqlServerMessage } from './errors';
import { readDatabaseFacts, readServerFacts, type DatabaseFacts, type ServerFacts } from './server-facts';
import { checkParamName, declarationOf, normalise, type SqlParams, type TypedParam } from './params';
import { HelperExitedError, SqlClientTransport } from './sqlclient-transport';
import { TediousTransport } from './tedious-transport';
import { chooseTransport, type RunningStatement, type SqlTransport, type SqlTransportName } from './transport';
import type { EngineContext, EngineLog } from '../../runtime/engine-context';

/** What a failure to open a connection is called, whichever step opens it. */
const CANNOT_CONNECT = 'Cannot connect to SQL Server';

export interface OpenSqlConnectionOptions {
  /** PEM certificate(s) to trust for TLS, in addition to the system store (self-signed servers, tests). */
  trustedCertificates?: string;
  /** How long to wait for the server to acknowledge a cancel before dropping the connection. */
  cancelTimeoutMs?: number;
  /** Connect to this database instead of the connection string's (a restore connects to master). */
  database?: string;
  /** Use this transport whatever OCTOPUSDR_SQL_TRANSPORT says (tests; a bystander client). */
  transport?: SqlTransportName;
}

export interface SqlInfoMessage {
  number: number;
  message: string;
  class: number;
  state: number;
}

export interface StatementOptions {
  /** Cancels the statement (ATTENTION); the promise rejects once the server has acknowledged it. */
  signal?: AbortSignal;
  /** Total time allowed; 0 = no limit. */
  timeoutMs?: number;
  /** Fails when the server sends nothing (no INFO message) for this long; 0 = no limit. */
  idleTimeoutMs?: number;
  /** Every INFO message (PRINT, RAISERROR WITH NOWAIT, BACKUP/RESTORE messages) as it arrives. */
  onInfo?: (message: SqlInfoMessage) => void;
  /** STATS progress: "N percent processed." messages, as they arrive. */
  onProgress?: (percent: number, message: string) => void;
  /**
   * Identifiers for statements where T-SQL takes no variable (ALTER DATABASE, CREATE LOGIN ...).
   * Write `{{name}}` in the statement; it is replaced server-side by QUOTENAME(@name), and the
   * statement runs as nested dynamic SQL with the same typed parameters.
   */
  identifiers?: Record<string, string>;
}

export interface SqlResult<Row = Record<string, unknown>> {
  /** Rows of the first result set. */
  rows: Row[];
  recordsets: Record<string, unknown>[][];
  rowsAffected: number[];
  infoMessages: SqlInfoMessage[];
}

const QUERY_TIMEOUT_MS = 120_000;
const PERCENT = /^\s*(\d{1,3}) percent (processed|complete)/i;

export function describeServer(settings: SqlConnectionSettings): string {
  return `${settings.host}${settings.instanceName ? `\\${settings.instanceName}` : ''}${settings.port ? `,${settings.port}` : ''}`;
}

function userNameOf(settings: SqlConnectionSettings): string | undefined {
  const a = settings.authentication;
  switch (a.kind) {
    case 'windows-ntlm':
      return `${a.domain}\\${a.userName}`;
    case 'entra-service-principal':
      return a.clientId;
    case 'integrated':
      return undefined; // the process's own identity, named by the server's messages
    default:
      return a.userName;
  }
}

export class SqlConnection {
  private facts: Promise<ServerFacts> | undefined;
  private constructor(
    private readonly transport: SqlTransport,
    readonly settings: SqlConnectionSettings,
    private readonly secrets: readonly string[],
    readonly log: EngineLog,
  ) {}

  /** Which driver carries the statements: tedious (Node.js) or SqlClient (PowerShell helper). */
  get transportName(): SqlTransportName {
    return this.transport.name;
  }

  private get loginMessages(): SqlServerMessage[] {
    return this.transport.loginMessages;
  }

  /** `host[\instance][,port]`, for messages. */
  get server(): string {
    return describeServer(this.settings);
  }

  get database(): string {
    return this.settings.database;
  }

  static async open(connectionString: string, context: EngineContext, options: OpenSqlConnectionOptions = {}): Promise<SqlConnection> {
    try {
      return await SqlConnection.connect(connectionString, context, options);
    } catch (error) {
      // Whichever step opens it, a failed open says so first; the reason and what to do follow.
      if (error instanceof SqlError) throw sqlErrorWhile(CANNOT_CONNECT, error);
      throw error;
    }
  }

  private static async connect(connectionString: string, context: EngineContext, options: OpenSqlConnectionOptions): Promise<SqlConnection> {
    const { log } = context;
    // Mask first: nothing below may log before the secrets are registered.
    if (connectionString) {
      context.setSecret(connectionString);
      for (const part of sensitiveValuesOf(connectionString)) context.setSecret(part);
    }
    let settings: SqlConnectionSettings;
    try {
      settings = parseSqlConnectionString(connectionString);
      if (options.database !== undefined) settings = { ...settings, database: options.database };
    } catch (error) {
      const message = error instanceof SqlConnectionStringError ? error.message : 'The connection string could not be read.';
      throw new SqlError('configuration', scrub(message, [connectionString]));
    }
    const secrets = [connectionString, ...sensitiveValuesOf(connectionString), ...secretsOf(settings)];
    for (const s of secretsOf(settings)) context.setSecret(s);
    if (settings.ignoredKeywords.length) log.verbose(`Connection string keywords with no effect here: ${settings.ignoredKeywords.join(', ')}.`);

    let transportName: SqlTransportName;
    try {
      transportName = options.transport ?? chooseTransport(settings);
    } catch (error) {
      throw new SqlError('configuration', (error as Error).message);
    }
    const server = describeServer(settings);
    if (settings.authentication.kind === 'integrated' && transportName === 'tedious') {
      throw new SqlError(
        'configuration',
        'The connection string asks for Integrated Security (the identity of this process), which the tedious transport cannot sign in as, ' +
          `but OCTOPUSDR_SQL_TRANSPORT=tedious forces it. Unset OCTOPUSDR_SQL_TRANSPORT (or set it to auto or sqlclient), or sign in with a SQL Server login (User ID=<login>;Password=<password>).`,
      );
    }
    const transport: SqlTransport =
      transportName === 'sqlclient'
        ? new SqlClientTransport(settings, { connectionString, cancelTimeoutMs: options.cancelTimeoutMs, server, secrets })
        : new TediousTransport(settings, { trustedCertificates: options.trustedCertificates, cancelTimeoutMs: options.cancelTimeoutMs, server });
    const connection = new SqlConnection(transport, settings, secrets, log);
    log.verbose(`Connecting to SQL Server ${connection.server}, database '${settings.database}' (${settings.authentication.kind}) over ${transportName === 'sqlclient' ? '.NET SqlClient' : 'tedious'}.`);
    try {
      await transport.open();
    } catch (error) {
      throw connection.translate(error, undefined, true);
    }
    return connection;
  }

  /** A short statement (default limit 2 minutes). */
  async query<Row = Record<string, unknown>>(sql: string, params: SqlParams = {}, options: StatementOptions = {}): Promise<SqlResult<Row>> {
    return this.execute<Row>(sql, params, { timeoutMs: QUERY_TIMEOUT_MS, ...options });
  }

  /** BACKUP, RESTORE, DBCC: no time limit unless given; progress and cancel through options. */
  async runLong<Row = Record<string, unknown>>(sql: string, params: SqlParams = {}, options: StatementOptions = {}): Promise<SqlResult<Row>> {
    return this.execute<Row>(sql, params, { timeoutMs: 0, ...options });
  }

  /** Edition, version, default paths, path separator (read once per connection). */
  serverFacts(): Promise<ServerFacts> {
    this.facts ??= readServerFacts(this).catch((error: unknown) => {
      this.facts = undefined;
      if (error instanceof SqlError) throw sqlErrorWhile('Cannot read the SQL Server facts', error);
      throw error;
    });
    return this.facts;
  }

  /** Recovery model and state of a database; undefined if it does not exist. */
  databaseFacts(database: string): Promise<DatabaseFacts | undefined> {
    return readDatabaseFacts(this, database);
  }

  async close(): Promise<void> {
    await this.transport.close().catch(() => undefined);
  }

  private async execute<Row>(sql: string, params: SqlParams, options: StatementOptions): Promise<SqlResult<Row>> {
    const typed = new Map<string, TypedParam>();
    for (const [name, value] of Object.entries(params)) {
      checkParamName(name);
      typed.set(name, normalise(value));
    }
    let text = sql;
    if (options.identifiers) {
      const built = buildIdentifierStatement(sql, options.identifiers, typed);
      text = built.sql;
      for (const [name, p] of built.params) typed.set(name, p);
    }
    if (options.signal?.aborted) throw new SqlError('cancelled', 'The statement was cancelled before it was sent.', { code: 'ECANCEL' });

    const infoMessages: SqlInfoMessage[] = [];
    let stopReason: 'cancel' | 'timeout' | 'idle' | undefined;
    let running: RunningStatement | undefined;
    const stop = (reason: 'cancel' | 'timeout' | 'idle') => {
      if (stopReason) return;
      stopReason = reason;
      running?.cancel();
    };
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (!options.idleTimeoutMs) return;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => stop('idle'), options.idleTimeoutMs);
    };
    const onInfo = (info: SqlInfoMessage) => {
      armIdle();
      infoMessages.push(info);
      options.onInfo?.(info);
      const percent = PERCENT.exec(info.message);
      if (percent && options.onProgress) options.onProgress(Math.min(100, Number(percent[1])), info.message);
    };
    const totalTimer = options.timeoutMs ? setTimeout(() => stop('timeout'), options.timeoutMs) : undefined;
    armIdle();
    const onAbort = () => stop('cancel');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      running = this.transport.run(text, typed, onInfo);
      const result = await running.done;
      return { rows: (result.recordsets[0] ?? []) as Row[], recordsets: result.recordsets, rowsAffected: result.rowsAffected, infoMessages };
    } catch (error) {
      throw this.translate(error, stopReason ? { reason: stopReason, options } : undefined);
    } finally {
      if (totalTimer) clearTimeout(totalTimer);
      if (idleTimer) clearTimeout(idleTimer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private context(): ErrorContext {
    const auth = this.settings.authentication;
    return { server: this.server, database: this.settings.database, userName: auth.kind === 'entra-service-principal' ? auth.clientId : userNameOf(this.settings) };
  }

  /** Any driver error -> SqlError with a scrubbed, actionable message. */
  translate(error: unknown, stopped?: { reason: 'cancel' | 'timeout' | 'idle'; options: StatementOptions }, connecting = false): SqlError {
    if (error instanceof SqlError) return error;
    const e = error as { code?: string; message?: string; name?: string; originalError?: { code?: string; message?: string } };
    const code = e.code ?? e.originalError?.code;
    const driverText = scrub(String(e.message ?? error), this.secrets);
    const clean = (message: string) => scrub(message, this.secrets);
    const canceledByUs = stopped && (code === 'ECANCEL' || code === 'ETIMEOUT' || code === 'ECONNCLOSED' || code === 'ESOCKET');
    if (stopped && canceledByUs) {
      const acknowledged = code === 'ECANCEL';
      const ack = acknowledged ? 'SQL Server acknowledged the cancel' : `SQL Server did not acknowledge the cancel (${driverText}); the connection was closed`;
      if (stopped.reason === 'cancel') return new SqlError('cancelled', `The statement was cancelled; ${ack}.`, { code, cause: error });
      const limit = stopped.reason === 'timeout' ? `did not finish within ${stopped.options.timeoutMs} ms` : `sent nothing for ${stopped.options.idleTimeoutMs} ms`;
      return new SqlError('timeout', `The statement ${limit} and was cancelled; ${ack}.`, { code, cause: error });
    }
    if (error instanceof HelperExitedError) return new SqlError('connection', clean(error.message), { code, cause: error });
    // Entra sign-in: tedious wraps the token request's failure with EFEDAUTH in an AggregateError.
    const nested = ((e.originalError as { errors?: unknown[] } | undefined)?.errors ?? (error as { errors?: unknown[] }).errors ?? []) as { code?: string; message?: string }[];
    if (nested.some((x) => x?.code === 'EFEDAUTH')) {
      const reasons = nested.filter((x) => x?.code !== 'EFEDAUTH').map((x) => String(x?.message ?? x));
      return new SqlError(
        'login',
        clean(
          `Microsoft Entra sign-in to SQL Server ${this.server} failed: ${reasons.join('; ') || 'the token was not accepted'}. ` +
            'Check User ID, Password (the client secret for a service principal), Tenant Id and Client Id in the connection string.',
        ),
        { code: 'EFEDAUTH', cause: error },
      );
    }
    if (code === 'ELOGIN') {
      const messages = this.loginMessages.map((m) => ({ ...m, message: clean(m.message) }));
      if (messages.length) {
        const { text, number } = describeServerMessages(messages, this.context());
        return new SqlError('login', clean(text), { number, serverMessages: messages, code, cause: error });
      }
      return new SqlError('login', clean(`SQL Server ${this.server} rejected the login: ${driverText}`), { code, cause: error });
    }
    const serverMessages = serverMessagesOf(error).map((m) => ({ ...m, message: clean(m.message) }));
    if (serverMessages.length) {
      const { text, number } = describeServerMessages(serverMessages, this.context());
      return new SqlError('server', clean(text), { number, serverMessages, code, cause: error });
    }
    const tls = describeTlsFailure(driverText, { server: this.server, encrypt: this.settings.encrypt, trustServerCertificate: this.settings.trustServerCertificate, connecting });
    if (tls) return new SqlError('connection', clean(tls), { code, cause: error });
    const network = connecting ? describeNetworkFailure(driverText, this.server) : undefined;
    if (network) return new SqlError('connection', clean(network), { code, cause: error });
    switch (code) {
      case 'EENCRYPT':
        return new SqlError('connection', clean(`TLS with SQL Server ${this.server} failed: ${driverText} Check Encrypt and TrustServerCertificate in the connection string, or install the server's certificate authority on this worker.`), { code, cause: error });
      case 'EINSTLOOKUP':
        return new SqlError('connection', clean(`Could not find SQL Server instance ${this.server}: ${driverText} Check the instance name and that the SQL Server Browser service (UDP 1434) is reachable, or give the port (Server=host,port).`), { code, cause: error });
      case 'ETIMEOUT':
      case 'ESOCKET':
      case 'ECONNCLOSED':
      case 'ENOTOPEN':
        return new SqlError('connection', clean(`Lost or could not open the connection to SQL Server ${this.server}: ${driverText} Check the server name and port, that SQL Server accepts TCP connections and that no firewall blocks them.`), { code, cause: error });
      default:
        if (/self[- ]signed|certificate|CERT_/i.test(driverText)) {
          return new SqlError('connection', clean(`TLS with SQL Server ${this.server} failed: ${driverText} Trust the server's certificate authority, or set TrustServerCertificate=True (not with Encrypt=Strict).`), { code, cause: error });
        }
        return new SqlError('connection', clean(`SQL Server ${this.server}: ${driverText}`), { code, cause: error });
    }
  }
}

/** `{{name}}` -> `' + QUOTENAME(@id_name) + N'` inside nested dynamic SQL; exported for tests. */
export function buildIdentifierStatement(
  template: string,
  identifiers: Record<string, string>,
  params: Map<string, TypedParam>,
): { sql: string; params: Map<string, TypedParam> } {
  const extra = new Map<string, TypedParam>();
  for (const [name, value] of Object.entries(identifiers)) {
    checkParamName(name);
    if (value.length === 0 || value.length > 128) {
      throw new SqlError('identifier', `The name '${value.slice(0, 40)}${value.length > 40 ? '…' : ''}' is ${value.length === 0 ? 'empty' : `${value.length} characters long`}; SQL Server names must be 1 to 128 characters.`);
    }
    extra.set(`id_${name}`, normalise({ kind: 'typed-param', sqlType: { type: 'nvarchar', length: 128 }, value }));
  }
  const parts: string[] = [];
  let last = 0;
  for (const match of template.matchAll(/\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}/g)) {
    const name = match[1];
    if (!(name in identifiers)) throw new Error(`The statement uses {{${name}}} but no identifier of that name was given.`);
    parts.push(`N'${template.slice(last, match.index).replace(/'/g, "''")}'`, `QUOTENAME(@id_${name})`);
    last = (match.index ?? 0) + match[0].length;
  }
  parts.push(`N'${template.slice(last).replace(/'/g, "''")}'`);
  const declarations = [...params].map(([n, p]) => `@${n} ${declarationOf(p)}`).join(', ');
  const passThrough = [...params.keys()].map((n) => `@${n} = @${n}`).join(', ');
  const sql =
    `DECLARE @statement nvarchar(max) = ${parts.join(' + ')};\n` +
    `IF @statement IS NULL THROW 50000, N'An identifier is NULL or longer than 128 characters.', 1;\n` +
    (params.size ? `EXEC sys.sp_executesql @statement, N'${declarations}', ${passThrough};` : 'EXEC sys.sp_executesql @statement;');
  return { sql, params: extra };
}

/**
 * Opens and logs in; throws SqlError (never containing the connection string or password). The
 * connection string and its secrets go to context.setSecret before anything is logged, and the
 * connection's notes to context.log (callers without a task log pass quietEngineContext()).
 */
export function openSqlConnection(connectionString: string, context: EngineContext, options: OpenSqlConnectionOptions = {}): Promise<SqlConnection> {
  return SqlConnection.open(connectionString, context, options);
}
