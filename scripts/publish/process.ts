// Runbook processes composed from templates: each step's action carries the template's properties,
// its id and version, and the parameter values (terraform's templated step and the OctopusDeploy-Api
// scripts do the same). Processes are compared in a normalised form so an unchanged process is never PUT.
import type { ProcessAction, ProcessStep } from './octopus';
import type { RunbookSpec, StepSpec } from './runbooks';
import { sortKeys, type BuiltTemplate } from './templates';

/** A template as it is (or will be) on the server. */
export interface PublishedTemplate {
  built: BuiltTemplate;
  id: string;
  version: number;
}

export interface Composition {
  steps: ProcessStep[];
  warnings: string[];
}

/** Why a runbook cannot be composed yet, or undefined when it can. */
export function missingForRunbook(spec: RunbookSpec, templates: ReadonlyMap<string, BuiltTemplate>): string[] {
  const problems: string[] = [];
  for (const step of spec.steps) {
    const template = templates.get(step.stepId);
    if (!template) {
      problems.push(`template ${step.stepId} is not built yet`);
      continue;
    }
    const names = new Set(template.Parameters.map((p) => p.Name));
    for (const name of Object.keys(step.values ?? {})) {
      if (!names.has(name)) problems.push(`template ${step.stepId} has no parameter ${name} (step "${step.name}")`);
    }
  }
  return [...new Set(problems)];
}

function isSensitive(parameter: { DisplaySettings?: Record<string, string> }): boolean {
  return parameter.DisplaySettings?.['Octopus.ControlType'] === 'Sensitive';
}

export function composeAction(step: StepSpec, template: PublishedTemplate): { action: ProcessAction; warnings: string[] } {
  const warnings: string[] = [];
  const properties: Record<string, string> = { ...template.built.Properties };
  const fromVariables = new Set(step.fromProjectVariables ?? []);
  const parameterNames = new Set(template.built.Parameters.map((p) => p.Name));
  for (const name of fromVariables) {
    if (!parameterNames.has(name)) warnings.push(`step "${step.name}": template ${template.built.stepId} has no parameter ${name}; the project variable is not used by it`);
  }
  for (const parameter of template.built.Parameters) {
    const value = step.values?.[parameter.Name];
    if (value !== undefined) properties[parameter.Name] = value;
    else if (fromVariables.has(parameter.Name)) continue;
    // Like the Octopus UI and terraform: a non-empty, non-sensitive default is copied onto the step.
    else if (!isSensitive(parameter) && typeof parameter.DefaultValue === 'string' && parameter.DefaultValue !== '') properties[parameter.Name] = parameter.DefaultValue;
  }
  properties['Octopus.Action.Template.Id'] = template.id;
  properties['Octopus.Action.Template.Version'] = String(template.version);
  return {
    action: {
      Name: step.name,
      ActionType: template.built.ActionType,
      IsDisabled: false,
      IsRequired: step.condition === 'Always',
      Environments: [],
      ExcludedEnvironments: [],
      Channels: [],
      TenantTags: [],
      Packages: [],
      Properties: properties,
    },
    warnings,
  };
}

export function composeSteps(spec: RunbookSpec, templates: ReadonlyMap<string, PublishedTemplate>): Composition {
  const warnings: string[] = [];
  const steps = spec.steps.map((step): ProcessStep => {
    const template = templates.get(step.stepId);
    if (!template) throw new Error(`Template ${step.stepId} is not available`);
    const composed = composeAction(step, template);
    warnings.push(...composed.warnings);
    return {
      Name: step.name,
      Condition: step.condition ?? 'Success',
      StartTrigger: 'StartAfterPrevious',
      PackageRequirement: 'LetOctopusDecide',
      Properties: step.condition === 'Variable' ? { 'Octopus.Step.ConditionVariableExpression': step.conditionExpression ?? '' } : {},
      Actions: [composed.action],
    };
  });
  return { steps, warnings };
}

/** Fields a user may set on our steps (worker pool, container image) and that we keep. */
const USER_OWNED_ACTION_FIELDS = ['WorkerPoolId', 'WorkerPoolVariable', 'Container'] as const;

function normaliseAction(action: ProcessAction): object {
  return {
    Name: action.Name,
    ActionType: action.ActionType,
    IsDisabled: action.IsDisabled ?? false,
    IsRequired: action.IsRequired ?? false,
    Environments: [...(action.Environments ?? [])].sort(),
    ExcludedEnvironments: [...(action.ExcludedEnvironments ?? [])].sort(),
    Channels: [...(action.Channels ?? [])].sort(),
    TenantTags: [...(action.TenantTags ?? [])].sort(),
    Packages: (action.Packages ?? []).length,
    Properties: sortKeys(action.Properties ?? {}),
  };
}

export function normaliseSteps(steps: readonly ProcessStep[]): string {
  return JSON.stringify(
    steps.map((step) => ({
      Name: step.Name,
      Condition: step.Condition ?? 'Success',
      StartTrigger: step.StartTrigger ?? 'StartAfterPrevious',
      PackageRequirement: step.PackageRequirement ?? 'LetOctopusDecide',
      Properties: sortKeys(step.Properties ?? {}),
      Actions: step.Actions.map(normaliseAction),
    })),
  );
}

/** A short description of what differs, for the plan. */
export function describeStepChanges(existing: readonly ProcessStep[], desired: readonly ProcessStep[]): string {
  if (existing.length === 0) return `${desired.length} step(s) added`;
  const existingByName = new Map(existing.map((s) => [s.Name, s]));
  const changes: string[] = [];
  for (const step of desired) {
    const old = existingByName.get(step.Name);
    if (!old) changes.push(`"${step.Name}" added`);
    else if (normaliseSteps([old]) !== normaliseSteps([step])) {
      const oldVersion = old.Actions[0]?.Properties?.['Octopus.Action.Template.Version'];
      const newVersion = step.Actions[0]?.Properties?.['Octopus.Action.Template.Version'];
      changes.push(oldVersion !== newVersion ? `"${step.Name}" to template version ${String(newVersion)}` : `"${step.Name}" changed`);
    }
  }
  for (const step of existing) if (!desired.some((d) => d.Name === step.Name)) changes.push(`"${step.Name}" removed`);
  if (changes.length === 0) changes.push('steps reordered');
  return changes.join(', ');
}

/** The desired steps, keeping the ids of existing steps and actions of the same name and the user's worker choices. */
export function mergeWithExisting(existing: readonly ProcessStep[], desired: readonly ProcessStep[]): ProcessStep[] {
  const existingByName = new Map(existing.map((s) => [s.Name, s]));
  return desired.map((step) => {
    const old = existingByName.get(step.Name);
    if (!old) return step;
    return {
      ...step,
      Id: old.Id,
      Actions: step.Actions.map((action) => {
        const oldAction = old.Actions.find((a) => a.Name === action.Name);
        if (!oldAction) return action;
        const kept: Record<string, unknown> = {};
        for (const field of USER_OWNED_ACTION_FIELDS) if (oldAction[field] !== undefined) kept[field] = oldAction[field];
        return { ...action, ...kept, Id: oldAction.Id };
      }),
    };
  });
}
