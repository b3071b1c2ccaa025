// Node ends a process with code 0 when nothing is left to wait for, even while a promise is
// pending. A step stuck that way (a lost callback, a thread let go) must not end green: main()
// turns it into exit 1 with a last line saying so.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

function runStuckStep(body: string) {
  const script = `
const { main } = require('./steps/runtime/run-step');
const { checkWorker } = require('./templates/check-worker');
main(checkWorker, async () => { ${body} });
`;
  return spawnSync(process.execPath, ['-r', './scripts/register-ts.cjs', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME } });
}

test('a step waiting on a promise nothing will settle ends with exit 1 and a last line that says so', () => {
  const run = runStuckStep('await new Promise(() => undefined);');
  expect(run.status).toBe(1);
  const lines = run.stderr.trim().split('\n');
  expect(lines.at(-1)).toMatch(/^ERROR: .* stopped before it finished: it was waiting for work that no longer exists \(an internal error\)\. Nothing it was doing can be taken as done; run it again, with --verbose, and report this if it persists\.$/);
});

test('a step waiting on an unreferenced timer ends the same way, not green', () => {
  const run = runStuckStep('await new Promise((resolve) => setTimeout(resolve, 60_000).unref());');
  expect(run.status).toBe(1);
  expect(run.stderr).toContain('stopped before it finished');
});

test('a step that finishes still exits 0 without that line', () => {
  const run = runStuckStep('await new Promise((resolve) => setTimeout(resolve, 50));');
  expect(run.status).toBe(0);
  expect(run.stderr).not.toContain('stopped before it finished');
});
