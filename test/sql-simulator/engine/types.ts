// SQL types and values of the simulated server: what columns, variables and parameters hold.

export type SqlTypeName =
  | 'int' | 'bigint' | 'smallint' | 'tinyint' | 'bit'
  | 'nvarchar' | 'varchar' | 'nchar' | 'char' | 'varbinary' | 'binary'
  | 'datetime' | 'datetime2' | 'date'
  | 'numeric' | 'decimal' | 'float' | 'uniqueidentifier';

export interface SqlType {
  name: SqlTypeName;
  /** Characters (or bytes for binary); 'max' for MAX types. */
  length?: number | 'max';
  precision?: number;
  scale?: number;
}

/** null | string | number | bigint (bigint, numeric(>15 digits)) | boolean | Buffer | Date. */
export type SqlValue = null | string | number | bigint | boolean | Buffer | Date;

export interface Typed {
  type: SqlType;
  value: SqlValue;
}

export const T = {
  int: { name: 'int' } as SqlType,
  bigint: { name: 'bigint' } as SqlType,
  smallint: { name: 'smallint' } as SqlType,
  tinyint: { name: 'tinyint' } as SqlType,
  bit: { name: 'bit' } as SqlType,
  nvarchar: (length: number | 'max' = 4000): SqlType => ({ name: 'nvarchar', length }),
  varchar: (length: number | 'max' = 8000): SqlType => ({ name: 'varchar', length }),
  varbinary: (length: number | 'max' = 'max'): SqlType => ({ name: 'varbinary', length }),
  datetime: { name: 'datetime' } as SqlType,
  datetime2: (scale = 7): SqlType => ({ name: 'datetime2', scale }),
  numeric: (precision: number, scale = 0): SqlType => ({ name: 'numeric', precision, scale }),
  float: { name: 'float' } as SqlType,
};

export class SqlTypeError extends Error {}

