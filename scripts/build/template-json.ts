// Library-format step-template JSON: the fields and their order as Octopus exports them, every
// property value a string, 2-space indentation, UTF-8 without BOM.
import type { ParameterDefinition, StepTemplateDefinition } from '../../templates/model';
import { controlTypeOf } from '../../templates/model';
import { uuidV5 } from './uuid';

export type Syntax = 'PowerShell' | 'Bash';

export const LAST_MODIFIED_BY = 'octopus-dr';
export const OCTOPUS_VERSION = '2026.1.0';

function displaySettings(parameter: ParameterDefinition): Record<string, string> {
  const settings: Record<string, string> = { 'Octopus.ControlType': controlTypeOf(parameter) };
  if (parameter.type === 'enum') {
    settings['Octopus.SelectOptions'] = (parameter.options ?? []).map((o) => `${o.value}|${o.label}`).join('\n');
  }
  return settings;
}

export function templateId(template: StepTemplateDefinition, syntax: Syntax): string {
  return syntax === 'Bash' ? template.bashId : template.id;
}

export function templateName(template: StepTemplateDefinition, syntax: Syntax): string {
  return syntax === 'Bash' ? `${template.name} (Bash)` : template.name;
}

export function buildTemplateJson(template: StepTemplateDefinition, syntax: Syntax, scriptBody: string): object {
  const id = templateId(template, syntax);
  return {
    Id: id,
    Name: templateName(template, syntax),
    Description: template.description,
    ActionType: 'Octopus.Script',
    Version: template.version,
    CommunityActionTemplateId: null,
    Packages: [],
    GitDependencies: [],
    Properties: {
      'Octopus.Action.Script.ScriptSource': 'Inline',
      'Octopus.Action.Script.Syntax': syntax,
      'Octopus.Action.Script.ScriptBody': scriptBody,
      'Octopus.Action.RunOnServer': 'true',
    },
    Parameters: template.parameters.map((parameter) => ({
      // Stable: derived from the template's Id and the parameter's name.
      Id: uuidV5(id, parameter.name),
      Name: parameter.name,
      Label: parameter.label,
      HelpText: parameter.helpText,
      DefaultValue: parameter.defaultValue,
      DisplaySettings: displaySettings(parameter),
    })),
    StepPackageId: 'Octopus.Script',
    LastModifiedBy: LAST_MODIFIED_BY,
    $Meta: {
      ExportedAt: template.lastModified,
      OctopusVersion: OCTOPUS_VERSION,
      Type: 'ActionTemplate',
    },
    Category: template.category,
  };
}

export function serializeTemplate(json: object): string {
  return JSON.stringify(json, null, 2) + '\n';
}
