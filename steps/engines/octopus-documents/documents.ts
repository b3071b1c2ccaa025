// Reads Octopus documents (rows with an Id and a JSON or compressed JSONBlob column, as Octopus's
// Nevermore ORM stores them) for the master-key checks. Which tables exist is discovered, not
// assumed: the table holding `certificate-global` is not publicly documented, and tables may use
// JSON, JSONBlob (SQL Server COMPRESS, read back with DECOMPRESS) or both.
import type { SqlConnection } from '../sql';
import { param } from '../sql';

export interface DocumentTable {
  readonly schema: string;
  readonly name: string;
  /** Column names as the database spells them. */
  readonly idColumn: string;
  readonly jsonColumn?: string;
  readonly blobColumn?: string;
  /** `IsFrozen` (VariableSet: release snapshots). */
  readonly frozenColumn?: string;
}

export interface DocumentRow {
  readonly id: string;
  /** The document JSON; null when the row has none, or its JSONBlob does not decompress. */
  readonly json: string | null;
}

/** `VariableSet` for dbo tables, `schema.Table` otherwise: how reports name a table. */
export function tableLabel(table: DocumentTable): string {
  return table.schema.toLowerCase() === 'dbo' ? table.name : `${table.schema}.${table.name}`;
}

interface ColumnRow {
  tableSchema: string;
  tableName: string;
  columnName: string;
}

/** Tables with an `Id` column and a `JSON` and/or `JSONBlob` column. */
export async function findDocumentTables(sql: SqlConnection, signal?: AbortSignal): Promise<DocumentTable[]> {
  const { rows } = await sql.query<ColumnRow>(
    `SELECT c.TABLE_SCHEMA AS tableSchema, c.TABLE_NAME AS tableName, c.COLUMN_NAME AS columnName
FROM INFORMATION_SCHEMA.COLUMNS AS c
JOIN INFORMATION_SCHEMA.TABLES AS t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE t.TABLE_TYPE = N'BASE TABLE' AND c.COLUMN_NAME IN (N'Id', N'JSON', N'JSONBlob', N'IsFrozen')
ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME`,
    {},
    { signal },
  );
  const byTable = new Map<string, { schema: string; name: string; columns: Map<string, string> }>();
  for (const row of rows) {
    const key = `${row.tableSchema}\u0000${row.tableName}`;
    let entry = byTable.get(key);
    if (!entry) byTable.set(key, (entry = { schema: row.tableSchema, name: row.tableName, columns: new Map() }));
    // Octopus databases use a case-insensitive collation: match names case-insensitively too.
    entry.columns.set(row.columnName.toLowerCase(), row.columnName);
  }
  const tables: DocumentTable[] = [];
  for (const { schema, name, columns } of byTable.values()) {
    const idColumn = columns.get('id');
    const jsonColumn = columns.get('json');
    const blobColumn = columns.get('jsonblob');
    if (!idColumn || (!jsonColumn && !blobColumn)) continue;
    tables.push({ schema, name, idColumn, jsonColumn, blobColumn, frozenColumn: columns.get('isfrozen') });
  }
  return tables;
}

/** The select list and identifiers that read a document's JSON from whichever columns exist. */
function documentColumns(table: DocumentTable): { select: string; identifiers: Record<string, string> } {
  const identifiers: Record<string, string> = { schema: table.schema, table: table.name, id: table.idColumn };
  const parts = ['{{id}} AS Id'];
  if (table.jsonColumn) {
    identifiers.json = table.jsonColumn;
    parts.push('{{json}} AS Json');
  }
  if (table.blobColumn) {
    identifiers.blob = table.blobColumn;
    parts.push('CAST(DECOMPRESS({{blob}}) AS nvarchar(max)) AS BlobJson', 'CASE WHEN {{blob}} IS NULL THEN 0 ELSE 1 END AS HasBlob');
  }
  return { select: parts.join(', '), identifiers };
}

interface RawDocumentRow {
  Id: string;
  Json?: string | null;
  BlobJson?: string | null;
  HasBlob?: number | boolean;
}

function toDocumentRow(row: RawDocumentRow): DocumentRow {
  if (typeof row.Json === 'string' && row.Json.trim() !== '') return { id: row.Id, json: row.Json };
  if (typeof row.BlobJson === 'string' && row.BlobJson !== '') return { id: row.Id, json: row.BlobJson };
  return { id: row.Id, json: null };
}

/** One document by Id (a primary-key lookup); undefined when the table has no such row. */
export async function readDocumentById(sql: SqlConnection, table: DocumentTable, id: string, signal?: AbortSignal): Promise<DocumentRow | undefined> {
  const { select, identifiers } = documentColumns(table);
  const { rows } = await sql.query<RawDocumentRow>(
    `SELECT ${select} FROM {{schema}}.{{table}} WHERE {{id}} = @documentId`,
    { documentId: param.nvarchar(id, 450) },
    { identifiers, signal },
  );
  return rows[0] ? toDocumentRow(rows[0]) : undefined;
}

/** LIKE pattern for JSON text holding `…|<24-character IV ending "==">`, the encrypted-value form. */
export const ENCRYPTED_VALUE_LIKE = `%|${'_'.repeat(22)}==%`;

export interface SampleQuery {
  /** At most this many rows. */
  top: number;
  /** Only rows whose IsFrozen is this (tables with that column). */
  frozen?: boolean;
  /** Look only at the first this-many rows by Id: bounds the cost on very large tables. */
  scanLimit?: number;
}

/**
 * Documents that appear to hold encrypted values. With a JSON column the server filters on the
 * encrypted-value shape; a JSONBlob-only table cannot be filtered without decompressing every
 * row, so its first rows are read and the caller finds the values.
 */
export async function readSampleDocuments(sql: SqlConnection, table: DocumentTable, query: SampleQuery, signal?: AbortSignal): Promise<DocumentRow[]> {
  if (query.top <= 0) return [];
  const { select, identifiers } = documentColumns(table);
  const conditions: string[] = [];
  const params: Record<string, ReturnType<typeof param.int> | ReturnType<typeof param.nvarchar> | ReturnType<typeof param.bit>> = {
    top: param.int(query.top),
  };
  if (table.jsonColumn) {
    // Rows kept compressed (JSON NULL, JSONBlob set) cannot be filtered here; the caller looks inside.
    conditions.push(table.blobColumn ? '({{json}} LIKE @pattern OR ({{json}} IS NULL AND {{blob}} IS NOT NULL))' : '{{json}} LIKE @pattern');
    params.pattern = param.nvarchar(ENCRYPTED_VALUE_LIKE, 100);
  }
  if (query.frozen !== undefined && table.frozenColumn) {
    identifiers.frozen = table.frozenColumn;
    conditions.push('{{frozen}} = @frozen');
    params.frozen = param.bit(query.frozen);
  }
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  const source = query.scanLimit
    ? `(SELECT TOP (@scanLimit) * FROM {{schema}}.{{table}} ORDER BY {{id}}) AS d`
    : '{{schema}}.{{table}}';
  if (query.scanLimit) params.scanLimit = param.int(query.scanLimit);
  const { rows } = await sql.query<RawDocumentRow>(
    `SELECT TOP (@top) ${select} FROM ${source}${where} ORDER BY {{id}}`,
    params,
    { identifiers, signal },
  );
  return rows.map(toDocumentRow);
}
