// runCommand (helpers.ts), which every bundle test runs processes through: a process killed by a
// signal the test did not send fails the test naming the signal and the end of its stderr (a flaky
// crash must say what happened, not "Expected: 1, Received: null"); one the test signals is returned.
import { runCommand } from './helpers';

test('a process killed by a signal the test did not send (here SIGSEGV) fails the run naming the signal and its last stderr lines', async () => {
  const script = 'for (let i = 1; i <= 25; i++) console.error("line " + i); process.kill(process.pid, "SIGSEGV");';
  const failure = runCommand(process.execPath, ['-e', script]);
  await expect(failure).rejects.toThrow(/ -e .* was killed by SIGSEGV after \d+\.\d s \(no exit code; the test sent no SIGSEGV\); the last 20 of its 25 stderr line\(s\):\n {2}\| line 6\n[^]*\n {2}\| line 25$/);
});

test('one that wrote nothing to stderr says so', async () => {
  await expect(runCommand(process.execPath, ['-e', 'process.kill(process.pid, "SIGABRT")'])).rejects.toThrow(/was killed by SIGABRT after .*; its stderr was empty\.$/);
});

test('a signal the test sent is the run\'s result, as before', async () => {
  const run = await runCommand(process.execPath, ['-e', 'console.log("ready"); setInterval(() => undefined, 1000)'], { onStdout: (_chunk, kill) => kill('SIGKILL') });
  expect(run).toMatchObject({ code: null, signal: 'SIGKILL', stdout: 'ready\n' });
});

test('a signal the test sent, then a different one (a crash while it cleaned up), fails the run', async () => {
  const script = 'process.on("SIGTERM", () => process.kill(process.pid, "SIGSEGV")); console.log("ready"); setInterval(() => undefined, 1000)';
  await expect(runCommand(process.execPath, ['-e', script], { onStdout: (_chunk, kill) => kill('SIGTERM') })).rejects.toThrow(/was killed by SIGSEGV/);
});
