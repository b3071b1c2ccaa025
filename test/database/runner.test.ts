// The generated Bash and PowerShell templates run the database steps as Octopus would: parameters
// (including the Sensitive connection string) travel by environment, never argv; a restore round trip.
import { readFileSync } from 'node:fs';
import { outputVariablesIn } from '../../steps/runtime/service-messages';
import { findPwsh, runBashScriptBody, runPowerShellScriptBody } from '../helpers/runners';
import { builtTemplate } from '../helpers/bundle';
import { Lab, octopusTables, PASSWORD } from './harness';

const lab = new Lab();
beforeAll(() => lab.start({}, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]));
afterAll(() => lab.stop());

function scriptBody(syntax: 'bash' | 'powershell', step: string): string {
  const template = JSON.parse(readFileSync(builtTemplate(syntax, step), 'utf8'));
  return template.Properties['Octopus.Action.Script.ScriptBody'];
}

function outputs(stdout: string): Record<string, string> {
  return outputVariablesIn(stdout);
}

test('Bash template: back up, then restore the manifest under a new name; no secret in the process list', async () => {
  let argvLeak = false;
  const scan = () => {
    try {
      for (const pid of require('node:fs').readdirSync('/proc').filter((p: string) => /^\d+$/.test(p))) {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.includes(PASSWORD)) argvLeak = true;
      }
    } catch {
      /* processes come and go */
    }
  };
  const backup = await runBashScriptBody(scriptBody('bash', 'backup-database'), {
    parameters: { 'OctopusDr.Sql.ConnectionString': lab.connectionString('Octopus'), 'OctopusDr.Sql.BackupType': 'Full' },
    whileRunning: scan,
  });
  expect(backup.code).toBe(0);
  const manifest = outputs(backup.stdout).ManifestPath;
  expect(manifest).toMatch(/Octopus_FULL_\d{8}T\d{6}Z_[0-9a-f]{6}\.manifest\.json$/);
  const restore = await runBashScriptBody(scriptBody('bash', 'restore-database'), {
    parameters: {
      'OctopusDr.Sql.ConnectionString': lab.connectionString('Octopus'),
      'OctopusDr.Restore.Source': manifest,
      'OctopusDr.Restore.TargetDatabase': 'Octopus-from-bash',
    },
    whileRunning: scan,
  });
  expect(restore.stdout + restore.stderr).toMatch(/Restored 'Octopus-from-bash'/);
  expect(restore.code).toBe(0);
  expect(outputs(restore.stdout).RestoredDatabase).toBe('Octopus-from-bash');
  expect(argvLeak).toBe(false);
  expect(backup.stdout + backup.stderr + restore.stdout + restore.stderr).not.toContain(PASSWORD);
}, 60_000);

(findPwsh() ? test : test.skip)('PowerShell template: a dry-run restore prints the plan and changes nothing', async () => {
  const run = await runPowerShellScriptBody(scriptBody('powershell', 'restore-database'), {
    parameters: {
      'OctopusDr.Sql.ConnectionString': lab.connectionString('Octopus'),
      'OctopusDr.Restore.Source': lab.backups,
      'OctopusDr.Restore.TargetDatabase': 'Octopus-from-pwsh',
      'OctopusDr.DryRun': 'True',
    },
  });
  expect(run.stdout).toContain("Restore plan: 'Octopus' -> 'Octopus-from-pwsh'");
  expect(run.code).toBe(0);
  expect(lab.sim.model.database('Octopus-from-pwsh')).toBeUndefined();
}, 60_000);
