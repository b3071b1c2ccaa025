// The version gate: a backup restored onto a standby must come from the same Octopus version as the
// standby runs, or an older one. Octopus cannot start on a database schema newer than itself, so a
// backup from a newer Octopus is refused before anything is restored; an older one is allowed, with
// a warning, because the standby upgrades the schema (for good) when it starts. Octopus's own rule is
// stricter ("You can only move your Octopus Server installation to the same Octopus version"), see
// OCTOPUS_MOVE_RULE_URL.
//
// The standby's version comes from its API (`GET /api` returns `Version`; the route is anonymous on a
// real server, the API key is sent when given) or from a parameter, for a standby whose Octopus
// service is stopped, as it should be while its database is restored. `GET /api` is one request, so
// it goes through Node's fetch rather than @octopusdeploy/api-client, which would add ~1.4 MB to
// the restore bundles (their templates are near the 700 KB budget).
import { standbyOctopusVersion, standbyServerUrl } from '../../../templates/parameters';
import { NETWORK_HINTS } from '../octopus/network-hints';
import { normaliseServerUrl } from '../octopus/server-url';
import { StepFailure } from '../../runtime/errors';
import { formatProblem } from '../../runtime/parameters';
import { compareOctopusVersions, parseOctopusVersion } from './octopus-version';

export const OCTOPUS_MOVE_RULE_URL = 'https://octopus.com/docs/administration/managing-infrastructure/moving-your-octopus/move-the-database-and-server';

export type VersionGateOutcome = 'ok' | 'warn' | 'refuse';

export interface VersionGateResult {
  outcome: VersionGateOutcome;
  /** The message for the log (ok, warn) or the step's failure (refuse). */
  message: string;
  backupVersion: string | null;
  standbyVersion: string | null;
}

export interface VersionGateInput {
  /** `octopusVersion` of the backup's manifest; null when it records none. */
  backupVersion: string | null | undefined;
  /** The standby's Octopus version; null when it is not known. */
  standbyVersion: string | null | undefined;
  /** Where the standby version came from, e.g. `read from https://standby.example.com/api`. */
  standbySource?: string;
  /** The backup, for messages, e.g. its manifest's file name. */
  backupLabel?: string;
}

const LABELS = { url: standbyServerUrl.label, version: standbyOctopusVersion.label };

/** Compares the backup's Octopus version with the standby's. Pure: no I/O. */
export function checkVersionGate(input: VersionGateInput): VersionGateResult {
  const backupText = input.backupVersion?.trim() || null;
  const standbyText = input.standbyVersion?.trim() || null;
  const result = (outcome: VersionGateOutcome, message: string): VersionGateResult => ({ outcome, message, backupVersion: backupText, standbyVersion: standbyText });
  const backupName = input.backupLabel ? `The backup (${input.backupLabel})` : 'The backup';
  const standby = `the standby's Octopus ${standbyText}${input.standbySource ? ` (${input.standbySource})` : ''}`;

  const backup = parseOctopusVersion(backupText);
  if (!backup) {
    return result(
      'warn',
      `${backupName} ${backupText ? `records an Octopus version that cannot be read ("${backupText}")` : 'records no Octopus version'}, so it was not compared with the standby's. ` +
        'Before starting Octopus on the restored database, check that the standby runs the same Octopus version as the server that was backed up ' +
        `(Octopus cannot start on a newer schema; ${OCTOPUS_MOVE_RULE_URL}).`,
    );
  }
  if (!standbyText) {
    return result(
      'warn',
      `${backupName} is from Octopus ${backup.text}; the standby's version was not checked. Set "${LABELS.url}" or "${LABELS.version}" to check it: ` +
        `the standby must run Octopus ${backup.text} (Octopus cannot start on a newer schema; ${OCTOPUS_MOVE_RULE_URL}).`,
    );
  }
  const standbyVersion = parseOctopusVersion(standbyText);
  if (!standbyVersion) {
    return result('refuse', `The standby's Octopus version "${standbyText}"${input.standbySource ? ` (${input.standbySource})` : ''} is not a version such as 2025.4.100. Correct "${LABELS.version}".`);
  }
  const order = compareOctopusVersions(backup, standbyVersion);
  if (order > 0) {
    return result(
      'refuse',
      `${backupName} is from Octopus ${backup.text}, newer than ${standby}. Octopus cannot start on a database schema newer than itself, so nothing was restored. ` +
        `Upgrade the standby's Octopus Server to ${backup.text} first (Octopus moves a server only between the same versions: ${OCTOPUS_MOVE_RULE_URL}), then run this step again.`,
    );
  }
  if (order < 0) {
    return result(
      'warn',
      `${backupName} is from Octopus ${backup.text}, older than ${standby}. The restore goes ahead: when the standby's Octopus Server starts on this database it upgrades the schema to ${standbyVersion.text}, ` +
        `and that cannot be undone, so keep this backup. Octopus's guide moves a server only between the same versions (${OCTOPUS_MOVE_RULE_URL}); to follow it exactly, install ${backup.text} on the standby.`,
    );
  }
  return result('ok', `${backupName} and the standby both run Octopus ${backup.text}${input.standbySource ? ` (${input.standbySource})` : ''}.`);
}

