// SELECT (scalar, or FROM one table/view with optional INNER JOINs, WHERE, ORDER BY, TOP, COUNT/MIN/MAX),
// INSERT ... VALUES, UPDATE ... SET ... WHERE, DELETE ... WHERE; and the scalar functions they use.
import { functions, SqlServerError, subqueries, virtualTables, type ResultColumn, type RowScope, type StatementContext, type StatementHandler } from '../engine/executor';
import { tableKey, type Table } from '../engine/model';
import { Cursor, SqlSyntaxError, type Expr } from '../engine/sql';
import { compare, convert, T, typeOfValue, type SqlType, type SqlValue, type Typed } from '../engine/types';

interface Source {
  alias: string;
  columns: ResultColumn[];
  rows: SqlValue[][];
  table?: Table;
  database: string;
}

/** [db.][schema.]name -> rows; virtual tables (sys.*, INFORMATION_SCHEMA.*, msdb.dbo.*) first. */
export function resolveSource(ctx: StatementContext, parts: string[], alias?: string): Source {
  const name = parts[parts.length - 1];
  const schema = parts.length >= 2 ? parts[parts.length - 2] || 'dbo' : 'dbo';
  const database = parts.length >= 3 ? parts[parts.length - 3] : ctx.session.database;
  const virtual = virtualTables.get(`${database.toLowerCase()}.${schema.toLowerCase()}.${name.toLowerCase()}`) ?? virtualTables.get(`${schema.toLowerCase()}.${name.toLowerCase()}`);
  if (virtual) return { alias: (alias ?? name).toLowerCase(), columns: virtual.columns, rows: virtual.rows(ctx, database), database };
  const db = ctx.model.database(database);
  if (!db) throw new SqlServerError(2702, `Database '${database}' does not exist.`, 16);
  const table = db.tables.get(tableKey(schema, name));
  if (!table) throw new SqlServerError(208, `Invalid object name '${parts.filter(Boolean).join('.')}'.`, 16);
  return { alias: (alias ?? name).toLowerCase(), columns: table.columns, rows: table.rows, table, database: db.name };
}

function rowScope(sources: Source[], rows: SqlValue[][]): RowScope {
  const scope: RowScope = new Map();
  sources.forEach((s, i) => {
    s.columns.forEach((c, j) => {
      const v = { type: c.type, value: rows[i][j] ?? null };
      const key = c.name.toLowerCase();
      if (!scope.has(key)) scope.set(key, v);
      scope.set(`${s.alias}.${key}`, v);
    });
  });
  return scope;
}

function optionalAlias(c: Cursor): string | undefined {
  if (c.acceptWord('AS')) return c.identifier();
  const t = c.peek();
  if (t?.kind === 'word' && (t.quoted || !['WHERE', 'ORDER', 'INNER', 'JOIN', 'LEFT', 'ON', 'GROUP', 'OPTION', 'WITH'].includes(t.upper))) return c.identifier();
  return undefined;
}

const AGGREGATES = new Set(['COUNT', 'MAX', 'MIN', 'SUM', 'COUNT_BIG']);

function isAggregate(e: Expr): boolean {
  return e.kind === 'call' && AGGREGATES.has(e.name);
}

function columnName(e: Expr, i: number): string {
  if (e.kind === 'column') return e.parts[e.parts.length - 1];
  return i < 0 ? '' : '';
}

interface SelectResult {
  columns: ResultColumn[];
  rows: SqlValue[][];
  /** SELECT @v = ...: variables were assigned, no result set. */
  assigned: boolean;
}

