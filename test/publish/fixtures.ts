// Built templates for the publisher tests: the real maintenance-mode definition, and stand-ins
// for the templates other steps provide, with the parameters the runbook spec binds. Written in
// the Library format by the real build code, so the publisher reads what `npm run build` writes.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildTemplateJson, serializeTemplate } from '../../scripts/build/template-json';
import { uuidV5 } from '../../scripts/build/uuid';
import { PROJECT_VARIABLES, RUNBOOKS } from '../../scripts/publish/runbooks';
import { maintenanceMode } from '../../templates/maintenance-mode';
import type { ParameterDefinition, StepTemplateDefinition } from '../../templates/model';
import { nodePath } from '../../templates/parameters';

const NAMESPACE = '6f1e0c8a-3b7d-4c52-9a1e-2d4b6c8e0f13';

function standIn(stepId: string): StepTemplateDefinition {
  const names = new Set<string>();
  for (const runbook of RUNBOOKS) {
    for (const step of runbook.steps) {
      if (step.stepId !== stepId) continue;
      for (const name of Object.keys(step.values ?? {})) names.add(name);
      for (const name of step.fromProjectVariables ?? []) names.add(name);
    }
  }
  const sensitive = new Set(PROJECT_VARIABLES.filter((v) => v.sensitive).map((v) => v.name));
  const parameters: ParameterDefinition[] = [...names].sort().map((name) => ({
    name,
    label: name.split('.').slice(1).join(' '),
    helpText: `Stand-in for ${name}.`,
    type: sensitive.has(name) ? 'secret' : 'string',
    required: false,
    defaultValue: '',
    flag: name.toLowerCase().replace(/\./g, '-'),
  }));
  parameters.push({ ...nodePath }, { name: 'OctopusDr.Test.Retries', label: 'Retries', helpText: 'A parameter with a default.', type: 'integer', required: false, defaultValue: '3', flag: 'retries' });
  return {
    stepId,
    name: `Octopus DR - Stand-in ${stepId}`,
    description: `Stand-in for ${stepId}.`,
    id: uuidV5(NAMESPACE, `${stepId}/powershell`),
    bashId: uuidV5(NAMESPACE, `${stepId}/bash`),
    version: 1,
    lastModified: '2026-11-27T00:00:00.000Z',
    category: 'octopus',
    parameters,
  };
}

export const FIXTURE_STEP_IDS = ['maintenance-mode', 'backup-database', 'backup-file-store', 'verify-master-key', 'test-restore', 'restore-database', 'restore-file-store', 'check-worker', 'copy-offsite'];

/** Writes build/templates/powershell-like JSON files into a new temporary folder; returns it. */
export function writeFixtureTemplates(options: { omit?: string[]; scriptSuffix?: string; directory?: string } = {}): string {
  const directory = options.directory ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-publish-')), 'powershell');
  mkdirSync(directory, { recursive: true });
  for (const stepId of FIXTURE_STEP_IDS) {
    if (options.omit?.includes(stepId)) continue;
    const definition = stepId === 'maintenance-mode' ? maintenanceMode : standIn(stepId);
    const body = `Write-Host "${stepId} runner"${options.scriptSuffix ?? ''}`;
    writeFileSync(path.join(directory, `${stepId}.json`), serializeTemplate(buildTemplateJson(definition, 'PowerShell', body)));
  }
  return directory;
}
