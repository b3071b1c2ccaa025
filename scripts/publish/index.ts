// `npm run publish -- --server <url> [--space Default] ...`: see options.ts for the options and
// publish.ts for what it does. Exit codes: 0 done, 1 failed, 2 bad options.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { OctopusApiError } from '../../steps/engines/octopus';
import { redactAll } from '../../steps/runtime/redactor';
import { parsePublishOptions, USAGE, UsageError } from './options';
import { Publisher, type PublishResult } from './publish';
import { TemplatesNotBuiltError } from './templates';

const ROOT = path.resolve(__dirname, '../..');

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** The steps' redaction (case-insensitive: servers and proxies may quote the key in another case). */
function redactor(secret: string): (text: string) => string {
  return (text) => redactAll(text, [secret]);
}

/** Builds the templates when the default build folder is missing (a fresh checkout). */
function buildTemplates(io: CliIo): void {
  io.stdout('No built templates yet: running the build first (npm run build).\n');
  const result = spawnSync(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.cjs'), path.join(ROOT, 'scripts/build/index.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) throw new TemplatesNotBuiltError('The build failed; fix it (npm run build) and publish again.');
}

export async function runPublishCli(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<{ exitCode: number; result?: PublishResult }> {
  let options;
  try {
    options = parsePublishOptions(argv, env, ROOT);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`ERROR: ${error.message}\n`);
      return { exitCode: 2 };
    }
    throw error;
  }
  if (options === 'help') {
    io.stdout(USAGE);
    return { exitCode: 0 };
  }
  const { warnings, ...publishOptions } = options;
  for (const warning of warnings) io.stderr(`WARNING: ${warning}\n`);
  const redact = redactor(options.apiKey);
  const toolVersion = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  try {
    const defaultDirectory = path.join(ROOT, 'build', 'templates', options.syntax);
    if (options.templatesDirectory === defaultDirectory && !existsSync(defaultDirectory)) buildTemplates(io);
    const publisher = new Publisher({ ...publishOptions, toolVersion, log: (line) => io.stdout(redact(line) + '\n') });
    const result = await publisher.run();
    return { exitCode: 0, result };
  } catch (error) {
    // An option the server refuses (an unknown time zone, a project whose runbooks are in Git): exit 2, nothing written.
    if (error instanceof UsageError) {
      io.stderr(redact(`ERROR: ${error.message}\n`));
      return { exitCode: 2 };
    }
    const known = error instanceof OctopusApiError || error instanceof TemplatesNotBuiltError || (error instanceof Error && !(error instanceof TypeError));
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(redact(`ERROR: ${known ? message : `Unexpected error: ${message}`}\n`));
    return { exitCode: 1 };
  }
}

if (require.main === module) {
  runPublishCli(process.argv.slice(2), process.env, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }).then(
    ({ exitCode }) => {
      process.exitCode = exitCode;
    },
    (error: unknown) => {
      process.stderr.write(`ERROR: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