/** Runs a SELECT from its first token; `outer` is the enclosing row of a correlated subquery. */
export function runSelect(ctx: StatementContext, c: Cursor, outer?: RowScope): SelectResult {
  c.expectWord('SELECT');
  let top: number | undefined;
  if (c.acceptWord('TOP')) {
    const paren = c.acceptPunct('(');
    top = Number(ctx.evaluate(c.expression(), outer).value);
    if (paren) c.expectPunct(')');
  }
  const items: { expr: Expr; alias?: string; assign?: string }[] = [];
  do {
    if (c.peek()?.kind === 'variable' && c.isPunct('=', 1)) {
      const assign = c.next().text.toLowerCase();
      c.next();
      items.push({ expr: c.expression(), assign });
      continue;
    }
    const expr = c.expression();
    let alias: string | undefined;
    if (c.acceptWord('AS')) alias = c.identifier();
    else if (c.peek()?.kind === 'word' && !['FROM', 'WHERE', 'ORDER'].includes((c.peek() as { upper: string }).upper)) alias = c.identifier();
    items.push({ expr, alias });
  } while (c.acceptPunct(','));

  const sources: Source[] = [];
  const joins: { on: Expr; left: boolean }[] = [];
  let where: Expr | undefined;
  const order: { expr: Expr; desc: boolean }[] = [];
  if (c.acceptWord('FROM')) {
    const parts = c.multipartName();
    sources.push(resolveSource(ctx, parts, optionalAlias(c)));
    while (c.isWord('JOIN') || c.isWord('INNER') || c.isWord('LEFT')) {
      const left = c.acceptWord('LEFT');
      if (left) c.acceptWord('OUTER');
      else c.acceptWord('INNER');
      c.expectWord('JOIN');
      const p = c.multipartName();
      sources.push(resolveSource(ctx, p, optionalAlias(c)));
      c.expectWord('ON');
      joins.push({ on: c.expression(), left });
    }
  }
  if (c.acceptWord('WHERE')) where = c.expression();
  if (c.acceptWord('ORDER', 'BY')) {
    do {
      const expr = c.expression();
      const desc = c.acceptWord('DESC');
      if (!desc) c.acceptWord('ASC');
      order.push({ expr, desc });
    } while (c.acceptPunct(','));
  }
  c.acceptWord('OPTION');
  if (!c.done && !c.isPunct('(')) throw new SqlSyntaxError(`Incorrect syntax near '${c.nearText()}'.`);

  const scopeOf = (count: number, combo: SqlValue[][]) => {
    const inner = rowScope(sources.slice(0, count), combo);
    return outer ? new Map([...outer, ...inner]) : inner;
  };
  // Joins in order (INNER keeps matches, LEFT also keeps unmatched rows with NULLs), then WHERE.
  let combos: SqlValue[][][] = [[]];
  for (let i = 0; i < sources.length; i++) {
    const next: SqlValue[][][] = [];
    for (const combo of combos) {
      let matched = false;
      for (const r of sources[i].rows) {
        const candidate = [...combo, r];
        if (i > 0 && ctx.evaluate(joins[i - 1].on, scopeOf(i + 1, candidate)).value !== true) continue;
        matched = true;
        next.push(candidate);
      }
      if (!matched && i > 0 && joins[i - 1].left) next.push([...combo, sources[i].columns.map(() => null)]);
    }
    combos = next;
  }
  let scopes = combos.map((combo) => scopeOf(sources.length, combo));
  if (where) scopes = scopes.filter((s) => ctx.evaluate(where!, s).value === true);
  if (order.length) {
    scopes.sort((a, b) => {
      for (const o of order) {
        const x = ctx.evaluate(o.expr, a).value;
        const y = ctx.evaluate(o.expr, b).value;
        const r = x === null && y === null ? 0 : x === null ? -1 : y === null ? 1 : (compare(x, y) ?? 0);
        if (r !== 0) return o.desc ? -r : r;
      }
      return 0;
    });
  }

  // Expand * into columns.
  const expanded: { expr: Expr; alias?: string; assign?: string }[] = [];
  for (const item of items) {
    if (item.expr.kind === 'star') {
      const qualifier = item.expr.qualifier?.toLowerCase();
      for (const s of sources.filter((s) => !qualifier || s.alias === qualifier)) {
        for (const col of s.columns) expanded.push({ expr: { kind: 'column', parts: [s.alias, col.name] }, alias: col.name });
      }
    } else expanded.push(item);
  }

  let outRows: Typed[][];
  if (expanded.some((i) => isAggregate(i.expr))) {
    outRows = [expanded.map((i) => aggregate(ctx, i.expr, scopes, outer))];
  } else if (sources.length === 0) {
    outRows = where && ctx.evaluate(where, outer).value !== true ? [] : [expanded.map((i) => ctx.evaluate(i.expr, outer))];
  } else {
    outRows = scopes.map((s) => expanded.map((i) => ctx.evaluate(i.expr, s)));
  }
  if (top !== undefined) outRows = outRows.slice(0, top);

  if (expanded.every((i) => i.assign)) {
    const last = outRows[outRows.length - 1];
    if (last) expanded.forEach((i, k) => {
      const target = ctx.vars.get(i.assign!);
      if (!target) throw new SqlServerError(137, `Must declare the scalar variable "${i.assign}".`, 15, 2);
      target.value = convert(last[k].value, target.type);
    });
    return { columns: [], rows: outRows.map(() => []), assigned: true };
  }
  const columns: ResultColumn[] = expanded.map((item, k) => {
    const types = outRows.map((r) => r[k].type);
    return { name: item.alias ?? columnName(item.expr, k), type: widest(types, item.expr, sources) };
  });
  return { columns, rows: outRows.map((r) => r.map((t, k) => (t.value === null ? null : convert(t.value, columns[k].type)))), assigned: false };
}

