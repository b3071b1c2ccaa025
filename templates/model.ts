// The single definition of a step template and its parameters. From this one source the build
// derives the Library-format JSON, the runtime parses and validates values, the CLI builds its
// flags and the step pages (docs/steps/) get their parameter tables.

export type ParameterType = 'string' | 'bool' | 'integer' | 'enum' | 'path' | 'secret';

export type ControlType = 'SingleLineText' | 'MultiLineText' | 'Checkbox' | 'Select' | 'Sensitive';

export interface SelectOption {
  value: string;
  label: string;
}

/**
 * The form a text value must have, part of its definition so that every step checks it the same way,
 * before anything connects (exit 2), with one wording: `"<label>" must be <description>, e.g. <example>, not ...`.
 */
export interface ValueFormat {
  /** Completes "must be ...", e.g. `16 hexadecimal characters (the KeyId output variable of ...)`; no full stop. */
  description: string;
  /** A good value, quoted in the message and in the README. */
  example: string;
  /**
   * Undefined when the (trimmed, non-empty) value is good. Otherwise what is wrong with it: `true` to quote the
   * value, or a text that replaces the quote (e.g. when the value could hold a password).
   */
  check(value: string): true | string | undefined;
}

/** An earlier spelling of a parameter, still accepted (with a warning naming the current one) because scripts may use it. */
export interface ParameterAlias {
  /** An earlier command-line flag, without dashes. */
  flag: string;
}

export interface ParameterDefinition {
  /** Octopus variable name, always namespaced: `OctopusDr.<Area>.<Field>`. */
  name: string;
  label: string;
  /** Markdown shown under the field in Octopus, in `--help` and on the step's docs page. */
  helpText: string;
  type: ParameterType;
  required: boolean;
  /** Template default; Octopus substitutes `#{...}` in it. `null` means no default. */
  defaultValue: string | null;
  /** Long CLI flag without dashes, kebab-case (e.g. `connection-string`). */
  flag: string;
  /** Multi-line text: one value per line; the runtime yields a list of non-empty trimmed lines. */
  multiLine?: boolean;
  /** For `enum`: the allowed values and their labels. */
  options?: readonly SelectOption[];
  /** Read by the generated runner script only (e.g. where node is); not a command-line flag. */
  runnerOnly?: boolean;
  /** For `integer`: inclusive bounds. */
  min?: number;
  max?: number;
  /** For `string`: the form the value must have (each line, when `multiLine`). */
  format?: ValueFormat;
  /** Earlier flags still accepted, with a deprecation warning. */
  aliases?: readonly ParameterAlias[];
}

export interface ExitCode {
  code: number;
  meaning: string;
}

export interface StepTemplateDefinition {
  /** Folder under `steps/` and file name under `build/`, e.g. `check-worker`. */
  stepId: string;
  /** "Octopus DR - Verb Noun". The Bash variant appends " (Bash)". */
  name: string;
  /** Markdown. */
  description: string;
  /** Stable GUID of the PowerShell variant. Never change it: Octopus and the Library key on it. */
  id: string;
  /** Stable GUID of the Bash variant. */
  bashId: string;
  /** Bump on every change of content, or Octopus will not offer the update. */
  version: number;
  /** ISO date of the last change, used for `$Meta.ExportedAt` so builds stay reproducible. */
  lastModified: string;
  category: 'octopus';
  parameters: readonly ParameterDefinition[];
  /** Exit codes beyond 0 (success) and 1 (failed). */
  exitCodes?: readonly ExitCode[];
  /** Node.js major version the step needs, when above the runners' floor (its dependencies need more). */
  minimumNodeMajor?: number;
}

export function controlTypeOf(parameter: ParameterDefinition): ControlType {
  switch (parameter.type) {
    case 'secret':
      return 'Sensitive';
    case 'bool':
      return 'Checkbox';
    case 'enum':
      return 'Select';
    default:
      return parameter.multiLine ? 'MultiLineText' : 'SingleLineText';
  }
}

/** The environment variable a runner uses to hand a parameter to node (never argv). */
export function environmentNameOf(parameterName: string): string {
  return 'OCTOPUSDR_' + parameterName.replace(/^OctopusDr\./, '').replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();
}

/** Typed value a parameter yields at run time. */
export type ParameterValue<P extends ParameterDefinition> = P['type'] extends 'bool'
  ? boolean
  : P['type'] extends 'integer'
    ? P['required'] extends true
      ? number
      : P['defaultValue'] extends `${number}`
        ? number
        : number | undefined
    : P['multiLine'] extends true
      ? string[]
      : string;

export type ParameterValues<Ps extends Record<string, ParameterDefinition>> = {
  [K in keyof Ps]: ParameterValue<Ps[K]>;
};

/** A template whose parameters are keyed by the property name the step's code uses. */
export interface StepTemplate<Ps extends Record<string, ParameterDefinition> = Record<string, ParameterDefinition>>
  extends StepTemplateDefinition {
  params: Ps;
}

export function defineParameter<const P extends ParameterDefinition>(parameter: P): P {
  return parameter;
}

export function defineTemplate<const Ps extends Record<string, ParameterDefinition>>(
  template: Omit<StepTemplateDefinition, 'parameters'> & { params: Ps },
): StepTemplate<Ps> {
  return { ...template, parameters: Object.values(template.params) };
}
