// Runs a batch: splits it into statements, finds each statement's handler in the registry and
// gives it a context (model, session, variables, expression evaluation, result output).
import { Cursor, splitStatements, SqlSyntaxError, tokenize, tokensText, type Expr, type Token } from './sql';
import { compare, convert, parseType, SqlTypeError, T, typeOfValue, type SqlType, type SqlValue, type Typed } from './types';
import type { ServerModel, Session } from './model';

/** An error as SQL Server reports it (number, severity, state). */
export class SqlServerError extends Error {
  constructor(
    readonly number: number,
    message: string,
    readonly severity = 16,
    readonly state = 1,
    /** Errors sent before this one (e.g. 3201 before 3013). */
    readonly preceding: { number: number; message: string; severity?: number; state?: number }[] = [],
  ) {
    super(message);
  }
}

/** The abort reason of a request whose client connection closed (SQL Server kills that session's work). */
export const SESSION_DISCONNECTED = 'session disconnected';

export class AttentionError extends Error {
  constructor() {
    super('The client sent an attention (cancel).');
  }
}

export interface ResultColumn {
  name: string;
  type: SqlType;
}

export type StatementCommand = 'select' | 'insert' | 'update' | 'delete';

/** Where results go: the protocol layer turns these into tokens and packets. */
export interface ResultSink {
  resultSet(columns: ResultColumn[], rows: SqlValue[][]): void;
  info(number: number, message: string, severity?: number, state?: number): void;
  /**
   * A statement finished: DONE / DONEINPROC, with a row count when it has one. `command` is the
   * DONE token's CurCmd: SqlClient counts rows affected only for INSERT/UPDATE/DELETE (not SELECT).
   */
  statementDone(rowCount?: number, command?: StatementCommand): void;
  /** Sends what is buffered now (streamed INFO progress); resolves when written. */
  flush(): Promise<void>;
}

export type Scope = Map<string, Typed & { output?: boolean }>;

export interface StatementContext {
  model: ServerModel;
  session: Session;
  /** Variables of the current scope (RPC parameters, DECLAREd variables); keys lower-case with '@'. */
  vars: Scope;
  tokens: Token[];
  text: string;
  sink: ResultSink;
  /** Aborted when the client sends an attention. */
  signal: AbortSignal;
  evaluate(expr: Expr, row?: RowScope): Typed;
  /** Runs statements (nested dynamic SQL, IF bodies) in a scope. */
  execute(sql: string | Token[], vars: Scope): Promise<void>;
  /** Sleeps, but throws AttentionError as soon as the client cancels. */
  sleep(ms: number): Promise<void>;
}

export interface StatementHandler {
  /** Shown in messages and in the list of understood statements. */
  name: string;
  /** Tested against the statement's tokens; the first matching handler runs. */
  matches(c: Cursor): boolean;
  run(ctx: StatementContext, c: Cursor): Promise<void> | void;
}

/** Scalar functions by upper-case name; other areas register theirs (e.g. DECOMPRESS). */
export type ScalarFunction = (args: Typed[], ctx: StatementContext) => Typed;
export const functions = new Map<string, ScalarFunction>();

/** Table sources by lower-case `schema.name` (or `db.schema.name` for fixed databases such as msdb). */
export interface VirtualTable {
  columns: ResultColumn[];
  rows(ctx: StatementContext, database: string): SqlValue[][];
}
export const virtualTables = new Map<string, VirtualTable>();

export const handlers: StatementHandler[] = [];

/** Evaluates `(SELECT ...)` and `EXISTS (SELECT ...)`; set by statements/select.ts. */
export const subqueries: { evaluate?: (tokens: Token[], exists: boolean, ctx: StatementContext, outer?: RowScope) => Typed } = {};

export function registerHandlers(list: StatementHandler[]): void {
  handlers.push(...list);
}

/** Values of columns visible to an expression (FROM rows), keyed by lower-case name and alias.name. */
export type RowScope = Map<string, Typed>;

export class Executor {
  constructor(private readonly model: ServerModel) {}

  async executeBatch(sql: string | Token[], vars: Scope, session: Session, sink: ResultSink, signal: AbortSignal): Promise<void> {
    let tokens: Token[];
    try {
      tokens = typeof sql === 'string' ? tokenize(sql) : sql;
    } catch (e) {
      throw new SqlServerError(102, e instanceof Error ? e.message : String(e), 15);
    }
    for (const statement of splitStatements(tokens)) {
      if (signal.aborted) throw new AttentionError();
      await this.executeStatement(statement, vars, session, sink, signal);
    }
  }

