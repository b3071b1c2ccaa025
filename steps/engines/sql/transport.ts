// How statements reach SQL Server. Two transports serve the same operations: tedious (Node.js,
// the default) and .NET SqlClient through a PowerShell helper (Integrated Security: the worker's
// own Windows identity, which tedious cannot sign in as). SqlConnection owns parameters,
// watchdogs, cancel and error translation, so both behave alike.
import type { SqlConnectionSettings } from './connection-string';
import type { SqlServerMessage } from './errors';
import type { TypedParam } from './params';

export type SqlTransportName = 'tedious' | 'sqlclient';

export interface TransportInfo {
  number: number;
  message: string;
  class: number;
  state: number;
}

export interface TransportResult {
  recordsets: Record<string, unknown>[][];
  rowsAffected: number[];
}

export interface RunningStatement {
  /** Rejects with a driver-shaped error (code, number, precedingErrors) that SqlConnection.translate understands. */
  done: Promise<TransportResult>;
  /** Asks the server to stop (ATTENTION / SqlCommand.Cancel); `done` then rejects with code ECANCEL. */
  cancel(): void;
}

export interface SqlTransport {
  readonly name: SqlTransportName;
  /** Error messages the server sent while logging in (numbers such as 4060 and 18456). */
  readonly loginMessages: SqlServerMessage[];
  open(): Promise<void>;
  run(sql: string, params: ReadonlyMap<string, TypedParam>, onInfo: (info: TransportInfo) => void): RunningStatement;
  close(): Promise<void>;
}

export const SQL_TRANSPORT_VARIABLE = 'OCTOPUSDR_SQL_TRANSPORT';

/**
 * `auto` (default): SqlClient only for Integrated Security; `tedious`; `sqlclient` (any
 * authentication SqlClient understands, e.g. to run a SQL login through the same path).
 */
export function chooseTransport(settings: SqlConnectionSettings, env: NodeJS.ProcessEnv = process.env): SqlTransportName {
  const raw = (env[SQL_TRANSPORT_VARIABLE] ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'auto') return settings.authentication.kind === 'integrated' ? 'sqlclient' : 'tedious';
  if (raw === 'tedious' || raw === 'sqlclient') return raw;
  throw new Error(`${SQL_TRANSPORT_VARIABLE}='${env[SQL_TRANSPORT_VARIABLE]}' is not understood; use auto (the default), tedious or sqlclient.`);
}
