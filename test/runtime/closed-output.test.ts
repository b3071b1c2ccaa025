// A step whose reader goes away (`| head`, a pager closed, a `tee` killed) finishes its work:
// Node would otherwise throw EPIPE as an uncaught error and kill it half-way, its cleanup not run.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtStep } from '../helpers/bundle';

function runWithStdoutClosed(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // As `| head -1` does: read the first chunk, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('a backup whose standard output is closed after its first line still completes, exit 0, with no crash', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-closed-output-'));
  const logs = path.join(root, 'TaskLogs');
  mkdirSync(logs);
  for (let i = 0; i < 300; i++) writeFileSync(path.join(logs, `servertasks-${i}.log.txt`), `line ${i}\n`.repeat(200));
  const backups = path.join(root, 'backups');
  mkdirSync(backups);
  const run = await runWithStdoutClosed([
    builtStep('backup-file-store'),
    '--folders', `TaskLogs=${logs}`,
    '--include', 'TaskLogs',
    '--file-store-backup-directory', backups,
    '--verbose',
  ]);
  expect(run.stderr).not.toMatch(/Unhandled 'error' event|at afterWriteDispatched|Error: write EPIPE/);
  expect(run.code).toBe(0);
  const names = readdirSync(backups);
  expect(names.filter((n) => n.endsWith('-full.zip'))).toHaveLength(1);
  expect(names.filter((n) => n.endsWith('-full.zip.manifest.json') || n.endsWith('.manifest.json'))).not.toHaveLength(0);
  expect(names.filter((n) => n.includes('.tmp') || n.startsWith('.octopus-dr-'))).toEqual([]);
});

test('a failure still reaches standard error when standard output is closed', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-closed-output-'));
  const run = await runWithStdoutClosed([builtStep('check-worker'), '--directories', path.join(root, 'absent'), '--minimum-free-space-gb', '0']);
  expect(run.code).toBe(1);
  expect(run.stderr).not.toMatch(/Unhandled 'error' event|at afterWriteDispatched|Error: write EPIPE/);
  expect(run.stderr).toContain('ERROR: Worker check failed');
  expect(run.stderr.trim().split('\n').at(-1)).toMatch(/absent does not exist\. Create it, or correct the path\.$/);
});
