// The maintenance-mode step end to end: the built bundle (`npm run build` first; `npm test` does)
// and the built Bash template's script, against the Octopus API simulator over a socket.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitForOtherTasks } from '../../steps/maintenance-mode/maintenance-mode';
import { connectToOctopus } from '../../steps/engines/octopus/connection';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { builtStep, builtTemplate } from '../helpers/bundle';
import { runBashScriptBody } from '../helpers/runners';
import { OctopusSimulator } from '../octopus-simulator/simulator';

const ADMIN_KEY = 'API-MAINTENANCE00000000000000001';
const DEPLOYER_KEY = 'API-DEPLOYER000000000000000000001';

let simulator: OctopusSimulator;

beforeEach(async () => {
  simulator = new OctopusSimulator({
    apiKeys: {
      [ADMIN_KEY]: { user: 'admin', permissions: 'all' },
      [DEPLOYER_KEY]: { user: 'deployer', permissions: ['TaskView'] },
    },
  });
  await simulator.start();
});

afterEach(() => simulator.stop());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  result: string;
}

/** Runs the bundle asynchronously: the simulator lives in this process and must keep answering. */
function runBundle(args: string[], apiKey: string = ADMIN_KEY, whileRunning?: () => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [builtStep('maintenance-mode'), '--service-messages', '--server-url', simulator.url, ...args], {
      env: { PATH: process.env.PATH, OCTOPUSDR_OCTOPUS_APIKEY: apiKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    whileRunning?.();
    child.on('close', (code) => {
      // The key must never be printed: only its mask registration may carry it (base64, as Octopus requires).
      if ((stdout.replace(/##octopus\[mask [^\]]*\]/g, '') + stderr).includes(apiKey)) {
        reject(new Error(`The API key appeared in the output:\n${stdout}\n${stderr}`));
        return;
      }
      resolve({
        code,
        stdout,
        stderr,
        outputs: outputVariablesIn(stdout),
        result: resultMessageIn(stdout) ?? '',
      });
    });
  });
}

test('turns maintenance mode on, records the previous mode, and is idempotent', async () => {
  const on = await runBundle(['--maintenance-mode', 'On', '--drain-timeout-minutes', '0']);
  expect(on.code).toBe(0);
  expect(on.outputs).toEqual({ PreviousMaintenanceMode: 'Off', SetByThisRun: 'True', MaintenanceMode: 'On', Changed: 'True' });
  expect(simulator.state.maintenance).toMatchObject({ IsInMaintenanceMode: true, LastModifiedBy: 'admin' });
  expect(on.stdout).toContain(`##octopus[mask value='${Buffer.from(ADMIN_KEY).toString('base64')}']`);
  expect(simulator.writes().map((w) => `${w.method} ${w.url}`)).toEqual(['PUT /api/maintenanceconfiguration']);

  simulator.resetRequestLog();
  const again = await runBundle(['--maintenance-mode', 'On', '--drain-timeout-minutes', '0']);
  expect(again.code).toBe(0);
  expect(again.outputs).toEqual({ PreviousMaintenanceMode: 'On', MaintenanceMode: 'On', Changed: 'False', SetByThisRun: 'False' });
  expect(again.stdout).toMatch(/Maintenance mode is already On \(set by admin at [^)]+\); nothing to change/);
  expect(simulator.writes()).toEqual([]);

  // (Finding it already On, the step listed running tasks: is it a mode an earlier run left on?)
  simulator.resetRequestLog();
  const off = await runBundle(['--maintenance-mode', 'Off']);
  expect(off.outputs).toEqual({ PreviousMaintenanceMode: 'On', SetByThisRun: 'False', MaintenanceMode: 'Off', Changed: 'True' });
  expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);
  // Turning maintenance mode off never waits for tasks.
  expect(simulator.requests.filter((r) => r.url.startsWith('/api/tasks'))).toHaveLength(0);
});

