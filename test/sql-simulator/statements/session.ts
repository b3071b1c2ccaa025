// Session and control-of-flow statements: SET options, USE, DECLARE, SET @var, IF, EXEC
// sp_executesql / xp_instance_regread, THROW, RAISERROR, PRINT, WAITFOR DELAY.
import { SqlServerError, type StatementContext, type StatementHandler } from '../engine/executor';
import { Cursor, SqlSyntaxError } from '../engine/sql';
import { convert, parseType, T, type SqlValue } from '../engine/types';

const SET_OPTIONS = new Set([
  'TEXTSIZE', 'QUOTED_IDENTIFIER', 'ARITHABORT', 'NUMERIC_ROUNDABORT', 'ANSI_WARNINGS', 'ANSI_PADDING', 'ANSI_NULLS',
  'CONCAT_NULL_YIELDS_NULL', 'CURSOR_CLOSE_ON_COMMIT', 'IMPLICIT_TRANSACTIONS', 'LANGUAGE', 'DATEFORMAT', 'DATEFIRST',
  'TRANSACTION', 'NOCOUNT', 'XACT_ABORT', 'ANSI_NULL_DFLT_ON', 'ANSI_DEFAULTS', 'LOCK_TIMEOUT', 'DEADLOCK_PRIORITY', 'CONTEXT_INFO',
]);

/** `set textsize 2147483647 set quoted_identifier on ...` (tedious' first batch has no semicolons). */
const setOptions: StatementHandler = {
  name: 'SET <session option> ...',
  matches: (c) => c.isWord('SET') && c.peek(1)?.kind === 'word' && SET_OPTIONS.has((c.peek(1) as { upper: string }).upper),
  run(ctx, c) {
    while (!c.done) {
      c.expectWord('SET');
      const option = c.identifier().toUpperCase();
      if (!SET_OPTIONS.has(option)) throw new SqlSyntaxError(`SET ${option} is not supported by the SQL Server simulator.`);
      // Values run to the next SET (one token, or e.g. ISOLATION LEVEL READ COMMITTED).
      while (!c.done && !c.isWord('SET')) c.next();
    }
    ctx.sink.statementDone();
  },
};

const use: StatementHandler = {
  name: 'USE <database>',
  matches: (c) => c.isWord('USE'),
  run(ctx, c) {
    c.expectWord('USE');
    const name = c.identifier();
    c.expectEnd();
    const db = ctx.model.database(name);
    if (!db) throw new SqlServerError(911, `Database '${name}' does not exist. Make sure that the name is entered correctly.`, 16);
    if (db.state !== 'ONLINE') throw new SqlServerError(927, `Database '${db.name}' cannot be opened. It is in the middle of a restore.`, 14);
    ctx.session.database = db.name;
    ctx.sink.statementDone();
  },
};

const declare: StatementHandler = {
  name: 'DECLARE @var type [= expr], ...',
  matches: (c) => c.isWord('DECLARE'),
  run(ctx, c) {
    c.expectWord('DECLARE');
    do {
      const v = c.next();
      if (v.kind !== 'variable') throw new SqlSyntaxError(`Incorrect syntax near '${v.text}'.`);
      c.acceptWord('AS');
      const type = parseType(c.typeName());
      const value = c.acceptPunct('=') ? convert(ctx.evaluate(c.expression()).value, type) : null;
      ctx.vars.set(v.text.toLowerCase(), { type, value });
    } while (c.acceptPunct(','));
    c.expectEnd();
  },
};

const assign: StatementHandler = {
  name: 'SET @var = expr',
  matches: (c) => c.isWord('SET') && c.peek(1)?.kind === 'variable',
  run(ctx, c) {
    c.expectWord('SET');
    const name = c.next().text.toLowerCase();
    const target = ctx.vars.get(name);
    if (!target) throw new SqlServerError(137, `Must declare the scalar variable "${name}".`, 15, 2);
    c.expectPunct('=');
    target.value = convert(ctx.evaluate(c.expression()).value, target.type);
    c.expectEnd();
  },
};

const ifStatement: StatementHandler = {
  name: 'IF <condition> <statement> [ELSE <statement>]',
  matches: (c) => c.isWord('IF'),
  async run(ctx, c) {
    c.expectWord('IF');
    const condition = ctx.evaluate(c.expression()).value === true;
    const rest = c.rest();
    const elseAt = findTopLevelElse(rest);
    const [then, otherwise] = elseAt < 0 ? [rest, []] : [rest.slice(0, elseAt), rest.slice(elseAt + 1)];
    const body = condition ? then : otherwise;
    if (body.length) await ctx.execute(unwrapBeginEnd(body), ctx.vars);
  },
};

function findTopLevelElse(tokens: import('../engine/sql').Token[]): number {
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === 'word' && !t.quoted && (t.upper === 'BEGIN' || t.upper === 'CASE')) depth++;
    if (t.kind === 'word' && !t.quoted && t.upper === 'END') depth--;
    if (depth === 0 && t.kind === 'word' && !t.quoted && t.upper === 'ELSE') return i;
  }
  return -1;
}

