// A TDS 7.4 server on 127.0.0.1 in front of the simulated SQL Server model: PRELOGIN (no
// encryption, or TDS 8 'strict' TLS), LOGIN7, SQL batches, RPC sp_executesql, ATTENTION, and
// injected faults. Real clients (mssql/tedious, FreeTDS tsql) talk to it over a socket.
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import {
  COLLATION, Done, MessageReader, PacketType, Status, colMetadataToken, doneToken, envChangeToken, loginAckToken, messageToken,
  fedAuthInfoToken, packets, parseLogin7, parsePrelogin, parseRpc, parseSqlBatch, preloginResponse, returnStatusToken, returnValueToken, rowToken, type Login7, type Message, type RpcParam,
} from './tds/wire';
import { AttentionError, Executor, SESSION_DISCONNECTED, SqlServerError, type ResultColumn, type ResultSink, type Scope, type StatementCommand } from './engine/executor';
import { ServerModel, type Seed, type Session } from './engine/model';
import { parseType, type SqlValue } from './engine/types';
import { loadStatements } from './statements';

export interface Fault {
  /** Which requests: matched against the batch text or sp_executesql's @statement. */
  match: RegExp;
  /** Wait this long before sending the first packet of the response. */
  delayFirstPacketMs?: number;
  /** Close the socket in the middle of the response (after half of its first packet). */
  dropMidStream?: boolean;
  /** How many requests it applies to (default 1). */
  times?: number;
  /** Let this many matching requests through first (e.g. fail the second RESTORE, not the first). */
  skip?: number;
  /** Runs when the fault is taken, before the request is answered (e.g. end another session at that moment). */
  onTaken?: () => void;
}

export interface SimulatorEvent {
  kind: 'request' | 'attention' | 'attention-ack' | 'login' | 'login-failed' | 'disconnect' | 'reset-connection';
  detail?: string;
  params?: RpcParam[];
  at: number;
}

export interface SimulatorOptions {
  seed?: Seed;
  port?: number;
  /**
   * TLS with this key and certificate. mode 'strict' (default): TDS 8, TLS from the first byte,
   * ALPN tds/8.0 (Encrypt=Strict). mode 'prelogin': TDS 7.x, the TLS handshake travels inside
   * PRELOGIN packets when the client asks for encryption (Encrypt=True), then the whole
   * connection is encrypted; forceEncryption refuses clients that do not ask (like the server
   * setting "Force Encryption").
   */
  tls?: { key: string | Buffer; cert: string | Buffer; mode?: 'strict' | 'prelogin'; forceEncryption?: boolean };
  /** Microsoft Entra sign-in: access tokens the server accepts, and the principal each one is. */
  entraTokens?: Record<string, string>;
}

const PROGRAM = 'Microsoft SQL Server';

export class SqlSimulator {
  readonly model: ServerModel;
  readonly faults: Fault[] = [];
  readonly events: SimulatorEvent[] = [];
  private readonly executor: Executor;
  private readonly sockets = new Set<net.Socket>();
  private server!: net.Server;
  entraTokens?: Record<string, string>;
  /** Set in 'prelogin' TLS mode. */
  preloginTls?: { key: string | Buffer; cert: string | Buffer; forceEncryption?: boolean };
  port = 0;

  private constructor(options: SimulatorOptions) {
    loadStatements();
    this.model = new ServerModel(options.seed);
    this.executor = new Executor(this.model);
  }

