// ADO.NET connection strings (the format Octopus itself stores) -> the settings our driver needs.
// Tokenising (case-insensitive keywords, quoted values with ';' and '=' inside, aliases such as
// Server/Data Source) is done by @tediousjs/connection-string; here we validate and map meaning.
import { parse, MSSQL_SCHEMA } from '@tediousjs/connection-string';
import { StepFailure } from '../../runtime/errors';

export type SqlAuthentication =
  | { kind: 'sql-login'; userName: string; password: string }
  | { kind: 'windows-ntlm'; domain: string; userName: string; password: string }
  | { kind: 'entra-password'; userName: string; password: string; clientId: string; tenantId?: string }
  | { kind: 'entra-service-principal'; clientId: string; clientSecret: string; tenantId: string }
  /** Integrated Security: the process's own Windows identity (served by the SqlClient transport). */
  | { kind: 'integrated' };

export interface SqlConnectionSettings {
  host: string;
  /** Set when the string names a port (`host,port`); otherwise 1433 unless an instance is named. */
  port?: number;
  /** `host\instance`: resolved through the SQL Browser service (UDP 1434) when no port is given. */
  instanceName?: string;
  database: string;
  authentication: SqlAuthentication;
  encrypt: boolean | 'strict';
  trustServerCertificate: boolean;
  connectTimeoutMs: number;
  applicationName: string;
  multiSubnetFailover: boolean;
  /** Keywords we read but that have no effect with this driver, for a verbose note. */
  ignoredKeywords: string[];
}

/** The connection string is unusable; the message never contains the string or its secrets. */
export class SqlConnectionStringError extends StepFailure {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'SqlConnectionStringError';
  }
}

const KNOWN_HARMLESS = new Set([
  'pooling', 'max pool size', 'min pool size', 'persist security info', 'multipleactiveresultsets',
  'connection lifetime', 'load balance timeout', 'packet size', 'workstation id', 'connect retry count',
  'connect retry interval', 'command timeout', 'enlist', 'transaction binding', 'type system version',
  'current language', 'language', 'network library', 'network', 'replication', 'user instance',
  'context connection', 'asynchronous processing', 'async', 'failover partner', 'column encryption setting',
  'applicationintent', 'application intent', 'ip address preference', 'pool blocking period', 'poolblockingperiod',
  'attestation protocol', 'enclave attestation url', 'host name in certificate', 'hostnameincertificate',
  'server certificate', 'servercertificate', 'server spn', 'serverspn', 'failover partner spn',
]);

/** ADO.NET authentication methods, the only Authentication values a message may repeat. */
const KNOWN_AUTHENTICATION_METHODS = [
  'Active Directory Integrated', 'Active Directory Interactive', 'Active Directory Managed Identity', 'Active Directory MSI',
  'Active Directory Default', 'Active Directory Device Code Flow', 'Active Directory Workload Identity', 'Windows Integrated',
];

/** Keywords whose values are numbers of seconds, bytes or counts: a bad value is refused, never ignored. */
const NUMERIC_KEYWORDS: Record<string, string> = {
  'connect timeout': 'Connect Timeout', 'connection timeout': 'Connection Timeout', timeout: 'Timeout',
  'command timeout': 'Command Timeout', 'packet size': 'Packet Size', 'max pool size': 'Max Pool Size',
  'min pool size': 'Min Pool Size', 'connect retry count': 'Connect Retry Count', 'connect retry interval': 'Connect Retry Interval',
  'connection lifetime': 'Connection Lifetime', 'load balance timeout': 'Load Balance Timeout',
};

/** Keywords whose values are True/False (Encrypt also takes Strict, Mandatory, Optional). */
const BOOLEAN_KEYWORDS: Record<string, string> = {
  trustservercertificate: 'TrustServerCertificate', 'trust server certificate': 'Trust Server Certificate',
  multisubnetfailover: 'MultiSubnetFailover', 'multi subnet failover': 'Multi Subnet Failover',
  'integrated security': 'Integrated Security', trusted_connection: 'Trusted_Connection', pooling: 'Pooling',
  'persist security info': 'Persist Security Info', multipleactiveresultsets: 'MultipleActiveResultSets',
  enlist: 'Enlist', replication: 'Replication', 'user instance': 'User Instance', 'asynchronous processing': 'Asynchronous Processing',
  async: 'Async',
};

