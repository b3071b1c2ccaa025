// Set Maintenance Mode as the published "Back up Octopus" runbook uses it, in-process through runStep()
// against the Octopus API simulator: "Enter" turns it on and waits for running tasks; "Leave" turns it
// off only when "Enter" says this run set it. Red team 38 (rt38-mm-*): a cancel while draining left
// maintenance mode on with nothing said (and a cancelled Octopus task runs no later step, not even
// an "Always" one); "Leave" turned off an administrator's window when "Enter" failed before reading
// the mode; and a mode left on by a cancelled run was put back on, night after night, green.
import { RUNBOOKS } from '../../scripts/publish/runbooks';
import { CancelledError } from '../../steps/runtime/errors';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { runStepInProcess } from '../helpers/in-process';
import { OctopusSimulator } from '../octopus-simulator/simulator';

/** The octopus-dr service account's key (as the docs recommend), and a person's (an administrator). */
const DR_KEY = 'API-OCTOPUSDRSERVICE0000000000001';
const ADMIN_KEY = 'API-ADMINISTRATOR00000000000000001';
const PERSON_DR_KEY = 'API-PERSONASDR000000000000000001';

let simulator: OctopusSimulator;
beforeEach(async () => {
  simulator = new OctopusSimulator({
    apiKeys: {
      [DR_KEY]: { user: 'octopus-dr', permissions: 'all', isService: true },
      [ADMIN_KEY]: { user: 'alice', permissions: 'all' },
      [PERSON_DR_KEY]: { user: 'bob', permissions: 'all' },
    },
  });
  await simulator.start();
});
afterEach(() => simulator.stop());

const ENTER = 'Octopus.Action[Enter maintenance mode].Output.SetByThisRun';
const leaveStep = RUNBOOKS.find((r) => r.name === 'Back up Octopus')!.steps.find((s) => s.name === 'Leave maintenance mode')!;

/** What Octostache makes of the publisher's binding of "Only if this run set it", given Enter's outputs. */
function resolveLeaveBinding(enterOutputs: Record<string, string>): string {
  expect(leaveStep.values!['OctopusDr.Octopus.OnlyIfSetByThisRun']).toBe(`#{if ${ENTER}}#{${ENTER}}#{else}Unknown#{/if}`);
  return enterOutputs.SetByThisRun ? enterOutputs.SetByThisRun : 'Unknown';
}

interface Run {
  code: number;
  stdout: string;
  outputs: Record<string, string>;
  result: string;
}

async function run(args: string[], options: { key?: string; onStdout?: (out: string) => void; signal?: AbortSignal } = {}): Promise<Run> {
  const done = await runStepInProcess('maintenance-mode', ['--service-messages', '--server-url', simulator.url, ...args], {
    env: { OCTOPUSDR_OCTOPUS_APIKEY: options.key ?? DR_KEY },
    onStdout: options.onStdout,
    signal: options.signal,
  });
  return { code: done.code, stdout: done.stdout, outputs: outputVariablesIn(done.stdout), result: resultMessageIn(done.stdout) ?? '' };
}

const enter = (args: string[] = [], options: Parameters<typeof run>[1] = {}) => run(['--maintenance-mode', 'On', '--drain-timeout-minutes', '30', ...args], options);
const leave = (setByThisRun: string, options: Parameters<typeof run>[1] = {}) => {
  expect(leaveStep.values!['OctopusDr.Octopus.MaintenanceMode']).toBe('Off');
  expect(leaveStep.values!['OctopusDr.Octopus.DrainTimeoutMinutes']).toBe('0');
  return run(['--maintenance-mode', 'Off', '--drain-timeout-minutes', '0', '--only-if-set-by-this-run', setByThisRun], options);
};

/** Enter, cancelled (as Octopus cancels: SIGTERM) once it is waiting for a running task; `before` runs first. */
async function enterCancelledWhileDraining(before: () => void = () => undefined): Promise<Run> {
  simulator.addTask({ Name: 'Deploy', Description: 'Deploy Web 1.2.3 to Production' });
  const controller = new AbortController();
  return enter([], {
    signal: controller.signal,
    onStdout: (out) => {
      if (!controller.signal.aborted && /Waiting for 1 executing task/.test(out)) {
        before();
        controller.abort(new CancelledError('SIGTERM'));
      }
    },
  });
}

const HOW_TO_TURN_OFF = /To turn it off: in Octopus, Configuration > Maintenance, switch maintenance mode off; or with the API, PUT http:\/\/127\.0\.0\.1:\d+\/api\/maintenanceconfiguration with the body \{"IsInMaintenanceMode": false\}/;