  static async start(options: SimulatorOptions = {}): Promise<SqlSimulator> {
    const sim = new SqlSimulator(options);
    const onSocket = (socket: net.Socket) => sim.accept(socket);
    const strict = options.tls && (options.tls.mode ?? 'strict') === 'strict';
    sim.server = strict ? tls.createServer({ key: options.tls!.key, cert: options.tls!.cert, ALPNProtocols: ['tds/8.0'] }, onSocket) : net.createServer(onSocket);
    sim.preloginTls = options.tls && !strict ? options.tls : undefined;
    sim.entraTokens = options.entraTokens;
    await new Promise<void>((resolve, reject) => {
      sim.server.once('error', reject);
      sim.server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    sim.port = (sim.server.address() as net.AddressInfo).port;
    return sim;
  }

  /** An ADO.NET connection string for this simulator. */
  connectionString(overrides: { user?: string; password?: string; database?: string; encrypt?: string; extra?: string } = {}): string {
    return `Server=127.0.0.1,${this.port};Database=${overrides.database ?? 'master'};User ID=${overrides.user ?? 'sa'};Password=${overrides.password ?? 'Sim-Passw0rd!'};Encrypt=${overrides.encrypt ?? 'False'};${overrides.extra ?? ''}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private event(kind: SimulatorEvent['kind'], detail?: string, params?: RpcParam[]): void {
    this.events.push({ kind, detail, params, at: Date.now() });
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    new TdsConnection(this, socket, this.executor, (kind, detail, params) => this.event(kind, detail, params)).start();
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** The first fault matching the request text, consumed. */
  takeFault(text: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.match.test(text));
    if (i < 0) return undefined;
    const f = this.faults[i];
    if (f.skip) {
      f.skip -= 1;
      return undefined;
    }
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) this.faults.splice(i, 1);
    f.onTaken?.();
    return f;
  }
}

class TdsConnection {
  private readonly reader = new MessageReader();
  private state: 'prelogin' | 'login' | 'fedauth' | 'ready' | 'closed' = 'prelogin';
  private pendingLogin?: Login7;
  private packetSize = 4096;
  private session?: Session;
  /** The database the login connected to: where a connection reset returns the session. */
  private loginDatabase = 'master';
  private resetPending = false;
  private queue: Promise<void> = Promise.resolve();
  private current?: { abort: AbortController; response: Response };
  /** TLS inside TDS 7.x: the handshake (wrapped in PRELOGIN packets), then every byte. */
  private tls?: { mode: 'handshake' | 'on'; secure: boolean; socket: tls.TLSSocket; wire: Duplex; pending: Buffer[]; reader: MessageReader };

  constructor(
    private readonly sim: SqlSimulator,
    private readonly socket: net.Socket,
    private readonly executor: Executor,
    private readonly event: (kind: SimulatorEvent['kind'], detail?: string, params?: RpcParam[]) => void,
  ) {}

  start(): void {
    this.socket.on('data', (chunk: Buffer) => {
      if (this.tls?.mode === 'handshake') return this.onHandshakeData(chunk);
      if (this.tls?.mode === 'on') return void this.tls.wire.write(chunk);
      this.onCleartext(chunk);
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.state = 'closed';
      this.current?.abort.abort(SESSION_DISCONNECTED);
      if (this.session) this.sim.model.closeSession(this.session.id);
      this.event('disconnect');
    });
  }

  private onCleartext(chunk: Buffer): void {
    {
      let messages: Message[];
      try {
        messages = this.reader.push(chunk);
      } catch {
        this.socket.destroy();
        return;
      }
      for (const m of messages) {
        if (m.type === PacketType.Attention) this.onAttention();
        else this.queue = this.queue.then(() => this.onMessage(m)).catch(() => void this.socket.destroy());
      }
    }
  }

  /** Bytes to the client: through TLS once it is on. */
  private send(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    if (this.tls?.mode === 'on') this.tls.socket.write(bytes);
    else this.socket.write(bytes);
  }

  private startTls(options: { key: string | Buffer; cert: string | Buffer }): void {
    const [serverSide, wire] = duplexPair();
    // tedious limits TDS 7.x TLS to 1.2; so do we (TLS 1.3 would finish the handshake out of step).
    const socket = new tls.TLSSocket(serverSide, { isServer: true, secureContext: tls.createSecureContext({ key: options.key, cert: options.cert, maxVersion: 'TLSv1.2' }) });
    const state = { mode: 'handshake' as 'handshake' | 'on', secure: false, socket, wire, pending: [] as Buffer[], reader: new MessageReader() };
    socket.on('secure', () => (state.secure = true));
    wire.on('data', (b: Buffer) => {
      if (state.mode === 'handshake') state.pending.push(b);
      else if (!this.socket.destroyed) this.socket.write(b);
    });
    socket.on('data', (cleartext: Buffer) => this.onCleartext(cleartext));
    socket.on('error', () => this.socket.destroy());
    this.tls = state;
  }

  /** A PRELOGIN message carrying TLS handshake records: feed it, answer with one PRELOGIN message. */
  private onHandshakeData(chunk: Buffer): void {
    const t = this.tls!;
    for (const m of t.reader.push(chunk)) {
      t.wire.write(m.payload);
      void this.flushHandshake();
    }
  }

  private async flushHandshake(): Promise<void> {
    const t = this.tls!;
    // Let the TLS engine answer the flight, then send everything it wrote as one message.
    for (let i = 0; i < 20 && t.pending.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
    const out = Buffer.concat(t.pending);
    t.pending = [];
    if (out.length) for (const p of packets(PacketType.Prelogin, out, this.packetSize, true)) this.socket.write(p);
    if (t.secure) t.mode = 'on';
  }

  write(type: number, payload: Buffer, endOfMessage: boolean): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    for (const p of packets(type, payload, this.packetSize, endOfMessage)) this.send(p);
  }

  private onAttention(): void {
    this.event('attention');
    if (this.current) this.current.abort.abort();
    else {
      // Nothing running (the response already went out): acknowledge at once.
      this.write(PacketType.TabularResult, doneToken(0xfd, Done.Attention), true);
      this.event('attention-ack');
    }
  }

  private async onMessage(m: Message): Promise<void> {
    if (m.status & 0x02) {
      // IGNORE: the client abandoned this message; answer with an empty response.
      this.write(PacketType.TabularResult, doneToken(0xfd, Done.Final), true);
      return;
    }
    switch (this.state) {
      case 'prelogin':
        if (m.type !== PacketType.Prelogin) return void this.socket.destroy();
      {
        const client = parsePrelogin(m.payload);
        const tlsOptions = this.sim.preloginTls;
        const wantsTls = client.encryption === 0x01 || client.encryption === 0x03;
        if (tlsOptions && (wantsTls || tlsOptions.forceEncryption)) {
          // ENCRYPT_ON (or REQ when the client did not ask): the TLS handshake follows in PRELOGIN packets.
          this.write(PacketType.TabularResult, preloginResponse(wantsTls ? 0x01 : 0x03), true);
          if (!wantsTls) return void this.socket.end();
          this.startTls(tlsOptions);
        } else {
          // ENCRYPT_NOT_SUP: no TLS inside TDS 7.x (strict mode has TLS around everything already).
          this.write(PacketType.TabularResult, preloginResponse(0x02), true);
        }
        this.state = 'login';
        return;
      }
      case 'login':
        if (m.type !== PacketType.Login7) return void this.socket.destroy();
        return this.login(m.payload);
      case 'fedauth':
        if (m.type !== 0x08) return void this.socket.destroy();
        return this.fedAuthToken(m.payload);
      case 'ready':
        // A pooled connection handed out again: the client asks for a reset on its next request.
        this.resetPending = (m.status & (Status.ResetConnection | Status.ResetConnectionSkipTran)) !== 0;
        if (this.resetPending) this.resetSession();
        if (m.type === PacketType.SqlBatch) return this.request('batch', parseSqlBatch(m.payload), new Map());
        if (m.type === PacketType.Rpc) return this.rpc(m.payload);
        if (m.type === PacketType.TransactionManager) {
          // SqlConnection.BeginTransaction(): refused with an error; the connection stays usable.
          const response = new Response(this, 'batch', this.sim.model.properties.serverName);
          this.event('request', 'TRANSACTION MANAGER REQUEST');
          return response.finish(new SqlServerError(50999, 'The SQL Server simulator does not model transactions (transaction manager requests); octopus-dr sends none.'));
        }
        this.socket.destroy();
        return;
      default:
        return;
    }
  }

  private loginFailure(errors: { number: number; message: string; severity: number }[]): void {
    this.event('login-failed', errors.map((e) => e.number).join(','));
    const serverName = this.sim.model.properties.serverName;
    const tokens = errors.map((e) => messageToken('error', { number: e.number, message: e.message, class: e.severity, state: 1, serverName }));
    this.write(PacketType.TabularResult, Buffer.concat([...tokens, doneToken(0xfd, Done.Error, 0, 0)]), true);
    this.state = 'closed';
    this.socket.end();
  }

  private login(payload: Buffer): void {
    const login = parseLogin7(payload);
    const model = this.sim.model;
    this.packetSize = Math.max(512, Math.min(32767, login.packetSize || 4096));
    if (login.federatedAuthentication && this.sim.entraTokens) {
      // Microsoft Entra: tell the client where to get a token (FEDAUTHINFO); it comes back in a FEDAUTH_TOKEN message.
      this.pendingLogin = login;
      this.state = 'fedauth';
      this.write(PacketType.TabularResult, Buffer.concat([fedAuthInfoToken('https://login.microsoftonline.com/common', 'https://database.windows.net/'), doneToken(0xfd, Done.Final, 0, 0)]), true);
      return;
    }
    if (login.integratedSecurity || login.federatedAuthentication) {
      return this.loginFailure([{ number: 18452, message: 'Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.', severity: 14 }]);
    }
    const account = model.logins.get(login.userName.toLowerCase());
    if (!account || account.password !== login.password || account.disabled) {
      return this.loginFailure([{ number: 18456, message: `Login failed for user '${login.userName}'.`, severity: 14 }]);
    }
    this.completeLogin(account.name, login.database, []);
  }

  /** FEDAUTH_TOKEN: u32 data length, u32 token length, the token (UTF-16LE). */
  private fedAuthToken(payload: Buffer): void {
    const token = payload.subarray(8, 8 + payload.readUInt32LE(4)).toString('utf16le');
    const principal = this.sim.entraTokens?.[token];
    if (!principal) return this.loginFailure([{ number: 18456, message: "Login failed for user '<token-identified principal>'.", severity: 14 }]);
    // FEATUREEXTACK for FEDAUTH (feature 0x02) with no data, as for the security-token workflows.
    const ack = Buffer.from([0xae, 0x02, 0, 0, 0, 0, 0xff]);
    this.completeLogin(principal, this.pendingLogin?.database ?? '', [ack]);
  }

  private completeLogin(accountName: string, requestedDatabase: string, extraTokens: Buffer[]): void {
    const model = this.sim.model;
    const databaseName = requestedDatabase || 'master';
    const loginFailed = { number: 18456, message: `Login failed for user '${accountName}'.`, severity: 14 };
    const db = model.database(databaseName);
    if (!db || db.state !== 'ONLINE') {
      return this.loginFailure([{ number: 4060, message: `Cannot open database "${databaseName}" requested by the login. The login failed.`, severity: 11 }, loginFailed]);
    }
    if (db.userAccess === 'SINGLE_USER' && model.usersOf(db.name, -1).length > 0) {
      return this.loginFailure([
        { number: 924, message: `Database '${db.name}' is already open and can only have one user at a time.`, severity: 14 },
        { number: 4060, message: `Cannot open database "${databaseName}" requested by the login. The login failed.`, severity: 11 },
        loginFailed,
      ]);
    }
    this.session = model.openSession(accountName, db.name, () => this.socket.destroy());
    this.loginDatabase = db.name;
    this.event('login', `${accountName}@${db.name}`);
    const server = model.properties.serverName;
    const [major, minor, build] = model.properties.productVersion.split('.').map(Number);
    this.write(
      PacketType.TabularResult,
      Buffer.concat([
        envChangeToken(1, db.name, 'master'),
        messageToken('info', { number: 5701, state: 2, class: 0, message: `Changed database context to '${db.name}'.`, serverName: server }),
        envChangeToken(7, COLLATION, Buffer.alloc(0)),
        envChangeToken(2, 'us_english', ''),
        messageToken('info', { number: 5703, state: 1, class: 0, message: 'Changed language setting to us_english.', serverName: server }),
        ...extraTokens,
        loginAckToken(PROGRAM, [major || 16, minor || 0, build || 0]),
        envChangeToken(4, String(this.packetSize), String(this.packetSize)),
        doneToken(0xfd, Done.Final, 0, 0),
      ]),
      true,
    );
    this.state = 'ready';
  }

  /** sp_reset_connection semantics: the session goes back to its login database (USE is undone). */
  private resetSession(): void {
    this.event('reset-connection');
    if (this.session) this.session.database = this.loginDatabase;
  }

  private rpc(payload: Buffer): Promise<void> {
    const rpc = parseRpc(payload);
    if (rpc.procedure.toLowerCase().replace(/^(sys\.|dbo\.)/, '') !== 'sp_executesql') {
      const response = new Response(this, 'rpc', this.sim.model.properties.serverName);
      response.finish(new SqlServerError(2812, `The SQL Server simulator only runs sp_executesql RPCs, not '${rpc.procedure}'.`));
      return Promise.resolve();
    }
    const [statement, declarations, ...values] = rpc.params;
    const vars: Scope = new Map();
    // Parameters are declared by @params and bound by name (or by position when unnamed).
    const declared = declarations?.value ? String(declarations.value).split(/,(?![^(]*\))/).map((d) => d.trim()).filter(Boolean) : [];
    declared.forEach((d, i) => {
      const m = /^(@\w+)\s+(.+?)(\s+out(put)?)?$/i.exec(d);
      if (!m) return;
      const bound = values.find((v) => v.name.toLowerCase() === m[1].toLowerCase()) ?? values[i];
      vars.set(m[1].toLowerCase(), { type: parseType(m[2]), value: bound?.value ?? null, output: !!m[3] });
    });
    return this.request('rpc', String(statement?.value ?? ''), vars, rpc.params);
  }

  private async request(mode: 'batch' | 'rpc', text: string, vars: Scope, params?: RpcParam[]): Promise<void> {
    if (!this.session) return;
    this.event('request', text, params);
    const response = new Response(this, mode, this.sim.model.properties.serverName);
    if (this.resetPending) response.acknowledgeReset();
    const fault = this.sim.takeFault(text);
    if (fault?.delayFirstPacketMs) response.delayFirstPacket = fault.delayFirstPacketMs;
    if (fault?.dropMidStream) response.dropMidStream = true;
    const abort = new AbortController();
    this.current = { abort, response };
    try {
      await this.executor.executeBatch(text, vars, this.session, response, abort.signal);
      // OUTPUT parameters go back as RETURNVALUE tokens, with the values the statement left in them.
      (params ?? []).forEach((p, ordinal) => {
        const bound = p.output ? vars.get(p.name.toLowerCase()) : undefined;
        if (bound) response.returnValues.push(returnValueToken(ordinal, p.name, bound.type, bound.value));
      });
      await response.finish();
    } catch (e) {
      if (e instanceof AttentionError || abort.signal.aborted) await response.finishCancelled();
      else if (e instanceof SqlServerError) await response.finish(e);
      else await response.finish(new SqlServerError(50998, `SQL Server simulator internal error: ${e instanceof Error ? e.message : String(e)}`));
    } finally {
      this.current = undefined;
    }
    // An attention that arrived at any point of this request (even after its last packet went
    // out) is acknowledged by a message of its own: DONE with the ATTN bit.
    if (abort.signal.aborted) {
      this.write(PacketType.TabularResult, doneToken(0xfd, Done.Attention, 0), true);
      this.event('attention-ack');
    }
  }

  writeRaw(bytes: Buffer): void {
    this.send(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The DONE token's CurCmd values SQL Server sends (SELECT 0xC1, INSERT 0xC3, DELETE 0xC4, UPDATE 0xC5). */
const CUR_CMD: Record<StatementCommand, number> = { select: 0xc1, insert: 0xc3, delete: 0xc4, update: 0xc5 };

/** Buffers tokens of one response and sends them as packets (streamed on flush). */
class Response implements ResultSink {
  private tokens: Buffer[] = [];
  private started = false;
  /** RETURNVALUE tokens of OUTPUT parameters (RPC only), sent after RETURNSTATUS. */
  readonly returnValues: Buffer[] = [];
  delayFirstPacket = 0;
  dropMidStream = false;

  constructor(
    private readonly connection: TdsConnection,
    private readonly mode: 'batch' | 'rpc',
    private readonly serverName: string,
  ) {}

  resultSet(columns: ResultColumn[], rows: SqlValue[][]): void {
    this.tokens.push(colMetadataToken(columns));
    for (const r of rows) this.tokens.push(rowToken(columns, r));
  }

  info(number: number, message: string, severity = 10, state = 1): void {
    this.tokens.push(messageToken('info', { number, message, class: severity, state, serverName: this.serverName }));
  }

  statementDone(rowCount?: number, command: StatementCommand = 'select'): void {
    const status = Done.More | (rowCount === undefined ? 0 : Done.Count);
    this.tokens.push(doneToken(this.mode === 'rpc' ? 0xff : 0xfd, status, rowCount ?? 0, CUR_CMD[command]));
  }

  async flush(): Promise<void> {
    await this.send(false);
  }

  async finish(error?: SqlServerError): Promise<void> {
    if (error) {
      for (const e of [...error.preceding, { number: error.number, message: error.message, severity: error.severity, state: error.state }]) {
        this.tokens.push(messageToken('error', { number: e.number, message: e.message, class: e.severity ?? 16, state: e.state ?? 1, serverName: this.serverName }));
      }
    }
    if (this.mode === 'rpc') this.tokens.push(returnStatusToken(error ? 1 : 0), ...(error ? [] : this.returnValues), doneToken(0xfe, error ? Done.Error : Done.Final, 0, 0xe0));
    else this.tokens.push(doneToken(0xfd, error ? Done.Error : Done.Final, 0));
    await this.send(true);
  }

  /** ENVCHANGE 18 (RESETACK) opens the response to a request that asked for a connection reset. */
  acknowledgeReset(): void {
    this.tokens.unshift(envChangeToken(18, Buffer.alloc(0), Buffer.alloc(0)));
  }

  /** Closes the cancelled response (the attention acknowledgement follows separately). */
  async finishCancelled(): Promise<void> {
    this.tokens = [doneToken(0xfd, Done.Final, 0)];
    await this.send(true);
  }

  private async send(endOfMessage: boolean): Promise<void> {
    if (!this.started) {
      this.started = true;
      if (this.delayFirstPacket) await new Promise((r) => setTimeout(r, this.delayFirstPacket));
    }
    const payload = Buffer.concat(this.tokens);
    this.tokens = [];
    if (!endOfMessage && payload.length === 0) return;
    if (this.dropMidStream) {
      const first = packets(PacketType.TabularResult, payload, 4096, false)[0];
      this.connection.writeRaw(first.subarray(0, Math.max(9, Math.floor(first.length / 2))));
      this.connection.destroy();
      return;
    }
    this.connection.write(PacketType.TabularResult, payload, endOfMessage);
  }
}

/** Two connected in-memory streams (what one writes, the other reads). */
function duplexPair(): [Duplex, Duplex] {
  const a: Duplex = new Duplex({
    read() {},
    write(chunk, _encoding, callback) {
      b.push(chunk);
      callback();
    },
  });
  const b: Duplex = new Duplex({
    read() {},
    write(chunk, _encoding, callback) {
      a.push(chunk);
      callback();
    },
  });
  return [a, b];
}
