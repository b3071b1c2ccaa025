// Turns the raw strings Octopus (or the CLI) hands us into typed values, and reports every bad
// value at once, by label, with the fix. Octopus delivers every value as a string; checkboxes
// arrive as "True"/"False".
import type { ParameterDefinition, ParameterValues, StepTemplate } from '../../templates/model';
import { environmentNameOf } from '../../templates/model';
import { ParameterError } from './errors';

export type RawParameters = Record<string, string | undefined>;

/** Where a value can be set, for error messages: the Octopus name and the CLI flag. */
export function howToSet(parameter: ParameterDefinition): string {
  const cli =
    parameter.type === 'secret'
      ? `environment variable ${environmentNameOf(parameter.name)} or --${parameter.flag}-file`
      : `--${parameter.flag}`;
  return `set "${parameter.label}" (${parameter.name}) in the step, or ${cli} on the command line`;
}

export function isUnsubstituted(value: string): boolean {
  // A default such as `#{Octopus.Web.ServerUri}` means nothing outside Octopus.
  return /^#\{[^}]*\}$/.test(value.trim());
}

function stripMatchingQuotes(value: string): string {
  const match = /^"(.*)"$/s.exec(value) ?? /^'(.*)'$/s.exec(value);
  return match ? match[1] : value;
}

/**
 * A refused value, for an error message: quoted when short and plain, otherwise described. A long
 * run of letters and digits may be a key or password pasted into the wrong field, one this step
 * does not know as a secret (the master key in the backup step's "Master key ID").
 */
export function quoteValue(text: string): string {
  // A URL's user part (user:password@) or query (?sig=...) may hold a password or token too.
  const looksLikeCredential = text.length > 40 || /[A-Za-z0-9+/_-]{16,}/.test(text) || /^API-/i.test(text) || /:\/\/[^/]*@|\?/.test(text);
  return looksLikeCredential ? `the value given (not shown: it could be a key or password)` : `"${text}"`;
}

/**
 * A refused path, for an error message: quoted, unless it is a URL that may carry a token or
 * password (`user:password@`, or a query such as a SAS's `?...&sig=`), given where a path belongs.
 */
export function quotePath(text: string): string {
  return /:\/\/[^/]*@|\?|[&;]sig=|^[^/\\]*@/i.test(text) ? 'the value given (not shown: it looks like a URL that could hold a token or password)' : `"${text}"`;
}

type Parsed = { value: unknown } | { problem: string };

/**
 * The problem with a formatted value (the definition's `format`), in the one wording every step uses;
 * undefined when it is good or empty. Exported for checks of values that do not come from parseParameters.
 */
export function formatProblem(parameter: ParameterDefinition, value: string): string | undefined {
  const text = value.trim();
  if (!parameter.format || text === '') return undefined;
  const { description, example, check } = parameter.format;
  const wrong = check(text);
  if (wrong === undefined) return undefined;
  const given = wrong === true ? quoteValue(text) : wrong;
  return `"${parameter.label}" must be ${description.replace(/\*/g, '')}, e.g. ${example}, not ${given}: ${howToSet(parameter)}.`;
}

export function parseParameter(parameter: ParameterDefinition, raw: string | undefined): Parsed {
  let text = raw ?? '';
  if (parameter.type !== 'secret') text = text.trim();
  if (text === '' || isUnsubstituted(text)) {
    const fallback = parameter.defaultValue ?? '';
    text = isUnsubstituted(fallback) ? '' : parameter.type === 'secret' ? fallback : fallback.trim();
  }
  const label = `"${parameter.label}"`;
  if (parameter.multiLine) {
    const lines = text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '');
    if (parameter.required && lines.length === 0) return { problem: `${label} is required: ${howToSet(parameter)}.` };
    const badLine = lines.map((line) => formatProblem(parameter, line)).find((problem) => problem !== undefined);
    if (badLine) return { problem: badLine };
    return { value: parameter.type === 'path' ? lines.map(stripMatchingQuotes) : lines };
  }
  if (text === '') {
    if (parameter.required) return { problem: `${label} is required: ${howToSet(parameter)}.` };
    if (parameter.type === 'bool') return { value: false };
    if (parameter.type === 'integer') return { value: undefined };
    return { value: '' };
  }
  switch (parameter.type) {
    case 'bool': {
      const lowered = text.toLowerCase();
      if (lowered === 'true') return { value: true };
      if (lowered === 'false') return { value: false };
      return { problem: `${label} must be True or False, not ${quoteValue(text)}: ${howToSet(parameter)}.` };
    }
    case 'integer': {
      if (!/^[+-]?\d+$/.test(text)) return { problem: `${label} must be a whole number, not ${quoteValue(text)}: ${howToSet(parameter)}.` };
      const value = Number(text);
      const { min, max } = parameter;
      if ((min !== undefined && value < min) || (max !== undefined && value > max) || !Number.isSafeInteger(value)) {
        const range =
          min !== undefined && max !== undefined ? `from ${min} to ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;
        return { problem: `${label} must be ${range}, not ${text}: ${howToSet(parameter)}.` };
      }
      return { value };
    }
    case 'enum': {
      const options = parameter.options ?? [];
      const option = options.find((o) => o.value.toLowerCase() === text.toLowerCase());
      if (!option) {
        return {
          problem: `${label} must be one of ${options.map((o) => o.value).join(', ')}, not ${quoteValue(text)}: ${howToSet(parameter)}.`,
        };
      }
      return { value: option.value };
    }
    case 'path': {
      const path = stripMatchingQuotes(text);
      if (path.includes('\0')) return { problem: `${label} contains a NUL character; give a plain path.` };
      return { value: path };
    }
    case 'secret':
      // Never echo a secret, not even in an error.
      return { value: text };
    default: {
      const problem = formatProblem(parameter, text);
      return problem ? { problem } : { value: text };
    }
  }
}

/** Parses all of a template's parameters, throwing one ParameterError that lists every problem. */
export function parseParameters<Ps extends Record<string, ParameterDefinition>>(
  template: StepTemplate<Ps>,
  raw: RawParameters,
): ParameterValues<Ps> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, parameter] of Object.entries(template.params)) {
    const parsed = parseParameter(parameter, raw[parameter.name]);
    if ('problem' in parsed) problems.push(parsed.problem);
    else values[key] = parsed.value;
  }
  if (problems.length > 0) throw new ParameterError(problems);
  return values as ParameterValues<Ps>;
}

/** Reads raw values from the environment variables a runner sets, then removes them so that
 * child processes (sqlcmd, tar, ...) never inherit secrets. */
export function takeParametersFromEnvironment(
  parameters: readonly ParameterDefinition[],
  env: NodeJS.ProcessEnv = process.env,
): RawParameters {
  const raw: RawParameters = {};
  for (const parameter of parameters) {
    const name = environmentNameOf(parameter.name);
    if (env[name] !== undefined) {
      raw[parameter.name] = env[name];
      delete env[name];
    }
  }
  return raw;
}
