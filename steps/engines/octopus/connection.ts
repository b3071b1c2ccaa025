// Connecting to an Octopus Server through @octopusdeploy/api-client, and turning what can go wrong
// (unreachable, TLS, 401, 403, 404, validation, too old) into messages that say what to do.
// Used by the steps and by the publisher (scripts/publish).
import { Client } from '@octopusdeploy/api-client';
import { StepFailure } from '../../runtime/errors';
import { NETWORK_HINTS } from './network-hints';
import { normaliseServerUrl } from './server-url';

// Re-exported: its home is server-url.ts, which steps can import without bundling the api-client.
export { normaliseServerUrl };

/** Oldest Octopus Server we support: api-client 3.x needs 2022.3 for runbook runs, and we test no older. */
export const MINIMUM_SERVER_VERSION = '2022.3.0';

export interface OctopusConnection {
  client: Client;
  serverUrl: string;
  version: string;
  /** How long one API call may take before we give up on it. */
  requestTimeoutMs: number;
}

/** The api-client sets no timeout, so a server that accepts but never answers would hang us forever. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 100_000;

export interface ConnectOptions {
  serverUrl: string;
  apiKey: string;
  /** Shown in the server's request logs (User-Agent). */
  userAgentApp: string;
  /** Where the API key came from, for the 401 message (e.g. `the "Octopus API key" parameter`). */
  apiKeySource: string;
  requestTimeoutMs?: number;
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, serverUrl: string, doing: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new OctopusApiError(`The Octopus Server at ${serverUrl} did not answer within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`} while ${doing}. Check that it is up and not overloaded, and that no proxy swallows the request.`)),
      timeoutMs,
    );
    // A pending timer must not keep a finished program alive.
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** A failure to talk to Octopus, with a message that says what to do: a StepFailure that runStep reports as it is. */
export class OctopusApiError extends StepFailure {
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message.charAt(0).toUpperCase() + message.slice(1));
    this.name = 'OctopusApiError';
  }
}

/** Compares Octopus versions such as `2025.3.12345` numerically, part by part. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/[.+-]/).slice(0, 3).map((p) => Number.parseInt(p, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}


function errorCodeOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { StatusCode?: unknown })?.StatusCode;
  return typeof status === 'number' && status > 0 ? status : undefined;
}

function serverMessageOf(error: unknown): string {
  const e = error as { ErrorMessage?: unknown; message?: unknown };
  const text = typeof e?.ErrorMessage === 'string' ? e.ErrorMessage : typeof e?.message === 'string' ? e.message : String(error);
  return text.trim().replace(/\n+/g, '; ');
}

/**
 * Explains an api-client or network failure. `doing` says what we were doing, e.g.
 * `reading the maintenance configuration`.
 */
export function describeOctopusError(error: unknown, serverUrl: string, doing: string, apiKeySource = 'the API key'): OctopusApiError {
  if (error instanceof OctopusApiError) return error;
  const status = statusOf(error);
  const server = `the Octopus Server at ${serverUrl}`;
  if (status === undefined) {
    const code = errorCodeOf(error);
    if (code && NETWORK_HINTS[code]) return new OctopusApiError(`Cannot reach ${server} while ${doing}: ${NETWORK_HINTS[code]} (${code}). Check the server URL and that this machine can reach it.`);
    const message = serverMessageOf(error);
    if (/space name|No spaces exist/i.test(message)) return new OctopusApiError(`${message} on ${server}.`);
    return new OctopusApiError(`Cannot talk to ${server} while ${doing}: ${message}${code ? ` (${code})` : ''}.`);
  }
  const message = serverMessageOf(error);
  // The first request (GET <url>/api) answered, but not as an Octopus Server: say what the URL should be.
  if (doing === 'connecting' && status === 404) {
    return new OctopusApiError(
      `No Octopus Server answers at ${serverUrl}: ${serverUrl}/api was not found (404) while connecting, so ${serverUrl} is not the address of an Octopus Server. Check the server URL: ` +
        'it is the address you open Octopus at in a browser, including its virtual directory if it has one (e.g. https://octopus.example.com/octopus).',
      status,
    );
  }
  if (doing === 'connecting' && status >= 500) {
    return new OctopusApiError(
      `${server} answered ${status} while connecting (${message}). Check that the Octopus Server is running and has finished starting ` +
        `(a load balancer or proxy in front of a stopped or starting server answers ${status}; its Windows service or container, and its server log, say why), and run this again.`,
      status,
    );
  }
  switch (status) {
    case 401:
      return new OctopusApiError(
        `${server} rejected the API key (401 Unauthorized) while ${doing}: it is missing, mistyped, expired or revoked. ` +
          `Create an API key in Octopus (your profile > My API Keys) and provide it through ${apiKeySource}.`,
        status,
      );
    case 403: {
      const permission = /missing permissions?:?\s*([A-Za-z]+)/i.exec(message)?.[1];
      return new OctopusApiError(
        permission
          ? `The API key's user lacks the Octopus permission ${permission} (403 Forbidden) while ${doing}. Give the user a team role that grants ${permission} in this space (or use a key of a user who has it).`
          : `The API key's user is not allowed to do this (403 Forbidden) while ${doing}: ${message}`,
        status,
      );
    }
    case 404:
      return new OctopusApiError(`Not found on ${server} (404) while ${doing}: ${message}`, status);
    case 400:
    case 409:
    case 422:
      return new OctopusApiError(`${server} refused the change (${status}) while ${doing}: ${message}`, status);
    default:
      return new OctopusApiError(`${server} answered ${status} while ${doing}: ${message}`, status);
  }
}

/** Connects (one `GET /api`) and checks that this is an Octopus Server new enough for us. */
export async function connectToOctopus(options: ConnectOptions): Promise<OctopusConnection> {
  const normalised = normaliseServerUrl(options.serverUrl);
  if ('problem' in normalised) throw new OctopusApiError(`Bad Octopus Server URL: ${normalised.problem}.`);
  const serverUrl = normalised.url;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  let client: Client;
  try {
    client = await withTimeout(
      Client.create({ instanceURL: serverUrl, apiKey: options.apiKey, userAgentApp: options.userAgentApp }),
      requestTimeoutMs,
      serverUrl,
      'connecting',
    );
  } catch (error) {
    throw describeOctopusError(error, serverUrl, 'connecting', options.apiKeySource);
  }
  const information = await client.getServerInformation();
  const version = typeof information?.version === 'string' ? information.version : '';
  if (!/^\d+\.\d+/.test(version)) {
    throw new OctopusApiError(
      `${serverUrl} did not answer like an Octopus Server (GET ${serverUrl}/api gave no Octopus version). Check the URL: it is the address you open Octopus at, e.g. https://octopus.example.com.`,
    );
  }
  if (compareVersions(version, MINIMUM_SERVER_VERSION) < 0) {
    throw new OctopusApiError(`The Octopus Server at ${serverUrl} is version ${version}; octopus-dr needs ${MINIMUM_SERVER_VERSION} or newer. Upgrade Octopus Server first.`);
  }
  return { client, serverUrl, version, requestTimeoutMs };
}

/** Runs one API call and explains its failure. */
export async function octopusCall<T>(connection: OctopusConnection, doing: string, call: () => Promise<T>, apiKeySource?: string): Promise<T> {
  try {
    return await withTimeout(call(), connection.requestTimeoutMs, connection.serverUrl, doing);
  } catch (error) {
    throw describeOctopusError(error, connection.serverUrl, doing, apiKeySource);
  }
}
