// `npm run demo` is the first thing a newcomer runs: it must pass end to end on the built steps,
// print no secret, and leave nothing behind (no temporary folder, no listening simulator).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { builtStep } from '../helpers/bundle';

const ROOT = path.resolve(__dirname, '../..');

test('the demo runs every step against the simulators and cleans up after itself', async () => {
  // The demo runs build/steps/*.js: refuse a build older than its sources before it starts.
  for (const step of ['check-worker', 'maintenance-mode', 'verify-master-key', 'backup-database', 'backup-file-store', 'test-restore', 'restore-database', 'restore-file-store']) builtStep(step);
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.cjs'), path.join(ROOT, 'scripts/demo/index.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, output }));
  });
  expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining('All 12 steps passed.') });
  for (const step of ['Check Worker', 'Verify master key', 'Back up database', 'Back up file store', 'Test latest backup', 'Restore database', 'Restore file store', 'Publish again (changes nothing)']) {
    expect(output).toMatch(new RegExp(`ok {3}${step.replace(/[()]/g, '\\$&')}`));
  }
  expect(output).toMatch(/Test restore: PASS/);
  expect(output).toContain('Simulators stopped.');
  expect(output).not.toContain('Sim-Passw0rd!');
  expect(output).not.toContain('API-DEMO');
  const work = /octopus-dr demo in (\S+)/.exec(output)?.[1];
  expect(work).toBeDefined();
  expect(existsSync(work!)).toBe(false);
}, 180_000);
