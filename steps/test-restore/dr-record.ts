// After the JSON report: the drill joins the DR record (the history file beside the backups) and
// the HTML page people read is written next to the JSON. Neither may hide the test's result: a
// failure here is a warning that says what was not written and why.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomically } from '../runtime/files';
import { acquireLock } from '../runtime/lock';
import type { StepContext } from '../runtime/step-context';
import { drillRecordOf, recordDrill, type DrillRecord } from './history';

/** Two drills at once must not lose each other's line: the read-append-rewrite holds a lock. */
export async function recordDrillLocked(
  directory: string,
  record: DrillRecord,
  log: { info(message: string): void; warn(message: string): void },
  signal?: AbortSignal,
): ReturnType<typeof recordDrill> {
  const lock = await acquireLock({ directory, key: 'test-history', resource: 'the DR record', step: 'test-restore', waitMs: 60_000, pollMs: 200, log, signal });
  try {
    return await recordDrill(directory, record);
  } finally {
    await lock.release();
  }
}
import { renderHtmlReport } from './html-report';
import type { TestRestoreReport } from './report';

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The folder of "Backup to restore": the folder itself, or the folder of the file it names. */
export async function backupFolderOf(source: string): Promise<string> {
  const resolved = path.resolve(source);
  const stat = await fs.stat(resolved).catch(() => undefined);
  return stat && !stat.isDirectory() ? path.dirname(resolved) : resolved;
}

/**
 * Appends the drill to the history in the backup folder; when that folder cannot be written (read-only
 * media, a share this account only reads), to the history in the report directory instead.
 */
async function appendDrill(report: TestRestoreReport, backupFolder: string, reportDirectory: string, context: StepContext): Promise<DrillRecord[]> {
  const record = drillRecordOf(report);
  try {
    const written = await recordDrillLocked(backupFolder, record, context.log, context.signal);
    if (written.skipped > 0) context.log.warn(`${written.file}: ${written.skipped} line(s) that are not drill records were dropped.`);
    context.log.info(`DR record: ${written.file} (${written.records.length} drill${written.records.length === 1 ? '' : 's'})`);
    return written.records;
  } catch (error) {
    if (path.resolve(backupFolder) === path.resolve(reportDirectory)) throw error;
    context.log.warn(`The DR record cannot be written beside the backups (${messageOf(error)}); it is kept in the report directory ${reportDirectory} instead.`);
    const written = await recordDrillLocked(reportDirectory, record, context.log, context.signal);
    context.log.info(`DR record: ${written.file} (${written.records.length} drill${written.records.length === 1 ? '' : 's'})`);
    return written.records;
  }
}

/** Writes the history line and the HTML page beside `jsonFile`; warns (never throws) when it cannot. */
export async function writeDrRecordAndPage(report: TestRestoreReport, jsonFile: string, backupFolder: string, context: StepContext): Promise<string | undefined> {
  const reportDirectory = path.dirname(jsonFile);
  const outcome = `the test itself ${report.result === 'PASS' ? 'passed' : 'failed'}, see the JSON report`;
  let history: DrillRecord[];
  try {
    history = await appendDrill(report, backupFolder, reportDirectory, context);
  } catch (error) {
    context.log.warn(`The DR record (test history) could not be written: ${messageOf(error)} (${outcome}). The HTML report shows this drill only.`);
    history = [drillRecordOf(report)];
  }
  const htmlFile = jsonFile.replace(/\.json$/, '.html');
  try {
    const html = renderHtmlReport(report, { history, jsonReportName: path.basename(jsonFile) });
    // Artifacts are not masked by Octopus: anything registered as secret is redacted here too.
    await writeFileAtomically(htmlFile, context.redact(html));
  } catch (error) {
    context.log.warn(`The HTML report could not be written to ${htmlFile}: ${messageOf(error)} (${outcome}).`);
    return undefined;
  }
  context.createArtifact(htmlFile);
  context.log.info(`Report: ${htmlFile}`);
  return htmlFile;
}