  private async executeStatement(tokens: Token[], vars: Scope, session: Session, sink: ResultSink, signal: AbortSignal): Promise<void> {
    const text = tokensText(tokens);
    const ctx: StatementContext = {
      model: this.model,
      session,
      vars,
      tokens,
      text,
      sink,
      signal,
      evaluate: (expr, row) => evaluate(expr, ctx, row),
      execute: (sql, scope) => this.executeBatch(sql, scope, session, sink, signal),
      sleep: (ms) =>
        new Promise((resolve, reject) => {
          if (signal.aborted) return reject(new AttentionError());
          const timer = setTimeout(() => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          }, ms);
          const onAbort = () => {
            clearTimeout(timer);
            reject(new AttentionError());
          };
          signal.addEventListener('abort', onAbort, { once: true });
        }),
    };
    const handler = handlers.find((h) => h.matches(new Cursor(tokens)));
    if (!handler) {
      throw new SqlServerError(
        50999,
        `The SQL Server simulator does not understand this statement: ${text.slice(0, 300)}. Add a handler under test/sql-simulator/statements/.`,
      );
    }
    try {
      await handler.run(ctx, new Cursor(tokens));
    } catch (e) {
      if (e instanceof SqlSyntaxError) throw new SqlServerError(102, `${e.message} (statement: ${text.slice(0, 200)})`, 15);
      if (e instanceof SqlTypeError) throw new SqlServerError(245, e.message, 16);
      throw e;
    }
  }
}

// ---- expression evaluation ----

const truthy = (t: Typed) => t.value === true;

