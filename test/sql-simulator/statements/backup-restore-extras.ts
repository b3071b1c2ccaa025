// Statements the database backup/restore steps send beyond the simulator's core set:
// - CREATE TABLE #t (...), INSERT INTO #t EXEC ..., DROP TABLE #t: session-scoped temporary
//   tables, used to capture RESTORE HEADERONLY so LSNs can be converted to text server-side. As in
//   SQL Server, INSERT ... EXEC fails with 213 when the result has another number of columns.
// - EXEC @procedure N'...' where @procedure is '[db].sys.sp_executesql': runs in that database.
// - SCHEMA_NAME(id), OBJECT_ID(name [, type]), sys.database_recovery_status.
// (File name sorts before select.ts so INSERT INTO #t EXEC is matched here, not by INSERT ... VALUES.)
import { Executor, functions, SqlServerError, virtualTables, type ResultColumn, type ResultSink, type StatementHandler } from '../engine/executor';
import type { Session } from '../engine/model';
import { convert, parseType, T, type SqlValue } from '../engine/types';

interface TempTable {
  columns: ResultColumn[];
  rows: SqlValue[][];
}

// Temporary tables per session (a real server scopes them to the session and batch; ours are
// dropped explicitly or replaced by the next CREATE of the same name).
const tempTables = new WeakMap<Session, Map<string, TempTable>>();

function tablesOf(session: Session): Map<string, TempTable> {
  let map = tempTables.get(session);
  if (!map) tempTables.set(session, (map = new Map()));
  return map;
}

// SELECT ... FROM #t finds temp tables through a virtual table per name, reading the session's copy.
function exposeTempTable(name: string): void {
  const key = `dbo.${name.toLowerCase()}`;
  virtualTables.set(key, {
    get columns() {
      return lastColumns.get(name.toLowerCase()) ?? [];
    },
    rows: (ctx) => {
      const table = tablesOf(ctx.session).get(name.toLowerCase());
      if (!table) throw new SqlServerError(208, `Invalid object name '${name}'.`, 16);
      return table.rows;
    },
  });
}
const lastColumns = new Map<string, ResultColumn[]>();

const createTempTable: StatementHandler = {
  name: 'CREATE TABLE #name (column type, ...)',
  matches: (c) => c.isWord('CREATE') && c.isWord('TABLE', 1) && c.peek(2)?.kind === 'word' && c.peek(2)!.text.startsWith('#'),
  run(ctx, c) {
    c.expectWord('CREATE', 'TABLE');
    const name = c.identifier();
    c.expectPunct('(');
    const columns: ResultColumn[] = [];
    do {
      const column = c.identifier();
      const type = parseType(c.typeName());
      c.acceptWord('NULL') || c.acceptWord('NOT', 'NULL');
      columns.push({ name: column, type });
    } while (c.acceptPunct(','));
    c.expectPunct(')');
    c.expectEnd();
    tablesOf(ctx.session).set(name.toLowerCase(), { columns, rows: [] });
    lastColumns.set(name.toLowerCase(), columns);
    exposeTempTable(name);
    ctx.sink.statementDone();
  },
};

const dropTempTable: StatementHandler = {
  name: 'DROP TABLE #name',
  matches: (c) => c.isWord('DROP') && c.isWord('TABLE', 1) && c.peek(2)?.kind === 'word' && c.peek(2)!.text.startsWith('#'),
  run(ctx, c) {
    c.expectWord('DROP', 'TABLE');
    const name = c.identifier();
    c.expectEnd();
    if (!tablesOf(ctx.session).delete(name.toLowerCase())) throw new SqlServerError(3701, `Cannot drop the table '${name}', because it does not exist or you do not have permission.`, 11);
    ctx.sink.statementDone();
  },
};

/** Collects the result sets of a nested EXEC; passes INFO messages through. */
class CaptureSink implements ResultSink {
  readonly sets: { columns: ResultColumn[]; rows: SqlValue[][] }[] = [];
  constructor(private readonly outer: ResultSink) {}
  resultSet(columns: ResultColumn[], rows: SqlValue[][]): void {
    this.sets.push({ columns, rows });
  }
  info(number: number, message: string, severity?: number, state?: number): void {
    this.outer.info(number, message, severity, state);
  }
  statementDone(): void {}
  flush(): Promise<void> {
    return this.outer.flush();
  }
}

