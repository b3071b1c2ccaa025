// Cold start of a step: from starting the runner (as Calamari does) to the first line of output,
// against the same shell starting bare `node` in the same process tree.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPwsh } from '../../test/helpers/runners';

const ROOT = path.resolve(__dirname, '../..');
const RUNS = 9;

function timeToFirstLine(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let done = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (!done && chunk.includes(10)) {
        done = true;
        resolve(Number(process.hrtime.bigint() - started) / 1e6);
      }
    });
    child.on('error', reject);
    child.on('close', () => {
      if (!done) reject(new Error(`${command} printed no line`));
    });
  });
}

function median(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The step and the bare start alternate run by run, so a change in the machine's load hits both alike. */
async function alternate(step: [string, string[]], bare: [string, string[]]): Promise<[number, number]> {
  const stepTimes: number[] = [];
  const bareTimes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    stepTimes.push(await timeToFirstLine(...step));
    bareTimes.push(await timeToFirstLine(...bare));
  }
  return [median(stepTimes), median(bareTimes)];
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-bench-cold-'));
  const template = (syntax: string) =>
    JSON.parse(readFileSync(path.join(ROOT, 'build/templates', syntax, 'check-worker.json'), 'utf8')).Properties['Octopus.Action.Script.ScriptBody'] as string;
  writeFileSync(path.join(dir, 'step.sh'), `get_octopusvariable() { :; }\n${template('bash')}`);
  writeFileSync(path.join(dir, 'bare.sh'), 'node -e "console.log(1)"\n');
  writeFileSync(path.join(dir, 'step.ps1'), `$OctopusParameters = @{}\n${template('powershell')}`);
  writeFileSync(path.join(dir, 'bare.ps1'), '& node -e "console.log(1)"\n');

  const rows: [string, number, number][] = [];
  rows.push(['Bash runner, check-worker', ...(await alternate(['bash', [path.join(dir, 'step.sh')]], ['bash', [path.join(dir, 'bare.sh')]]))]);
  const pwsh = findPwsh();
  if (pwsh) {
    const psArgs = (file: string) => ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', path.join(dir, file)];
    rows.push(['PowerShell runner, check-worker', ...(await alternate([pwsh, psArgs('step.ps1')], [pwsh, psArgs('bare.ps1')]))]);
  }
  process.stdout.write(`Cold start: runner start to first output line, median of ${RUNS} alternating runs (load ${os.loadavg()[0].toFixed(2)})\n`);
  process.stdout.write('| runner | step (ms) | same shell running bare `node -e` (ms) | overhead (ms) | ratio |\n|---|---|---|---|---|\n');
  for (const [name, step, bare] of rows) {
    process.stdout.write(`| ${name} | ${step.toFixed(0)} | ${bare.toFixed(0)} | ${(step - bare).toFixed(0)} | ${(step / bare).toFixed(2)} |\n`);
  }
}
