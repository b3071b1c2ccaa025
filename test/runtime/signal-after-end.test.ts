// A cancel that arrives after a step has ended (Octopus cancelling as the step finishes, Ctrl+C
// a moment late) must not turn its outcome into "killed": runStep no longer listens then, and the
// signal's default action ended a finished, complete run with no exit code (seen in CI: a backup
// SIGTERMed 300 ms after it started, as it was leaving). The process leaves with the step's own code.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** A step that ends at once but leaves a timer running (as a driver's socket might), signalled after its last line. */
function signalAfterEnd(signal: NodeJS.Signals, body: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const script = `
const { main } = require('./steps/runtime/run-step');
const { checkWorker } = require('./templates/check-worker');
main(checkWorker, async (params, context) => { setTimeout(() => undefined, 10_000); ${body} });
`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', './scripts/register-ts.cjs', '-e', script], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!sent && /finished the work/.test(stdout)) {
        sent = true;
        // After the step's last line: runStep has returned and removed its listeners.
        setTimeout(() => child.kill(signal), 300);
      }
    });
    child.on('error', reject);
    child.on('close', (code, killedBy) => resolve({ code, signal: killedBy, stdout }));
  });
}

test.each(['SIGTERM', 'SIGINT'] as const)('%s after a step ended green leaves with exit 0, not killed by the signal', async (signal) => {
  const run = await signalAfterEnd(signal, "context.log.info('finished the work');");
  expect(run.stdout).toContain('finished the work');
  expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
});

test('SIGTERM after a step failed leaves with its exit code (1), not killed by the signal', async () => {
  const run = await signalAfterEnd('SIGTERM', "context.log.info('finished the work'); throw new (require('./steps/runtime/errors').StepFailure)('it failed: do this');");
  expect({ code: run.code, signal: run.signal }).toEqual({ code: 1, signal: null });
});
