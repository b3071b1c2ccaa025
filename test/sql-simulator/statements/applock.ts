// Application locks, as octopus-dr's restores use them: a session-owned exclusive lock on a name
// in the current database, held until released or the session ends.
//   EXEC @result = sys.sp_getapplock @Resource = ..., @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = <ms>
//   EXEC @result = sys.sp_releaseapplock @Resource = ..., @LockOwner = N'Session'
//   APPLOCK_MODE(N'public', @resource, N'Session')
// Return codes as SQL Server's: 0 granted at once, 1 granted after waiting, -1 timed out, -999 bad call.
import { functions, type StatementContext, type StatementHandler } from '../engine/executor';
import { Cursor, SqlSyntaxError } from '../engine/sql';
import { convert, T } from '../engine/types';

const POLL_MS = 25;

function lockKey(ctx: StatementContext, resource: string): string {
  return `${ctx.session.database.toLowerCase()}\u0000${resource}`;
}

/** `EXEC @result = [sys.]<name> @a = expr, ...`: the result variable and the named arguments (lower-case, without @). */
function readCall(ctx: StatementContext, c: Cursor): { result: string; args: Map<string, unknown> } {
  c.next();
  const result = c.next().text.toLowerCase();
  c.expectPunct('=');
  c.multipartName();
  const args = new Map<string, unknown>();
  do {
    const name = c.next();
    if (name.kind !== 'variable') throw new SqlSyntaxError(`The SQL Server simulator takes only named arguments here, not '${name.text}'.`);
    c.expectPunct('=');
    args.set(name.text.slice(1).toLowerCase(), ctx.evaluate(c.expression()).value);
  } while (c.acceptPunct(','));
  c.expectEnd();
  return { result, args };
}

function setResult(ctx: StatementContext, variable: string, value: number): void {
  const target = ctx.vars.get(variable);
  if (!target) throw new SqlSyntaxError(`Must declare the scalar variable "${variable}".`);
  target.value = convert(value, target.type);
}

function sessionOwned(args: Map<string, unknown>): void {
  const owner = String(args.get('lockowner') ?? 'Transaction');
  if (owner.toLowerCase() !== 'session') throw new SqlSyntaxError(`The SQL Server simulator supports only @LockOwner = 'Session' (not '${owner}').`);
}

const calls = (name: string) => (c: Cursor) => (c.isWord('EXEC') || c.isWord('EXECUTE')) && c.peek(1)?.kind === 'variable' && c.isPunct('=', 2) && new RegExp(`(^|\\.)${name}$`, 'i').test(nameAt(c, 3));

function nameAt(c: Cursor, offset: number): string {
  const parts: string[] = [];
  for (let i = offset; c.peek(i)?.kind === 'word'; i += 2) {
    parts.push(c.peek(i)!.text);
    if (!c.isPunct('.', i + 1)) break;
  }
  return parts.join('.');
}

const getAppLock: StatementHandler = {
  name: 'EXEC @result = sys.sp_getapplock @Resource, @LockMode = Exclusive, @LockOwner = Session, @LockTimeout',
  matches: calls('sp_getapplock'),
  async run(ctx, c) {
    const { result, args } = readCall(ctx, c);
    sessionOwned(args);
    const mode = String(args.get('lockmode') ?? '');
    if (mode.toLowerCase() !== 'exclusive') throw new SqlSyntaxError(`The SQL Server simulator supports only @LockMode = 'Exclusive' (not '${mode}').`);
    const resource = args.get('resource');
    if (typeof resource !== 'string' || resource.length === 0 || resource.length > 255) return setResult(ctx, result, -999);
    const timeoutMs = Number(args.get('locktimeout') ?? -1);
    const key = lockKey(ctx, resource);
    const started = Date.now();
    for (let waited = false; ; waited = true) {
      const held = ctx.model.applicationLocks.get(key);
      if (!held || !ctx.model.sessions.has(held.sessionId) || held.sessionId === ctx.session.id) {
        ctx.model.applicationLocks.set(key, { sessionId: ctx.session.id, count: held?.sessionId === ctx.session.id ? held.count + 1 : 1 });
        return setResult(ctx, result, waited ? 1 : 0);
      }
      if (timeoutMs >= 0 && Date.now() - started >= timeoutMs) return setResult(ctx, result, -1);
      await ctx.sleep(POLL_MS);
    }
  },
};

const releaseAppLock: StatementHandler = {
  name: 'EXEC @result = sys.sp_releaseapplock @Resource, @LockOwner = Session',
  matches: calls('sp_releaseapplock'),
  run(ctx, c) {
    const { result, args } = readCall(ctx, c);
    sessionOwned(args);
    const key = lockKey(ctx, String(args.get('resource') ?? ''));
    const held = ctx.model.applicationLocks.get(key);
    if (!held || held.sessionId !== ctx.session.id) return setResult(ctx, result, -999);
    if (held.count > 1) held.count -= 1;
    else ctx.model.applicationLocks.delete(key);
    setResult(ctx, result, 0);
  },
};

functions.set('APPLOCK_MODE', (args, ctx) => {
  const held = ctx.model.applicationLocks.get(lockKey(ctx, String(args[1]?.value ?? '')));
  return { type: T.nvarchar(32), value: held?.sessionId === ctx.session.id ? 'Exclusive' : 'NoLock' };
});

export const handlers: StatementHandler[] = [getAppLock, releaseAppLock];
