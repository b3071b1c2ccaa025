// SQL Server access for the database steps (backup, restore, master-key check, test restore).
//
//   const sql = await openSqlConnection(connectionString, context);   // context: an EngineContext (a StepContext is one)
//   // options: database (override Initial Catalog, e.g. 'master' for a restore), trustedCertificates (PEM), cancelTimeoutMs
//   try {
//     const facts = await sql.serverFacts();            // edition, majorVersion, default paths, pathSeparator
//     const db = await sql.databaseFacts('Octopus');     // recoveryModel, state; undefined if missing
//     const { rows } = await sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM dbo.Thing WHERE Id = @id', { id: 'x' });
//     await sql.runLong('BACKUP DATABASE @db TO DISK = @file WITH COPY_ONLY, CHECKSUM, STATS = 10',
//       { db: param.nvarchar('Octopus', 128), file: param.nvarchar(path, 4000) },
//       { signal: ctx.signal, onProgress: (percent, text) => ctx.progress(percent, text) });
//     await sql.query('ALTER DATABASE {{db}} SET SINGLE_USER WITH ROLLBACK IMMEDIATE', {}, { identifiers: { db: 'Octopus' } });
//   } finally { await sql.close(); }
//
// Rules the layer enforces, so callers cannot get them wrong:
// - Connection strings are ADO.NET (what Octopus stores). SQL login, Windows account with password
//   (User ID=DOMAIN\user, NTLM) and Entra password / service principal work; Integrated Security
//   without credentials fails before connecting, listing the alternatives.
// - Values only ever travel as typed sp_executesql parameters (plain JS values are typed by kind;
//   `param.*` types them explicitly). Identifiers T-SQL will not take as variables are written
//   `{{name}}` and quoted server-side with QUOTENAME from a typed parameter.
// - query(): 2-minute limit by default. runLong(): no limit unless timeoutMs/idleTimeoutMs; the
//   driver's own request timeout is off (it would cancel a BACKUP that is slow to start). Abort the
//   signal to cancel: an ATTENTION is sent and the promise rejects once the server acknowledged it.
// - INFO messages stream to onInfo as they arrive; "N percent processed." also goes to onProgress.
// - Every failure is a SqlError: kind, root-cause SQL error number, all server messages (number +
//   text), and an actionable message. The connection string and secrets never appear in messages;
//   they are passed to context.setSecret before anything is logged. A failed open says
//   "Cannot connect to SQL Server: <reason and what to do>"; SqlError is a StepFailure, so a step
//   lets it through as it is (a configuration problem exits 2).
// - One connection per SqlConnection (session state such as SINGLE_USER persists across statements).
export { openSqlConnection, SqlConnection, buildIdentifierStatement } from './connection';
export type { OpenSqlConnectionOptions, SqlInfoMessage, SqlResult, StatementOptions } from './connection';
export { parseSqlConnectionString, SqlConnectionStringError } from './connection-string';
export type { SqlAuthentication, SqlConnectionSettings } from './connection-string';
export { SqlError, sqlErrorWhile } from './errors';
export type { SqlErrorKind, SqlServerMessage } from './errors';
export { param } from './params';
export type { SqlParams, SqlParamValue, TypedParam } from './params';
export { noBackupFilesOn } from './server-facts';
export type { DatabaseFacts, RecoveryModel, ServerFacts } from './server-facts';