/** `nvarchar(128)`, `varbinary(max)`, `numeric(25,0)`, `int`, `sysname` ... */
export function parseType(text: string): SqlType {
  const m = /^\s*\[?([a-z_0-9]+)\]?\s*(?:\(\s*(max|\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$/i.exec(text);
  if (!m) throw new SqlTypeError(`Unknown type '${text}'.`);
  const name = m[1].toLowerCase();
  const arg = m[2]?.toLowerCase();
  const length = arg === undefined ? undefined : arg === 'max' ? 'max' : Number(arg);
  switch (name) {
    case 'sysname':
      return { name: 'nvarchar', length: 128 };
    case 'nvarchar': case 'varchar': case 'varbinary':
      return { name, length: length ?? 1 };
    case 'nchar': case 'char': case 'binary':
      return { name, length: length ?? 1 };
    case 'numeric': case 'decimal':
      return { name: 'numeric', precision: typeof length === 'number' ? length : 18, scale: m[3] ? Number(m[3]) : 0 };
    case 'datetime2':
      return { name, scale: typeof length === 'number' ? length : 7 };
    case 'int': case 'bigint': case 'smallint': case 'tinyint': case 'bit': case 'datetime': case 'date': case 'float': case 'uniqueidentifier':
      return { name };
    case 'real':
      return { name: 'float' };
    default:
      throw new SqlTypeError(`Type '${text}' is not supported by the SQL Server simulator.`);
  }
}

export function typeText(t: SqlType): string {
  if (t.length !== undefined) return `${t.name}(${t.length})`;
  if (t.name === 'numeric' || t.name === 'decimal') return `${t.name}(${t.precision},${t.scale})`;
  if (t.name === 'datetime2') return `datetime2(${t.scale ?? 7})`;
  return t.name;
}

export function isStringType(t: SqlType): boolean {
  return t.name === 'nvarchar' || t.name === 'varchar' || t.name === 'nchar' || t.name === 'char';
}

/** The type a plain value would get (literals, JSON seed values). */
export function typeOfValue(v: SqlValue): SqlType {
  if (v === null) return T.int;
  if (typeof v === 'string') return T.nvarchar(v.length > 4000 ? 'max' : Math.max(1, v.length));
  if (typeof v === 'boolean') return T.bit;
  if (typeof v === 'bigint') return T.bigint;
  if (typeof v === 'number') return Number.isInteger(v) ? (Math.abs(v) <= 2147483647 ? T.int : T.bigint) : T.float;
  if (Buffer.isBuffer(v)) return T.varbinary('max');
  return T.datetime2(7);
}

function toDate(v: SqlValue): Date {
  if (v instanceof Date) return v;
  if (typeof v === 'string') {
    // SQL Server reads an ISO literal without offset as a wall-clock time; with useUTC (the
    // tedious default) that wall clock travels as UTC, so we keep it as UTC here.
    const iso = /[zZ]|[+-]\d\d:\d\d$/.test(v) ? v : `${v.replace(' ', 'T')}Z`;
    const d = new Date(iso);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new SqlTypeError(`Conversion failed when converting '${String(v)}' to date and/or time.`);
}

/** CAST semantics, as far as our statements need them. */
export function convert(v: SqlValue, to: SqlType): SqlValue {
  if (v === null) return null;
  switch (to.name) {
    case 'int': case 'smallint': case 'tinyint': {
      if (typeof v === 'boolean') return v ? 1 : 0;
      const n = typeof v === 'bigint' ? Number(v) : Number(typeof v === 'string' ? v.trim() : v);
      if (!Number.isFinite(n)) throw new SqlTypeError(`Conversion failed when converting the value '${String(v)}' to data type ${to.name}.`);
      return Math.trunc(n);
    }
    case 'bigint':
      if (typeof v === 'boolean') return v ? 1n : 0n;
      if (typeof v === 'number') return BigInt(Math.trunc(v));
      if (typeof v === 'string') return BigInt(v.trim().replace(/\.\d*$/, ''));
      return typeof v === 'bigint' ? v : BigInt(String(v));
    case 'bit':
      if (typeof v === 'string') return !['0', 'false', ''].includes(v.trim().toLowerCase());
      return Boolean(typeof v === 'bigint' ? v !== 0n : v);
    case 'numeric': case 'decimal':
      if (typeof v === 'bigint') return (to.scale ?? 0) === 0 ? v : Number(v);
      if (typeof v === 'string') return (to.scale ?? 0) === 0 && /^\s*-?\d+\s*$/.test(v) ? BigInt(v.trim()) : Number(v);
      return typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
    case 'float':
      return Number(v);
    case 'nvarchar': case 'varchar': case 'nchar': case 'char': {
      let s: string;
      if (v instanceof Date) s = v.toISOString().replace('T', ' ').replace('Z', '');
      else if (Buffer.isBuffer(v)) s = to.name.startsWith('n') ? v.toString('utf16le') : v.toString('latin1');
      else if (typeof v === 'boolean') s = v ? '1' : '0';
      else s = String(v);
      return typeof to.length === 'number' ? s.slice(0, to.length) : s;
    }
    case 'varbinary': case 'binary':
      if (Buffer.isBuffer(v)) return v;
      if (typeof v === 'string') return Buffer.from(v, 'utf16le');
      throw new SqlTypeError(`Implicit conversion to ${to.name} is not allowed.`);
    case 'datetime': case 'datetime2': case 'date':
      return toDate(v);
    case 'uniqueidentifier':
      return String(v).toUpperCase();
  }
}

/**
 * A string as the default collation compares it: case ignored, trailing spaces ignored, and `ß`
 * equal to `ss`. SQL Server compares Unicode (nvarchar, so sysname: database names) by Windows
 * rules even under SQL_Latin1_General_CP1_CI_AS, and those equate `ß` and `ss` (observed:
 * dba.stackexchange.com/questions/335859, N'ß' = 'ss' on SQL Server 2019 with that collation).
 * The simulator applies it to varchar too, where SQL_ collations would not.
 */
export function collationKey(s: string): string {
  return s.toLowerCase().trimEnd().replace(/ß/g, 'ss');
}

/** Equality and ordering as T-SQL compares (strings by collationKey: the default collation is CI). */
export function compare(a: SqlValue, b: SqlValue): number | null {
  if (a === null || b === null) return null;
  if (typeof a === 'string' && typeof b === 'string') {
    const x = collationKey(a);
    const y = collationKey(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a instanceof Date || b instanceof Date) return toDate(a).getTime() - toDate(b).getTime();
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b);
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = BigInt(typeof a === 'boolean' ? Number(a) : typeof a === 'number' ? Math.trunc(a) : (a as bigint | string));
    const y = BigInt(typeof b === 'boolean' ? Number(b) : typeof b === 'number' ? Math.trunc(b) : (b as bigint | string));
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = Number(a);
  const y = Number(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** JSON (seed/state files) -> value of a column type. */
export function fromJson(v: unknown, t: SqlType): SqlValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object' && v !== null && 'base64' in v) return Buffer.from(String((v as { base64: string }).base64), 'base64');
  return convert(v as SqlValue, t);
}

export function toJson(v: SqlValue): unknown {
  if (v === null) return null;
  if (Buffer.isBuffer(v)) return { base64: v.toString('base64') };
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  return v;
}