describe('a cancel or failure while draining puts back what Enter changed', () => {
  test('cancelled while waiting for a running task: maintenance mode is turned back Off, and the last line says so', async () => {
    const cancelled = await enterCancelledWhileDraining();
    expect(cancelled.code).toBe(143);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);
    expect(cancelled.result).toBe('Cancelled (SIGTERM); cleanup has run. Maintenance mode was turned back Off: this run had turned it on.');
    // The last word of each output: nothing for a Leave step to undo.
    expect(cancelled.outputs).toMatchObject({ SetByThisRun: 'False', MaintenanceMode: 'Off', Changed: 'False' });
    expect(simulator.writes().map((w) => `${w.method} ${w.url}`)).toEqual(['PUT /api/maintenanceconfiguration', 'PUT /api/maintenanceconfiguration']);
  });

  test('cancelled, and the server refuses to turn it back off: the last line says it is still On and how to turn it off', async () => {
    const cancelled = await enterCancelledWhileDraining(() => {
      simulator.fault = (method, path) => (method === 'PUT' && path === '/api/maintenanceconfiguration' ? { status: 503, message: 'The server is busy.' } : undefined);
    });
    expect(cancelled.code).toBe(143);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
    expect(cancelled.result).toMatch(/^Cancelled \(SIGTERM\); cleanup has run\. Maintenance mode is still On: this run turned it on, and turning it back off failed \(.*answered 503 while turning maintenance mode off.*The server is busy/);
    expect(cancelled.result).toMatch(HOW_TO_TURN_OFF);
    // Still this run's, should a later step run after all.
    expect(cancelled.outputs.SetByThisRun).toBe('True');
  });

  test('cancelled, and the server is gone: the last line says it is still On and how to turn it off', async () => {
    const cancelled = await enterCancelledWhileDraining(() => {
      simulator.fault = () => 'drop';
    });
    expect(cancelled.code).toBe(143);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
    expect(cancelled.result).toMatch(/Maintenance mode is still On: this run turned it on, and turning it back off failed \(Cannot (reach|talk to) the Octopus Server at .* while turning maintenance mode off/);
    expect(cancelled.result).toMatch(HOW_TO_TURN_OFF);
  });

  test('the drain fails (the task list cannot be read): maintenance mode is turned back Off, and the failure says so', async () => {
    simulator.addTask({ Name: 'Deploy', Description: 'Deploy Web 1.2.3 to Production' });
    let polls = 0;
    simulator.fault = (method, path) => (method === 'GET' && path === '/api/tasks' && ++polls > 1 ? { status: 500, message: 'Database timeout.' } : undefined);
    const failed = await enter();
    expect(failed.code).toBe(1);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);
    expect(failed.result).toMatch(/answered 500 while listing running tasks: Database timeout\. Maintenance mode was turned back Off: this run had turned it on\.$/);
    expect(failed.outputs.SetByThisRun).toBe('False');
  });

  test('cancelled while the mode was already On before the run: nothing is changed, and the last line says whose it is', async () => {
    simulator.state.maintenance = { IsInMaintenanceMode: true, LastModifiedBy: 'alice', LastModifiedOn: '2026-12-01T01:00:00.000Z' };
    const cancelled = await enterCancelledWhileDraining();
    expect(cancelled.code).toBe(143);
    expect(simulator.state.maintenance).toMatchObject({ IsInMaintenanceMode: true, LastModifiedBy: 'alice' });
    expect(cancelled.result).toBe(
      'Cancelled (SIGTERM); cleanup has run. Maintenance mode is On, as it was before this run (set by alice at 2026-12-01T01:00:00.000Z); this run did not change it.',
    );
    expect(simulator.writes()).toEqual([]);
  });
});

describe('Leave turns maintenance mode off only when Enter says this run set it', () => {
  test('Enter failed before it read the mode, during an administrator\'s window: Leave changes nothing and says so (rt38)', async () => {
    simulator.state.maintenance = { IsInMaintenanceMode: true, LastModifiedBy: 'alice', LastModifiedOn: '2026-12-01T01:00:00.000Z' };
    const failed = await run(['--maintenance-mode', 'On', '--server-url', 'http://127.0.0.1:9']);
    expect(failed.code).toBe(1);
    expect(failed.outputs.SetByThisRun).toBeUndefined();
    const left = await leave(resolveLeaveBinding(failed.outputs));
    expect(left.code).toBe(0);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
    expect(simulator.writes()).toEqual([]);
    expect(left.result).toMatch(
      /^Maintenance mode not changed: the entering step reported nothing \("Only if this run set it" is "Unknown", not True\): it failed before it read maintenance mode, or did not run\. It is left as it is: On \(set by alice at 2026-12-01T01:00:00\.000Z\)\. If nobody should be holding it on: in Octopus, Configuration > Maintenance/,
    );
  });

  test('Enter found it On (an administrator\'s window): Leave leaves it On', async () => {
    simulator.state.maintenance = { IsInMaintenanceMode: true, LastModifiedBy: 'alice', LastModifiedOn: '2026-12-01T01:00:00.000Z' };
    const entered = await enter(['--drain-timeout-minutes', '0']);
    expect(entered.code).toBe(0);
    expect(entered.outputs).toMatchObject({ PreviousMaintenanceMode: 'On', Changed: 'False', SetByThisRun: 'False' });
    // Loud: a green run that leaves deployments blocked says so, with who and when.
    expect(entered.stdout).toMatch(/Maintenance mode was already On before this run \(set by alice at 2026-12-01T01:00:00\.000Z\), and this run leaves it On at the end: it is not known to be a leftover of octopus-dr \(alice turned it on, not octopus-dr/);
    const left = await leave(resolveLeaveBinding(entered.outputs));
    expect(left.code).toBe(0);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
    expect(left.result).toMatch(/^Maintenance mode not changed: the entering step reports that this run did not set maintenance mode/);
    expect(simulator.writes()).toEqual([]);
  });

  test('Enter turned it on: Leave turns it off', async () => {
    const entered = await enter(['--drain-timeout-minutes', '0']);
    expect(entered.outputs).toMatchObject({ SetByThisRun: 'True', Changed: 'True' });
    const left = await leave(resolveLeaveBinding(entered.outputs));
    expect(left.code).toBe(0);
    expect(left.result).toBe('Maintenance mode is Off (was On).');
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);
  });

  test('Leave fails to turn it off: the last line says it is still On and how to turn it off', async () => {
    const entered = await enter(['--drain-timeout-minutes', '0']);
    simulator.fault = (method) => (method === 'PUT' ? { status: 503, message: 'The server is busy.' } : undefined);
    const left = await leave(resolveLeaveBinding(entered.outputs));
    expect(left.code).toBe(1);
    expect(left.result).toMatch(/answered 503 while turning maintenance mode off .*Maintenance mode is still On\. To turn it off:/);
    expect(left.result).toMatch(HOW_TO_TURN_OFF);
  });
});

