// The publish itself: templates, project, variables, runbooks, processes, snapshots, triggers, in
// that order, each created or updated only when it differs from what the space has. A dry run
// reads everything and changes nothing, printing the same plan.
import type { Project, Runbook, RunbookProcess } from '@octopusdeploy/api-client';
import { connectToOctopus, type OctopusConnection } from '../../steps/engines/octopus';
import { linkedTemplateMessage, OctopusSpace, type Named, type ProcessStep, type ServerTimezone, type Trigger, type Variable, type VariableSet } from './octopus';
import { UsageError } from './options';
import { composeSteps, describeStepChanges, mergeWithExisting, missingForRunbook, normaliseSteps, type PublishedTemplate } from './process';
import { DEFAULT_SCHEDULES, PROJECT_VARIABLES, RUNBOOKS, type RunbookSpec, type ScheduleRole } from './runbooks';
import { loadBuiltTemplates, normalisedTemplate, templateBody, type BuiltTemplate, type TemplateSyntax } from './templates';

export interface ScheduleOption {
  enabled: boolean;
  cron: string;
}

export interface PublishOptions {
  serverUrl: string;
  space: string;
  apiKey: string;
  /** Where the key came from, for a 401 message. */
  apiKeySource: string;
  projectName: string;
  projectGroup?: string;
  lifecycle?: string;
  syntax: TemplateSyntax;
  templatesDirectory: string;
  /** Environments the backup and test runbooks run in; empty = the space's only environment. */
  environments: string[];
  /** Environments the restore runbook runs in; empty = `environments`. */
  restoreEnvironments: string[];
  schedules: Record<ScheduleRole, ScheduleOption>;
  timezone: string;
  dryRun: boolean;
  toolVersion: string;
  log: (line: string) => void;
}

export type Outcome = 'created' | 'updated' | 'unchanged' | 'skipped';

export interface PlanEntry {
  kind: 'template' | 'project' | 'variable' | 'runbook' | 'process' | 'snapshot' | 'trigger';
  name: string;
  outcome: Outcome;
  detail?: string;
}

/** A runbook as composed in this run; `steps` carry the server's ids once the process exists. */
interface ComposedRunbook {
  spec: RunbookSpec;
  runbook?: Runbook;
  processChanged: boolean;
  steps: ProcessStep[];
}

export interface PublishResult {
  entries: PlanEntry[];
  warnings: string[];
  serverVersion: string;
}

const TEMPLATE_NAME_PREFIX = 'Octopus DR';
const VARIABLES_VERSION_NOTE = /Project variables version (\d+)\./;
/** A template that does not exist yet, in a dry run. */
const NOT_YET_CREATED = '(new)';

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