function unwrapBeginEnd(tokens: import('../engine/sql').Token[]): import('../engine/sql').Token[] {
  const first = tokens[0];
  const last = tokens[tokens.length - 1];
  if (first?.kind === 'word' && first.upper === 'BEGIN' && last?.kind === 'word' && last.upper === 'END') return tokens.slice(1, -1);
  return tokens;
}

/** EXEC [sys.]sp_executesql @stmt [, N'@a type, ...' [, @a = expr | expr, ...]] */
const execSql: StatementHandler = {
  name: 'EXEC sys.sp_executesql @statement [, @params, values...]',
  matches: (c) => (c.isWord('EXEC') || c.isWord('EXECUTE')) && /(^|\.)sp_executesql$/i.test(peekName(c, 1)),
  async run(ctx, c) {
    c.next();
    c.multipartName();
    const statement = ctx.evaluate(c.expression()).value;
    const scope = new Map() as typeof ctx.vars;
    if (c.acceptPunct(',')) {
      const declarations = String(ctx.evaluate(c.expression()).value ?? '').split(/,(?![^(]*\))/).map((d) => d.trim()).filter(Boolean);
      const values: { name?: string; value: ReturnType<StatementContext['evaluate']> }[] = [];
      while (c.acceptPunct(',')) {
        if (c.peek()?.kind === 'variable' && c.isPunct('=', 1)) {
          const name = c.next().text.toLowerCase();
          c.next();
          values.push({ name, value: ctx.evaluate(c.expression()) });
        } else values.push({ value: ctx.evaluate(c.expression()) });
        c.acceptWord('OUTPUT') || c.acceptWord('OUT');
      }
      declarations.forEach((d, i) => {
        const m = /^(@\w+)\s+(.+?)(\s+out(put)?)?$/i.exec(d);
        if (!m) throw new SqlSyntaxError(`Incorrect syntax in the parameter declaration '${d}'.`);
        const type = parseType(m[2]);
        const bound = values.find((v) => v.name === m[1].toLowerCase()) ?? values[i];
        scope.set(m[1].toLowerCase(), { type, value: bound ? convert(bound.value.value, type) : null });
      });
    }
    c.expectEnd();
    if (statement === null) return;
    await ctx.execute(String(statement), scope);
  },
};

function peekName(c: Cursor, offset: number): string {
  const parts: string[] = [];
  let i = offset;
  for (;;) {
    const t = c.peek(i);
    if (t?.kind !== 'word') break;
    parts.push(t.text);
    if (!c.isPunct('.', i + 1)) break;
    i += 2;
  }
  return parts.join('.');
}

