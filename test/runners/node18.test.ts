// Octopus workers vary: every bundle must start on Node.js 18, the oldest we support.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { templates } from '../../templates';
import { outputVariablesIn } from '../../steps/shared/runtime/service-messages';
import { findNode18 } from '../helpers/node18';
import { runBashScriptBody } from '../helpers/runners';

const node18 = findNode18();
const BUILD = path.resolve(__dirname, '../../build');
const maybe = node18 ? describe : describe.skip;

maybe('on Node.js 18', () => {
  test('the binary under test is Node 18', () => {
    expect(spawnSync(node18!, ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^v18\./);
  });

  test.each(templates.map((t) => t.stepId))('%s starts and prints its help', (stepId) => {
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
});
