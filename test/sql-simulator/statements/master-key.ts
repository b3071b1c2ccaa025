// What the master-key checks (steps/engines/octopus-documents) need beyond select.ts: the
// DECOMPRESS function (gzip, as SQL Server's COMPRESS writes it), and SELECT from a derived table,
//   SELECT TOP (@top) ... FROM (SELECT TOP (@scanLimit) * FROM t ORDER BY Id) AS d WHERE ... ORDER BY ...
// which bounds how many rows of a large table are looked at. Plain tables and views resolve
// through select.ts's resolveSource, so virtual tables (INFORMATION_SCHEMA, sys.*) work here too.
import { gunzipSync } from 'node:zlib';
import { functions, SqlServerError, type ResultColumn, type RowScope, type StatementContext, type StatementHandler } from '../engine/executor';
import { Cursor, SqlSyntaxError, type Expr, type Token } from '../engine/sql';
import { compare, T, type SqlType, type SqlValue, type Typed } from '../engine/types';
import { resolveSource } from './select';

if (!functions.has('DECOMPRESS')) {
  functions.set('DECOMPRESS', (args) => {
    const v = args[0]?.value ?? null;
    if (v === null) return { type: T.varbinary('max'), value: null };
    if (!Buffer.isBuffer(v)) throw new SqlServerError(8116, 'Argument data type is invalid for argument 1 of decompress function.', 16);
    try {
      return { type: T.varbinary('max'), value: gunzipSync(v) };
    } catch {
      // Not gzip data: the result is NULL.
      return { type: T.varbinary('max'), value: null };
    }
  });
}

interface SelectItem {
  expr: Expr;
  alias?: string;
}

interface Source {
  table?: string[];
  derived?: SelectQuery;
  alias?: string;
}

interface SelectQuery {
  top?: Expr;
  items: SelectItem[] | 'star';
  from: Source;
  joins: { source: Source; on: Expr }[];
  where?: Expr;
  orderBy: { expr: Expr; desc: boolean }[];
}

const CLAUSE_WORDS = new Set(['WHERE', 'JOIN', 'INNER', 'ORDER', 'ON', 'GROUP']);

function parseSource(c: Cursor): Source {
  let source: Source;
  if (c.acceptPunct('(')) {
    source = { derived: parseSelect(c) };
    c.expectPunct(')');
  } else {
    source = { table: c.multipartName() };
  }
  if (c.acceptWord('AS')) source.alias = c.identifier();
  else if (c.peek()?.kind === 'word' && !CLAUSE_WORDS.has((c.peek() as { upper: string }).upper)) source.alias = c.identifier();
  return source;
}

function parseSelect(c: Cursor): SelectQuery {
  c.expectWord('SELECT');
  let top: Expr | undefined;
  if (c.acceptWord('TOP')) {
    c.expectPunct('(');
    top = c.expression();
    c.expectPunct(')');
  }
  let items: SelectQuery['items'];
  if (c.acceptPunct('*')) items = 'star';
  else {
    items = [];
    do {
      const expr = c.expression();
      items.push({ expr, alias: c.acceptWord('AS') ? c.identifier() : undefined });
    } while (c.acceptPunct(','));
  }
  c.expectWord('FROM');
  const from = parseSource(c);
  const joins: SelectQuery['joins'] = [];
  while (c.acceptWord('JOIN') || c.acceptWord('INNER', 'JOIN')) {
    const source = parseSource(c);
    c.expectWord('ON');
    joins.push({ source, on: c.expression() });
  }
  const where = c.acceptWord('WHERE') ? c.expression() : undefined;
  const orderBy: SelectQuery['orderBy'] = [];
  if (c.acceptWord('ORDER', 'BY')) {
    do {
      const expr = c.expression();
      const desc = c.acceptWord('DESC');
      if (!desc) c.acceptWord('ASC');
      orderBy.push({ expr, desc });
    } while (c.acceptPunct(','));
  }
  return { top, items, from, joins, where, orderBy };
}

interface Relation {
  columns: ResultColumn[];
  rows: SqlValue[][];
}

function relationOf(ctx: StatementContext, source: Source): Relation {
  if (source.derived) return runSelect(ctx, source.derived);
  const resolved = resolveSource(ctx, source.table!, source.alias);
  return { columns: resolved.columns, rows: resolved.rows };
}