function resolveEnvironments(names: readonly string[], available: readonly Named[], option: string): Named[] {
  const missing: string[] = [];
  const found = names.map((name) => {
    const environment = available.find((e) => e.Name.toLowerCase() === name.toLowerCase());
    if (!environment) missing.push(name);
    return environment;
  });
  if (missing.length > 0) {
    throw new Error(
      `Unknown environment${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} (${option}). ` +
        `Environments in this space: ${available.map((e) => `"${e.Name}"`).join(', ') || 'none (create one in Infrastructure > Environments)'}.`,
    );
  }
  return found as Named[];
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/** Words too common in zone names to tell zones apart. */
const COMMON_ZONE_WORDS = new Set(['standard', 'time', 'daylight', 'zone']);

/**
 * Up to five zones close to what was asked: an id containing it (or contained in it), a near miss of an
 * id (a typo), or a zone whose id or display name holds every distinctive word of it (a city, a region).
 */
export function closeTimezones(wanted: string, known: readonly ServerTimezone[]): ServerTimezone[] {
  const needle = wanted.trim().toLowerCase();
  const words = needle.split(/[\s/_,.()+&-]+/).filter((w) => w.length >= 3 && !COMMON_ZONE_WORDS.has(w));
  const typoLimit = Math.max(2, Math.floor(needle.length / 4));
  const scored = known.map((zone) => {
    const id = zone.Id.toLowerCase();
    const text = `${id} ${(zone.Name ?? '').toLowerCase()}`;
    let score = Number.POSITIVE_INFINITY;
    if (needle.length >= 3 && (id.includes(needle) || needle.includes(id))) score = 0;
    const distance = editDistance(needle, id);
    if (distance <= typoLimit) score = Math.min(score, distance);
    if (words.length > 0 && words.every((w) => text.includes(w))) score = Math.min(score, typoLimit + 1);
    return { zone, score };
  });
  return scored
    .filter((s) => Number.isFinite(s.score))
    .sort((a, b) => a.score - b.score || a.zone.Id.localeCompare(b.zone.Id))
    .slice(0, 5)
    .map((s) => s.zone);
}

export class Publisher {
  private readonly entries: PlanEntry[] = [];
  private readonly warnings: string[] = [];

  constructor(private readonly options: PublishOptions) {}

  private record(entry: PlanEntry): void {
    this.entries.push(entry);
    const verb = this.options.dryRun
      ? { created: 'would create', updated: 'would update', unchanged: 'unchanged', skipped: 'skipped' }[entry.outcome]
      : entry.outcome;
    this.options.log(`  ${verb.padEnd(13)} ${entry.kind} ${entry.name}${entry.detail ? ` (${entry.detail})` : ''}`);
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.options.log(`  WARNING: ${message}`);
  }

  async run(): Promise<PublishResult> {
    const o = this.options;
    const built = loadBuiltTemplates(o.templatesDirectory);
    const connection: OctopusConnection = await connectToOctopus({
      serverUrl: o.serverUrl,
      apiKey: o.apiKey,
      userAgentApp: `octopus-dr/${o.toolVersion} publish`,
      apiKeySource: o.apiKeySource,
    });
    o.log(`${o.dryRun ? 'Dry run: planning' : 'Publishing'} ${built.size} ${o.syntax} template(s) to space "${o.space}" on ${connection.serverUrl} (Octopus ${connection.version}).`);
    const space = await OctopusSpace.open(connection, o.space, o.apiKeySource);

    const environments = await space.environments();
    const backupEnvironments = this.chooseEnvironments(o.environments, environments, '--environment');
    const restoreEnvironments = o.restoreEnvironments.length > 0 ? resolveEnvironments(o.restoreEnvironments, environments, '--restore-environment') : backupEnvironments;
    // Everything that can refuse the publish is checked before the first write.
    const timezone = await this.checkTimezone(space);
    const existingProject = await space.findProject(o.projectName);
    if (existingProject) this.refuseGitRunbooks(existingProject);

    const published = await this.publishTemplates(space, built);
    const project = await this.ensureProject(space, existingProject);

    // Runbooks and processes first: step-scoped variables need the processes' action ids.
    const runbooks = project ? await space.runbooks(project) : [];
    const composed: ComposedRunbook[] = [];
    for (const spec of RUNBOOKS) {
      const missing = missingForRunbook(spec, built);
      if (missing.length > 0) {
        this.warn(`runbook "${spec.name}" not composed yet: ${missing.join('; ')}. Build the missing templates and publish again.`);
        this.record({ kind: 'runbook', name: spec.name, outcome: 'skipped', detail: 'templates missing' });
        continue;
      }
      const ids = (spec.environments === 'restore' ? restoreEnvironments : backupEnvironments).map((e) => e.Id);
      composed.push(await this.ensureRunbook(space, project, runbooks, spec, ids, published));
    }
    // Then the variables, in one write; then snapshots, which freeze process and variables together.
    const variablesVersion = await this.ensureVariables(space, project, composed);
    const ready = new Map<string, Runbook | undefined>();
    for (const item of composed) ready.set(item.spec.name, await this.ensureSnapshot(space, project, item, variablesVersion));
    await this.ensureTriggers(space, project, ready, backupEnvironments.map((e) => e.Id), timezone);

    const counts = (outcome: Outcome) => this.entries.filter((e) => e.outcome === outcome).length;
    o.log(
      `${o.dryRun ? 'Dry run, nothing changed: would create' : 'Done: created'} ${counts('created')}, ${o.dryRun ? 'would update' : 'updated'} ${counts('updated')}, ` +
        `unchanged ${counts('unchanged')}, skipped ${counts('skipped')}${this.warnings.length ? `; ${this.warnings.length} warning(s)` : ''}.`,
    );
    return { entries: this.entries, warnings: this.warnings, serverVersion: connection.version };
  }

  private chooseEnvironments(names: readonly string[], available: readonly Named[], option: string): Named[] {
    if (names.length > 0) return resolveEnvironments(names, available, option);
    if (available.length === 1) return [available[0]];
    throw new Error(
      `Say which environment the DR runbooks run in with ${option} <name> (repeat it for several). ` +
        `Environments in this space: ${available.map((e) => `"${e.Name}"`).join(', ') || 'none (create one in Infrastructure > Environments)'}.`,
    );
  }

  /**
   * The schedules' time zone, as the server spells it: an id the server does not list is refused (exit 2)
   * with the closest ones, because a trigger in an unknown zone would not run when intended.
   */
  private async checkTimezone(space: OctopusSpace): Promise<string> {
    const wanted = this.options.timezone;
    // The default: .NET resolves UTC on every platform, and it is Octopus's and terraform's default too.
    if (wanted === 'UTC') return wanted;
    const known = await space.timezones();
    if (!known) {
      this.warn(`this server does not list its time zones (GET /api/serverstatus/timezones); --timezone "${wanted}" is sent unchecked.`);
      return wanted;
    }
    const exact = known.find((z) => z.Id === wanted) ?? known.find((z) => z.Id.toLowerCase() === wanted.toLowerCase());
    if (exact) return exact.Id;
    const close = closeTimezones(wanted, known);
    throw new UsageError(
      `--timezone "${wanted}" is not a time zone this Octopus Server knows. ` +
        (close.length > 0 ? `Close matches: ${close.map((z) => `"${z.Id}" (${z.Name})`).join(', ')}. ` : '') +
        `Pass an id from GET ${this.options.serverUrl.replace(/\/+$/, '')}/api/serverstatus/timezones (${known.length} listed; Windows servers use ids such as "GMT Standard Time", Linux ones IANA ids such as "Europe/London").`,
    );
  }

  /**
   * A project whose runbooks live in Git (Config as Code) cannot get runbooks, processes or snapshots
   * through the database API that the publisher uses; stop before writing anything.
   */
  private refuseGitRunbooks(project: Project): void {
    const settings = (project as unknown as { PersistenceSettings?: { ConversionState?: { RunbooksAreInGit?: boolean } } }).PersistenceSettings;
    if (!project.IsVersionControlled || !settings?.ConversionState?.RunbooksAreInGit) return;
    throw new UsageError(
      `The project "${project.Name}" is version-controlled and keeps its runbooks in Git, where runbooks cannot be created or ` +
        `snapshotted through the database API that octopus-dr publishes with; nothing was changed. Publish into another project ` +
        `(e.g. --project "${project.Name} (database)": a project that does not exist yet is created with its runbooks stored in the database), ` +
        `or use a project whose runbooks are stored in the database.`,
    );
  }

  private async publishTemplates(space: OctopusSpace, built: ReadonlyMap<string, BuiltTemplate>): Promise<Map<string, PublishedTemplate>> {
    const existing = await space.templates(TEMPLATE_NAME_PREFIX);
    // A template linked to the Community Library cannot be updated directly: say so before any write.
    for (const template of built.values()) {
      const match = existing.find((t) => t.Name === template.Name);
      if (match?.CommunityActionTemplateId && normalisedTemplate(match) !== normalisedTemplate(templateBody(template))) {
        throw new Error(linkedTemplateMessage(match.Name));
      }
    }
    const published = new Map<string, PublishedTemplate>();
    for (const template of built.values()) {
      const body = templateBody(template);
      const match = existing.find((t) => t.Name === template.Name);
      let id = match?.Id ?? NOT_YET_CREATED;
      let version = match?.Version ?? 0;
      if (!match) {
        if (!this.options.dryRun) ({ Id: id, Version: version } = await space.createTemplate(body));
        this.record({ kind: 'template', name: template.Name, outcome: 'created' });
      } else if (normalisedTemplate(match) !== normalisedTemplate(body)) {
        // Every save is a new version on the server; a dry run plans with the next one.
        version = this.options.dryRun ? match.Version + 1 : (await space.updateTemplate(match, body)).Version;
        this.record({ kind: 'template', name: template.Name, outcome: 'updated', detail: `version ${match.Version} -> ${version}` });
      } else {
        this.record({ kind: 'template', name: template.Name, outcome: 'unchanged', detail: `version ${match.Version}` });
      }
      published.set(template.stepId, { built: template, id, version });
    }
    return published;
  }

  private async ensureProject(space: OctopusSpace, existing: Project | undefined): Promise<Project | undefined> {
    const o = this.options;
    if (existing) {
      this.record({ kind: 'project', name: existing.Name, outcome: 'unchanged' });
      return existing;
    }
    const [groups, lifecycles] = await Promise.all([space.projectGroups(), space.lifecycles()]);
    const group = this.pick(groups, o.projectGroup, 'Default Project Group', '--project-group', 'project group');
    const lifecycle = this.pick(lifecycles, o.lifecycle, 'Default Lifecycle', '--lifecycle', 'lifecycle');
    this.record({ kind: 'project', name: o.projectName, outcome: 'created', detail: `group "${group.Name}", lifecycle "${lifecycle.Name}"` });
    if (o.dryRun) return undefined;
    return space.createProject({
      Name: o.projectName,
      Description: 'Disaster recovery runbooks for this Octopus Server, published by octopus-dr: back up, test the backups, restore.',
      ProjectGroupId: group.Id,
      LifecycleId: lifecycle.Id,
    });
  }

  private pick(items: readonly Named[], wanted: string | undefined, fallback: string, option: string, what: string): Named {
    if (wanted) {
      const found = items.find((i) => i.Name.toLowerCase() === wanted.toLowerCase());
      if (!found) throw new Error(`Unknown ${what} "${wanted}" (${option}). Available: ${items.map((i) => `"${i.Name}"`).join(', ') || 'none'}.`);
      return found;
    }
    const found = items.find((i) => i.Name === fallback) ?? items[0];
    if (!found) throw new Error(`This space has no ${what}; create one, or pass ${option}.`);
    return found;
  }

  /**
   * Adds missing placeholders, and the empty step-scoped values runbooks ask for, in one write.
   * Returns the variable set version that snapshots will capture.
   */
  private async ensureVariables(space: OctopusSpace, project: Project | undefined, composed: readonly ComposedRunbook[]): Promise<number> {
    const set: VariableSet | undefined = project ? await space.variables(project) : undefined;
    const existing = set?.Variables ?? [];
    const added: Variable[] = [];
    const named = (name: string) => existing.filter((v) => v.Name.toLowerCase() === name.toLowerCase());
    for (const variable of PROJECT_VARIABLES) {
      const present = named(variable.name).length > 0;
      // A variable renamed since the project was published: its values (and scopes) move to the new name.
      const former = present || !variable.formerName ? [] : named(variable.formerName).filter((v) => !v.IsSensitive);
      this.record({
        kind: 'variable',
        name: variable.name,
        outcome: present ? 'unchanged' : 'created',
        detail: present
          ? undefined
          : former.length > 0
            ? `copied from ${variable.formerName}, its earlier name`
            : `${variable.sensitive ? 'sensitive ' : ''}placeholder: set its value in the project`,
      });
      if (present) continue;
      if (former.length > 0) {
        this.warn(`${variable.formerName} is now ${variable.name}: its value was copied. Delete ${variable.formerName} from the project once nothing else uses it.`);
        for (const old of former) {
          added.push({ Name: variable.name, Value: old.Value, Description: old.Description, Type: old.Type, IsSensitive: false, Scope: old.Scope ?? {} });
        }
        continue;
      }
      added.push({
        Name: variable.name,
        Value: '',
        Description: `${variable.description} Placeholder created by octopus-dr publish.`,
        Type: variable.sensitive ? 'Sensitive' : 'String',
        IsSensitive: variable.sensitive,
        Scope: {},
      });
    }
    for (const item of composed) {
      for (const step of item.spec.steps) {
        for (const name of step.blankProjectVariables ?? []) {
          const actionId = item.steps.find((s) => s.Name === step.name)?.Actions[0]?.Id;
          const present =
            actionId !== undefined &&
            existing.some((v) => v.Name.toLowerCase() === name.toLowerCase() && ((v.Scope?.Action as string[] | undefined) ?? []).includes(actionId));
          this.record({ kind: 'variable', name: `${name} for step "${step.name}"`, outcome: present ? 'unchanged' : 'created', detail: present ? undefined : 'empty, scoped to that step' });
          if (present || actionId === undefined) continue;
          added.push({
            Name: name,
            Value: '',
            Description: `Empty for the step "${step.name}" of "${item.spec.name}", which must not use it. Created by octopus-dr publish.`,
            Type: 'String',
            IsSensitive: false,
            Scope: { Action: [actionId] },
          });
        }
      }
    }
    const wouldAdd = this.entries.some((e) => e.kind === 'variable' && e.outcome === 'created');
    if (!wouldAdd || !set || !project) return (set?.Version ?? 0) + (wouldAdd ? 1 : 0);
    if (this.options.dryRun) return set.Version + 1;
    // Existing variables go back exactly as read: a sensitive one's null Value keeps its secret.
    const saved = await space.updateVariables(project, { ...set, Variables: [...existing, ...added] });
    return saved.Version;
  }

  private async ensureRunbook(
    space: OctopusSpace,
    project: Project | undefined,
    runbooks: Runbook[],
    spec: RunbookSpec,
    environmentIds: string[],
    templates: ReadonlyMap<string, PublishedTemplate>,
  ): Promise<ComposedRunbook> {
    const o = this.options;
    const composition = composeSteps(spec, templates);
    for (const warning of composition.warnings) this.warn(`runbook "${spec.name}": ${warning}`);
    const desired = {
      Name: spec.name,
      ProjectId: project?.Id,
      Description: spec.description,
      MultiTenancyMode: 'Untenanted',
      EnvironmentScope: 'Specified',
      Environments: environmentIds,
      // Scheduled runs have nobody to answer a guided-failure prompt.
      DefaultGuidedFailureMode: 'Off',
      // Required on create; Strategy is the current model, ShouldKeepForever what servers before it read.
      RunRetentionPolicy: { Strategy: 'Default', QuantityToKeep: 100, ShouldKeepForever: false, Unit: 'Items' },
    };
    let runbook = runbooks.find((r) => r.Name.toLowerCase() === spec.name.toLowerCase());
    if (!runbook) {
      this.record({ kind: 'runbook', name: spec.name, outcome: 'created' });
      if (project && !o.dryRun) runbook = await space.createRunbook(project, desired);
    } else {
      const differs =
        (runbook.Description ?? '') !== desired.Description ||
        runbook.EnvironmentScope !== desired.EnvironmentScope ||
        !sameSet(runbook.Environments ?? [], environmentIds) ||
        runbook.DefaultGuidedFailureMode !== desired.DefaultGuidedFailureMode ||
        runbook.MultiTenancyMode !== desired.MultiTenancyMode;
      this.record({ kind: 'runbook', name: spec.name, outcome: differs ? 'updated' : 'unchanged' });
      if (differs && !o.dryRun && project) {
        runbook = await space.updateRunbook(project, { ...runbook, ...desired, ProjectId: project.Id } as unknown as Runbook);
      }
    }

    // The process: only PUT when the normalised steps differ.
    let process: RunbookProcess | undefined = runbook && project && runbook.Id ? await space.process(project, runbook) : undefined;
    const existingSteps = (process?.Steps ?? []) as unknown as ProcessStep[];
    const processChanged = normaliseSteps(existingSteps) !== normaliseSteps(composition.steps);
    const processName = `${spec.name} process`;
    if (processChanged) {
      this.record({ kind: 'process', name: processName, outcome: 'updated', detail: describeStepChanges(existingSteps, composition.steps) });
      if (!o.dryRun && process && project && runbook) {
        process = await space.updateProcess(project, runbook, { ...process, Steps: mergeWithExisting(existingSteps, composition.steps) } as unknown as RunbookProcess);
      }
    } else {
      this.record({ kind: 'process', name: processName, outcome: 'unchanged', detail: `${composition.steps.length} step(s)` });
    }

    const steps = ((process?.Steps ?? composition.steps) as unknown as ProcessStep[]);
    return { spec, runbook, processChanged, steps };
  }

  private async ensureSnapshot(space: OctopusSpace, project: Project | undefined, item: ComposedRunbook, variablesVersion: number): Promise<Runbook | undefined> {
    const o = this.options;
    const { spec, processChanged } = item;
    let runbook = item.runbook;
    // A snapshot freezes the process and the project variables: publish a new one after either changed.
    let reason: string | undefined;
    if (processChanged) reason = 'the process changed';
    else if (!runbook?.PublishedRunbookSnapshotId) reason = 'the runbook has no published snapshot';
    else if (project) {
      const snapshot = await space.snapshot(project, runbook.PublishedRunbookSnapshotId);
      const recorded = VARIABLES_VERSION_NOTE.exec(snapshot.Notes ?? '')?.[1];
      if (recorded === undefined || Number(recorded) !== variablesVersion) reason = 'the project variables changed since the published snapshot';
    }
    const snapshotName = `${spec.name} snapshot`;
    if (!reason) {
      this.record({ kind: 'snapshot', name: snapshotName, outcome: 'unchanged', detail: 'published snapshot is current' });
      return runbook;
    }
    this.record({ kind: 'snapshot', name: snapshotName, outcome: 'created', detail: `published, because ${reason}` });
    if (!o.dryRun && project && runbook) {
      const name = `octopus-dr ${new Date().toISOString()}`;
      const notes = `Published by octopus-dr ${o.toolVersion} because ${reason}. Project variables version ${variablesVersion}.`;
      const snapshot = await space.createAndPublishSnapshot(project, runbook, name, notes);
      runbook = { ...runbook, PublishedRunbookSnapshotId: snapshot.Id };
    }
    return runbook;
  }

  private async ensureTriggers(
    space: OctopusSpace,
    project: Project | undefined,
    runbooks: ReadonlyMap<string, Runbook | undefined>,
    environmentIds: string[],
    timezone: string,
  ): Promise<void> {
    const o = { ...this.options, timezone };
    const existing: Trigger[] = project ? await space.triggers(project) : [];
    for (const role of Object.keys(DEFAULT_SCHEDULES) as ScheduleRole[]) {
      const schedule = DEFAULT_SCHEDULES[role];
      const option = o.schedules[role];
      if (!option.enabled) {
        // `off` means "do not manage": an existing trigger keeps running unless the user stops it.
        const left = existing.find((t) => t.Name.toLowerCase() === schedule.triggerName.toLowerCase());
        const state = left?.IsDisabled ? 'disabled' : 'still enabled: disable or delete it in Octopus to stop it';
        const detail = left ? `--${role}-schedule off: the existing trigger is left as it is, ${state}` : `--${role}-schedule off: not created`;
        this.record({ kind: 'trigger', name: schedule.triggerName, outcome: 'skipped', detail });
        continue;
      }
      if (!runbooks.has(schedule.runbook)) {
        this.record({ kind: 'trigger', name: schedule.triggerName, outcome: 'skipped', detail: `runbook "${schedule.runbook}" not composed` });
        continue;
      }
      const runbook = runbooks.get(schedule.runbook);
      const filter = { FilterType: 'CronExpressionSchedule', CronExpression: option.cron, Timezone: o.timezone };
      const action = { ActionType: 'RunRunbook', RunbookId: runbook?.Id ?? NOT_YET_CREATED, EnvironmentIds: environmentIds, TenantIds: [], TenantTags: [] };
      const detail = `"${option.cron}" ${o.timezone}, runs "${schedule.runbook}"`;
      const found = existing.find((t) => t.Name.toLowerCase() === schedule.triggerName.toLowerCase());
      if (!found) {
        this.record({ kind: 'trigger', name: schedule.triggerName, outcome: 'created', detail });
        if (!o.dryRun && project && runbook) {
          await space.createTrigger({
            Name: schedule.triggerName,
            Description: `Runs "${schedule.runbook}" on a schedule. Published by octopus-dr.`,
            ProjectId: project.Id,
            IsDisabled: false,
            Filter: filter,
            Action: action,
          });
        }
        continue;
      }
      const f = found.Filter as Record<string, unknown>;
      const a = found.Action as Record<string, unknown>;
      const differs =
        f.FilterType !== filter.FilterType ||
        f.CronExpression !== filter.CronExpression ||
        f.Timezone !== filter.Timezone ||
        a.ActionType !== action.ActionType ||
        a.RunbookId !== action.RunbookId ||
        !sameSet((a.EnvironmentIds as string[] | undefined) ?? [], environmentIds);
      // A trigger a user disabled stays disabled.
      this.record({ kind: 'trigger', name: found.Name, outcome: differs ? 'updated' : 'unchanged', detail: `${detail}${found.IsDisabled ? ', disabled' : ''}` });
      if (differs && !o.dryRun) await space.updateTrigger({ ...found, Filter: filter, Action: { ...a, ...action } });
    }
  }
}
