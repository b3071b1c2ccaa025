// The built Library-format templates (build/templates/<syntax>/*.json), and what of them the
// publisher sends and compares. Octopus keeps a new template version on every save, so a template
// is only PUT when its normalised content differs from what the server has.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export type TemplateSyntax = 'powershell' | 'bash';

export interface TemplateParameter {
  Id?: string;
  Name: string;
  Label?: string;
  HelpText?: string;
  DefaultValue?: unknown;
  DisplaySettings?: Record<string, string>;
}

/** A template as built (Library JSON), keyed by the step id its file is named after. */
export interface BuiltTemplate {
  stepId: string;
  file: string;
  Name: string;
  Description: string;
  ActionType: string;
  Properties: Record<string, string>;
  Parameters: TemplateParameter[];
  Packages: unknown[];
  GitDependencies: unknown[];
}

export class TemplatesNotBuiltError extends Error {}

export function loadBuiltTemplates(directory: string): Map<string, BuiltTemplate> {
  if (!existsSync(directory)) {
    throw new TemplatesNotBuiltError(`No built templates in ${directory}. Run \`npm run build\` first (or pass --templates-dir).`);
  }
  const templates = new Map<string, BuiltTemplate>();
  for (const file of readdirSync(directory).filter((f) => f.endsWith('.json')).sort()) {
    const full = path.join(directory, file);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(full, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${full} is not valid JSON (${(error as Error).message}). Rebuild with \`npm run build\`.`);
    }
    if (typeof json.Name !== 'string' || typeof json.ActionType !== 'string' || typeof json.Properties !== 'object') {
      throw new Error(`${full} is not a step template (no Name, ActionType or Properties). Rebuild with \`npm run build\`.`);
    }
    templates.set(file.replace(/\.json$/, ''), {
      stepId: file.replace(/\.json$/, ''),
      file: full,
      Name: json.Name,
      Description: typeof json.Description === 'string' ? json.Description : '',
      ActionType: json.ActionType,
      Properties: json.Properties as Record<string, string>,
      Parameters: Array.isArray(json.Parameters) ? (json.Parameters as TemplateParameter[]) : [],
      Packages: Array.isArray(json.Packages) ? json.Packages : [],
      GitDependencies: Array.isArray(json.GitDependencies) ? json.GitDependencies : [],
    });
  }
  if (templates.size === 0) throw new TemplatesNotBuiltError(`No templates (*.json) in ${directory}. Run \`npm run build\` first.`);
  return templates;
}

/** The body the server gets: Library-only fields (GUID Id, Version, $Meta, Category, LastModified*) stripped. */
export function templateBody(template: BuiltTemplate): Record<string, unknown> {
  return {
    Name: template.Name,
    Description: template.Description,
    ActionType: template.ActionType,
    Properties: template.Properties,
    Parameters: template.Parameters.map((p) => ({
      Id: p.Id,
      Name: p.Name,
      Label: p.Label ?? '',
      HelpText: p.HelpText ?? '',
      DefaultValue: p.DefaultValue ?? null,
      DisplaySettings: p.DisplaySettings ?? {},
    })),
    Packages: template.Packages,
    GitDependencies: template.GitDependencies,
  };
}

function isSensitive(parameter: TemplateParameter): boolean {
  return parameter.DisplaySettings?.['Octopus.ControlType'] === 'Sensitive';
}

/**
 * What decides whether a template needs an update: the fields octopus-dr owns. Ids, links, versions,
 * timestamps and sensitive defaults (which come back as `{HasValue}`) are ignored.
 */
export function normalisedTemplate(template: {
  Name?: unknown;
  Description?: unknown;
  Properties?: unknown;
  Parameters?: unknown;
  Packages?: unknown;
}): string {
  const parameters = (Array.isArray(template.Parameters) ? (template.Parameters as TemplateParameter[]) : []).map((p) => ({
    Name: p.Name,
    Label: p.Label ?? '',
    HelpText: p.HelpText ?? '',
    DefaultValue: isSensitive(p) ? null : (p.DefaultValue ?? null),
    DisplaySettings: sortKeys(p.DisplaySettings ?? {}),
  }));
  return JSON.stringify({
    Name: template.Name,
    Description: template.Description ?? '',
    Properties: sortKeys((template.Properties as Record<string, unknown>) ?? {}),
    Parameters: parameters,
    // octopus-dr templates carry no packages; the server decorates package entries, so count them only.
    Packages: Array.isArray(template.Packages) ? template.Packages.length : 0,
  });
}

export function sortKeys<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}