/**
 * Problems with the standby parameters, by label, in the wording parseParameters uses (the formats are part
 * of their definitions, so a step has already refused them); empty when they are usable.
 */
export function standbyParameterProblems(values: { standbyUrl?: string; standbyVersion?: string }): string[] {
  return [formatProblem(standbyServerUrl, values.standbyUrl ?? ''), formatProblem(standbyOctopusVersion, values.standbyVersion ?? '')].filter(
    (problem): problem is string => problem !== undefined,
  );
}

/** A failure to read the standby's version, with a message that says what to do. Never holds the API key. */
export class StandbyVersionError extends StepFailure {
  constructor(message: string) {
    super(message);
    this.name = 'StandbyVersionError';
  }
}

export interface ReadStandbyVersionOptions {
  /** The standby's address, e.g. `https://octopus-standby.example.com` (a trailing /api is accepted). */
  serverUrl: string;
  /** Sent as X-Octopus-ApiKey when given; `GET /api` needs none on a real server. */
  apiKey?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  userAgent?: string;
}

export const DEFAULT_STANDBY_TIMEOUT_MS = 30_000;

const STANDBY_NETWORK_HINTS: Record<string, string> = {
  ...NETWORK_HINTS,
  ECONNREFUSED: 'the connection was refused (is its Octopus Server stopped?)',
};

