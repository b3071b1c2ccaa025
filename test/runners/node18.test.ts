// Octopus workers vary: every bundle must start on Node.js 18, the oldest we support.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { templates } from '../../templates';
import { outputVariablesIn } from '../../steps/runtime/service-messages';
import { findNode18 } from '../helpers/node18';
import { runBashScriptBody } from '../helpers/runners';

const node18 = findNode18();
const BUILD = path.resolve(__dirname, '../../build');
const maybe = node18 ? describe : describe.skip;

maybe('on Node.js 18', () => {
  test('the binary under test is Node 18', () => {
    expect(spawnSync(node18!, ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^v18\./);
  });

  // Steps whose dependencies need a newer Node.js refuse Node 18 instead (tested below).
  test.each(templates.filter((t) => !t.minimumNodeMajor).map((t) => t.stepId))('%s starts and prints its help', (stepId) => {
    const child = spawnSync(node18!, [path.join(BUILD, 'steps', `${stepId}.js`), '--help'], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout).toContain('Usage:');
  });

  test('check-worker runs to completion through the Bash runner with Node.js executable set to Node 18', async () => {
    const body = JSON.parse(require('node:fs').readFileSync(path.join(BUILD, 'templates/bash/check-worker.json'), 'utf8')).Properties[
      'Octopus.Action.Script.ScriptBody'
    ] as string;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-node18-'));
    const run = await runBashScriptBody(body, {
      parameters: { 'OctopusDr.NodePath': node18!, 'OctopusDr.Worker.Directories': dir, 'OctopusDr.Worker.MinimumFreeSpaceGB': '0' },
    });
    expect(run.code).toBe(0);
    const outputs = outputVariablesIn(run.stdout);
    expect(outputs.NodeVersion).toMatch(/^18\./);
    expect(outputs.Passed).toBe('True');
  });

  test.each(templates.filter((t) => t.minimumNodeMajor).map((t) => [t.stepId, t.minimumNodeMajor!] as const))(
    '%s needs Node %i: the bundle and the Bash runner refuse Node 18 and say how to get a newer node',
    async (stepId, minimum) => {
      const child = spawnSync(node18!, [path.join(BUILD, 'steps', `${stepId}.js`), '--help'], { encoding: 'utf8' });
      expect(child.status).toBe(1);
      expect(child.stderr).toMatch(new RegExp(`needs Node\\.js ${minimum} or newer .*this is Node\\.js 18\\.`));
      expect(child.stderr).toMatch(/install Node\.js \d+\+/);
      const body = JSON.parse(require('node:fs').readFileSync(path.join(BUILD, `templates/bash/${stepId}.json`), 'utf8')).Properties[
        'Octopus.Action.Script.ScriptBody'
      ] as string;
      const run = await runBashScriptBody(body, { parameters: { 'OctopusDr.NodePath': node18! } });
      expect(run.code).toBe(1);
      expect(run.stdout + run.stderr).toMatch(new RegExp(`Node\\.js v18\\.[0-9.]+ at .* is too old\\. .* needs Node\\.js ${minimum} or newer`));
    },
  );
});
