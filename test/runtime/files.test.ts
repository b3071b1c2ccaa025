// Files a step writes for people (reports) never replace another run's: two runs that start in the
// same second each keep their own, whole.
import { promises as fsp, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test('where hard links are not supported (EPERM on some shares), a taken name is still never replaced', async () => {
  writeFileSync(path.join(dir, 'report.json'), 'the other run\'s report\n');
  const link = jest.spyOn(fsp, 'link').mockRejectedValue(Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }));
  try {
    const placed = await writeFileWithoutReplacing(dir, 'report', '.json', 'this run\'s report\n');
    expect(path.basename(placed)).toBe('report-2.json');
    expect(readFileSync(placed, 'utf8')).toBe('this run\'s report\n');
  } finally {
    link.mockRestore();
  }
  expect(readFileSync(path.join(dir, 'report.json'), 'utf8')).toBe('the other run\'s report\n');
  expect(readdirSync(dir).sort()).toEqual(['report-2.json', 'report.json']);
});