function networkCodeOf(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

/** Reads `Version` from the standby's `GET /api`. Throws a StandbyVersionError that says what to do. */
export async function readStandbyVersion(options: ReadStandbyVersionOptions): Promise<string> {
  const normalised = normaliseServerUrl(options.serverUrl);
  if ('problem' in normalised) throw new StandbyVersionError(`"${LABELS.url}": ${normalised.problem}.`);
  const endpoint = `${normalised.url}/api`;
  const fallback = `If the standby's Octopus Server is stopped (as it should be while its database is restored), give "${LABELS.version}" instead.`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_STANDBY_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  timer.unref();
  const onAbort = () => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': options.userAgent ?? 'octopus-dr' };
  if (options.apiKey) headers['X-Octopus-ApiKey'] = options.apiKey;
  let status: number;
  let body: string;
  try {
    // No redirects: the API key must not follow one to another host; a redirect is reported instead.
    const response = await fetch(endpoint, { headers, redirect: 'manual', signal: controller.signal });
    status = response.status;
    if (status >= 300 && status < 400) {
      const location = response.headers.get('location');
      throw new StandbyVersionError(`${endpoint} redirects${location ? ` to ${location}` : ''}; set "${LABELS.url}" to the address Octopus answers at${location ? ' (the redirect target, without /api)' : ''}.`);
    }
    body = await response.text();
  } catch (error) {
    if (error instanceof StandbyVersionError) throw error;
    if (options.signal?.aborted) throw options.signal.reason ?? error;
    if (controller.signal.aborted) throw new StandbyVersionError(`The standby's Octopus Server at ${normalised.url} did not answer GET /api within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`}. ${fallback}`);
    const code = networkCodeOf(error);
    const cause = (error as { cause?: { message?: unknown } }).cause?.message;
    // fetch says only "fetch failed"; the reason (e.g. "bad port": fetch refuses a few ports) is its cause.
    const hint = code && STANDBY_NETWORK_HINTS[code] ? `${STANDBY_NETWORK_HINTS[code]} (${code})` : `${(error as Error).message}${typeof cause === 'string' ? `: ${cause}` : ''}${code ? ` (${code})` : ''}`;
    throw new StandbyVersionError(`Cannot read the standby's Octopus version from ${endpoint}: ${hint}. ${fallback}`);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (status === 401 || status === 403) {
    throw new StandbyVersionError(`The standby's Octopus Server at ${normalised.url} refused GET /api (${status}): check the API key it was given, or give "${LABELS.version}" instead.`);
  }
  if (status !== 200) throw new StandbyVersionError(`The standby's Octopus Server at ${normalised.url} answered GET /api with ${status}. ${fallback}`);
  let version: unknown;
  try {
    version = (JSON.parse(body) as { Version?: unknown })?.Version;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string' || !parseOctopusVersion(version)) {
    throw new StandbyVersionError(
      `${endpoint} did not answer like an Octopus Server (no Octopus version in its answer). Check "${LABELS.url}": it is the address you open the standby's Octopus at, e.g. https://octopus-standby.example.com.`,
    );
  }
  return version.trim();
}

export interface StandbyVersion {
  version: string | null;
  /** Where it came from, for messages. */
  source: string;
  /** Things the step should log as warnings (e.g. the API was unreachable and the parameter was used). */
  warnings: string[];
}

export interface ResolveStandbyVersionOptions {
  standbyUrl?: string;
  standbyVersion?: string;
  apiKey?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  userAgent?: string;
}

/**
 * The standby's version: from its API when a URL is given (falling back to the version parameter,
 * with a warning, when the API cannot be read), else from the parameter, else unknown (null).
 * Throws a StandbyVersionError when only a URL is given and it cannot be read.
 */
export async function resolveStandbyVersion(options: ResolveStandbyVersionOptions): Promise<StandbyVersion> {
  const given = options.standbyVersion?.trim() || '';
  const url = options.standbyUrl?.trim() || '';
  if (!url) return { version: given || null, source: given ? `given in "${LABELS.version}"` : 'not given', warnings: [] };
  try {
    const version = await readStandbyVersion({ serverUrl: url, apiKey: options.apiKey, timeoutMs: options.timeoutMs, signal: options.signal, userAgent: options.userAgent });
    const normalised = normaliseServerUrl(url);
    const source = `read from ${'url' in normalised ? normalised.url : url}/api`;
    const warnings: string[] = [];
    const givenVersion = parseOctopusVersion(given);
    const readVersion = parseOctopusVersion(version)!;
    if (givenVersion && compareOctopusVersions(givenVersion, readVersion) !== 0) {
      warnings.push(`"${LABELS.version}" says ${given}, but the standby answers ${version} (${source}); ${version} is used. Update or clear "${LABELS.version}".`);
    }
    return { version, source, warnings };
  } catch (error) {
    if (!(error instanceof StandbyVersionError) || !given) throw error;
    return { version: given, source: `given in "${LABELS.version}"`, warnings: [`${error.message} Using "${LABELS.version}" (${given}).`] };
  }
}

export interface StandbyGateOptions extends ResolveStandbyVersionOptions {
  backupVersion: string | null | undefined;
  backupLabel?: string;
}

/**
 * What a restore step calls: resolves the standby's version and compares it with the backup's.
 * Never throws for an unreadable standby: that is a `refuse` result whose message says what to do.
 */
export async function checkStandbyVersion(options: StandbyGateOptions): Promise<VersionGateResult & { warnings: string[] }> {
  let standby: StandbyVersion;
  try {
    standby = await resolveStandbyVersion(options);
  } catch (error) {
    if (!(error instanceof StandbyVersionError)) throw error;
    return { outcome: 'refuse', message: error.message, backupVersion: options.backupVersion ?? null, standbyVersion: null, warnings: [] };
  }
  const gate = checkVersionGate({ backupVersion: options.backupVersion, standbyVersion: standby.version, standbySource: standby.source, backupLabel: options.backupLabel });
  return { ...gate, warnings: standby.warnings };
}
