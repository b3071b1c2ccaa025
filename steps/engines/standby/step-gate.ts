// The version gate as the restore steps use it: only when a standby parameter is given, before
// anything is restored; a refusal is a StepFailure (exit 1) that says nothing was restored.
import { readManifest } from '../database-backup/manifest';
import type { RestorePlan } from '../database-backup/restore';
import type { EngineContext } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { checkStandbyVersion, type VersionGateResult } from './version-gate';

export interface StandbyParams {
  standbyServerUrl: string;
  standbyOctopusVersion: string;
  standbyApiKey?: string;
}

/** The Octopus version the newest manifest of a restore chain records, and that manifest's name. */
export async function chainOctopusVersion(plan: RestorePlan): Promise<{ version: string | null; label: string }> {
  const members = [plan.chain.full, plan.chain.differential, ...plan.chain.logs].filter((s) => s !== undefined).reverse();
  for (const set of members) {
    if (!set.manifestPath) continue;
    const manifest = await readManifest(set.manifestPath).catch(() => undefined);
    if (manifest?.octopusVersion) return { version: manifest.octopusVersion, label: set.label };
  }
  return { version: null, label: members[0].label };
}

/**
 * Compares the backup's Octopus version with the standby's when "Standby Octopus Server URL" or
 * "Standby Octopus version" is given (otherwise there is nothing to compare with: undefined).
 * Throws a StepFailure when the backup is from a newer Octopus, or the standby cannot be read.
 */
export async function enforceStandbyVersion(
  params: StandbyParams,
  /** Read only when the gate runs. */
  backupOf: () => Promise<{ version: string | null | undefined; label: string }>,
  context: Pick<EngineContext, 'log' | 'signal'>,
): Promise<VersionGateResult | undefined> {
  const { log, signal } = context;
  if (!params.standbyServerUrl.trim() && !params.standbyOctopusVersion.trim()) return undefined;
  const backup = await backupOf();
  const gate = await checkStandbyVersion({
    backupVersion: backup.version,
    backupLabel: backup.label,
    standbyUrl: params.standbyServerUrl,
    standbyVersion: params.standbyOctopusVersion,
    apiKey: params.standbyApiKey || undefined,
    signal,
  });
  for (const warning of gate.warnings) log.warn(warning);
  if (gate.outcome === 'refuse') throw new StepFailure(`${gate.message}${/nothing was restored/i.test(gate.message) ? '' : ' Nothing was restored.'}`);
  if (gate.outcome === 'warn') log.warn(gate.message);
  else log.info(gate.message);
  return gate;
}
