// Project variable sets: sensitive values kept or replaced as Octopus does, types and scopes checked.
import { randomUUID } from 'node:crypto';
import { HttpError, notFound, route, validationError, type Route } from '../http';
import { clone, type Json, type SpaceState } from '../store';
import { SPACE, isBlank, bodyOf, staleVersion, type RouteContext } from './shared';

/** Variable types Octopus knows; matched case-insensitively since 2021.3 (OctopusDeploy/Issues#6970). */
const VARIABLE_TYPES = [
  'String',
  'Sensitive',
  'Certificate',
  'AmazonWebServicesAccount',
  'AzureAccount',
  'GoogleCloudAccount',
  'UsernamePasswordAccount',
  'GenericOidcAccount',
  'WorkerPool',
];

export function variableRoutes({ spaceOf }: RouteContext): Route[] {
  /** Every action of the project's processes (its runbooks' steps included): what a variable can be scoped to. */
  const projectActions = (space: SpaceState, projectId: string): Json[] =>
    space.runbooks
      .filter((r) => r.ProjectId === projectId)
      .flatMap((r) => (space.processes.get(r.RunbookProcessId)?.Steps ?? []).flatMap((step: Json) => step.Actions ?? []))
      .map((action: Json) => ({ Id: action.Id, Name: action.Name }));
  const presentVariables = (space: SpaceState, set: Json): Json => {
    const copy = clone(set);
    for (const variable of copy.Variables) if (variable.IsSensitive || variable.Type === 'Sensitive') variable.Value = null;
    copy.ScopeValues = {
      Environments: space.environments.map((e) => ({ Id: e.Id, Name: e.Name })),
      Machines: [],
      Actions: projectActions(space, set.OwnerId),
      Roles: [],
      Channels: [],
      TenantTags: [],
      Processes: space.runbooks.filter((r) => r.ProjectId === set.OwnerId).map((r) => ({ ProcessType: 'Runbook', Id: r.Id, Name: r.Name })),
    };
    return copy;
  };
  return [
    route('GET', `${SPACE}/variables/{id}`, 'VariableView', (r) => {
      const space = spaceOf(r);
      const set = space.variableSets.get(r.params.id);
      if (!set) throw notFound(r.params.id);
      return presentVariables(space, set);
    }),
    route('PUT', `${SPACE}/variables/{id}`, 'VariableEdit', (r) => {
      const space = spaceOf(r);
      const set = space.variableSets.get(r.params.id);
      if (!set) throw notFound(r.params.id);
      const body = bodyOf(r);
      if (body.Version !== set.Version) throw staleVersion('variable set', body.Version, set.Version);
      const problems: string[] = [];
      const variables: Json[] = Array.isArray(body.Variables) ? clone(body.Variables) : [];
      const keys = new Set<string>();
      const actions = new Set(projectActions(space, set.OwnerId).map((a) => a.Id));
      for (const variable of variables) {
        // No Type: Octopus fails with a NullReferenceException, a 500 (OctopusDeploy/Issues#8817).
        if (variable.Type === undefined || variable.Type === null) throw new HttpError(500, 'Object reference not set to an instance of an object.');
        const type = VARIABLE_TYPES.find((t) => t.toLowerCase() === String(variable.Type).toLowerCase());
        if (!type) problems.push(`Invalid Variable Type ${String(variable.Type)}.`);
        else variable.Type = type;
        if (isBlank(variable.Name)) problems.push('Every variable needs a name.');
        const key = `${String(variable.Name).toLowerCase()}|${JSON.stringify(variable.Scope ?? {})}`;
        if (keys.has(key)) problems.push(`The variable '${variable.Name}' is defined more than once with the same scope.`);
        keys.add(key);
        for (const environmentId of variable.Scope?.Environment ?? []) {
          if (!space.environments.some((e) => e.Id === environmentId)) problems.push(`The environment '${environmentId}' in the scope of '${variable.Name}' does not exist.`);
        }
        for (const actionId of variable.Scope?.Action ?? []) {
          if (!actions.has(actionId)) problems.push(`The step '${actionId}' in the scope of '${variable.Name}' does not exist in this project.`);
        }
      }
      if (problems.length) throw validationError(...problems);
      const existingIds = new Set<string>(set.Variables.map((v: Json) => String(v.Id)));
      for (const variable of variables) {
        const known = !isBlank(variable.Id) && existingIds.has(variable.Id);
        variable.Id = isBlank(variable.Id) ? randomUUID() : variable.Id;
        variable.IsSensitive = variable.Type === 'Sensitive';
        variable.Scope = variable.Scope ?? {};
        variable.IsEditable = variable.IsEditable ?? true;
        variable.Prompt = variable.Prompt ?? null;
        variable.Description = variable.Description ?? null;
        if (variable.IsSensitive) {
          // The Id decides, as on a real server (measured on 2026.x, go-octopusdeploy#449/#450): an existing
          // variable's Id with a null or empty Value keeps the secret; without the Id the secret is replaced
          // by what was sent, so an empty or null Value wipes it.
          const sent = variable.Value === null || variable.Value === undefined ? '' : String(variable.Value);
          if (!(known && sent === '' && space.sensitiveValues.has(variable.Id))) space.sensitiveValues.set(variable.Id, sent);
          variable.Value = null;
        }
      }
      for (const id of existingIds) if (!variables.some((v) => v.Id === id)) space.sensitiveValues.delete(id);
      set.Variables = variables;
      set.Version += 1;
      return presentVariables(space, set);
    }),
  ];
}
