// A step whose reader goes away (`| head`, a pager closed, a `tee` killed) finishes its work:
// Node would otherwise throw EPIPE as an uncaught error and kill it half-way, its cleanup not run.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, writeFileSync } from 'node:fs';
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

// /dev/full answers every write with ENOSPC, as a redirect (`> run.log`) to a full disk does.
function runWithStdoutOnFullDisk(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, args, { stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const fullDiskTest = existsSync('/dev/full') ? test : test.skip;

fullDiskTest('standard output on a full disk: said once on standard error, and every line from the one that failed to the summary written there instead, exit 0', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-closed-output-'));
  const logs = path.join(root, 'TaskLogs');
  mkdirSync(logs);
  for (let i = 0; i < 20; i++) writeFileSync(path.join(logs, `servertasks-${i}.log.txt`), `line ${i}\n`);
  const backups = path.join(root, 'backups');
  mkdirSync(backups);
  const run = await runWithStdoutOnFullDisk([builtStep('backup-file-store'), '--folders', `TaskLogs=${logs}`, '--include', 'TaskLogs', '--file-store-backup-directory', backups]);
  expect(run.code).toBe(0);
  expect(run.stderr).not.toMatch(/Unhandled 'error' event|at SyncWriteStream/);
  const lines = run.stderr.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('Standard output could not be written'))).toEqual([
    expect.stringContaining('ENOSPC'),
  ]);
  // The first line written to standard output is the one that failed: it is written again, not lost.
  expect(lines[1]).toBe(`TaskLogs: ${logs}`);
  expect(lines.at(-1)).toMatch(/^Full backup of 20 files \(\d+ bytes\) written to .*-full\.zip/);
  expect(readdirSync(backups).filter((n) => n.endsWith('-full.zip'))).toHaveLength(1);
});

fullDiskTest('a failure with standard output on a full disk keeps its last line last', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-closed-output-'));
  const run = await runWithStdoutOnFullDisk([builtStep('check-worker'), '--directories', path.join(root, 'absent'), '--minimum-free-space-gb', '0']);
  expect(run.code).toBe(1);
  expect(run.stderr.trim().split('\n').at(-1)).toMatch(/absent does not exist\. Create it, or correct the path\.$/);
});
