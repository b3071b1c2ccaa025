// Command-line form of a step: `node build/steps/<step>.js --flag value` or
// `--OctopusDr.Area.Field value`. Arguments are parsed by Node's own util.parseArgs.
// Secrets are never taken from argv (the process list and shell history would show them):
// they come from an environment variable or a file.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ParameterDefinition, StepTemplateDefinition } from '../../templates/model';
import { environmentNameOf } from '../../templates/model';
import { EXIT_CODES, ParameterError } from './errors';
import { isUnsubstituted, type RawParameters } from './parameters';

export interface CliInvocation {
  help: boolean;
  version: boolean;
  serviceMessages: boolean;
  verbose: boolean;
  raw: RawParameters;
  /** Deprecation notes for earlier flags that were used: the step logs them as warnings. */
  warnings: string[];
}

type OptionSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

const GENERAL_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  'service-messages': { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
};

function optionsFor(parameters: readonly ParameterDefinition[]): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = { ...GENERAL_OPTIONS };
  for (const p of parameters) {
    if (p.runnerOnly) continue;
    const multiple = p.multiLine === true;
    options[p.name] = { type: 'string', multiple };
    if (p.type === 'bool') {
      options[p.flag] = { type: 'boolean' };
      options[`no-${p.flag}`] = { type: 'boolean' };
    } else {
      options[p.flag] = { type: 'string', multiple };
    }
    if (p.type === 'secret') options[`${p.flag}-file`] = { type: 'string' };
    for (const alias of p.aliases ?? []) options[alias.flag] = { ...options[p.flag] };
  }
  return options;
}

/** The deprecation note for an earlier flag: names the flag to use instead. */
export function deprecatedFlagWarning(parameter: ParameterDefinition, oldFlag: string): string {
  return `--${oldFlag} is deprecated and will be removed: use --${parameter.flag} ("${parameter.label}") instead.`;
}

function readSecretFile(parameter: ParameterDefinition, file: string): string {
  try {
    // A trailing newline from `echo ... > file` is not part of the secret.
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ParameterError([`"${parameter.label}": ${secretFileUnreadable(`${parameter.flag}-file`, error)}`]);
  }
}

/**
 * Why a `--<flag>-file` option's file could not be read, without its value: the usual slip is the
 * secret itself given as the file name (`--master-key-file "$KEY"`), and this message is printed
 * before any masking exists.
 */
export function secretFileUnreadable(flag: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : 'it cannot be read';
  return (
    `cannot read the file given to --${flag} (${code}: ${why}). The value is not shown: it may be the secret itself. ` +
    `Give the path of a file that holds the secret, or set the secret's environment variable instead.`
  );
}

/** `--stripes -1` means the value -1 (parseArgs would call it ambiguous): it becomes `--stripes=-1`,
 * so the parameter's own check names it and its range. */
