// The report people read: one self-contained HTML page (inline CSS and SVG, no script, no
// external asset) with the verdict at the top, each check with its evidence, and the trend of
// recovery point and recovery time across the DR record. The JSON report stays for machines.
import { formatBytes } from '../runtime/format';
import { escapeHtml, lineChart, type ChartPoint } from './charts';
import type { DrillRecord } from './history';
import type { CheckStatus, TestRestoreReport } from './report';

export interface HtmlReportOptions {
  /** The drills so far, this one included (oldest first). */
  history: DrillRecord[];
  /** Name of the JSON report beside this page. */
  jsonReportName?: string;
}

const STYLE = `
body { font-family: "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 0; color: #1f2933; background: #f5f7fa; }
main { max-width: 980px; margin: 0 auto; padding: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #52606d; font-size: 13px; margin: 0 0 16px; }
.verdict { border-radius: 8px; padding: 18px 22px; color: #fff; margin-bottom: 16px; }
.verdict.pass { background: #1e7d46; }
.verdict.fail { background: #b42318; }
.verdict .word { font-size: 34px; font-weight: 700; letter-spacing: 1px; }
.verdict .why { font-size: 15px; margin-top: 4px; }
.failures { background: #fff4f2; border: 1px solid #f3b8b0; border-radius: 6px; padding: 10px 16px; }
.failures li { margin: 6px 0; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 14px; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #e4e7eb; font-weight: 600; }
.status { font-weight: 700; white-space: nowrap; }
.status.passed { color: #1e7d46; } .status.failed { color: #b42318; } .status.skipped, .status.not-run { color: #7b8794; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { background: #fff; border: 1px solid #e4e7eb; border-radius: 6px; }
.chart-title { font-size: 13px; font-weight: 600; fill: #1f2933; }
.tick { font-size: 10px; fill: #52606d; }
.grid { stroke: #e4e7eb; stroke-width: 1; }
.target { stroke: #b42318; stroke-width: 1.5; stroke-dasharray: 6 4; }
.target-label { font-size: 10px; fill: #b42318; }
.series { fill: none; stroke: #2563eb; stroke-width: 2; }
.point { fill: #2563eb; } .point.failed { fill: #b42318; }
footer { color: #7b8794; font-size: 12px; margin-top: 24px; }
code { font-family: Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
`;

function statusCell(status: CheckStatus): string {
  return `<td class="status ${status.replace(' ', '-')}">${escapeHtml(status)}</td>`;
}

function seconds(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(1)} s`;
}

function checkRows(report: TestRestoreReport): string[] {
  const b = report.backup;
  const rows: Array<[string, CheckStatus, string]> = [
    [
      'Recovery point',
      b.recoveryPoint,
      b.ageHours === null
        ? 'The age of the newest backup is unknown.'
        : `Newest backup finished ${b.finishedAtServerTime ?? '?'} (server time): ${b.ageHours.toFixed(1)} h old` +
          (b.maxAgeHours ? `, limit ${b.maxAgeHours} h.` : '.'),
    ],
    [
      'Restore',
      report.restore.status,
      `${b.sets.length ? `Sets ${b.sets.join(' + ')}` : 'No backup set found'}` +
        (report.restore.scratchDatabase ? ` restored as ${report.restore.scratchDatabase}` : '') +
        (report.restore.durationSeconds !== null ? ` in ${seconds(report.restore.durationSeconds)}` : '') +
        (report.restore.kept ? ' (kept).' : report.restore.dropped ? ' (dropped afterwards).' : '.'),
    ],
    ['CHECKDB', report.checkDb.status, report.checkDb.durationSeconds !== null ? `DBCC CHECKDB took ${seconds(report.checkDb.durationSeconds)}.` : '-'],
    [
      'Master key',
      report.masterKey.status,
      [
        report.masterKey.keyId ? `Key ID ${report.masterKey.keyId}` : null,
        report.backup.manifestKeyId ? `manifest records ${report.backup.manifestKeyId}` : null,
        report.masterKey.valuesTested !== null ? `${report.masterKey.valuesVerified}/${report.masterKey.valuesTested} encrypted values decrypt` : null,
      ]
        .filter(Boolean)
        .join(', ') || '-',
    ],
    [
      'File store',
      report.fileStore.status,
      report.fileStore.archive
        ? `${report.fileStore.archive}: ${report.fileStore.files ?? '?'} files, ${report.fileStore.bytes === null ? '?' : formatBytes(report.fileStore.bytes)}, hashes checked in ${seconds(report.fileStore.durationSeconds)}.`
        : report.fileStore.status === 'skipped'
          ? 'No file-store backup directory was given.'
          : '-',
    ],
  ];
  const a = report.agreement;
  if (a) {
    const count = (what: string, c: { checked: number; missing: number } | null) => (c ? `${what}: ${c.missing} of ${c.checked} missing` : null);
    const counts = [count('task logs', a.taskLogs), count('artifacts', a.artifacts), count('packages', a.packages)].filter(Boolean).join('; ');
    rows.push([
      'Database and file store',
      a.status,
      a.status === 'skipped'
        ? 'No file-store backup directory was given.'
        : counts
          ? `${counts}${a.fileStoreSet ? ` (${a.fileStoreSet})` : ''}${a.notChecked.length ? `. Not checked: ${a.notChecked.join('; ')}` : ''}.`
          : '-',
    ]);
  }
  return rows.map(([check, status, evidence]) => `<tr><th scope="row">${escapeHtml(check)}</th>${statusCell(status)}<td>${escapeHtml(evidence)}</td></tr>`);
}

function points(history: DrillRecord[], value: (r: DrillRecord) => number | null): ChartPoint[] {
  return history.map((r) => ({ at: new Date(r.at), value: value(r), failed: r.result === 'FAIL' }));
}

function historyRows(history: DrillRecord[]): string[] {
  return history
    .slice(-10)
    .reverse()
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.at.replace('T', ' ').slice(0, 16))} UTC</td><td class="status ${r.result === 'PASS' ? 'passed' : 'failed'}">${r.result}</td>` +
        `<td>${r.backupAgeHours === null ? '-' : `${r.backupAgeHours.toFixed(1)} h`}</td><td>${seconds(r.restoreSeconds)}</td>` +
        `<td>${r.databaseBytes === null ? '-' : escapeHtml(formatBytes(r.databaseBytes))}</td><td>${r.failures}</td></tr>`,
    );
}