test('turning it on waits for other executing tasks, but not for its own task', async () => {
  const own = simulator.addTask({ Name: 'RunbookRun', Description: 'Run runbook: Back up Octopus' });
  const deployment = simulator.addTask({ Name: 'Deploy', Description: 'Deploy Web 1.2.3 to Production' });
  simulator.addTask({ Name: 'Health', State: 'Success' });
  // The deployment finishes only after the step has seen it executing (however slowly the step
  // starts on a loaded machine), so the step must have waited for it.
  const tasksUrl = '/api/tasks?states=Executing,Cancelling&take=1000';
  const polled = () => simulator.requests.filter((r) => r.url === tasksUrl).length;
  const before = polled();
  let finishedAfterPolls = 0;
  const run = await runBundle(['--maintenance-mode', 'On', '--drain-timeout-minutes', '5', '--current-task-id', own.Id], ADMIN_KEY, () => {
    const watch = setInterval(() => {
      if (polled() > before) {
        clearInterval(watch);
        finishedAfterPolls = polled() - before;
        simulator.completeTask(deployment.Id);
      }
    }, 50);
  });
  expect(run.code).toBe(0);
  expect(finishedAfterPolls).toBeGreaterThanOrEqual(1);
  expect(run.stdout).toContain(`Waiting for 1 executing task(s) to finish: ${deployment.Id} (Deploy Web 1.2.3 to Production, Executing)`);
  expect(run.result).toBe('Maintenance mode is On (was Off); no other task is executing.');
  expect(polled() - before).toBeGreaterThanOrEqual(2);
});

test('the drain gives up at the timeout and returns what is still running', async () => {
  const deployment = simulator.addTask({ Name: 'Deploy' });
  const connection = await connectToOctopus({ serverUrl: simulator.url, apiKey: ADMIN_KEY, userAgentApp: 'tests', apiKeySource: 'test' });
  const waits: number[] = [];
  const still = await waitForOtherTasks(connection, {
    currentTaskId: '',
    timeoutMs: 400,
    firstPollMs: 100,
    signal: new AbortController().signal,
    onWait: (others) => waits.push(others.length),
  });
  expect(still.map((t) => t.Id)).toEqual([deployment.Id]);
  expect(waits.length).toBeGreaterThanOrEqual(2);
});

test('a rejected key, a missing permission and a bad URL fail with what to do', async () => {
  const rejected = await runBundle(['--maintenance-mode', 'On'], 'API-UNKNOWN000000000000000000000');
  expect(rejected.code).toBe(1);
  expect(rejected.result).toMatch(/rejected the API key \(401 Unauthorized\) while reading the maintenance configuration/);

  const forbidden = await runBundle(['--maintenance-mode', 'On'], DEPLOYER_KEY);
  expect(forbidden.code).toBe(1);
  expect(forbidden.result).toMatch(/lacks the Octopus permission AdministerSystem \(403 Forbidden\) while turning maintenance mode on/);
  // The previous mode was read before the failure, for the runbook's final step.
  expect(forbidden.outputs.PreviousMaintenanceMode).toBe('Off');
  expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);

  const badUrl = await runBundle(['--maintenance-mode', 'On', '--server-url', 'octopus.example.com']);
  expect(badUrl.code).toBe(2);
  // Checked by the definition's format, in the same words as every step, before anything connects.
  expect(badUrl.result).toBe(
    '"Octopus Server URL" must be the Octopus Server\'s address (http:// or https://, no query), e.g. https://octopus.example.com, ' +
      'not "octopus.example.com": set "Octopus Server URL" (OctopusDr.Octopus.ServerUrl) in the step, or --server-url on the command line.',
  );
});

test('the earlier --mode still works (scripts use it), with a warning naming --maintenance-mode', async () => {
  const run = await runBundle(['--mode', 'On', '--drain-timeout-minutes', '0']);
  expect(run.code).toBe(0);
  expect(run.outputs.MaintenanceMode).toBe('On');
  expect(run.stdout + run.stderr).toContain('--mode is deprecated and will be removed: use --maintenance-mode ("Maintenance mode") instead.');
  expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
});

test('the built Bash template runs the step with Octopus parameters', async () => {
  const body = (JSON.parse(readFileSync(builtTemplate('bash', 'maintenance-mode'), 'utf8')) as { Properties: Record<string, string> }).Properties['Octopus.Action.Script.ScriptBody'];
  simulator.state.maintenance.IsInMaintenanceMode = true;
  const run = await runBashScriptBody(body, {
    parameters: {
      'OctopusDr.Octopus.ServerUrl': simulator.url,
      'OctopusDr.Octopus.ApiKey': ADMIN_KEY,
      // What the publisher binds in "Leave maintenance mode", after Octostache has resolved it.
      'OctopusDr.Octopus.MaintenanceMode': 'Off',
      'OctopusDr.Octopus.OnlyIfSetByThisRun': 'True',
      'OctopusDr.Octopus.DrainTimeoutMinutes': '0',
    },
  });
  expect(run.code).toBe(0);
  const outputs = outputVariablesIn(run.stdout);
  expect(outputs).toEqual({ PreviousMaintenanceMode: 'On', SetByThisRun: 'False', MaintenanceMode: 'Off', Changed: 'True' });
  expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);
  expect(run.stdout.replace(/##octopus\[mask [^\]]*\]/g, '') + run.stderr).not.toContain(ADMIN_KEY);
});
