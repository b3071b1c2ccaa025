// Step (action) templates, their versions, usage and the update of the actions that use them.
import { randomUUID } from 'node:crypto';
import { collection, notFound, route, validationError, type Route } from '../http';
import { clone, nextId, now, type Json, type SpaceState } from '../store';
import { SPACE, isBlank, bodyOf, created, type RouteContext } from './shared';

export function actionTemplateRoutes({ state, spaceOf, find }: RouteContext): Route[] {
  const presentTemplate = (template: Json): Json => {
    const copy = clone(template);
    // Sensitive defaults are write-only, like every sensitive value.
    for (const parameter of copy.Parameters ?? []) {
      if (parameter.DisplaySettings?.['Octopus.ControlType'] === 'Sensitive' && parameter.DefaultValue !== null) {
        const hasValue = typeof parameter.DefaultValue === 'string' ? parameter.DefaultValue !== '' : Boolean(parameter.DefaultValue?.HasValue || parameter.DefaultValue?.NewValue);
        parameter.DefaultValue = { HasValue: hasValue };
      }
    }
    return copy;
  };
  const templateFields = (space: SpaceState, body: Json, existing?: Json): Json => {
    const problems: string[] = [];
    if (isBlank(body.Name)) problems.push('Please provide a name for the step template.');
    if (!existing && isBlank(body.ActionType)) problems.push('Please provide an action type for the step template.');
    const name = String(body.Name ?? '').trim();
    if (name && space.actionTemplates.some((t) => t.Id !== existing?.Id && t.Name.toLowerCase() === name.toLowerCase())) {
      problems.push(`A step template with the name '${name}' already exists. Please choose a different name.`);
    }
    if (existing?.CommunityActionTemplateId) problems.push('Only custom templates can be directly updated.');
    const parameters = Array.isArray(body.Parameters) ? body.Parameters : [];
    const seen = new Set<string>();
    for (const parameter of parameters) {
      if (isBlank(parameter?.Name)) problems.push('Every parameter needs a name.');
      else if (seen.has(parameter.Name.toLowerCase())) problems.push(`The parameter name '${parameter.Name}' is used more than once.`);
      else seen.add(parameter.Name.toLowerCase());
    }
    if (body.Properties !== undefined && (typeof body.Properties !== 'object' || Array.isArray(body.Properties))) problems.push('Properties must be an object.');
    if (problems.length) throw validationError(...problems);
    return {
      Name: name,
      Description: body.Description ?? null,
      ActionType: existing ? existing.ActionType : body.ActionType,
      Properties: body.Properties ?? {},
      Parameters: parameters.map((p: Json) => ({
        Id: isBlank(p.Id) ? randomUUID() : p.Id,
        Name: p.Name,
        Label: p.Label ?? '',
        HelpText: p.HelpText ?? '',
        // Keep a sensitive default when the client sends back `{HasValue:true}` without a new value.
        DefaultValue:
          p.DefaultValue && typeof p.DefaultValue === 'object' && p.DefaultValue.NewValue === undefined
            ? (existing?.Parameters.find((e: Json) => e.Name === p.Name)?.DefaultValue ?? null)
            : p.DefaultValue && typeof p.DefaultValue === 'object'
              ? p.DefaultValue.NewValue
              : (p.DefaultValue ?? null),
        DisplaySettings: p.DisplaySettings ?? {},
        Links: {},
      })),
      Packages: Array.isArray(body.Packages) ? body.Packages : [],
      GitDependencies: Array.isArray(body.GitDependencies) ? body.GitDependencies : [],
      StepPackageVersion: body.StepPackageVersion ?? null,
      CommunityActionTemplateId: existing ? existing.CommunityActionTemplateId : (body.CommunityActionTemplateId ?? null),
    };
  };
  const templateLinks = (spaceId: string, id: string): Json => ({
    Self: `/api/${spaceId}/actiontemplates/${id}`,
    Usage: `/api/${spaceId}/actiontemplates/${id}/usage`,
    Logo: `/api/${spaceId}/actiontemplates/${id}/logo`,
    ActionsUpdate: `/api/${spaceId}/actiontemplates/${id}/actionsUpdate`,
    Versions: `/api/${spaceId}/actiontemplates/${id}/versions/{version}`,
  });
  const usagesOf = (space: SpaceState, templateId: string): Json[] => {
    const usages: Json[] = [];
    for (const runbook of space.runbooks) {
      const process = space.processes.get(runbook.RunbookProcessId);
      if (!process) continue;
      const project = space.projects.find((p) => p.Id === runbook.ProjectId);
      for (const step of process.Steps) {
        for (const action of step.Actions) {
          if (action.Properties?.['Octopus.Action.Template.Id'] !== templateId) continue;
          usages.push({
            ActionTemplateId: templateId,
            ActionId: action.Id,
            ActionName: action.Name,
            StepId: step.Id,
            StepName: step.Name,
            ProcessId: process.Id,
            ProcessType: 'Runbook',
            ProjectId: runbook.ProjectId,
            ProjectName: project?.Name,
            ProjectSlug: project?.Slug,
            RunbookId: runbook.Id,
            RunbookName: runbook.Name,
            Version: String(action.Properties['Octopus.Action.Template.Version']),
            Branch: null,
            Release: null,
          });
        }
      }
    }
    return usages;
  };
  return [
    route('GET', `${SPACE}/actiontemplates`, 'ActionTemplateView', (r) => collection('ActionTemplate', r.path, spaceOf(r).actionTemplates.map(presentTemplate), r.query)),
    route('GET', `${SPACE}/actiontemplates/all`, 'ActionTemplateView', (r) => spaceOf(r).actionTemplates.map(presentTemplate)),
    route('GET', `${SPACE}/actiontemplates/categories`, 'ActionTemplateView', () => []),
    route('POST', `${SPACE}/actiontemplates`, 'ActionTemplateCreate', (r) => {
      const space = spaceOf(r);
      const fields = templateFields(space, bodyOf(r));
      const id = nextId(state, 'ActionTemplates');
      const template = { Id: id, SpaceId: space.space.Id, Version: 0, ...fields, LastModifiedBy: r.user, LastModifiedOn: now(), Links: templateLinks(space.space.Id, id) };
      space.actionTemplates.push(template);
      space.templateHistory.set(id, [{ version: 0, body: clone(template) }]);
      return created(presentTemplate(template));
    }),
    route('GET', `${SPACE}/actiontemplates/{id}`, 'ActionTemplateView', (r) => presentTemplate(find(spaceOf(r).actionTemplates, r.params.id))),
    route('PUT', `${SPACE}/actiontemplates/{id}`, 'ActionTemplateEdit', (r) => {
      const space = spaceOf(r);
      const template = find(space.actionTemplates, r.params.id);
      const fields = templateFields(space, bodyOf(r), template);
      // Every save is a new version, changed or not (assumed, see the reference): clients must diff first.
      Object.assign(template, fields, { Version: template.Version + 1, LastModifiedBy: r.user, LastModifiedOn: now() });
      space.templateHistory.get(template.Id)!.push({ version: template.Version, body: clone(template) });
      return presentTemplate(template);
    }),
    route('DELETE', `${SPACE}/actiontemplates/{id}`, 'ActionTemplateDelete', (r) => {
      const space = spaceOf(r);
      const template = find(space.actionTemplates, r.params.id);
      const usages = usagesOf(space, template.Id);
      if (usages.length > 0) throw validationError(`The step template '${template.Name}' is in use by ${usages.length} step(s) and cannot be deleted.`);
      space.actionTemplates.splice(space.actionTemplates.indexOf(template), 1);
      space.templateHistory.delete(template.Id);
      return { body: undefined };
    }),
    route('GET', `${SPACE}/actiontemplates/{id}/versions`, 'ActionTemplateView', (r) => {
      const space = spaceOf(r);
      find(space.actionTemplates, r.params.id);
      return space.templateHistory.get(r.params.id)!.map((v) => presentTemplate(v.body));
    }),
    route('GET', `${SPACE}/actiontemplates/{id}/versions/{version}`, 'ActionTemplateView', (r) => {
      const space = spaceOf(r);
      find(space.actionTemplates, r.params.id);
      const version = space.templateHistory.get(r.params.id)!.find((v) => String(v.version) === r.params.version);
      if (!version) throw notFound(`${r.params.id} version ${r.params.version}`);
      return presentTemplate(version.body);
    }),
    route('GET', `${SPACE}/actiontemplates/{id}/usage`, 'ActionTemplateView', (r) => {
      const space = spaceOf(r);
      find(space.actionTemplates, r.params.id);
      return usagesOf(space, r.params.id);
    }),
    route('POST', `${SPACE}/actiontemplates/{id}/actionsUpdate`, 'ProcessEdit', (r) => {
      const space = spaceOf(r);
      const template = find(space.actionTemplates, r.params.id);
      const body = bodyOf(r);
      const target = space.templateHistory.get(template.Id)!.find((v) => v.version === Number(body.Version));
      if (!target) throw validationError(`The step template '${template.Name}' has no version '${body.Version}'.`);
      const results: Json[] = [];
      for (const entry of Array.isArray(body.ActionsToUpdate) ? body.ActionsToUpdate : []) {
        const process = space.processes.get(entry.ProcessId);
        if (!process) throw validationError(`The process '${entry.ProcessId}' does not exist.`);
        for (const actionId of entry.ActionIds ?? []) {
          const action = process.Steps.flatMap((s: Json) => s.Actions).find((a: Json) => a.Id === actionId);
          if (!action) throw validationError(`The action '${actionId}' does not exist in '${entry.ProcessId}'.`);
          const missing: string[] = [];
          for (const parameter of target.body.Parameters) {
            if (action.Properties[parameter.Name] !== undefined) continue;
            const fallback = body.DefaultPropertyValues?.[parameter.Name] ?? parameter.DefaultValue;
            if (fallback === null || fallback === undefined) missing.push(parameter.Name);
            else action.Properties[parameter.Name] = fallback;
          }
          Object.assign(action.Properties, target.body.Properties, { 'Octopus.Action.Template.Version': String(target.version) });
          results.push({
            Id: actionId,
            Outcome: missing.length ? 'DefaultParamterValueMissing' : 'Success',
            ManualMergeRequiredReasonsByPropertyName: {},
            NamesOfNewParametersMissingDefaultValue: missing,
            RemovedPackageUsages: [],
          });
        }
        process.Version += 1;
      }
      return results;
    }),
  ];
}