const select: StatementHandler = {
  name: 'SELECT [TOP (n)] <expressions> [FROM <table or view> [[INNER|LEFT [OUTER]] JOIN ... ON ...] [WHERE ...] [ORDER BY ...]]',
  matches: (c) => c.isWord('SELECT'),
  run(ctx, c) {
    const result = runSelect(ctx, c);
    if (!result.assigned) ctx.sink.resultSet(result.columns, result.rows);
    ctx.sink.statementDone(result.rows.length);
  },
};

subqueries.evaluate = (tokens, exists, ctx, outer) => {
  const result = runSelect(ctx, new Cursor(tokens), outer);
  if (exists) return { type: T.bit, value: result.rows.length > 0 };
  if (result.columns.length !== 1) throw new SqlServerError(116, 'Only one expression can be specified in the select list when the subquery is not introduced with EXISTS.');
  if (result.rows.length > 1) throw new SqlServerError(512, 'Subquery returned more than 1 value. This is not permitted when the subquery follows =, !=, <, <= , >, >= or when the subquery is used as an expression.');
  return { type: result.columns[0].type, value: result.rows[0]?.[0] ?? null };
};

/** One column type for all rows (a column's declared type wins). */
function widest(types: SqlType[], expr: Expr, sources: Source[]): SqlType {
  if (expr.kind === 'column') {
    const name = expr.parts[expr.parts.length - 1].toLowerCase();
    const alias = expr.parts.length > 1 ? expr.parts[expr.parts.length - 2].toLowerCase() : undefined;
    for (const s of sources) {
      if (alias && s.alias !== alias) continue;
      const col = s.columns.find((c) => c.name.toLowerCase() === name);
      if (col) return col.type;
    }
  }
  if (types.length === 0) return T.int;
  const first = types[0];
  if (first.name === 'nvarchar' || first.name === 'varchar' || first.name === 'varbinary') {
    const lengths = types.map((t) => t.length);
    if (lengths.includes('max')) return { ...first, length: 'max' };
    return { ...first, length: Math.max(1, ...lengths.map((l) => (typeof l === 'number' ? l : 1))) };
  }
  return first;
}

function aggregate(ctx: StatementContext, e: Expr, scopes: RowScope[], outer?: RowScope): Typed {
  if (e.kind !== 'call' || !AGGREGATES.has(e.name)) {
    if (scopes.length === 0) return ctx.evaluate(e, outer);
    return ctx.evaluate(e, scopes[0]);
  }
  if (e.name === 'COUNT' || e.name === 'COUNT_BIG') {
    const n = e.star ? scopes.length : scopes.filter((s) => ctx.evaluate(e.args[0], s).value !== null).length;
    return { type: e.name === 'COUNT' ? T.int : T.bigint, value: e.name === 'COUNT' ? n : BigInt(n) };
  }
  const values = scopes.map((s) => ctx.evaluate(e.args[0], s)).filter((v) => v.value !== null);
  if (values.length === 0) return { type: T.int, value: null };
  if (e.name === 'SUM') return { type: values[0].type, value: values.reduce((a, v) => a + Number(v.value), 0) };
  const pick = values.reduce((best, v) => ((compare(v.value, best.value) ?? 0) * (e.name === 'MAX' ? 1 : -1) > 0 ? v : best));
  return pick;
}

