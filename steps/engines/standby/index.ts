// Checks that prove a standby can take over (issue 14). Each is one call from a step:
//
//   Restore SQL Database / Restore File Store / Test Latest Backup, before restoring anything
//   (backupVersion: the database manifest's octopusVersion; the file-store manifest records none yet):
//     const gate = await checkStandbyVersion({ backupVersion: manifest.octopusVersion, backupLabel,
//       standbyUrl: params.standbyServerUrl, standbyVersion: params.standbyOctopusVersion, apiKey: params.apiKey, signal });
//     gate.warnings.forEach((w) => log.warn(w));
//     if (gate.outcome === 'refuse') throw new StepFailure(gate.message);
//     gate.outcome === 'warn' ? log.warn(gate.message) : log.info(gate.message);
//
//   Back up Octopus (backup-database), after the manifest is written:
//     const drift = findKeyDrift({ database, verifiedKeyId, takenAt, manifests: await loadManifestSets(location, (m) => log.verbose(m)) });
//     for (const [name, value] of Object.entries(keyDriftOutputs(drift))) context.setOutput(name, value);
//     if (drift) log.warn(drift.warning);
//
//   Test Latest Backup (from ./agreement, a face of its own: it needs the SQL driver, this one does not), with a connection in the restored scratch database (until: the earlier of the
//   database backup's and the file-store set's times):
//     const agreement = await checkFileStoreAgreement(sql, { files: fileStoreManifest.files, until, days: params.agreementDays,
//       failAbovePercent: params.missingFilesFailPercent, signal });
//     agreement.outcome === 'fail' ? report.failures.push(agreement.message) : agreement.outcome === 'warn' ? log.warn(agreement.message) : log.info(agreement.message);
export { checkVersionGate, checkStandbyVersion, readStandbyVersion, resolveStandbyVersion, standbyParameterProblems, StandbyVersionError, OCTOPUS_MOVE_RULE_URL } from './version-gate';
export type { VersionGateInput, VersionGateOutcome, VersionGateResult, StandbyVersion, StandbyGateOptions } from './version-gate';
export { parseOctopusVersion, compareOctopusVersions } from './octopus-version';
export type { OctopusVersion } from './octopus-version';
export { findKeyDrift, keyDriftOutputs } from './key-drift';
export type { KeyDrift, KeyDriftInput, KeyDriftSet, ManifestRecord } from './key-drift';
// What the restore steps call.
export { chainOctopusVersion, enforceStandbyVersion, type StandbyParams } from './step-gate';