const insertExec: StatementHandler = {
  name: 'INSERT [INTO] #name EXEC ...',
  matches: (c) => {
    const at = c.isWord('INTO', 1) ? 2 : 1;
    return c.isWord('INSERT') && c.peek(at)?.kind === 'word' && c.peek(at)!.text.startsWith('#') && (c.isWord('EXEC', at + 1) || c.isWord('EXECUTE', at + 1));
  },
  async run(ctx, c) {
    c.expectWord('INSERT');
    c.acceptWord('INTO');
    const name = c.identifier();
    const table = tablesOf(ctx.session).get(name.toLowerCase());
    if (!table) throw new SqlServerError(208, `Invalid object name '${name}'.`, 16);
    const capture = new CaptureSink(ctx.sink);
    await new Executor(ctx.model).executeBatch(c.rest(), ctx.vars, ctx.session, capture, ctx.signal);
    let count = 0;
    for (const set of capture.sets) {
      if (set.columns.length !== table.columns.length) {
        throw new SqlServerError(213, 'Column name or number of supplied values does not match table definition.', 16);
      }
      for (const row of set.rows) table.rows.push(row.map((v, i) => convert(v, table.columns[i].type)));
      count += set.rows.length;
    }
    ctx.sink.statementDone(count);
  },
};

/** `[db].sys.sp_executesql` as a procedure name held in a variable: run the statement in that database. */
const execProcedureVariable: StatementHandler = {
  name: "EXEC @procedure N'statement' (where @procedure = '[db].sys.sp_executesql')",
  matches: (c) => (c.isWord('EXEC') || c.isWord('EXECUTE')) && c.peek(1)?.kind === 'variable' && !c.isPunct('=', 2),
  async run(ctx, c) {
    c.next();
    const procedure = String(ctx.evaluate(c.expression()).value ?? '');
    const m = /^\[((?:[^\]]|\]\])+)\]\.sys\.sp_executesql$/i.exec(procedure);
    if (!m) throw new SqlServerError(2812, `Could not find stored procedure '${procedure}'.`, 16, 62);
    const database = m[1].replace(/\]\]/g, ']');
    const db = ctx.model.database(database);
    if (!db) throw new SqlServerError(911, `Database '${database}' does not exist. Make sure that the name is entered correctly.`, 16);
    if (db.state !== 'ONLINE') throw new SqlServerError(927, `Database '${db.name}' cannot be opened. It is in the middle of a restore.`, 14);
    const statement = String(ctx.evaluate(c.expression()).value ?? '');
    c.expectEnd();
    const previous = ctx.session.database;
    ctx.session.database = db.name;
    try {
      await ctx.execute(statement, new Map());
    } finally {
      ctx.session.database = previous;
    }
  },
};

/** OBJECT_ID(N'[schema.]name' [, N'U']) for tables of the session's database (a number, or NULL). */
functions.set('OBJECT_ID', (args, ctx) => {
  const name = args[0]?.value === null || args[0] === undefined ? null : String(args[0].value);
  const db = ctx.model.database(ctx.session.database);
  if (name === null || !db) return { type: T.int, value: null };
  const parts = name.split('.').map((p) => p.replace(/^\[(.*)\]$/, '$1'));
  const key = `${(parts.length > 1 ? parts[parts.length - 2] : 'dbo').toLowerCase()}.${parts[parts.length - 1].toLowerCase()}`;
  const index = [...db.tables.keys()].indexOf(key);
  return { type: T.int, value: index < 0 ? null : 1_000_000 + index };
});

functions.set('SCHEMA_NAME', (args) => ({ type: T.nvarchar(128), value: args[0]?.value === 1 ? 'dbo' : args[0]?.value === null ? null : 'other' }));

virtualTables.set('sys.database_recovery_status', {
  columns: [
    { name: 'database_id', type: T.int },
    { name: 'database_guid', type: { name: 'uniqueidentifier' } },
    { name: 'last_log_backup_lsn', type: T.numeric(25, 0) },
  ],
  // The log chain starts with the first full backup that is not copy-only.
  rows: (ctx) =>
    [...ctx.model.databases.values()].map((d) => [d.id, null, d.recoveryModel === 'SIMPLE' ? null : (d.lastLogBackupLsn ?? d.lastFullBackupLsn)]),
});

export const handlers: StatementHandler[] = [createTempTable, dropTempTable, insertExec, execProcedureVariable];