const insert: StatementHandler = {
  name: 'INSERT [INTO] <table> [(columns)] VALUES (...)[, (...)]',
  matches: (c) => c.isWord('INSERT'),
  run(ctx, c) {
    c.expectWord('INSERT');
    c.acceptWord('INTO');
    const source = resolveSource(ctx, c.multipartName());
    const table = writable(source);
    let names = table.columns.map((col) => col.name);
    if (c.acceptPunct('(')) {
      names = [];
      do names.push(c.identifier()); while (c.acceptPunct(','));
      c.expectPunct(')');
    }
    c.expectWord('VALUES');
    let count = 0;
    do {
      c.expectPunct('(');
      const values: SqlValue[] = [];
      do values.push(ctx.evaluate(c.expression()).value); while (c.acceptPunct(','));
      c.expectPunct(')');
      const row: SqlValue[] = table.columns.map(() => null);
      names.forEach((n, i) => {
        const k = table.columns.findIndex((col) => col.name.toLowerCase() === n.toLowerCase());
        if (k < 0) throw new SqlServerError(207, `Invalid column name '${n}'.`);
        row[k] = convert(values[i] ?? null, table.columns[k].type);
      });
      table.columns.forEach((col, k) => {
        if (!col.nullable && row[k] === null) throw new SqlServerError(515, `Cannot insert the value NULL into column '${col.name}', table '${source.database}.${table.schema}.${table.name}'; column does not allow nulls. INSERT fails.`);
      });
      table.rows.push(row);
      count++;
    } while (c.acceptPunct(','));
    c.expectEnd();
    changed(ctx, source);
    ctx.sink.statementDone(count, 'insert');
  },
};

const update: StatementHandler = {
  name: 'UPDATE <table> SET col = expr, ... [WHERE ...]',
  matches: (c) => c.isWord('UPDATE'),
  run(ctx, c) {
    c.expectWord('UPDATE');
    const source = resolveSource(ctx, c.multipartName());
    const table = writable(source);
    c.expectWord('SET');
    const sets: { index: number; expr: Expr }[] = [];
    do {
      const name = c.identifier();
      const index = table.columns.findIndex((col) => col.name.toLowerCase() === name.toLowerCase());
      if (index < 0) throw new SqlServerError(207, `Invalid column name '${name}'.`);
      c.expectPunct('=');
      sets.push({ index, expr: c.expression() });
    } while (c.acceptPunct(','));
    const where = c.acceptWord('WHERE') ? c.expression() : undefined;
    c.expectEnd();
    let count = 0;
    table.rows = table.rows.map((r) => {
      const scope = rowScope([source], [r]);
      if (where && ctx.evaluate(where, scope).value !== true) return r;
      count++;
      const next = [...r];
      for (const s of sets) next[s.index] = convert(ctx.evaluate(s.expr, scope).value, table.columns[s.index].type);
      return next;
    });
    changed(ctx, source);
    ctx.sink.statementDone(count, 'update');
  },
};

const del: StatementHandler = {
  name: 'DELETE [FROM] <table> [WHERE ...]',
  matches: (c) => c.isWord('DELETE'),
  run(ctx, c) {
    c.expectWord('DELETE');
    c.acceptWord('FROM');
    const source = resolveSource(ctx, c.multipartName());
    const table = writable(source);
    const where = c.acceptWord('WHERE') ? c.expression() : undefined;
    c.expectEnd();
    const before = table.rows.length;
    table.rows = table.rows.filter((r) => where !== undefined && ctx.evaluate(where, rowScope([source], [r])).value !== true);
    changed(ctx, source);
    ctx.sink.statementDone(before - table.rows.length, 'delete');
  },
};

function writable(source: Source): Table {
  if (!source.table) throw new SqlServerError(4406, `Update or insert of view or function '${source.alias}' failed because it contains a derived or constant field.`);
  return source.table;
}

function changed(ctx: StatementContext, source: Source): void {
  const db = ctx.model.database(source.database);
  if (db) ctx.model.recordChange(db);
}

// ---- scalar functions ----

const str = (t: Typed | undefined) => (t?.value === null || t?.value === undefined ? null : String(t.value));