export function renderHtmlReport(report: TestRestoreReport, options: HtmlReportOptions): string {
  const pass = report.result === 'PASS';
  const failed = report.failures.length;
  const why = pass
    ? 'The newest backup restored, passed CHECKDB and opens with the master key.'
    : `${failed} check${failed === 1 ? '' : 's'} failed: the standby could not be rebuilt from this backup as it is.`;
  const history = options.history;
  const ages = lineChart({
    id: 'recovery-point-chart',
    title: 'Recovery point: backup age at test time',
    unit: 'h',
    points: points(history, (r) => r.backupAgeHours),
    target: report.backup.maxAgeHours ? { value: report.backup.maxAgeHours, label: `limit ${report.backup.maxAgeHours} h` } : undefined,
    width: 450,
  });
  const times = lineChart({
    id: 'recovery-time-chart',
    title: 'Recovery time: restore duration',
    unit: 's',
    points: points(history, (r) => r.restoreSeconds),
    width: 450,
  });
  const sized = history.some((r) => r.databaseBytes !== null);
  const sizes = sized
    ? lineChart({ id: 'database-size-chart', title: 'Database backup size', unit: 'MB', points: points(history, (r) => (r.databaseBytes === null ? null : r.databaseBytes / 1e6)), width: 450 })
    : '';
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>Octopus DR test restore: ${report.result}${report.backup.database ? ` (${escapeHtml(report.backup.database)})` : ''}</title>`,
    `<style>${STYLE}</style></head><body><main>`,
    `<h1>Octopus DR: test of the latest backup</h1>`,
    `<p class="meta">Tested ${escapeHtml(report.startedAt.replace('T', ' ').slice(0, 19))} UTC` +
      `${report.server ? ` on ${escapeHtml(report.server)}` : ''}${report.backup.database ? `, database ${escapeHtml(report.backup.database)}` : ''}.</p>`,
    `<section id="verdict" class="verdict ${pass ? 'pass' : 'fail'}"><div class="word">${report.result}</div><div class="why">${escapeHtml(why)}</div></section>`,
    failed ? `<section class="failures"><strong>What failed and what to do</strong><ul>${report.failures.map((f) => `<li>${escapeHtml(f)}</li>`).join('')}</ul></section>` : '',
    '<h2>Checks</h2>',
    `<table id="checks"><thead><tr><th>Check</th><th>Result</th><th>Evidence</th></tr></thead><tbody>${checkRows(report).join('')}</tbody></table>`,
    `<h2>Over time (${history.length} drill${history.length === 1 ? '' : 's'})</h2>`,
    `<div class="charts">${ages}${times}${sizes}</div>`,
    '<h2>Latest drills</h2>',
    `<table id="history"><thead><tr><th>Tested</th><th>Result</th><th>Backup age</th><th>Restore time</th><th>Backup size</th><th>Failures</th></tr></thead><tbody>${historyRows(history).join('')}</tbody></table>`,
    `<footer>octopus-dr ${escapeHtml(report.tool.version)}${options.jsonReportName ? ` · machine-readable report: <code>${escapeHtml(options.jsonReportName)}</code>` : ''}</footer>`,
    '</main></body></html>',
    '',
  ].join('\n');
}