/** Keywords whose values are secrets (in ADO.NET and the drivers people copy strings from). */
const SENSITIVE_KEYWORD = /pass|pwd|secret|token|key|credential|signature/i;

function ordinal(n: number): string {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${suffix}`;
}

/** Known keyword names may be shown (they are ours, not the user's); anything else is not. */
function knownKeywordName(key: string): string | undefined {
  const names: Record<string, string> = {
    server: 'Server', 'data source': 'Data Source', database: 'Database', 'initial catalog': 'Initial Catalog', 'user id': 'User ID',
    uid: 'UID', password: 'Password', pwd: 'PWD', encrypt: 'Encrypt', authentication: 'Authentication', 'application name': 'Application Name',
    'tenant id': 'Tenant Id', 'client id': 'Client Id', ...NUMERIC_KEYWORDS, ...BOOLEAN_KEYWORDS,
  };
  return names[key] ?? (KNOWN_HARMLESS.has(key) ? key : undefined);
}

const QUOTING_HELP = 'If a value such as the password contains \';\', quote it: Password="a;b" (double any " inside, e.g. Password="a""b;c").';

/** Where the text stops parsing, as "after the Nth keyword (Password)", without quoting anything. */
function whereParsingFails(connectionString: string): string {
  let good = 0;
  let lastKnown: string | undefined;
  for (let end = connectionString.indexOf(';'); end >= 0; end = connectionString.indexOf(';', end + 1)) {
    try {
      const keys = [...parse(connectionString.slice(0, end)).keys()];
      if (keys.length > good) {
        good = keys.length;
        lastKnown = knownKeywordName(keys[keys.length - 1]);
      }
    } catch {
      // A ';' inside a quoted value: keep looking further on.
    }
  }
  if (good === 0) return 'in its 1st keyword';
  return `after its ${ordinal(good)} keyword${lastKnown ? ` (${lastKnown})` : ''}, in the ${ordinal(good + 1)}`;
}

/** Every value a connection string carries that is or may be part of a secret, to register for
 * masking on its own (the whole string is registered too): the password and any keyword that
 * names a secret, token or key, and the values of keywords nobody recognises (with an unquoted
 * ';' in a password, the rest of the password reads as another keyword). */
export function sensitiveValuesOf(connectionString: string): string[] {
  let values: ReadonlyMap<string, string>;
  try {
    values = parse(connectionString);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const [key, value] of values) {
    const recognised = knownKeywordName(key) !== undefined;
    if (!value) continue;
    if (SENSITIVE_KEYWORD.test(key) || !recognised) found.push(value, value.trim());
    if (!recognised) found.push(`${key}=${value}`);
  }
  return [...new Set(found.filter((v) => v.length > 0))];
}

const ALTERNATIVES =
  'Use one of: a SQL Server login (User ID=<login>;Password=<password>); a Windows account with its password ' +
  '(User ID=<DOMAIN>\\<user>;Password=<password>, sent with NTLM); or Microsoft Entra ID ' +
  '(Authentication=Active Directory Password or Active Directory Service Principal).';

function truthy(value: string | undefined, keyword: string): boolean | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (['true', 'yes', 'sspi', 'mandatory'].includes(v)) return true;
  if (['false', 'no', 'optional'].includes(v)) return false;
  // The value is not quoted: with an unquoted ';' in a password it can be part of the password.
  throw new SqlConnectionStringError(`The connection string's ${keyword} value is not understood; use True or False.`);
}