functions.set('SERVERPROPERTY', (args, ctx) => {
  const p = ctx.model.properties;
  const name = (str(args[0]) ?? '').toLowerCase();
  const values: Record<string, SqlValue> = {
    servername: p.serverName,
    machinename: p.machineName,
    edition: p.edition,
    engineedition: p.engineEdition,
    productversion: p.productVersion,
    productmajorversion: String(ctx.model.majorVersion),
    productlevel: 'RTM',
    instancedefaultbackuppath: ctx.model.majorVersion >= 15 ? p.defaultBackupPath : null,
    instancedefaultdatapath: p.defaultDataPath + p.pathSeparator,
    instancedefaultlogpath: p.defaultLogPath + p.pathSeparator,
    pathseparator: ctx.model.majorVersion >= 14 ? p.pathSeparator : null,
    collation: p.collation,
    ishadrenabled: 0,
    isclustered: 0,
  };
  // Real SERVERPROPERTY returns sql_variant; the simulator returns the underlying type.
  const v = name in values ? values[name] : null;
  return { type: v === null ? T.nvarchar(128) : typeOfValue(v), value: v };
});
functions.set('DB_ID', (args, ctx) => {
  const name = args.length ? str(args[0]) : ctx.session.database;
  const db = name === null ? undefined : ctx.model.database(name);
  return { type: T.int, value: db ? db.id : null };
});
functions.set('DB_NAME', (args, ctx) => {
  if (!args.length) return { type: T.nvarchar(128), value: ctx.session.database };
  const id = Number(args[0].value);
  return { type: T.nvarchar(128), value: [...ctx.model.databases.values()].find((d) => d.id === id)?.name ?? null };
});
functions.set('QUOTENAME', (args) => {
  const s = str(args[0]);
  const q = str(args[1]) ?? '[';
  if (s === null || s.length > 128) return { type: T.nvarchar(258), value: null };
  const value = q === "'" ? `'${s.replace(/'/g, "''")}'` : q === '"' ? `"${s.replace(/"/g, '""')}"` : `[${s.replace(/]/g, ']]')}]`;
  return { type: T.nvarchar(258), value };
});
functions.set('DATABASEPROPERTYEX', (args, ctx) => {
  const db = ctx.model.database(str(args[0]) ?? '');
  const prop = (str(args[1]) ?? '').toLowerCase();
  if (!db) return { type: T.nvarchar(128), value: null };
  const values: Record<string, SqlValue> = { recovery: db.recoveryModel, status: db.state, useraccess: db.userAccess, collation: ctx.model.properties.collation, updateability: 'READ_WRITE' };
  return { type: T.nvarchar(128), value: values[prop] ?? null };
});
functions.set('ISNULL', (args) => (args[0].value === null ? { type: args[0].type, value: args[1].value } : args[0]));
functions.set('COALESCE', (args) => args.find((a) => a.value !== null) ?? args[0]);
functions.set('LEN', (args) => ({ type: T.int, value: args[0].value === null ? null : String(args[0].value).replace(/\s+$/, '').length }));
functions.set('DATALENGTH', (args) => {
  const v = args[0].value;
  if (v === null) return { type: T.int, value: null };
  if (Buffer.isBuffer(v)) return { type: T.int, value: v.length };
  return { type: T.int, value: args[0].type.name.startsWith('n') ? String(v).length * 2 : String(v).length };
});
functions.set('RTRIM', (args) => ({ type: args[0].type, value: str(args[0])?.replace(/ +$/, '') ?? null }));
functions.set('UPPER', (args) => ({ type: args[0].type, value: str(args[0])?.toUpperCase() ?? null }));
functions.set('LOWER', (args) => ({ type: args[0].type, value: str(args[0])?.toLowerCase() ?? null }));
functions.set('GETDATE', (_args, ctx) => ({ type: T.datetime, value: ctx.model.localNow() }));
functions.set('GETUTCDATE', (_args, ctx) => ({ type: T.datetime, value: ctx.model.now() }));
functions.set('SYSDATETIME', (_args, ctx) => ({ type: T.datetime2(7), value: ctx.model.localNow() }));
functions.set('SYSUTCDATETIME', (_args, ctx) => ({ type: T.datetime2(7), value: ctx.model.now() }));
functions.set('NEWID', () => ({ type: { name: 'uniqueidentifier' }, value: crypto.randomUUID().toUpperCase() }));
functions.set('SUSER_SNAME', (_args, ctx) => ({ type: T.nvarchar(128), value: ctx.session.login }));
functions.set('IS_SRVROLEMEMBER', (args, ctx) => ({ type: T.int, value: str(args[0])?.toLowerCase() === 'sysadmin' && ctx.session.login.toLowerCase() === 'sa' ? 1 : 0 }));

export const handlers: StatementHandler[] = [select, insert, update, del];
