// CREATE DATABASE, DROP DATABASE, ALTER DATABASE ... SET (SINGLE_USER / RESTRICTED_USER /
// MULTI_USER [WITH ROLLBACK IMMEDIATE], RECOVERY, ONLINE/OFFLINE), DBCC CHECKDB.
import { SqlServerError, type StatementHandler } from '../engine/executor';
import { SqlSyntaxError } from '../engine/sql';
import { collationKey } from '../engine/types';

function databaseName(ctx: Parameters<StatementHandler['run']>[0], c: Parameters<StatementHandler['run']>[1]): string {
  const t = c.peek();
  if (t?.kind === 'word') return c.identifier();
  return String(ctx.evaluate(c.expression()).value);
}

const create: StatementHandler = {
  name: 'CREATE DATABASE <name>',
  matches: (c) => c.isWord('CREATE') && c.isWord('DATABASE', 1),
  run(ctx, c) {
    c.expectWord('CREATE', 'DATABASE');
    const name = databaseName(ctx, c);
    c.expectEnd();
    if (ctx.model.database(name)) throw new SqlServerError(1801, `Database '${name}' already exists. Choose a different database name.`);
    ctx.model.addDatabase({ name });
    ctx.sink.statementDone();
  },
};

const drop: StatementHandler = {
  name: 'DROP DATABASE [IF EXISTS] <name>',
  matches: (c) => c.isWord('DROP') && c.isWord('DATABASE', 1),
  run(ctx, c) {
    c.expectWord('DROP', 'DATABASE');
    const ifExists = c.acceptWord('IF', 'EXISTS');
    const name = databaseName(ctx, c);
    c.expectEnd();
    const db = ctx.model.database(name);
    if (!db) {
      if (ifExists) return void ctx.sink.statementDone();
      throw new SqlServerError(3701, `Cannot drop the database '${name}', because it does not exist or you do not have permission.`, 11);
    }
    if (ctx.model.usersOf(db.name, -1).length > 0) throw new SqlServerError(3702, `Cannot drop database "${db.name}" because it is currently in use.`);
    ctx.model.databases.delete(collationKey(db.name));
    ctx.sink.statementDone();
  },
};

const alter: StatementHandler = {
  name: 'ALTER DATABASE <name> SET SINGLE_USER|RESTRICTED_USER|MULTI_USER|ONLINE|OFFLINE|RECOVERY <model> [WITH ROLLBACK IMMEDIATE|NO_WAIT]',
  matches: (c) => c.isWord('ALTER') && c.isWord('DATABASE', 1),
  run(ctx, c) {
    c.expectWord('ALTER', 'DATABASE');
    const name = databaseName(ctx, c);
    c.expectWord('SET');
    const option = c.identifier().toUpperCase();
    const argument = option === 'RECOVERY' ? c.identifier().toUpperCase() : undefined;
    let rollback = false;
    if (c.acceptWord('WITH')) {
      if (c.acceptWord('ROLLBACK', 'IMMEDIATE')) rollback = true;
      else if (c.acceptWord('ROLLBACK', 'AFTER')) { c.next(); c.acceptWord('SECONDS'); rollback = true; }
      else if (!c.acceptWord('NO_WAIT')) throw new SqlSyntaxError(`Incorrect syntax near '${c.nearText()}'.`);
    }
    c.expectEnd();
    const db = ctx.model.database(name);
    if (!db) throw new SqlServerError(5011, `User does not have permission to alter database '${name}', the database does not exist, or the database is not in a state that allows access checks.`, 14, 1, []);
    const others = ctx.model.usersOf(db.name, ctx.session.id);
    const exclusive = ['SINGLE_USER', 'RESTRICTED_USER', 'OFFLINE'].includes(option);
    if (exclusive && others.length > 0) {
      if (!rollback) {
        throw new SqlServerError(5069, 'ALTER DATABASE statement failed.', 16, 1, [
          { number: 5061, message: `ALTER DATABASE failed because a lock could not be placed on database '${db.name}'. Try again later.` },
        ]);
      }
      for (const s of others) s.kill();
      for (const s of others) ctx.model.closeSession(s.id);
    }
    switch (option) {
      case 'SINGLE_USER': case 'RESTRICTED_USER': case 'MULTI_USER':
        db.userAccess = option;
        break;
      case 'ONLINE': case 'OFFLINE':
        db.state = option;
        break;
      case 'RECOVERY':
        if (argument !== 'FULL' && argument !== 'SIMPLE' && argument !== 'BULK_LOGGED') throw new SqlSyntaxError(`Incorrect syntax near '${argument}'.`);
        db.recoveryModel = argument;
        if (argument === 'SIMPLE') { db.log = []; db.lastLogBackupLsn = null; }
        break;
      default:
        throw new SqlServerError(50999, `The SQL Server simulator does not understand ALTER DATABASE ... SET ${option}.`);
    }
    ctx.sink.statementDone();
  },
};

const checkDb: StatementHandler = {
  name: 'DBCC CHECKDB [(<db>)] [WITH NO_INFOMSGS, ALL_ERRORMSGS]',
  matches: (c) => c.isWord('DBCC') && c.isWord('CHECKDB', 1),
  async run(ctx, c) {
    c.expectWord('DBCC', 'CHECKDB');
    let name = ctx.session.database;
    if (c.acceptPunct('(')) {
      name = String(ctx.evaluate(c.expression()).value);
      c.expectPunct(')');
    }
    const options: string[] = [];
    if (c.acceptWord('WITH')) do options.push(c.identifier().toUpperCase()); while (c.acceptPunct(','));
    c.expectEnd();
    const db = ctx.model.database(name);
    if (!db) throw new SqlServerError(2520, `Could not find database '${name}'. The database either does not exist, or was dropped before a statement tried to use it. Verify if the database exists by querying the sys.databases catalog view.`);
    await ctx.sleep(Math.min(100, ctx.model.operationMs));
    if (!options.includes('NO_INFOMSGS')) {
      ctx.sink.info(8989, `CHECKDB found 0 allocation errors and 0 consistency errors in database '${db.name}'.`, 0);
    }
    ctx.sink.info(2528, 'DBCC execution completed. If DBCC printed error messages, contact your system administrator.', 0);
    ctx.sink.statementDone();
  },
};

export const handlers: StatementHandler[] = [create, drop, alter, checkDb];