function parseDataSource(raw: string): { host: string; port?: number; instanceName?: string } {
  let text = raw.trim();
  const protocol = /^(tcp|np|lpc|admin):/i.exec(text);
  if (protocol) {
    if (protocol[1].toLowerCase() !== 'tcp') {
      throw new SqlConnectionStringError(
        `The connection string's Server uses the '${protocol[1]}:' protocol; only TCP is supported. Use Server=tcp:<host>,<port> or Server=<host>\\<instance>.`,
      );
    }
    text = text.slice(protocol[0].length);
  }
  let port: number | undefined;
  const comma = text.lastIndexOf(',');
  if (comma >= 0) {
    const portText = text.slice(comma + 1).trim();
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new SqlConnectionStringError(`The connection string's Server has a port (after the ',') that is not a TCP port number (1-65535); write Server=<host>,<port>.`);
    }
    port = Number(portText);
    text = text.slice(0, comma).trim();
  }
  let instanceName: string | undefined;
  const slash = text.indexOf('\\');
  if (slash >= 0) {
    instanceName = text.slice(slash + 1).trim() || undefined;
    text = text.slice(0, slash).trim();
  }
  let host = text;
  if (host === '.' || host.toLowerCase() === '(local)' || host.toLowerCase() === '(localdb)') host = 'localhost';
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1); // IPv6 literal
  if (!host) throw new SqlConnectionStringError('The connection string has no Server (or Data Source); add Server=<host>[,<port>] or Server=<host>\\<instance>.');
  if (instanceName && instanceName.toUpperCase() === 'MSSQLSERVER') instanceName = undefined; // the default instance's name
  return { host, port, instanceName };
}

function authenticationFrom(values: ReadonlyMap<string, string>, schema: Record<string, unknown>): SqlAuthentication {
  const userId = (schema['user id'] as string | undefined)?.trim() ?? '';
  const password = (schema['password'] as string | undefined) ?? '';
  const method = ((schema['authentication'] as string | undefined) ?? '').trim().toLowerCase().replace(/\s+/g, ' ');
  const integrated = schema['integrated security'] === true || truthy(values.get('trusted_connection'), 'Trusted_Connection') === true;
  const tenantId = values.get('tenant id')?.trim() || values.get('tenantid')?.trim() || undefined;
  const clientId = values.get('client id')?.trim() || values.get('clientid')?.trim() || undefined;

  switch (method) {
    case '':
    case 'sql password':
    case 'sqlpassword':
      break;
    case 'active directory password':
    case 'activedirectorypassword':
      if (!userId || !password) throw new SqlConnectionStringError('Authentication=Active Directory Password needs User ID (the Entra user) and Password.');
      if (!clientId) {
        throw new SqlConnectionStringError(
          'Authentication=Active Directory Password needs Client Id=<application (client) id> of an Entra app registration that allows public client flows (the driver requires one).',
        );
      }
      return { kind: 'entra-password', userName: userId, password, clientId, tenantId };
    case 'active directory service principal':
    case 'activedirectoryserviceprincipal':
      if (!userId || !password) {
        throw new SqlConnectionStringError('Authentication=Active Directory Service Principal needs User ID (the application (client) id) and Password (the client secret).');
      }
      if (!tenantId) throw new SqlConnectionStringError('Authentication=Active Directory Service Principal needs Tenant Id=<directory (tenant) id>.');
      return { kind: 'entra-service-principal', clientId: userId, clientSecret: password, tenantId };
    default: {
      // Only a method name we know is repeated; anything else could be a misplaced secret.
      const known = KNOWN_AUTHENTICATION_METHODS.find((m) => m.toLowerCase().replace(/\s+/g, '') === method.replace(/\s+/g, ''));
      throw new SqlConnectionStringError(
        `The connection string's Authentication${known ? `=${known}` : ' value'} is not supported by this driver. ${ALTERNATIVES}`,
      );
    }
  }

  const ntlm = /^([^\\]+)\\(.+)$/.exec(userId);
  if (ntlm) {
    if (!password) throw new SqlConnectionStringError(`The Windows account ${userId} needs its Password in the connection string (it is sent with NTLM).`);
    return { kind: 'windows-ntlm', domain: ntlm[1], userName: ntlm[2], password };
  }
  if (integrated && !userId) return { kind: 'integrated' };
  if (!userId) throw new SqlConnectionStringError(`The connection string has no User ID. ${ALTERNATIVES}`);
  return { kind: 'sql-login', userName: userId, password };
}