function scopeOf(relation: Relation, alias: string | undefined, row: SqlValue[] | undefined, into: RowScope = new Map()): RowScope {
  relation.columns.forEach((col, i) => {
    const typed: Typed = { type: col.type, value: row ? row[i] : null };
    into.set(col.name.toLowerCase(), typed);
    if (alias) into.set(`${alias.toLowerCase()}.${col.name.toLowerCase()}`, typed);
  });
  return into;
}

function runSelect(ctx: StatementContext, q: SelectQuery): Relation {
  const sources: { source: Source; relation: Relation; on?: Expr }[] = [
    { source: q.from, relation: relationOf(ctx, q.from) },
    ...q.joins.map((j) => ({ source: j.source, relation: relationOf(ctx, j.source), on: j.on })),
  ];
  // Nested-loop join (the catalog views are small; document tables are never joined).
  let scopes: RowScope[] = sources[0].relation.rows.map((row) => scopeOf(sources[0].relation, sources[0].source.alias, row));
  for (const { source, relation, on } of sources.slice(1)) {
    const next: RowScope[] = [];
    for (const left of scopes) {
      for (const row of relation.rows) {
        const scope = scopeOf(relation, source.alias, row, new Map(left));
        if (ctx.evaluate(on!, scope).value === true) next.push(scope);
      }
    }
    scopes = next;
  }
  if (q.where) scopes = scopes.filter((scope) => ctx.evaluate(q.where!, scope).value === true);

  // A scope of typed NULLs gives each expression's type even when no row qualifies.
  const empty = new Map<string, Typed>();
  for (const { source, relation } of sources) scopeOf(relation, source.alias, undefined, empty);
  const items: { name: string; expr: Expr }[] =
    q.items === 'star'
      ? sources[0].relation.columns.map((col) => ({ name: col.name, expr: { kind: 'column', parts: [col.name] } as Expr }))
      : q.items.map((item, i) => ({ name: item.alias ?? (item.expr.kind === 'column' ? item.expr.parts[item.expr.parts.length - 1] : `column${i + 1}`), expr: item.expr }));
  const columns: ResultColumn[] = items.map((item) => ({ name: item.name, type: ctx.evaluate(item.expr, empty).type as SqlType }));

  if (q.orderBy.length > 0) {
    const keyed = scopes.map((scope) => ({ scope, keys: q.orderBy.map((o) => ctx.evaluate(o.expr, scope).value) }));
    keyed.sort((a, b) => {
      for (let i = 0; i < q.orderBy.length; i++) {
        const c = compare(a.keys[i], b.keys[i]) ?? (a.keys[i] === null ? (b.keys[i] === null ? 0 : -1) : 1);
        if (c !== 0) return q.orderBy[i].desc ? -c : c;
      }
      return 0;
    });
    scopes = keyed.map((k) => k.scope);
  }
  if (q.top) {
    const n = Number(ctx.evaluate(q.top).value);
    if (!Number.isInteger(n) || n < 0) throw new SqlServerError(1060, 'The number of rows provided for a TOP or FETCH clauses row count parameter must be an integer.', 16);
    scopes = scopes.slice(0, n);
  }
  return { columns, rows: scopes.map((scope) => items.map((item) => ctx.evaluate(item.expr, scope).value)) };
}

/** A SELECT whose (top-level) FROM is followed by "(": a derived table, which select.ts does not take. */
function selectsFromDerivedTable(tokens: Token[]): boolean {
  const first = tokens[0];
  if (!first || first.kind !== 'word' || first.quoted || first.upper !== 'SELECT') return false;
  let depth = 0;
  for (let i = 0; i + 1 < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === 'punct' && t.text === '(') depth++;
    if (t.kind === 'punct' && t.text === ')') depth--;
    if (depth === 0 && t.kind === 'word' && !t.quoted && t.upper === 'FROM') {
      const next = tokens[i + 1];
      return next.kind === 'punct' && next.text === '(';
    }
  }
  return false;
}

const derivedTableSelect: StatementHandler = {
  name: 'SELECT [TOP (n)] ... FROM (SELECT [TOP (n)] * FROM <table> [ORDER BY ...]) AS d [WHERE ...] [ORDER BY ...]',
  matches: (c) => selectsFromDerivedTable(c.tokens),
  run(ctx, c) {
    const query = parseSelect(c);
    if (!c.done) throw new SqlSyntaxError(`Incorrect syntax near '${c.nearText()}'.`);
    const result = runSelect(ctx, query);
    ctx.sink.resultSet(result.columns, result.rows);
    ctx.sink.statementDone(result.rows.length);
  },
};

export const handlers: StatementHandler[] = [derivedTableSelect];
