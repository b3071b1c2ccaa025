// The tedious transport: an mssql pool of exactly one connection, so session state such as
// SINGLE_USER or the current database survives between statements.
import * as mssql from 'mssql';
import type { SqlConnectionSettings } from './connection-string';
import { SqlError, type SqlServerMessage } from './errors';
import { toMssql, type TypedParam } from './params';
import type { RunningStatement, SqlTransport, TransportInfo, TransportResult } from './transport';

export interface TediousOptions {
  trustedCertificates?: string;
  cancelTimeoutMs?: number;
  /** `host[\instance][,port]`, for messages. */
  server: string;
}

function mssqlConfig(
  settings: SqlConnectionSettings,
  options: TediousOptions,
  onLoginMessage: (m: SqlServerMessage) => void,
  onConnecting: () => void,
  onSecure: () => void,
): mssql.config {
  const auth = settings.authentication;
  if (auth.kind === 'integrated') throw new Error('Integrated Security is served by the SqlClient transport.');
  const authentication =
    auth.kind === 'sql-login'
      ? { type: 'default', options: { userName: auth.userName, password: auth.password } }
      : auth.kind === 'windows-ntlm'
        ? { type: 'ntlm', options: { userName: auth.userName, password: auth.password, domain: auth.domain } }
        : auth.kind === 'entra-password'
          ? { type: 'azure-active-directory-password', options: { userName: auth.userName, password: auth.password, clientId: auth.clientId, tenantId: auth.tenantId } }
          : { type: 'azure-active-directory-service-principal-secret', options: { clientId: auth.clientId, clientSecret: auth.clientSecret, tenantId: auth.tenantId } };
  const config = {
    server: settings.host,
    port: settings.port,
    database: settings.database,
    connectionTimeout: settings.connectTimeoutMs,
    // The driver's timer would cancel (ATTENTION) a BACKUP that is slow to send its first message;
    // every statement runs under our own watchdog instead.
    requestTimeout: 0,
    // One connection, kept while the step runs (session state such as SINGLE_USER lives on it).
    pool: { max: 1, min: 0, idleTimeoutMillis: 30 * 60_000 },
    authentication,
    // No extra round trip per statement: a dead socket is detected by the statement itself.
    validateConnection: 'socket',
    options: {
      encrypt: settings.encrypt,
      trustServerCertificate: settings.trustServerCertificate,
      appName: settings.applicationName,
      instanceName: settings.instanceName,
      multiSubnetFailover: settings.multiSubnetFailover,
      cancelTimeout: options.cancelTimeoutMs ?? 5_000,
      ...(options.trustedCertificates ? { cryptoCredentialsDetails: { ca: options.trustedCertificates } } : {}),
    },
    beforeConnect: (connection: { on(event: string, listener: (token: SqlServerMessage & { class: number }) => void): void }) => {
      // mssql reports only the last login error's text; the numbers (4060 vs 18456) come from here.
      onConnecting();
      let loggingIn = true;
      connection.on('connect', () => (loggingIn = false));
      connection.on('errorMessage', (token) => {
        if (loggingIn) onLoginMessage({ number: token.number, message: token.message, state: token.state, class: token.class });
      });
      // tedious 19 silently goes on in plaintext when Encrypt=True meets a server without TLS.
      connection.on('secure', () => onSecure());
    },
  };
  return config as unknown as mssql.config;
}

export class TediousTransport implements SqlTransport {
  readonly name = 'tedious' as const;
  /** Filled by the driver hook on every (re)connect; reset before each. */
  readonly loginMessages: SqlServerMessage[] = [];
  private readonly pool: mssql.ConnectionPool;
  private tlsNegotiated = false;

  constructor(
    private readonly settings: SqlConnectionSettings,
    private readonly options: TediousOptions,
  ) {
    this.pool = new mssql.ConnectionPool(
      mssqlConfig(
        settings,
        options,
        (m) => this.loginMessages.push(m),
        () => {
          this.loginMessages.length = 0;
          this.tlsNegotiated = false;
        },
        () => (this.tlsNegotiated = true),
      ),
    );
    this.pool.on('error', () => undefined); // surfaced through the failing statement instead
  }

  async open(): Promise<void> {
    try {
      await this.pool.connect();
      // A pool of one connects lazily per statement; make the login happen (and fail) here.
      await this.run('SELECT 1 AS connected', new Map(), () => undefined).done;
      if (this.settings.encrypt === true && !this.tlsNegotiated) {
        throw new SqlError(
          'connection',
          `SQL Server ${this.options.server} did not negotiate encryption, but the connection string asks for it (Encrypt=True is the default). ` +
            'Enable TLS on the server (SQL Server always offers it unless the network path strips it), or set Encrypt=False if this network is trusted.',
          { code: 'EENCRYPT' },
        );
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  run(sql: string, params: ReadonlyMap<string, TypedParam>, onInfo: (info: TransportInfo) => void): RunningStatement {
    const request = new mssql.Request(this.pool);
    for (const [name, p] of params) {
      const { type, value } = toMssql(p);
      request.input(name, type, value);
    }
    request.on('info', (m: { number: number; message: string; class: number; state: number }) =>
      onInfo({ number: m.number, message: m.message, class: Number(m.class), state: Number(m.state) }),
    );
    // query() = RPC sp_executesql with typed parameters (batch() would inline values as literals).
    const done: Promise<TransportResult> = request.query(sql).then((result) => ({
      recordsets: (result.recordsets as unknown as Record<string, unknown>[][]) ?? [],
      rowsAffected: result.rowsAffected ?? [],
    }));
    return { done, cancel: () => request.cancel() };
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}
