// Our own masking, in addition to Octopus's: anything a step registers as secret is replaced
// before a line leaves the process, under a runner and on the command line alike.
export const REDACTED = '********';

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Values shorter than 4 characters are not redacted (as in Octopus) to keep output readable. */
  add(secret: string): boolean {
    if (secret.length < 4 || this.secrets.has(secret)) return false;
    this.secrets.add(secret);
    return true;
  }

  redact(text: string): string {
    if (this.secrets.size === 0) return text;
    // Longest first, so a secret that contains another is replaced whole.
    let result = text;
    for (const secret of [...this.secrets].sort((a, b) => b.length - a.length)) {
      if (result.includes(secret)) result = result.split(secret).join(REDACTED);
    }
    return result;
  }
}
