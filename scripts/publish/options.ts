// Command-line options of `npm run publish`, parsed by Node's util.parseArgs. The API key is
// never a flag value (shell history and the process list would show it): it comes from
// OCTOPUS_API_KEY or from a file named by --api-key-file.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { PublishOptions } from './publish';
import { DEFAULT_SCHEDULES } from './runbooks';
import type { TemplateSyntax } from './templates';

export class UsageError extends Error {}

export const USAGE = `Usage: npm run publish -- --server <url> [options]

Publishes the octopus-dr step templates to an Octopus space and builds the DR project:
runbooks "Back up Octopus", "Test Octopus backups" and "Restore Octopus", with schedules.
Safe to run again: only what differs is changed.

  --server <url>                 Octopus Server URL (or OCTOPUS_URL)
  --space <name>                 Space name (or OCTOPUS_SPACE; default "Default")
  --api-key-file <file>          File holding the API key. Otherwise OCTOPUS_API_KEY is used.
                                 The key is never accepted as a command-line value.
  --project <name>               Project to create or update (default "Octopus DR")
  --project-group <name>         Project group for a new project (default "Default Project Group")
  --lifecycle <name>             Lifecycle for a new project (default "Default Lifecycle")
  --syntax powershell|bash       Template flavour for the workers (default powershell)
  --environment <name>           Environment the backup and test runbooks run in (repeatable;
                                 default: the space's only environment)
  --restore-environment <name>   Environment "Restore Octopus" runs in (repeatable; default: --environment)
  --backup-schedule <cron>|off   Daily backup trigger (default "${DEFAULT_SCHEDULES.backup.cron}")
  --test-schedule <cron>|off     Weekly backup test trigger (default "${DEFAULT_SCHEDULES.test.cron}")
  --timezone <id>                Time zone of the schedules (default UTC; e.g. "GMT Standard Time")
  --templates-dir <dir>          Built templates to publish (default build/templates/<syntax>)
  --dry-run                      Print the plan; change nothing
  --help                         This text

Cron expressions have 6 fields: second minute hour day-of-month month day-of-week.
`;

function cronOption(value: string | undefined, fallback: string, flag: string): { enabled: boolean; cron: string } {
  const text = (value ?? fallback).trim();
  if (text.toLowerCase() === 'off') return { enabled: false, cron: '' };
  const fields = text.split(/\s+/).filter((f) => f !== '');
  if (fields.length < 6 || fields.length > 7) {
    throw new UsageError(
      `${flag} "${text}" has ${fields.length} field(s); Octopus cron expressions have 6 (second minute hour day-of-month month day-of-week), ` +
        `e.g. "0 30 1 * * *" for 01:30 every day, or "off".`,
    );
  }
  return { enabled: true, cron: fields.join(' ') };
}

export function parsePublishOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  root: string,
): Omit<PublishOptions, 'log' | 'toolVersion'> | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        server: { type: 'string' },
        space: { type: 'string' },
        'api-key': { type: 'string' },
        'api-key-file': { type: 'string' },
        project: { type: 'string' },
        'project-group': { type: 'string' },
        lifecycle: { type: 'string' },
        syntax: { type: 'string' },
        environment: { type: 'string', multiple: true },
        'restore-environment': { type: 'string', multiple: true },
        'backup-schedule': { type: 'string' },
        'test-schedule': { type: 'string' },
        timezone: { type: 'string' },
        'templates-dir': { type: 'string' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message} Run with --help to see the options.`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v['api-key'] !== undefined) {
    throw new UsageError(
      'The API key is not accepted on the command line (shell history and the process list would show it). ' +
        'Set OCTOPUS_API_KEY, or put the key in a file readable only by you and pass --api-key-file <file>.',
    );
  }
  const serverUrl = v.server ?? env.OCTOPUS_URL;
  if (!serverUrl) throw new UsageError('Say which Octopus Server to publish to: --server https://octopus.example.com (or set OCTOPUS_URL).');

  let apiKey: string;
  let apiKeySource: string;
  if (v['api-key-file']) {
    try {
      apiKey = readFileSync(v['api-key-file'], 'utf8').trim();
    } catch (error) {
      throw new UsageError(`Cannot read --api-key-file ${v['api-key-file']} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
    apiKeySource = `the file ${v['api-key-file']} (--api-key-file)`;
    if (!apiKey) throw new UsageError(`--api-key-file ${v['api-key-file']} is empty; put the API key (API-...) in it.`);
  } else {
    apiKey = (env.OCTOPUS_API_KEY ?? '').trim();
    apiKeySource = 'the OCTOPUS_API_KEY environment variable';
    if (!apiKey) {
      throw new UsageError(
        'No API key: set OCTOPUS_API_KEY, or pass --api-key-file <file>. Create a key in Octopus under your profile > My API Keys; ' +
          'the user needs to manage step templates, projects, runbooks, variables and triggers in the space.',
      );
    }
  }

  const syntax = (v.syntax ?? 'powershell').toLowerCase();
  if (syntax !== 'powershell' && syntax !== 'bash') throw new UsageError(`--syntax must be powershell or bash, not "${v.syntax}".`);
  const timezone = (v.timezone ?? 'UTC').trim();
  if (!timezone) throw new UsageError('--timezone must not be empty (e.g. UTC, or a Windows time zone id such as "GMT Standard Time").');
  const projectName = (v.project ?? 'Octopus DR').trim();
  if (!projectName) throw new UsageError('--project must not be empty.');

  return {
    serverUrl,
    space: v.space ?? env.OCTOPUS_SPACE ?? 'Default',
    apiKey,
    apiKeySource,
    projectName,
    projectGroup: v['project-group'],
    lifecycle: v.lifecycle,
    syntax: syntax as TemplateSyntax,
    templatesDirectory: path.resolve(v['templates-dir'] ?? path.join(root, 'build', 'templates', syntax)),
    environments: (v.environment ?? []).map((e) => e.trim()).filter((e) => e !== ''),
    restoreEnvironments: (v['restore-environment'] ?? []).map((e) => e.trim()).filter((e) => e !== ''),
    schedules: {
      backup: cronOption(v['backup-schedule'], DEFAULT_SCHEDULES.backup.cron, '--backup-schedule'),
      test: cronOption(v['test-schedule'], DEFAULT_SCHEDULES.test.cron, '--test-schedule'),
    },
    timezone,
    dryRun: v['dry-run'] ?? false,
  };
}
