// The DR record and the HTML report: the history is bounded and survives bad lines; the page is
// self-contained, escapes user content, and a real browser (Debian's Chromium, headless) lays it
// out with the verdict and both charts visible.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { niceCeiling } from '../../steps/test-restore/charts';
import { appendRecord, HISTORY_FILE_NAME, parseHistory, recordDrill, type DrillRecord } from '../../steps/test-restore/history';
import { recordDrillLocked } from '../../steps/test-restore/dr-record';
import { renderHtmlReport } from '../../steps/test-restore/html-report';
import { REPORT_FORMAT, type TestRestoreReport } from '../../steps/test-restore/report';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM) && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium package.`);
const describeIfChromium = existsSync(CHROMIUM) ? describe : describe.skip;

function drill(day: number, overrides: Partial<DrillRecord> = {}): DrillRecord {
  return {
    at: new Date(Date.UTC(2026, 10, day, 5, 0, 0)).toISOString(),
    result: 'PASS',
    database: 'Octopus',
    backupAgeHours: 3 + (day % 4),
    maxAgeHours: 26,
    restoreSeconds: 40 + day * 2,
    checkDbSeconds: 12,
    databaseBytes: 1_500_000_000 + day * 10_000_000,
    fileStoreFiles: 6000,
    fileStoreBytes: 2_500_000_000,
    failures: 0,
    ...overrides,
  };
}

function report(overrides: Partial<TestRestoreReport> = {}): TestRestoreReport {
  return {
    format: REPORT_FORMAT,
    tool: { name: 'octopus-dr', version: '0.1.0' },
    result: 'FAIL',
    startedAt: '2026-11-30T05:00:00.000Z',
    finishedAt: '2026-11-30T05:02:00.000Z',
    server: 'SQL01',
    backup: {
      source: '/var/backups/octopus',
      database: 'Octopus <script>alert(1)</script>',
      sets: ['Octopus_FULL_20261130T013000Z'],
      finishedAtServerTime: '2026-11-30T01:31:00',
      pointInTime: '2026-11-30T01:31:00',
      ageHours: 31.5,
      maxAgeHours: 26,
      recoveryPoint: 'failed',
      manifestKeyId: '08f7ad0910489ed0',
      bytes: 1_800_000_000,
    },
    restore: { status: 'passed', scratchDatabase: 'octopus-dr-test-20261130T050000Z-ab12cd', durationSeconds: 95.2, kept: false, dropped: true },
    checkDb: { status: 'passed', durationSeconds: 20.1 },
    masterKey: { status: 'passed', verdict: 'PASS', keyId: '08f7ad0910489ed0', matchesManifest: true, valuesTested: 25, valuesVerified: 25 },
    fileStore: { status: 'skipped', source: null, archive: null, files: null, bytes: null, durationSeconds: null },
    failures: ['The newest backup is 31.5 hours old, older than the 26-hour limit ("Maximum backup age"): check that the backup runbook runs and succeeds.'],
    ...overrides,
  };
}

describe('DR record (history file)', () => {
  test('keeps the newest drills only, oldest first', () => {
    let records: DrillRecord[] = [];
    for (let day = 1; day <= 30; day++) records = appendRecord(records, drill(day), 25);
    expect(records).toHaveLength(25);
    expect(records[0].at).toBe(drill(6).at);
    expect(records.at(-1)!.at).toBe(drill(30).at);
  });

  test('a line that is not a drill record is skipped and counted, not fatal', () => {
    const text = [JSON.stringify(drill(2)), '{"at":"not a date","result":"PASS"}', '{torn', '', JSON.stringify(drill(1))].join('\n');
    const parsed = parseHistory(text);
    expect(parsed.records.map((r) => r.at)).toEqual([drill(1).at, drill(2).at]);
    expect(parsed.skipped).toBe(2);
  });

  test('recordDrill appends to the file beside the backups and bounds it', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'octopus-dr-history-'));
    try {
      for (let day = 1; day <= 5; day++) await recordDrill(directory, drill(day), 3);
      const file = path.join(directory, HISTORY_FILE_NAME);
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(JSON.parse(lines[2]).at).toBe(drill(5).at);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('drills at the same time each keep their line (the rewrite holds a lock)', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'octopus-dr-history-'));
    const log = { info: () => undefined, warn: () => undefined };
    try {
      await Promise.all([1, 2, 3, 4, 5, 6].map((day) => recordDrillLocked(directory, drill(day), log)));
      const lines = readFileSync(path.join(directory, HISTORY_FILE_NAME), 'utf8').trim().split('\n');
      expect(lines.map((l) => JSON.parse(l).at)).toEqual([1, 2, 3, 4, 5, 6].map((day) => drill(day).at));
      expect(readdirSync(directory)).toEqual([HISTORY_FILE_NAME]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('HTML report', () => {
  test('axis tops are tidy numbers', () => {
    expect([niceCeiling(0), niceCeiling(0.7), niceCeiling(26), niceCeiling(31.5), niceCeiling(140)]).toEqual([1, 1, 50, 50, 200]);
  });

  test('is self-contained and escapes what the user named', () => {
    const html = renderHtmlReport(report(), { history: [drill(28), drill(29)], jsonReportName: 'octopus-dr-test-restore-20261130T050000Z.json' });
    expect(html).not.toMatch(/<script|src=|href=|url\(|@import/i);
    expect(html).toContain('Octopus &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('id="recovery-point-chart"');
    expect(html).toContain('id="recovery-time-chart"');
    expect(html).toContain('limit 26 h');
  });
});

describeIfChromium('HTML report in a real browser (headless Chromium)', () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'octopus-dr-html-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  const chromiumFlags = (profile: string) => [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    '--hide-scrollbars',
    '--window-size=1000,1500',
  ];

  test('shows the verdict first and lays out both charts with their target line', async () => {
    const history = [drill(20), drill(22), drill(24, { result: 'FAIL', failures: 1, backupAgeHours: 30 }), drill(26), drill(28)];
    // A plain database name: this page is also the README's picture (escaping is tested above).
    const plain = report();
    const current = { ...plain, backup: { ...plain.backup, database: 'Octopus' } };
    history.push({ ...drill(30), at: current.startedAt, result: 'FAIL', failures: 1, backupAgeHours: 31.5, restoreSeconds: 95.2 });
    const html = renderHtmlReport(current, { history, jsonReportName: 'octopus-dr-test-restore-20261130T050000Z.json' });
    const page = path.join(directory, 'report.html');
    writeFileSync(page, html);

    // The test page measures the layout the browser computed and leaves it in the DOM it dumps.
    const probe = path.join(directory, 'probe.html');
    writeFileSync(
      probe,
      html.replace(
        '</body>',
        `<script>
          const box = (el) => { const r = el.getBoundingClientRect(); return { top: r.top, width: r.width, height: r.height }; };
          const charts = [...document.querySelectorAll('svg.chart')].map((svg) => ({ id: svg.id, ...box(svg),
            points: svg.querySelectorAll('circle.point').length, failed: svg.querySelectorAll('circle.point.failed').length,
            target: svg.querySelectorAll('line.target').length }));
          const verdict = document.getElementById('verdict');
          document.body.setAttribute('data-layout', JSON.stringify({ verdict: verdict.innerText, verdictBox: box(verdict),
            verdictColour: getComputedStyle(verdict).backgroundColor, charts, checks: document.querySelectorAll('#checks tbody tr').length }));
        </script></body>`,
      ),
    );
    const dumped = await run(CHROMIUM, [...chromiumFlags(path.join(directory, 'profile-dom')), '--dump-dom', `file://${probe}`], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    const attribute = /data-layout="([^"]*)"/.exec(dumped.stdout)?.[1];
    expect(attribute).toBeDefined();
    const layout = JSON.parse(attribute!.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'));

    expect(layout.verdict).toMatch(/^FAIL\n1 check failed/);
    expect(layout.verdictColour).toBe('rgb(180, 35, 24)');
    expect(layout.verdictBox.top).toBeLessThan(120);
    expect(layout.checks).toBe(5);
    const byId = Object.fromEntries(layout.charts.map((c: { id: string }) => [c.id, c]));
    for (const id of ['recovery-point-chart', 'recovery-time-chart']) {
      expect(byId[id].width).toBeGreaterThan(300);
      expect(byId[id].height).toBeGreaterThan(150);
      expect(byId[id].points).toBe(6);
      expect(byId[id].failed).toBe(2);
      expect(byId[id].top).toBeGreaterThan(layout.verdictBox.top);
    }
    expect(byId['recovery-point-chart'].target).toBe(1);

    // And a picture of the page itself, for a person to look at (docs/images keeps one).
    const picture = path.join(directory, 'report.png');
    await run(CHROMIUM, [...chromiumFlags(path.join(directory, 'profile-png')), `--screenshot=${picture}`, `file://${page}`], { timeout: 60_000 });
    expect(statSync(picture).size).toBeGreaterThan(20_000);
    const signature = readFileSync(picture).subarray(0, 8).toString('hex');
    expect(signature).toBe('89504e470d0a1a0a');
    if (process.env.OCTOPUS_DR_SAVE_REPORT_PNG) writeFileSync(process.env.OCTOPUS_DR_SAVE_REPORT_PNG, readFileSync(picture));
  }, 120_000);
});
