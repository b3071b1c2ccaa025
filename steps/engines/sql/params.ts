// Typed statement parameters. Values always travel as sp_executesql parameters, never as SQL text.
import * as mssql from 'mssql';

export type SqlParamType =
  | { type: 'nvarchar'; length?: number }
  | { type: 'varchar'; length?: number }
  | { type: 'int' }
  | { type: 'bigint' }
  | { type: 'bit' }
  | { type: 'varbinary'; length?: number }
  | { type: 'datetime' }
  | { type: 'datetime2'; scale?: number }
  | { type: 'decimal'; precision: number; scale: number };

export interface TypedParam {
  readonly kind: 'typed-param';
  readonly sqlType: SqlParamType;
  readonly value: string | number | bigint | boolean | Buffer | Date | null;
}

/** A plain value is typed by its JS type: string -> nvarchar, integer -> int/bigint, boolean -> bit, Buffer -> varbinary(max), Date -> datetime2. */
export type SqlParamValue = TypedParam | string | number | bigint | boolean | Buffer | Date | null;
export type SqlParams = Record<string, SqlParamValue>;

function typed(sqlType: SqlParamType, value: TypedParam['value']): TypedParam {
  return { kind: 'typed-param', sqlType, value };
}

/** Explicitly typed parameters, e.g. `param.nvarchar(name, 128)`; length omitted = MAX. */
export const param = {
  nvarchar: (value: string | null, length?: number) => typed({ type: 'nvarchar', length }, value),
  varchar: (value: string | null, length?: number) => typed({ type: 'varchar', length }, value),
  int: (value: number | null) => typed({ type: 'int' }, value),
  bigint: (value: bigint | number | string | null) => typed({ type: 'bigint' }, value),
  bit: (value: boolean | null) => typed({ type: 'bit' }, value),
  varbinary: (value: Buffer | null, length?: number) => typed({ type: 'varbinary', length }, value),
  datetime: (value: Date | null) => typed({ type: 'datetime' }, value),
  datetime2: (value: Date | null, scale = 7) => typed({ type: 'datetime2', scale }, value),
  decimal: (value: number | string | null, precision: number, scale: number) => typed({ type: 'decimal', precision, scale }, value),
};

export function isTypedParam(value: unknown): value is TypedParam {
  return typeof value === 'object' && value !== null && (value as TypedParam).kind === 'typed-param';
}

/** Parameter names become `@name`: letters, digits and _ only, so they can never carry SQL. */
export function checkParamName(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) throw new Error(`Invalid SQL parameter name '${name}' (letters, digits and _ only).`);
}

export function normalise(value: SqlParamValue): TypedParam {
  if (isTypedParam(value)) return value;
  if (value === null) return typed({ type: 'nvarchar', length: 1 }, null);
  if (typeof value === 'string') return typed({ type: 'nvarchar', length: value.length <= 4000 ? 4000 : undefined }, value);
  if (typeof value === 'boolean') return typed({ type: 'bit' }, value);
  if (typeof value === 'bigint') return typed({ type: 'bigint' }, value);
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return typed({ type: value >= -2_147_483_648 && value <= 2_147_483_647 ? 'int' : 'bigint' }, value);
    return typed({ type: 'decimal', precision: 38, scale: 10 }, value);
  }
  if (Buffer.isBuffer(value)) return typed({ type: 'varbinary' }, value);
  if (value instanceof Date) return typed({ type: 'datetime2', scale: 7 }, value);
  throw new Error(`Unsupported SQL parameter value of type ${typeof value}.`);
}

/** The mssql type object and the value mssql expects for it. */
export function toMssql(p: TypedParam): { type: mssql.ISqlType | (() => mssql.ISqlType); value: unknown } {
  const t = p.sqlType;
  switch (t.type) {
    case 'nvarchar':
      return { type: mssql.NVarChar(t.length ?? mssql.MAX), value: p.value };
    case 'varchar':
      return { type: mssql.VarChar(t.length ?? mssql.MAX), value: p.value };
    case 'int':
      return { type: mssql.Int(), value: p.value };
    case 'bigint':
      // Strings keep all 64 bits (JS numbers lose digits above 2^53).
      return { type: mssql.BigInt(), value: p.value === null ? null : String(p.value) };
    case 'bit':
      return { type: mssql.Bit(), value: p.value };
    case 'varbinary':
      return { type: mssql.VarBinary(t.length ?? mssql.MAX), value: p.value };
    case 'datetime':
      return { type: mssql.DateTime(), value: p.value };
    case 'datetime2':
      return { type: mssql.DateTime2(t.scale ?? 7), value: p.value };
    case 'decimal':
      return { type: mssql.Decimal(t.precision, t.scale), value: p.value };
  }
}

/** The declaration text sp_executesql needs, e.g. `nvarchar(128)`, for nested dynamic SQL. */
export function declarationOf(p: TypedParam): string {
  const t = p.sqlType;
  switch (t.type) {
    case 'nvarchar':
    case 'varchar':
    case 'varbinary':
      return `${t.type}(${t.length ?? 'max'})`;
    case 'datetime2':
      return `datetime2(${t.scale ?? 7})`;
    case 'decimal':
      return `decimal(${t.precision},${t.scale})`;
    default:
      return t.type;
  }
}