/** Parses and validates; throws SqlConnectionStringError with a message safe to show. */
export function parseSqlConnectionString(connectionString: string): SqlConnectionSettings {
  if (!connectionString || !connectionString.trim()) throw new SqlConnectionStringError('The connection string is empty.');
  let values: ReadonlyMap<string, string>;
  let schema: Record<string, unknown>;
  try {
    const parsed = parse(connectionString);
    values = parsed;
    schema = parsed.toSchema(MSSQL_SCHEMA) as Record<string, unknown>;
  } catch {
    // The parser's own message may quote the text, which can contain the password.
    throw new SqlConnectionStringError(
      `The connection string could not be parsed ${whereParsingFails(connectionString)}: a quoted value is not closed, or a value has a ` +
        `quote in the wrong place. ${QUOTING_HELP}`,
    );
  }
  checkKeywordValues(values);
  const source = schema['data source'] as string | undefined;
  if (!source) throw new SqlConnectionStringError('The connection string has no Server (or Data Source); add Server=<host>[,<port>].');
  const { host, port, instanceName } = parseDataSource(source);

  const encryptRaw = values.get('encrypt')?.trim().toLowerCase();
  const encrypt: boolean | 'strict' = encryptRaw === 'strict' ? 'strict' : (truthy(values.get('encrypt'), 'Encrypt') ?? true);
  // 0 means "wait forever" in ADO.NET; the driver cannot, so it gets the default (checkKeywordValues refused the rest).
  const timeoutSeconds = schema['connection timeout'];
  const connectTimeoutMs = typeof timeoutSeconds === 'number' && timeoutSeconds > 0 ? timeoutSeconds * 1000 : 15_000;

  const consumed = new Set([
    'server', 'data source', 'address', 'addr', 'network address', 'database', 'initial catalog', 'user id', 'uid',
    'password', 'pwd', 'encrypt', 'trustservercertificate', 'trust server certificate', 'connect timeout', 'connection timeout', 'timeout',
    'application name', 'app', 'multisubnetfailover', 'multi subnet failover', 'integrated security', 'trusted_connection',
    'authentication', 'tenant id', 'tenantid', 'client id', 'clientid',
  ]);
  const ignoredKeywords: string[] = [];
  const keys = [...values.keys()];
  keys.forEach((key, index) => {
    if (consumed.has(key)) return;
    if (KNOWN_HARMLESS.has(key)) {
      ignoredKeywords.push(key);
      return;
    }
    // Never quoted: an unknown keyword is as likely the rest of a password with an unquoted ';'.
    const previous = index > 0 ? knownKeywordName(keys[index - 1]) : undefined;
    throw new SqlConnectionStringError(
      `The connection string's ${ordinal(index + 1)} keyword${previous ? ` (after ${previous})` : ''} is not recognised (not shown, as it may be part of a value): ` +
        `check its spelling, or remove it. ${QUOTING_HELP}`,
    );
  });

  return {
    host,
    port,
    instanceName,
    database: ((schema['initial catalog'] as string | undefined) ?? '').trim() || 'master',
    authentication: authenticationFrom(values, schema),
    encrypt,
    trustServerCertificate: schema['trustservercertificate'] === true,
    connectTimeoutMs,
    applicationName: ((schema['application name'] as string | undefined) ?? '').trim() || 'octopus-dr',
    multiSubnetFailover: schema['multisubnetfailover'] === true,
    ignoredKeywords,
  };
}

/** Refuses numbers and booleans the driver would silently ignore or misread (Connect Timeout=abc). */
function checkKeywordValues(values: ReadonlyMap<string, string>): void {
  for (const [key, raw] of values) {
    const value = raw.trim();
    const numeric = NUMERIC_KEYWORDS[key];
    if (numeric && !/^\d{1,9}$/.test(value)) {
      throw new SqlConnectionStringError(`The connection string's ${numeric} must be a whole number of 0 or more (e.g. ${numeric}=30); its value is not.`);
    }
    const boolean = BOOLEAN_KEYWORDS[key];
    if (boolean) truthy(raw, boolean);
  }
  const encrypt = values.get('encrypt')?.trim().toLowerCase();
  if (encrypt && !['strict', 'true', 'yes', 'mandatory', 'false', 'no', 'optional'].includes(encrypt)) {
    throw new SqlConnectionStringError("The connection string's Encrypt value is not understood; use True, False or Strict.");
  }
}

/** The secrets a connection string carries, to register with setSecret before anything is logged. */
export function secretsOf(settings: SqlConnectionSettings): string[] {
  const auth = settings.authentication;
  switch (auth.kind) {
    case 'entra-service-principal':
      return [auth.clientSecret];
    case 'integrated':
      return [];
    default:
      return auth.password ? [auth.password] : [];
  }
}
