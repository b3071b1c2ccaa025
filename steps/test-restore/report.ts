// The test-restore report: what was tested, how long it took, and what failed. Written as JSON
// (an Octopus artifact) and summarised in the log. It names files, databases and key IDs, never secrets.
import { writeFileWithoutReplacing } from '../runtime/files';

export const REPORT_FORMAT = 'octopus-dr/test-restore-report/v1';

export type CheckStatus = 'passed' | 'failed' | 'skipped' | 'not run';

/** Database and file store agree: counts of what the restored database names and the file-store set lacks. */
export interface AgreementReport {
  status: CheckStatus;
  /** ok: nothing missing; warn: some missing; fail: more than the limit of one kind missing. */
  outcome: 'ok' | 'warn' | 'fail' | null;
  fileStoreSet: string | null;
  window: { since: string; until: string } | null;
  taskLogs: { checked: number; missing: number } | null;
  artifacts: { checked: number; missing: number } | null;
  packages: { checked: number; missing: number } | null;
  notChecked: string[];
  message: string | null;
}

export interface TestRestoreReport {
  format: typeof REPORT_FORMAT;
  tool: { name: 'octopus-dr'; version: string };
  result: 'PASS' | 'FAIL';
  startedAt: string;
  finishedAt: string;
  server: string | null;
  backup: {
    source: string;
    database: string | null;
    sets: string[];
    /** When the newest set finished, server local time, as SQL Server records it. */
    finishedAtServerTime: string | null;
    pointInTime: string | null;
    ageHours: number | null;
    maxAgeHours: number | null;
    recoveryPoint: CheckStatus;
    manifestKeyId: string | null;
    /** Size of the backup files of the restored chain, when known. */
    bytes?: number | null;
    /** The set (and its files) that failed RESTORE VERIFYONLY, when one did. */
    failedSet?: { label: string; files: string[] } | null;
  };
  restore: { status: CheckStatus; scratchDatabase: string | null; durationSeconds: number | null; kept: boolean; dropped: boolean };
  checkDb: { status: CheckStatus; durationSeconds: number | null };
  masterKey: {
    status: CheckStatus;
    verdict: 'PASS' | 'FAIL' | 'INCONCLUSIVE' | null;
    keyId: string | null;
    matchesManifest: boolean | null;
    valuesTested: number | null;
    valuesVerified: number | null;
  };
  fileStore: {
    status: CheckStatus;
    source: string | null;
    archive: string | null;
    files: number | null;
    bytes: number | null;
    durationSeconds: number | null;
  };
  /** Absent in reports written before the check existed. */
  agreement?: AgreementReport;
  failures: string[];
}

function hours(value: number | null): string {
  return value === null ? 'unknown' : `${value.toFixed(1)} h`;
}

function seconds(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(1)} s`;
}

/** A few lines for the task log. */
export function summarise(report: TestRestoreReport): string {
  const b = report.backup;
  const row = (label: string, text: string) => `  ${label.padEnd(16)}${text}`;
  const lines = [
    `Test restore: ${report.result}`,
    row('Backup', `${b.database ?? '?'}: ${b.sets.join(' + ') || 'none found'}`),
    row('Recovery point', `${b.pointInTime ?? '?'} (server time), ${hours(b.ageHours)} old${b.maxAgeHours ? `, limit ${b.maxAgeHours} h` : ''}: ${b.recoveryPoint}`),
    row(
      'Restore',
      `${report.restore.status} in ${seconds(report.restore.durationSeconds)} as ${report.restore.scratchDatabase ?? '-'}` +
        (report.restore.kept ? ' (kept)' : report.restore.dropped ? ' (dropped)' : ''),
    ),
    row('CHECKDB', `${report.checkDb.status} in ${seconds(report.checkDb.durationSeconds)}`),
    row(
      'Master key',
      `${report.masterKey.status}${report.masterKey.keyId ? `, key ID ${report.masterKey.keyId}` : ''}` +
        (report.masterKey.valuesTested !== null ? `, ${report.masterKey.valuesVerified}/${report.masterKey.valuesTested} values decrypt` : ''),
    ),
    row(
      'File store',
      report.fileStore.status +
        (report.fileStore.archive ? ` (${report.fileStore.archive}: ${report.fileStore.files} files, ${report.fileStore.bytes} bytes, ${seconds(report.fileStore.durationSeconds)})` : ''),
    ),
  ];
  const a = report.agreement;
  if (a) {
    const count = (what: string, c: { checked: number; missing: number } | null) => (c ? `${what} ${c.missing}/${c.checked} missing` : null);
    const counts = [count('task logs', a.taskLogs), count('artifacts', a.artifacts), count('packages', a.packages)].filter(Boolean).join(', ');
    lines.push(row('Files agree', `${a.status}${a.outcome === 'warn' ? ' (with missing files)' : ''}${counts ? ` (${counts})` : ''}`));
  }
  if (report.failures.length > 0) lines.push('  Failures:', ...report.failures.map((f) => `    - ${f}`));
  return lines.join('\n');
}

/** Written atomically, so nobody reads half a report, and never over another run's report (two drills in one second get -2). */
export async function writeReport(directory: string, report: TestRestoreReport, redact: (text: string) => string = (t) => t): Promise<string> {
  const stamp = report.startedAt.replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  // Artifacts are not masked by Octopus: anything registered as secret is redacted here too.
  return writeFileWithoutReplacing(directory, `octopus-dr-test-restore-${stamp}`, '.json', redact(JSON.stringify(report, null, 2) + '\n'));
}