describe('Enter takes over a maintenance mode an earlier octopus-dr run left on, and nothing else', () => {
  test('left on by a cancelled run: the next run takes it over and its Leave turns it off (rt38)', async () => {
    // A cancel at a later step (the backup): Octopus runs no further step, so Leave never ran.
    const first = await enter(['--drain-timeout-minutes', '0']);
    expect(first.outputs.SetByThisRun).toBe('True');
    expect(simulator.state.maintenance).toMatchObject({ IsInMaintenanceMode: true, LastModifiedBy: 'octopus-dr' });

    const next = await enter();
    expect(next.code).toBe(0);
    expect(next.outputs).toMatchObject({ PreviousMaintenanceMode: 'On', Changed: 'False', SetByThisRun: 'True' });
    expect(next.stdout).toMatch(/Maintenance mode was already On \(set by octopus-dr at [^)]*\), left on by an earlier octopus-dr run \(octopus-dr, the service account of this API key, turned it on, and no other task is executing\)/);
    const left = await leave(resolveLeaveBinding(next.outputs));
    expect(left.code).toBe(0);
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(false);
  });

  test('set by a person whose key octopus-dr uses: not taken over (it may be their own window)', async () => {
    await enter(['--drain-timeout-minutes', '0'], { key: PERSON_DR_KEY });
    const next = await enter(['--drain-timeout-minutes', '0'], { key: PERSON_DR_KEY });
    expect(next.outputs.SetByThisRun).toBe('False');
    expect(next.stdout).toMatch(/bob, this API key's user, turned it on, but bob is a person's account \(not a service account\)/);
    await leave(resolveLeaveBinding(next.outputs), { key: PERSON_DR_KEY });
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
  });

  test('set by the service account while another task is executing (a run that still owns it): not taken over', async () => {
    await enter(['--drain-timeout-minutes', '0']);
    const other = simulator.addTask({ Name: 'RunbookRun', Description: 'Run runbook: Back up Octopus' });
    const next = await enter(['--drain-timeout-minutes', '0']);
    expect(next.outputs.SetByThisRun).toBe('False');
    expect(next.stdout).toContain(`other tasks are executing and may own it: ${other.Id}`);
  });

  test('Octopus does not say who set it: not taken over, and the warning says why', async () => {
    simulator.state.maintenance = { IsInMaintenanceMode: true, LastModifiedBy: '', LastModifiedOn: '' };
    const next = await enter(['--drain-timeout-minutes', '0']);
    expect(next.outputs.SetByThisRun).toBe('False');
    expect(next.stdout).toMatch(/it is not known to be a leftover of octopus-dr \(Octopus does not say who turned it on\)/);
  });

  test('the run that owned it turns it off while this one drains: this run turns it on again and owns it', async () => {
    await enter(['--drain-timeout-minutes', '0']);
    const owner = simulator.addTask({ Name: 'RunbookRun', Description: 'Run runbook: Back up Octopus' });
    let done = false;
    const next = await enter([], {
      onStdout: (out) => {
        if (!done && /Waiting for 1 executing task/.test(out)) {
          done = true;
          // The other run's Leave, then its end.
          simulator.state.maintenance = { IsInMaintenanceMode: false, LastModifiedBy: 'octopus-dr', LastModifiedOn: new Date().toISOString() };
          simulator.completeTask(owner.Id);
        }
      },
    });
    expect(next.code).toBe(0);
    expect(next.outputs).toMatchObject({ SetByThisRun: 'True', Changed: 'True' });
    expect(simulator.state.maintenance.IsInMaintenanceMode).toBe(true);
    expect(next.result).toBe('Maintenance mode is On (was On, then turned off while this step waited; turned on again); no other task is executing.');
  });
});
