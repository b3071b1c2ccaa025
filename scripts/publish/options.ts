// Command-line options of `npm run publish`, parsed by Node's util.parseArgs. The API key is
// never a flag value (shell history and the process list would show it): it comes from
// OCTOPUSDR_OCTOPUS_APIKEY or from a file named by --api-key-file. The server URL and the API key
// are the Set Maintenance Mode step's parameters, so they have its flags and environment variables;
// the publisher's earlier --server, OCTOPUS_URL and OCTOPUS_API_KEY still work, with a warning.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { commandLineProblem, secretFileUnreadable } from '../../steps/runtime/cli';
import { maintenanceMode } from '../../templates/maintenance-mode';
import { environmentNameOf } from '../../templates/model';
import type { PublishOptions } from './publish';
import { DEFAULT_SCHEDULES } from './runbooks';
import type { TemplateSyntax } from './templates';

export class UsageError extends Error {}

const { serverUrl: SERVER_URL, apiKey: API_KEY } = maintenanceMode.params;
/** The one spelling of each, shared with the steps. */
export const SERVER_URL_FLAG = SERVER_URL.flag;
export const SERVER_URL_VARIABLE = environmentNameOf(SERVER_URL.name);
export const API_KEY_FILE_FLAG = `${API_KEY.flag}-file`;
export const API_KEY_VARIABLE = environmentNameOf(API_KEY.name);
/** Earlier spellings, still accepted with a warning. */
export const DEPRECATED = { serverFlag: 'server', serverVariable: 'OCTOPUS_URL', apiKeyVariable: 'OCTOPUS_API_KEY' } as const;

export const USAGE = `Usage: npm run publish -- --${SERVER_URL_FLAG} <url> [options]

Publishes the octopus-dr step templates to an Octopus space and builds the DR project:
runbooks "Back up Octopus", "Test Octopus backups" and "Restore Octopus", with schedules.
Safe to run again: only what differs is changed.

  --${SERVER_URL_FLAG} <url>             ${SERVER_URL.label} (or ${SERVER_URL_VARIABLE})
  --space <name>                 Space name (or OCTOPUS_SPACE; default "Default")
  --${API_KEY_FILE_FLAG} <file>          File holding the API key. Otherwise ${API_KEY_VARIABLE} is used.
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
The earlier --${DEPRECATED.serverFlag}, ${DEPRECATED.serverVariable} and ${DEPRECATED.apiKeyVariable} still work, with a warning.
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
): (Omit<PublishOptions, 'log' | 'toolVersion'> & { warnings: string[] }) | 'help' {
  const options = {
    [SERVER_URL_FLAG]: { type: 'string' },
    [DEPRECATED.serverFlag]: { type: 'string' },
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
  } as const;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options });
  } catch (error) {
    // A stray value is named by its position, never quoted: it may be the API key typed without its flag.
    throw new UsageError(`${commandLineProblem(error as Error & { code?: string }, argv, options)} Run with --help to see the options.`);
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined> & typeof parsed.values;
  if (v.help) return 'help';
  if (v['api-key'] !== undefined) {
    throw new UsageError(
      'The API key is not accepted on the command line (shell history and the process list would show it). ' +
        `Set ${API_KEY_VARIABLE}, or put the key in a file readable only by you and pass --${API_KEY_FILE_FLAG} <file>.`,
    );
  }
  const warnings: string[] = [];
  const deprecated = (old: string, current: string) => warnings.push(`${old} is deprecated and will be removed: use ${current} instead.`);
  const serverFlag = v[SERVER_URL_FLAG] as string | undefined;
  const oldServerFlag = v[DEPRECATED.serverFlag] as string | undefined;
  if (serverFlag !== undefined && oldServerFlag !== undefined) {
    throw new UsageError(`The server is given twice (--${SERVER_URL_FLAG} and --${DEPRECATED.serverFlag}); use --${SERVER_URL_FLAG} only.`);
  }
  if (oldServerFlag !== undefined) deprecated(`--${DEPRECATED.serverFlag}`, `--${SERVER_URL_FLAG}`);
  let serverUrl = serverFlag ?? oldServerFlag ?? env[SERVER_URL_VARIABLE];
  if (!serverUrl && env[DEPRECATED.serverVariable]) {
    deprecated(DEPRECATED.serverVariable, SERVER_URL_VARIABLE);
    serverUrl = env[DEPRECATED.serverVariable];
  }
  if (!serverUrl) throw new UsageError(`Say which Octopus Server to publish to: --${SERVER_URL_FLAG} https://octopus.example.com (or set ${SERVER_URL_VARIABLE}).`);

  let apiKey: string;
  let apiKeySource: string;
  const apiKeyFile = v[API_KEY_FILE_FLAG] as string | undefined;
  if (apiKeyFile) {
    try {
      apiKey = readFileSync(apiKeyFile, 'utf8').trim();
    } catch (error) {
      const message = secretFileUnreadable(API_KEY_FILE_FLAG, error);
      throw new UsageError(message[0].toUpperCase() + message.slice(1));
    }
    apiKeySource = `the file ${apiKeyFile} (--${API_KEY_FILE_FLAG})`;
    if (!apiKey) throw new UsageError(`--${API_KEY_FILE_FLAG} ${apiKeyFile} is empty; put the API key (API-...) in it.`);
  } else {
    const variable = env[API_KEY_VARIABLE]?.trim() ? API_KEY_VARIABLE : env[DEPRECATED.apiKeyVariable]?.trim() ? DEPRECATED.apiKeyVariable : API_KEY_VARIABLE;
    if (variable === DEPRECATED.apiKeyVariable) deprecated(DEPRECATED.apiKeyVariable, API_KEY_VARIABLE);
    apiKey = (env[variable] ?? '').trim();
    apiKeySource = `the ${variable} environment variable`;
    if (!apiKey) {
      throw new UsageError(
        `No API key: set ${API_KEY_VARIABLE}, or pass --${API_KEY_FILE_FLAG} <file>. Create a key in Octopus under your profile > My API Keys; ` +
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
    warnings,
  };
}
