// The DR record: one JSON line per test run, kept beside the backups so the trend of recovery
// point and recovery time survives the runs (and the workers) that measured it. Bounded, so a
// drill a day for years stays a small file; rewritten atomically, never half-written.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomically } from '../runtime/files';
import type { TestRestoreReport } from './report';

export const HISTORY_FILE_NAME = 'octopus-dr-test-history.jsonl';
/** The newest drills kept; older lines are dropped when a new one is appended. */
export const HISTORY_LIMIT = 400;

export interface DrillRecord {
  /** When the test started (UTC, ISO 8601). */
  at: string;
  result: 'PASS' | 'FAIL';
  database: string | null;
  /** Recovery point: how old the newest backup was when it was tested. */
  backupAgeHours: number | null;
  maxAgeHours: number | null;
  /** Recovery time: how long the restore took. */
  restoreSeconds: number | null;
  checkDbSeconds: number | null;
  databaseBytes: number | null;
  fileStoreFiles: number | null;
  fileStoreBytes: number | null;
  failures: number;
}

export function drillRecordOf(report: TestRestoreReport): DrillRecord {
  return {
    at: report.startedAt,
    result: report.result,
    database: report.backup.database,
    backupAgeHours: report.backup.ageHours,
    maxAgeHours: report.backup.maxAgeHours,
    restoreSeconds: report.restore.durationSeconds,
    checkDbSeconds: report.checkDb.durationSeconds,
    databaseBytes: report.backup.bytes ?? null,
    fileStoreFiles: report.fileStore.files,
    fileStoreBytes: report.fileStore.bytes,
    failures: report.failures.length,
  };
}

function isDrillRecord(value: unknown): value is DrillRecord {
  const record = value as DrillRecord;
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof record.at === 'string' &&
    !Number.isNaN(Date.parse(record.at)) &&
    (record.result === 'PASS' || record.result === 'FAIL')
  );
}

/** Reads the history; lines that are not drill records (hand edits, a torn copy) are skipped, not fatal. */
export function parseHistory(text: string): { records: DrillRecord[]; skipped: number } {
  const records: DrillRecord[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const value: unknown = JSON.parse(line);
      if (isDrillRecord(value)) records.push(value);
      else skipped += 1;
    } catch {
      skipped += 1;
    }
  }
  records.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return { records, skipped };
}

export async function readHistory(file: string): Promise<{ records: DrillRecord[]; skipped: number }> {
  try {
    return parseHistory(await fs.readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], skipped: 0 };
    throw error;
  }
}

/** The history with `record` appended, keeping the newest `limit` drills. */
export function appendRecord(records: DrillRecord[], record: DrillRecord, limit = HISTORY_LIMIT): DrillRecord[] {
  return [...records.filter((r) => r.at !== record.at), record]
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
    .slice(-limit);
}

/** Appends this drill to the history file in `directory` and returns the whole history. */
export async function recordDrill(directory: string, record: DrillRecord, limit = HISTORY_LIMIT): Promise<{ file: string; records: DrillRecord[]; skipped: number }> {
  const file = path.join(directory, HISTORY_FILE_NAME);
  const existing = await readHistory(file);
  const records = appendRecord(existing.records, record, limit);
  await writeFileAtomically(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { file, records, skipped: existing.skipped };
}
