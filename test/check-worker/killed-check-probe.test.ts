// Check Worker writes a probe file (`.octopus-dr-probe-<hex>`) into each directory and removes it. A
// check killed in between (SIGKILL, a lost worker) left it in the backup folder for ever, named by
// nobody. The next check names each one, deletes those nothing has written to for 6 hours (a younger
// one may be a check running now), and leaves other files alone.
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkWorker } from '../../steps/check-worker/check-worker';
import { MemorySink } from '../../steps/runtime/console-output';
import { ABANDONED_AFTER_MS } from '../../steps/runtime/leftovers';
import { runStep } from '../../steps/runtime/run-step';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { checkWorker as template } from '../../templates/check-worker';

test('a probe file a killed check left is named and removed by the next check; a young one and other files are kept', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-check-probe-'));
  try {
    const put = (name: string, ageMs: number) => {
      const file = path.join(dir, name);
      writeFileSync(file, 'octopus-dr write probe\n');
      const then = new Date(Date.now() - ageMs);
      utimesSync(file, then, then);
      return file;
    };
    const killed = put('.octopus-dr-probe-0123456789ab', ABANDONED_AFTER_MS + 60_000);
    const young = put('.octopus-dr-probe-ba9876543210', 60_000);
    const other = put('.octopus-dr-probe-notes.txt', ABANDONED_AFTER_MS + 60_000);

    const sink = new MemorySink();
    const code = await runStep(template, checkWorker, { argv: ['--service-messages', '--directories', dir, '--minimum-free-space-gb', '0'], env: {}, sink, handleSignals: false });
    expect(resultMessageIn(sink.out)).toBe('Worker is ready (1 directory and 0 endpoints checked).');
    expect(code).toBe(0);
    expect(existsSync(killed)).toBe(false);
    expect(sink.out).toContain(`Deleted ${killed}, left by a worker check (Check Worker) that was stopped before it finished`);
    expect(existsSync(young)).toBe(true);
    expect(sink.out).toContain(`${young} was left by a worker check (Check Worker) that was stopped, or belongs to one still running`);
    expect(existsSync(other)).toBe(true);
    expect(sink.out).not.toContain(other);
    expect(readdirSync(dir).sort()).toEqual([path.basename(young), path.basename(other)].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
