// Gathers the evidence for a master-key verdict from an open connection to an Octopus database:
// finds the document tables, the server certificate document, and a sample of other encrypted
// values (sensitive variables, current and release snapshots, first), and tries the key on each.
// Reads only; the key never leaves this process. Used by verify-master-key and test-restore:
//   const collected = await collectMasterKeyEvidence(sql, key, 25, context);
//   const verdict = decide(collected.evidence);
import { CERTIFICATE_DOCUMENT_ID, EvidenceCollector, type Evidence, type MasterKey } from '../master-key';
import type { EngineContext } from '../../runtime/engine-context';
import type { SqlConnection } from '../sql';
import { findDocumentTables, readDocumentById, readSampleDocuments, tableLabel, type DocumentRow, type DocumentTable } from './documents';

/** Values tested per sampled document: spreads the sample over more documents. */
const MAX_VALUES_PER_DOCUMENT = 5;
/** Rows looked at per table other than VariableSet (bounds the cost on large tables such as Event). */
const OTHER_TABLE_SCAN_LIMIT = 1000;

/** What the collection needs of the engine contract (a StepContext satisfies it). */
export type EvidenceReporter = Pick<EngineContext, 'log' | 'progress' | 'signal'>;

function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('Cancelled');
}

export interface CollectedEvidence {
  evidence: Evidence;
  tablesScanned: number;
  documentsRead: number;
  certificateTable?: string;
  database: string;
}

/** Tables likelier to hold the certificate first; the lookup is a primary-key seek in each. */
function certificateSearchOrder(tables: readonly DocumentTable[]): DocumentTable[] {
  const rank = (t: DocumentTable) => (/configuration|certificate/i.test(t.name) ? 0 : 1);
  return [...tables].sort((a, b) => rank(a) - rank(b));
}

export async function collectMasterKeyEvidence(sql: SqlConnection, key: MasterKey, sampleSize: number, context: EvidenceReporter): Promise<CollectedEvidence> {
  const { log, signal } = context;
  context.progress(0, 'Finding document tables');
  const tables = await findDocumentTables(sql, signal);
  log.info(`Database '${sql.database}' on ${sql.server}: ${tables.length} tables with Id and JSON/JSONBlob columns.`);
  if (tables.length > 0) log.verbose(`Document tables: ${tables.map(tableLabel).join(', ')}`);
  const collector = new EvidenceCollector(key);

  let certificateTable: string | undefined;
  const searchOrder = certificateSearchOrder(tables);
  for (const [index, table] of searchOrder.entries()) {
    throwIfCancelled(context.signal);
    context.progress((index / Math.max(1, searchOrder.length)) * 40, `Looking for '${CERTIFICATE_DOCUMENT_ID}' in ${tableLabel(table)}`);
    const row = await readDocumentById(sql, table, CERTIFICATE_DOCUMENT_ID, signal);
    if (!row) continue;
    certificateTable = tableLabel(table);
    const found = collector.addDocument({ table: certificateTable, documentId: row.id }, row.json, 'certificate');
    log.info(`Server certificate: '${CERTIFICATE_DOCUMENT_ID}' is in table ${certificateTable} and holds ${found} encrypted value${found === 1 ? '' : 's'}.`);
    break;
  }
  if (!certificateTable) {
    log.warn(
      `No table holds the '${CERTIFICATE_DOCUMENT_ID}' document (the Octopus Server certificate). ` +
        'Is this the Octopus database? The key can still be proven with other encrypted values.',
    );
  }

  let remaining = sampleSize;
  const seen = new Set<string>();
  const take = (table: DocumentTable, rows: readonly DocumentRow[]) => {
    for (const row of rows) {
      if (remaining <= 0) return;
      const id = `${tableLabel(table)}\u0000${row.id}`;
      if (seen.has(id) || row.id.toLowerCase() === CERTIFICATE_DOCUMENT_ID) continue;
      seen.add(id);
      remaining -= collector.addDocument({ table: tableLabel(table), documentId: row.id }, row.json, 'sample', Math.min(MAX_VALUES_PER_DOCUMENT, remaining));
    }
  };

  const variableSet = tables.find((t) => t.name.toLowerCase() === 'variableset');
  if (variableSet && remaining > 0) {
    context.progress(45, 'Sampling sensitive variables');
    if (variableSet.frozenColumn) {
      // Half from current variable sets, the rest from release snapshots, then top up from either.
      take(variableSet, await readSampleDocuments(sql, variableSet, { top: Math.ceil(remaining / 2), frozen: false }, signal));
      take(variableSet, await readSampleDocuments(sql, variableSet, { top: remaining, frozen: true }, signal));
      if (remaining > 0) {
        // Few snapshots: more current sets (those already read come back first and are skipped).
        take(variableSet, await readSampleDocuments(sql, variableSet, { top: remaining + seen.size, frozen: false }, signal));
      }
    } else {
      take(variableSet, await readSampleDocuments(sql, variableSet, { top: remaining }, signal));
    }
  }
  const others = tables.filter((t) => t !== variableSet);
  for (const [index, table] of others.entries()) {
    if (remaining <= 0) break;
    throwIfCancelled(context.signal);
    context.progress(50 + (index / Math.max(1, others.length)) * 50, `Sampling ${tableLabel(table)}`);
    take(table, await readSampleDocuments(sql, table, { top: remaining, scanLimit: OTHER_TABLE_SCAN_LIMIT }, signal));
  }
  context.progress(100, 'Evidence collected');
  const evidence = collector.evidence();
  log.info(`Tried the key on ${evidence.values.length} encrypted value${evidence.values.length === 1 ? '' : 's'} in ${collector.documentsRead} documents.`);
  return { evidence, tablesScanned: tables.length, documentsRead: collector.documentsRead, certificateTable, database: sql.database };
}