export function evaluate(expr: Expr, ctx: StatementContext, row?: RowScope): Typed {
  switch (expr.kind) {
    case 'literal': {
      const v = expr.value;
      if (typeof v === 'string') return { type: expr.unicode ? T.nvarchar(Math.max(1, v.length)) : T.varchar(Math.max(1, v.length)), value: v };
      return { type: typeOfValue(v), value: v };
    }
    case 'variable': {
      const name = expr.name.toLowerCase();
      if (name === '@@version') return { type: T.nvarchar(300), value: `Microsoft SQL Server (simulated) - ${ctx.model.properties.productVersion}` };
      if (name === '@@servername') return { type: T.nvarchar(128), value: ctx.model.properties.serverName };
      if (name === '@@spid') return { type: T.smallint, value: ctx.session.id };
      if (name === '@@rowcount') return { type: T.int, value: 0 };
      const v = ctx.vars.get(name);
      if (!v) throw new SqlServerError(137, `Must declare the scalar variable "${expr.name}".`, 15, 2);
      return v;
    }
    case 'column': {
      const key = expr.parts.map((p) => p.toLowerCase()).join('.');
      const v = row?.get(key) ?? row?.get(expr.parts[expr.parts.length - 1].toLowerCase());
      if (!v) throw new SqlServerError(207, `Invalid column name '${expr.parts[expr.parts.length - 1]}'.`, 16);
      return v;
    }
    case 'star':
      throw new SqlServerError(102, "Incorrect syntax near '*'.", 15);
    case 'cast': {
      const inner = evaluate(expr.expr, ctx, row);
      const type = parseType(expr.type);
      const style = expr.style ? Number(evaluate(expr.style, ctx, row).value) : undefined;
      if (inner.value instanceof Date && style !== undefined && ['nvarchar', 'varchar', 'nchar', 'char'].includes(type.name)) {
        // CONVERT styles for ISO text: 126/127 = yyyy-mm-ddThh:mi:ss.mmm, 120/121 with a space.
        const iso = inner.value.toISOString().slice(0, 23);
        const text = style === 127 ? `${iso}Z` : style === 126 ? iso : style === 121 ? iso.replace('T', ' ') : style === 120 ? iso.slice(0, 19).replace('T', ' ') : iso.replace('T', ' ');
        return { type, value: convert(text, type) };
      }
      if (Buffer.isBuffer(inner.value) && (style === 1 || style === 2) && ['nvarchar', 'varchar', 'nchar', 'char'].includes(type.name)) {
        // Binary as hex text: style 1 with 0x, style 2 without (upper case, as SQL Server writes it).
        const hex = inner.value.toString('hex').toUpperCase();
        return { type, value: convert(style === 1 ? `0x${hex}` : hex, type) };
      }
      return { type, value: convert(inner.value, type) };
    }
    case 'unary': {
      const v = evaluate(expr.expr, ctx, row);
      if (expr.op === 'NOT') return { type: T.bit, value: v.value === null ? null : !truthy(v) };
      if (v.value === null) return v;
      return { type: v.type, value: typeof v.value === 'bigint' ? -v.value : -Number(v.value) };
    }
    case 'isnull': {
      const v = evaluate(expr.expr, ctx, row);
      return { type: T.bit, value: (v.value === null) !== expr.not };
    }
    case 'in': {
      const v = evaluate(expr.expr, ctx, row);
      const found = expr.list.some((e) => compare(v.value, evaluate(e, ctx, row).value) === 0);
      return { type: T.bit, value: v.value === null ? null : found !== expr.not };
    }
    case 'like': {
      const v = evaluate(expr.expr, ctx, row).value;
      const p = evaluate(expr.pattern, ctx, row).value;
      if (v === null || p === null) return { type: T.bit, value: null };
      const re = new RegExp(`^${String(p).replace(/[.*+?^${}()|\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.')}$`, 'is');
      return { type: T.bit, value: re.test(String(v)) !== expr.not };
    }
    case 'case': {
      const operand = expr.operand ? evaluate(expr.operand, ctx, row) : undefined;
      for (const w of expr.whens) {
        const hit = operand ? compare(operand.value, evaluate(w.when, ctx, row).value) === 0 : truthy(evaluate(w.when, ctx, row));
        if (hit) return evaluate(w.then, ctx, row);
      }
      return expr.otherwise ? evaluate(expr.otherwise, ctx, row) : { type: T.int, value: null };
    }
    case 'binary': {
      if (expr.op === 'AND' || expr.op === 'OR') {
        const l = evaluate(expr.left, ctx, row);
        const r = evaluate(expr.right, ctx, row);
        if (expr.op === 'AND') return { type: T.bit, value: l.value === false || r.value === false ? false : l.value === null || r.value === null ? null : true };
        return { type: T.bit, value: l.value === true || r.value === true ? true : l.value === null || r.value === null ? null : false };
      }
      const l = evaluate(expr.left, ctx, row);
      const r = evaluate(expr.right, ctx, row);
      if (['=', '<>', '<', '>', '<=', '>='].includes(expr.op)) {
        const c = compare(l.value, r.value);
        if (c === null) return { type: T.bit, value: null };
        const value = expr.op === '=' ? c === 0 : expr.op === '<>' ? c !== 0 : expr.op === '<' ? c < 0 : expr.op === '>' ? c > 0 : expr.op === '<=' ? c <= 0 : c >= 0;
        return { type: T.bit, value };
      }
      if (l.value === null || r.value === null) return { type: l.type, value: null };
      if (expr.op === '+' && (typeof l.value === 'string' || typeof r.value === 'string')) {
        const s = String(l.value) + String(r.value);
        const unicode = l.type.name.startsWith('n') || r.type.name.startsWith('n');
        return { type: unicode ? T.nvarchar(s.length > 4000 ? 'max' : Math.max(1, s.length)) : T.varchar(s.length > 8000 ? 'max' : Math.max(1, s.length)), value: s };
      }
      if (typeof l.value === 'bigint' || typeof r.value === 'bigint') {
        const a = BigInt(l.value as bigint | number);
        const b = BigInt(r.value as bigint | number);
        const value = expr.op === '+' ? a + b : expr.op === '-' ? a - b : expr.op === '*' ? a * b : expr.op === '/' ? a / b : a % b;
        return { type: T.bigint, value };
      }
      const a = Number(l.value);
      const b = Number(r.value);
      if ((expr.op === '/' || expr.op === '%') && b === 0) throw new SqlServerError(8134, 'Divide by zero error encountered.', 16);
      const integer = Number.isInteger(a) && Number.isInteger(b) && l.type.name !== 'float' && r.type.name !== 'float';
      const value = expr.op === '+' ? a + b : expr.op === '-' ? a - b : expr.op === '*' ? a * b : expr.op === '/' ? (integer ? Math.trunc(a / b) : a / b) : a % b;
      return { type: integer ? T.int : T.float, value };
    }
    case 'subquery':
      if (!subqueries.evaluate) throw new SqlServerError(50999, 'The SQL Server simulator has no subquery support loaded.');
      return subqueries.evaluate(expr.tokens, expr.exists, ctx, row);
    case 'call': {
      const fn = functions.get(expr.name) ?? functions.get(expr.name.split('.').pop() ?? '');
      if (!fn) throw new SqlServerError(195, `'${expr.name}' is not a recognized built-in function name.`, 15);
      return fn(expr.args.map((a) => evaluate(a, ctx, row)), ctx);
    }
  }
}
