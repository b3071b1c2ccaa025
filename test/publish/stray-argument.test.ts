// Red team 39: the publisher quoted a stray command-line value in its usage error, before any
// redaction exists: an API key typed without its flag (`--dry-run API-...`, or after
// `--api-key-file <file>`) was printed whole. The steps' own command line names such a value by its
// position instead (cli.ts, commandLineProblem).
import { runPublishCli } from '../../scripts/publish/index';

const API_KEY = 'API-REDTEAM39STRAYKEY0000000';

test.each([
  [['--server', 'https://octopus.example', '--dry-run', API_KEY]],
  [['--server', 'https://octopus.example', API_KEY]],
  [[API_KEY]],
])('a stray value is not repeated: %j', async (argv) => {
  let stdout = '';
  let stderr = '';
  const { exitCode } = await runPublishCli(argv, {}, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  expect(exitCode).toBe(2);
  expect(stderr).toMatch(/has no --flag before it/);
  expect(stdout + stderr).not.toContain(API_KEY);
  expect((stdout + stderr).toLowerCase()).not.toContain('redteam39straykey');
});