function joinNegativeNumbers(argv: readonly string[], options: Record<string, OptionSpec>): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = /^--([^=]+)$/.exec(argv[i])?.[1];
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${argv[i]}=${next}`);
      i++;
    } else args.push(argv[i]);
  }
  return args;
}

/**
 * Node's parseArgs message, except that a stray value is named by its position, never quoted: it may
 * be a password typed after a secret's flag (which takes no value) or after a mistyped one.
 */
export function commandLineProblem(error: Error & { code?: string }, argv: readonly string[], options: Record<string, OptionSpec>): string {
  if (error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const number = strayArgumentNumber(argv, options);
    const where = number === undefined ? 'An argument' : `Argument ${number}`;
    return `${where} has no --flag before it (not repeated here, in case it is a secret); each value follows its flag, as --flag value or --flag=value.`;
  }
  return `${error.message.replace(/\.$/, '')}.`;
}

/**
 * Which argument (from 1) is the first value without a flag, as Node's parser sees it: matching the
 * text would name an earlier flag's value that happens to be the same (`--directories /a /a`).
 * (Node before 18.7 gives no tokens: then no number.)
 */
function strayArgumentNumber(argv: readonly string[], options: Record<string, OptionSpec>): number | undefined {
  try {
    const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
    const stray = tokens?.find((token) => token.kind === 'positional');
    return stray === undefined ? undefined : stray.index + 1;
  } catch {
    return undefined;
  }
}

export function parseCommandLine(
  template: StepTemplateDefinition,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): CliInvocation {
  let parsed: ReturnType<typeof parseArgs>;
  const options = optionsFor(template.parameters);
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(argv, options), options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ParameterError([`${commandLineProblem(error as Error & { code?: string }, argv, options)} Run with --help to see the parameters.`]);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const raw: RawParameters = {};
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const p of template.parameters) {
    if (p.runnerOnly) continue;
    const fromEnv = env[environmentNameOf(p.name)];
    if (fromEnv !== undefined) raw[p.name] = fromEnv;
    const byName = values[p.name];
    const alias = (p.aliases ?? []).find((a) => values[a.flag] !== undefined);
    if (alias && values[p.flag] !== undefined) {
      problems.push(`"${p.label}" is given twice (--${p.flag} and --${alias.flag}); use --${p.flag} only.`);
      continue;
    }
    if (alias) warnings.push(deprecatedFlagWarning(p, alias.flag));
    const byFlag = values[p.flag] ?? (alias ? values[alias.flag] : undefined);
    if (p.type === 'secret') {
      if (byName !== undefined || byFlag !== undefined) {
        problems.push(
          `"${p.label}" is a secret and is not accepted as a command-line value (the process list and shell history would show it). ` +
            `Set the environment variable ${environmentNameOf(p.name)}, or use --${p.flag}-file <file>.`,
        );
      }
      const file = values[`${p.flag}-file`];
      if (typeof file === 'string') raw[p.name] = readSecretFile(p, file);
      continue;
    }
    if (p.type === 'bool') {
      if (byFlag === true) raw[p.name] = 'True';
      if (values[`no-${p.flag}`] === true) raw[p.name] = 'False';
      if (typeof byName === 'string') raw[p.name] = byName;
      continue;
    }
    if (byFlag !== undefined && byName !== undefined) {
      problems.push(`"${p.label}" is given twice (--${p.flag} and --${p.name}); use one of them.`);
      continue;
    }
    const given = byFlag ?? byName;
    if (Array.isArray(given)) raw[p.name] = given.join('\n');
    else if (typeof given === 'string') raw[p.name] = given;
  }
  if (problems.length > 0) throw new ParameterError(problems);
  return {
    help: values.help === true,
    version: values.version === true,
    serviceMessages: values['service-messages'] === true,
    verbose: values.verbose === true,
    raw,
    warnings,
  };
}

function wrap(text: string, indent: number, width = 100): string {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width - indent) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l) => ' '.repeat(indent) + l).join('\n');
}

function usageOf(p: ParameterDefinition): string {
  if (p.type === 'bool') return `--${p.flag} | --no-${p.flag}`;
  if (p.type === 'secret') return `--${p.flag}-file <file>  (or env ${environmentNameOf(p.name)})`;
  const placeholder = p.type === 'enum' ? (p.options ?? []).map((o) => o.value).join('|') : p.type === 'path' ? 'path' : 'value';
  return `--${p.flag} <${placeholder}>${p.multiLine ? ' (repeatable)' : ''}`;
}

export function helpText(template: StepTemplateDefinition, program: string, exitCodes = template.exitCodes ?? []): string {
  const out: string[] = [];
  out.push(`${template.name}`, '');
  out.push(wrap(template.description.split('\n\n')[0], 0), '');
  out.push(`Usage: ${program} [options]`, '', 'Parameters:');
  for (const p of template.parameters.filter((parameter) => !parameter.runnerOnly)) {
    // An Octopus variable as default (e.g. #{Octopus.Web.ServerUri}) applies only under Octopus.
    // A list's default (one value per line in the template) reads as a list on one line.
    const shownDefault = p.multiLine && p.defaultValue ? p.defaultValue.split(/\r?\n/).filter(Boolean).join(', ') : p.defaultValue;
    const defaultFact = !shownDefault ? null : isUnsubstituted(shownDefault) ? `default under Octopus: ${shownDefault}` : `default: ${shownDefault}`;
    const formerly = (p.aliases ?? []).map((a) => `--${a.flag} is deprecated`);
    const facts = [p.name, p.required ? 'required' : null, defaultFact, ...formerly]
      .filter(Boolean)
      .join('; ');
    out.push(`  ${usageOf(p)}`, `      ${p.label} (${facts})`, wrap(p.helpText.replace(/`/g, ''), 6), '');
  }
  const example = template.parameters.find((parameter) => !parameter.runnerOnly && parameter.type !== 'secret');
  out.push(
    wrap(
      'Every parameter can also be given by its full name (e.g. --OctopusDr.Area.Field value) or by an environment variable ' +
        `named like the full name in capitals with underscores${example ? ` (e.g. ${environmentNameOf(example.name)} for ${example.name})` : ''}.`,
      0,
    ),
  );
  out.push('', 'Options:');
  out.push('  --service-messages  write Octopus service messages (as under an Octopus runner)');
  out.push('  --verbose, -v       show verbose lines');
  out.push('  --version           print the octopus-dr version');
  out.push('  --help, -h          show this help', '');
  out.push('Exit codes:');
  const codes = [...EXIT_CODES.filter((c) => c.code < 2), ...exitCodes, ...EXIT_CODES.filter((c) => c.code >= 2)];
  for (const c of codes) out.push(`  ${String(c.code).padEnd(4)}${c.meaning}`);
  return out.join('\n') + '\n';
}
