// Our own masking, in addition to Octopus's: anything a step registers as secret is replaced
// before a line leaves the process, under a runner and on the command line alike. Matching is
// case-insensitive: drivers and the OS lower-case what they quote (a host-name lookup error
// shows `Server=<value>` in lower case), and a secret must not survive that.
export const REDACTED = '********';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces every secret, whatever its letter case, longest first (so a secret that contains another goes whole). */
export function redactAll(text: string, secrets: Iterable<string>, replacement = REDACTED): string {
  let result = text;
  for (const secret of [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)) {
    if (!result.toLowerCase().includes(secret.toLowerCase())) continue;
    result = result.replace(new RegExp(escapeRegExp(secret), 'gi'), replacement);
  }
  return result;
}

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Values shorter than 4 characters are not redacted (as in Octopus) to keep output readable. */
  add(secret: string): boolean {
    if (secret.length < 4 || this.secrets.has(secret)) return false;
    this.secrets.add(secret);
    return true;
  }

  /** Everything registered so far (for checks that a value does not carry one). */
  get values(): readonly string[] {
    return [...this.secrets];
  }

  redact(text: string): string {
    if (this.secrets.size === 0) return text;
    return redactAll(text, this.secrets);
  }
}