/** EXEC master.dbo.xp_instance_regread N'HKEY_LOCAL_MACHINE', N'key', N'value', @var OUTPUT */
const regRead: StatementHandler = {
  name: 'EXEC master.dbo.xp_instance_regread <root>, <key>, <value>, @out OUTPUT',
  matches: (c) => (c.isWord('EXEC') || c.isWord('EXECUTE')) && /(^|\.)xp_instance_regread$/i.test(peekName(c, 1)),
  run(ctx, c) {
    c.next();
    c.multipartName();
    const root = String(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const key = String(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const valueName = String(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const out = c.next();
    if (out.kind !== 'variable') throw new SqlSyntaxError('xp_instance_regread needs an OUTPUT variable.');
    c.acceptWord('OUTPUT');
    const p = ctx.model.properties;
    const registry: Record<string, string> = { ...p.registry };
    const backupKey = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSSQLServer\\MSSQLServer\\BackupDirectory';
    if (!(backupKey in registry)) registry[backupKey] = `${p.defaultDataPath.replace(/[\\/][^\\/]+$/, '')}${p.pathSeparator}Backup`;
    const value = registry[`${root}\\${key}\\${valueName}`] ?? null;
    const target = ctx.vars.get(out.text.toLowerCase());
    if (!target) throw new SqlServerError(137, `Must declare the scalar variable "${out.text}".`, 15, 2);
    target.value = value;
    ctx.sink.statementDone();
  },
};

const throwStatement: StatementHandler = {
  name: 'THROW number, message, state',
  matches: (c) => c.isWord('THROW'),
  run(ctx, c) {
    c.expectWord('THROW');
    const number = Number(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const message = String(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const state = Number(ctx.evaluate(c.expression()).value);
    throw new SqlServerError(number, message, 16, state);
  },
};

/**
 * RAISERROR's printf-style substitution: %d %i %u %o %x %X %s (with h, l or I64 size prefixes,
 * flags, width and precision; `*` takes them from the arguments) and %% for a percent sign.
 */
export function formatRaiserror(template: string, args: SqlValue[]): string {
  let next = 0;
  const take = (): SqlValue => (next < args.length ? args[next++] : null);
  return template.replace(/%([-+ 0#]*)(\*|\d+)?(?:\.(\*|\d+))?(h|l|I64)?([diouxXs%])/g, (_whole, flags: string, widthText?: string, precisionText?: string, _size?: string, kind?: string) => {
    if (kind === '%') return '%';
    const width = widthText === '*' ? Number(take()) : widthText ? Number(widthText) : 0;
    const precision = precisionText === '*' ? Number(take()) : precisionText ? Number(precisionText) : undefined;
    const value = take();
    if (value === null) return '(null)';
    let text: string;
    switch (kind) {
      case 's':
        text = String(value);
        if (precision !== undefined) text = text.slice(0, precision);
        break;
      case 'o':
        text = BigInt.asUintN(64, BigInt(value as number)).toString(8);
        break;
      case 'x':
      case 'X':
        text = BigInt.asUintN(64, BigInt(value as number)).toString(16);
        if (kind === 'X') text = text.toUpperCase();
        break;
      default: {
        const n = BigInt(Math.trunc(Number(value)));
        text = (n < 0n ? '-' : flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '') + (n < 0n ? -n : n).toString();
      }
    }
    if (text.length >= width) return text;
    if (flags.includes('-')) return text.padEnd(width);
    if (flags.includes('0') && kind !== 's') {
      const sign = /^[-+ ]/.test(text) ? text[0] : '';
      return sign + text.slice(sign.length).padStart(width - sign.length, '0');
    }
    return text.padStart(width);
  });
}

/** RAISERROR(msg, severity, state [, argument ...]) [WITH NOWAIT]: severity <= 10 is an INFO message, sent at once with NOWAIT. */
const raiserror: StatementHandler = {
  name: 'RAISERROR(message, severity, state) [WITH NOWAIT]',
  matches: (c) => c.isWord('RAISERROR'),
  async run(ctx, c) {
    c.expectWord('RAISERROR');
    c.expectPunct('(');
    const message = String(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const severity = Number(ctx.evaluate(c.expression()).value);
    c.expectPunct(',');
    const state = Number(ctx.evaluate(c.expression()).value);
    const args: SqlValue[] = [];
    while (c.acceptPunct(',')) args.push(ctx.evaluate(c.expression()).value);
    c.expectPunct(')');
    const nowait = c.acceptWord('WITH', 'NOWAIT');
    const text = formatRaiserror(message, args);
    if (severity > 10) throw new SqlServerError(50000, text, severity, state);
    ctx.sink.info(50000, text, 0, state);
    if (nowait) await ctx.sink.flush();
  },
};

const print: StatementHandler = {
  name: 'PRINT expr',
  matches: (c) => c.isWord('PRINT'),
  run(ctx, c) {
    c.expectWord('PRINT');
    ctx.sink.info(0, String(ctx.evaluate(c.expression()).value ?? ''), 0, 1);
  },
};

/** WAITFOR DELAY 'hh:mm:ss[.mmm]': handy for cancel and timeout tests. */
const waitfor: StatementHandler = {
  name: "WAITFOR DELAY 'hh:mm:ss'",
  matches: (c) => c.isWord('WAITFOR'),
  async run(ctx, c) {
    c.expectWord('WAITFOR');
    c.expectWord('DELAY');
    const text = String(ctx.evaluate(c.expression()).value);
    const m = /^(\d+):(\d+):(\d+)(?:\.(\d+))?$/.exec(text.trim());
    if (!m) throw new SqlServerError(148, `Incorrect time syntax in time string '${text}' used with WAITFOR.`, 15);
    const ms = (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000 + Number((m[4] ?? '0').padEnd(3, '0').slice(0, 3));
    await ctx.sleep(ms);
    ctx.sink.statementDone();
  },
};

/** BEGIN/COMMIT/ROLLBACK/SAVE TRANSACTION: not modelled, so refused with an error (the connection stays up). */
const transaction: StatementHandler = {
  name: 'BEGIN|COMMIT|ROLLBACK|SAVE TRAN[SACTION] (refused)',
  matches: (c) => (c.isWord('BEGIN') && (c.isWord('TRAN', 1) || c.isWord('TRANSACTION', 1) || c.isWord('DISTRIBUTED', 1))) ||
    ((c.isWord('COMMIT') || c.isWord('ROLLBACK') || c.isWord('SAVE')) && (!c.peek(1) || c.isWord('TRAN', 1) || c.isWord('TRANSACTION', 1) || c.isWord('WORK', 1))),
  run() {
    throw new SqlServerError(50999, 'The SQL Server simulator does not model transactions (BEGIN/COMMIT/ROLLBACK TRANSACTION); octopus-dr sends none.');
  },
};

export const handlers: StatementHandler[] = [setOptions, use, declare, assign, ifStatement, execSql, regRead, throwStatement, raiserror, print, waitfor, transaction];
void T;
