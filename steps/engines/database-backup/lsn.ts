// Log sequence numbers are numeric(25,0): more digits than a JS number holds exactly, so they
// travel as decimal strings (cast to varchar in SQL) and are compared as BigInt.

export type Lsn = string;

const LSN_PATTERN = /^\d{1,25}$/;

export function isLsn(text: unknown): text is Lsn {
  return typeof text === 'string' && LSN_PATTERN.test(text);
}

export function lsnValue(lsn: Lsn): bigint {
  if (!isLsn(lsn)) throw new Error(`"${String(lsn)}" is not a log sequence number (decimal digits expected).`);
  return BigInt(lsn);
}

/** Normalises an LSN as SQL Server prints it (no leading zeros). */
export function normaliseLsn(text: string): Lsn {
  return lsnValue(text.trim()).toString();
}

export function compareLsn(a: Lsn, b: Lsn): number {
  const x = lsnValue(a);
  const y = lsnValue(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const lsnLess = (a: Lsn, b: Lsn): boolean => compareLsn(a, b) < 0;
export const lsnLessOrEqual = (a: Lsn, b: Lsn): boolean => compareLsn(a, b) <= 0;
export const lsnEqual = (a: Lsn, b: Lsn): boolean => compareLsn(a, b) === 0;
