// Octopus Server versions: `2025.4.100`, `2026.1.5021`, older `3.17.14`, with an optional
// pre-release (`2026.1.5021-rc.2`) and build metadata (`+Branch.main.Sha.0a1b2c`). They order like
// SemVer 2.0 (https://semver.org/#spec-item-11): numbers part by part, a pre-release before its
// release, build metadata ignored. Written here (30 lines) rather than depending on `semver`, which
// would need a new direct dependency and type package for one comparison; the tests pin the rules.

export interface OctopusVersion {
  /** As given, trimmed. */
  text: string;
  /** Major, minor, build (and a fourth part when given); missing parts count as 0. */
  numbers: number[];
  /** Dot-separated pre-release identifiers; empty for a release. */
  preRelease: string[];
}

const VERSION = /^v?(\d{1,9})\.(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Parses an Octopus version; undefined when the text is not one. */
export function parseOctopusVersion(text: string | null | undefined): OctopusVersion | undefined {
  if (typeof text !== 'string') return undefined;
  const trimmed = text.trim();
  const m = VERSION.exec(trimmed);
  if (!m) return undefined;
  const numbers = [m[1], m[2], m[3] ?? '0', m[4] ?? '0'].map(Number);
  return { text: trimmed, numbers, preRelease: m[5] ? m[5].split('.') : [] };
}

function comparePreRelease(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return (a.length === 0 ? 1 : 0) - (b.length === 0 ? 1 : 0);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i], b[i]];
    const [xNumeric, yNumeric] = [/^\d+$/.test(x), /^\d+$/.test(y)];
    if (xNumeric && yNumeric && Number(x) !== Number(y)) return Number(x) - Number(y);
    // Numeric identifiers sort before alphanumeric ones; alphanumeric ones in ASCII order.
    if (xNumeric !== yNumeric) return xNumeric ? -1 : 1;
    if (!xNumeric && x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Negative when a is older than b, 0 when they are the same version, positive when a is newer. */
export function compareOctopusVersions(a: OctopusVersion, b: OctopusVersion): number {
  for (let i = 0; i < 4; i++) if (a.numbers[i] !== b.numbers[i]) return a.numbers[i] - b.numbers[i];
  return comparePreRelease(a.preRelease, b.preRelease);
}
