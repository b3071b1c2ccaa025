// Secrets arrive through secret parameters; a person in a hurry also pastes them into the wrong
// field (the master key into "Expected key ID", a password into a path). Such a value is refused
// without being shown, before anything is printed or connects. Connection strings count by their
// parts: the password, client secret or token inside, each of which is also masked on its own.
import type { ParameterDefinition, StepTemplateDefinition } from '../../templates/model';
import { sqlConnectionString } from '../../templates/parameters';
import { parseSqlConnectionString, sensitiveValuesOf, SqlConnectionStringError } from '../engines/sql/connection-string';
import type { RawParameters } from './parameters';
import { howToSet } from './parameters';

/**
 * How many characters a value may share with a secret before it counts as carrying part of it.
 * 8 characters of a random key or password are a real leak; fewer would refuse ordinary names
 * that happen to be a word inside a password ("Octopus" in "Octopus!2024"). A secret shorter
 * than this counts only when the value contains all of it.
 */
export const SECRET_FRAGMENT_LENGTH = 8;

export interface KnownSecret {
  parameter: ParameterDefinition;
  /** The whole value (a value that contains it is refused). */
  whole: string;
  /** The secret pieces (a value sharing a run of SECRET_FRAGMENT_LENGTH characters with one is refused). */
  parts: string[];
}

function isConnectionString(parameter: ParameterDefinition): boolean {
  return parameter.name === sqlConnectionString.name;
}

/**
 * Other connection strings (an Azure storage connection string: `AccountName=...;AccountKey=...;
 * BlobEndpoint=...`) also name public things the URL parameter repeats; only their key, password,
 * secret, token and signature values are secret. Anything else is secret whole.
 */
function secretPartsOf(value: string): string[] {
  const pairs = value.split(';').map((p) => p.trim()).filter(Boolean);
  const looksLikeConnectionString = pairs.length > 1 && pairs.every((p) => /^[A-Za-z][\w ]*=/.test(p));
  if (!looksLikeConnectionString) return [value];
  const secret = pairs
    .map((p) => ({ key: p.slice(0, p.indexOf('=')), value: p.slice(p.indexOf('=') + 1) }))
    .filter((p) => /key|password|pwd|secret|token|signature/i.test(p.key) && p.value.length > 0)
    .map((p) => p.value);
  return secret.length > 0 ? secret : [value];
}

/** The secrets among the raw values, with their parts. */
export function knownSecrets(parameters: readonly ParameterDefinition[], raw: RawParameters): KnownSecret[] {
  const secrets: KnownSecret[] = [];
  for (const parameter of parameters) {
    const value = raw[parameter.name];
    if (parameter.type !== 'secret' || !value || !value.trim()) continue;
    const parts = isConnectionString(parameter) ? sensitiveValuesOf(value) : secretPartsOf(value.trim());
    secrets.push({ parameter, whole: value.trim(), parts: parts.filter((p) => p.length >= 4) });
  }
  return secrets;
}

/** Length of the longest run of characters the two texts share, ignoring letter case. */
export function longestSharedRun(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let best = 0;
  let previous = new Array<number>(y.length + 1).fill(0);
  for (let i = 1; i <= x.length; i++) {
    const current = new Array<number>(y.length + 1).fill(0);
    for (let j = 1; j <= y.length; j++) {
      if (x[i - 1] === y[j - 1]) {
        current[j] = previous[j - 1] + 1;
        if (current[j] > best) best = current[j];
      }
    }
    previous = current;
  }
  return best;
}

function carries(value: string, secret: KnownSecret): boolean {
  if (secret.whole.length >= 4 && value.toLowerCase().includes(secret.whole.toLowerCase())) return true;
  return secret.parts.some((part) => longestSharedRun(value, part) >= Math.min(part.length, SECRET_FRAGMENT_LENGTH));
}

/** One problem per non-secret parameter whose value carries a secret, none of which quotes it. */
export function secretsInValues(template: StepTemplateDefinition, raw: RawParameters, secrets = knownSecrets(template.parameters, raw)): string[] {
  const problems: string[] = [];
  if (secrets.length === 0) return problems;
  for (const parameter of template.parameters) {
    const value = raw[parameter.name];
    if (parameter.type === 'secret' || !value || value.trim().length < 4) continue;
    const source = secrets.find((s) => carries(value, s));
    if (!source) continue;
    const what = isConnectionString(source.parameter)
      ? `the password or another secret of "${source.parameter.label}"`
      : `the secret "${source.parameter.label}"`;
    problems.push(
      `"${parameter.label}" contains ${what}, or a part of it, so its value is refused and not shown. ` +
        `Give "${parameter.label}" the value it asks for (secrets belong only in secret parameters): ${howToSet(parameter)}.`,
    );
  }
  return problems;
}

/** A connection string that cannot be used is bad input: exit 2, by label, before anything connects. */
export function connectionStringProblems(template: StepTemplateDefinition, raw: RawParameters): string[] {
  const problems: string[] = [];
  for (const parameter of template.parameters) {
    const value = raw[parameter.name];
    if (!isConnectionString(parameter) || !value || !value.trim()) continue;
    try {
      parseSqlConnectionString(value);
    } catch (error) {
      if (!(error instanceof SqlConnectionStringError)) throw error;
      problems.push(`"${parameter.label}" cannot be used: ${error.message} (${howToSet(parameter)}.)`);
    }
  }
  return problems;
}
