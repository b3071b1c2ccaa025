// The forms formatted parameter values must have: part of the parameter definitions, so that
// parseParameters checks them for every step, before anything connects, with one wording. The
// checks themselves live beside the code that uses the values (small, dependency-free modules).
import { parseEndpoint } from '../steps/check-worker/endpoint';
import { normaliseLocalTime } from '../steps/engines/database-backup/backup-set';
import { normaliseServerUrl } from '../steps/engines/octopus/server-url';
import { parseOctopusVersion } from '../steps/engines/standby/octopus-version';
import type { ValueFormat } from './model';

/** A master key's key ID, as Verify Master Key prints it and backup manifests record it. */
export const KEY_ID_FORMAT: ValueFormat = {
  description: '16 hexadecimal characters (the KeyId output variable of *Octopus DR - Verify Master Key*, as backup manifests record it)',
  example: '41252bd34faf3857',
  check: (value) => (/^[0-9a-f]{16}$/i.test(value) ? undefined : true),
};

/** A moment in the SQL Server's local time (STOPAT takes no offset). */
export const LOCAL_DATE_TIME_FORMAT: ValueFormat = {
  description: "an ISO-8601 date and time without offset, in the SQL Server's local time",
  example: '2026-11-27T14:30:00',
  check: (value) => (normaliseLocalTime(value) ? undefined : true),
};

/** The address of an Octopus Server. */
export const SERVER_URL_FORMAT: ValueFormat = {
  description: "the Octopus Server's address (http:// or https://, no query)",
  example: 'https://octopus.example.com',
  check: (value) => {
    const normalised = normaliseServerUrl(value);
    if (!('problem' in normalised)) return undefined;
    // A URL with a user name or password in it is not repeated: it may hold a password.
    return /user name or password/.test(normalised.problem) ? 'a URL with a user name or password in it (use an API key)' : true;
  },
};

/** An Octopus Server version, as Configuration > About shows it. */
export const OCTOPUS_VERSION_FORMAT: ValueFormat = {
  description: 'an Octopus version as shown in Octopus under Configuration > About',
  example: '2025.4.100',
  check: (value) => (parseOctopusVersion(value) ? undefined : true),
};

/** Test Latest Backup's scratch name is the prefix, a UTC stamp and a random part (23 characters): 128 in all at most. */
export const SCRATCH_PREFIX_FORMAT: ValueFormat = {
  description: 'at most 105 characters without control characters (the timestamp and random part that follow make up to 128, the longest SQL Server name)',
  example: 'octopus-dr-test-',
  check: (value) => (/[\u0000-\u001f\u007f]/.test(value) ? true : value.length > 105 ? `${value.length} characters long` : undefined),
};

/** Check Worker's TCP endpoints, one per line: refused before any of them is connected to. */
export const TCP_ENDPOINT_FORMAT: ValueFormat = {
  description: 'host:port with a port from 1 to 65535 ([address]:port for an IPv6 address)',
  example: 'sql01:1433',
  check: (value) => (typeof parseEndpoint(value) === 'string' ? true : undefined),
};
