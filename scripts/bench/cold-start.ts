// Cold start of a step: from starting the runner (as Calamari does) to the first line of output,
// against the same shell starting bare `node` in the same process tree.
//   npm run bench -- cold-start [--runs=9] [--baseline=<another build/templates folder>]
// --baseline: an earlier build's runners alternate in the same rounds (before and after, one run).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPwsh } from '../../test/helpers/runners';

const ROOT = path.resolve(__dirname, '../..');

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

/** The commands alternate run by run, so a change in the machine's load hits all alike. */
async function alternate(runs: number, commands: [string, string[]][]): Promise<number[]> {
  const times: number[][] = commands.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const [index, command] of commands.entries()) times[index].push(await timeToFirstLine(...command));
  }
  return times.map(median);
}

export async function run(args: string[] = []): Promise<void> {
  const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const runs = Number(option('runs') ?? '9');
  const baseline = option('baseline');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-bench-cold-'));
  const template = (syntax: string, templates = path.join(ROOT, 'build/templates')) =>
    JSON.parse(readFileSync(path.join(templates, syntax, 'check-worker.json'), 'utf8')).Properties['Octopus.Action.Script.ScriptBody'] as string;
  // One folder to check: Check Worker refuses to run with nothing to check.
  const bashParameters = `get_octopusvariable() { case "$1" in OctopusDr.Worker.Directories) printf '%s' '${dir}';; OctopusDr.Worker.MinimumFreeSpaceGB) printf 0;; esac; }\n`;
  const powerShellParameters = `$OctopusParameters = @{ 'OctopusDr.Worker.Directories' = '${dir}'; 'OctopusDr.Worker.MinimumFreeSpaceGB' = '0' }\n`;
  writeFileSync(path.join(dir, 'step.sh'), `${bashParameters}${template('bash')}`);
  writeFileSync(path.join(dir, 'bare.sh'), 'node -e "console.log(1)"\n');
  writeFileSync(path.join(dir, 'step.ps1'), `${powerShellParameters}${template('powershell')}`);
  writeFileSync(path.join(dir, 'bare.ps1'), '& node -e "console.log(1)"\n');
  if (baseline) {
    writeFileSync(path.join(dir, 'baseline.sh'), `${bashParameters}${template('bash', baseline)}`);
    writeFileSync(path.join(dir, 'baseline.ps1'), `${powerShellParameters}${template('powershell', baseline)}`);
  }

  try {
    await measure(dir, runs, baseline);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(dir: string, runs: number, baseline: string | undefined): Promise<void> {
  const rows: [string, number, number][] = [];
  const shells: [string, string, (file: string) => string[]][] = [['Bash', 'bash', (file) => [path.join(dir, file)]]];
  const pwsh = findPwsh();
  if (pwsh) shells.push(['PowerShell', pwsh, (file) => ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', path.join(dir, file)]]);
  for (const [name, shell, argsOf] of shells) {
    const extension = shell === 'bash' ? 'sh' : 'ps1';
    const commands: [string, string[]][] = [[shell, argsOf(`step.${extension}`)], [shell, argsOf(`bare.${extension}`)]];
    if (baseline) commands.push([shell, argsOf(`baseline.${extension}`)]);
    const [step, bare, before] = await alternate(runs, commands);
    rows.push([`${name} runner, check-worker`, step, bare]);
    if (baseline) rows.push([`${name} runner, check-worker, baseline`, before, bare]);
  }
  process.stdout.write(`Cold start: runner start to first output line, median of ${runs} alternating runs (load ${os.loadavg()[0].toFixed(2)})\n`);
  process.stdout.write('| runner | step (ms) | same shell running bare `node -e` (ms) | overhead (ms) | ratio |\n|---|---|---|---|---|\n');
  for (const [name, step, bare] of rows) {
    process.stdout.write(`| ${name} | ${step.toFixed(0)} | ${bare.toFixed(0)} | ${(step - bare).toFixed(0)} | ${(step / bare).toFixed(2)} |\n`);
  }
}
