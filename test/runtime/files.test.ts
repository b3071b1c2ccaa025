// Files a step writes for people (reports) never replace another run's: two runs that start in the
// same second each keep their own, whole.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeFileWithoutReplacing } from '../../steps/runtime/files';
import { writeReport } from '../../steps/test-restore/report';

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'octopus-dr-files-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a name that is taken gets -2, -3; nothing is replaced and no temporary file is left', async () => {
  writeFileSync(path.join(dir, 'report.json'), 'an earlier run\n');
  const written = await Promise.all(['a', 'b', 'c'].map((run) => writeFileWithoutReplacing(dir, 'report', '.json', `${run}\n`)));
  expect(written.map((f) => path.basename(f)).sort()).toEqual(['report-2.json', 'report-3.json', 'report-4.json']);
  expect(readFileSync(path.join(dir, 'report.json'), 'utf8')).toBe('an earlier run\n');
  expect(written.map((f) => readFileSync(f, 'utf8')).sort()).toEqual(['a\n', 'b\n', 'c\n']);
  expect(readdirSync(dir).sort()).toEqual(['report-2.json', 'report-3.json', 'report-4.json', 'report.json']);
});

test('two test-restore reports started in the same second are both kept', async () => {
  const report = (server: string) => ({ startedAt: '2026-12-04T05:00:00.123Z', server }) as unknown as Parameters<typeof writeReport>[1];
  const [first, second] = await Promise.all([writeReport(dir, report('one')), writeReport(dir, report('two'))]);
  expect(first).not.toBe(second);
  expect([first, second].map((f) => path.basename(f)).sort()).toEqual(['octopus-dr-test-restore-20261204T050000Z-2.json', 'octopus-dr-test-restore-20261204T050000Z.json']);
  expect([first, second].map((f) => JSON.parse(readFileSync(f, 'utf8')).server).sort()).toEqual(['one', 'two']);
});
