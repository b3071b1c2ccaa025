// Runs generated ScriptBodies the way Octopus does: Bash with a stand-in for Calamari's
// get_octopusvariable, PowerShell with an $OctopusParameters dictionary.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function findPwsh(): string | undefined {
  const candidates = [
    ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'pwsh')),
    path.join(os.homedir(), '.dotnet', 'tools', 'pwsh'),
  ];
  return candidates.find((c) => existsSync(c));
}

export interface RunScriptOptions {
  /** Octopus parameters (name -> value) the script can read. */
  parameters: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  /** Called every 50 ms while the script runs (e.g. to scan the process list). */
  whileRunning?: () => void;
  signalAfterMs?: { signal: NodeJS.Signals; ms: number };
  /** Sends the signal once stdout matches (a step that has started, however slowly on a loaded machine). */
  signalWhenStdout?: { signal: NodeJS.Signals; pattern: RegExp };
}

function run(command: string, args: string[], options: RunScriptOptions, cwd: string): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (options.signalWhenStdout && !signalled && options.signalWhenStdout.pattern.test(stdout)) {
        signalled = true;
        child.kill(options.signalWhenStdout.signal);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const poll = options.whileRunning ? setInterval(options.whileRunning, 50) : undefined;
    const killer = options.signalAfterMs
      ? setTimeout(() => child.kill(options.signalAfterMs!.signal), options.signalAfterMs.ms)
      : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (poll) clearInterval(poll);
      if (killer) clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function runBashScriptBody(body: string, options: RunScriptOptions): Promise<ScriptRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-bash-'));
  const values = path.join(dir, 'variables');
  require('node:fs').mkdirSync(values);
  for (const [name, value] of Object.entries(options.parameters)) writeFileSync(path.join(values, name), value);
  // Like Calamari's bootstrap: the function prints the variable's value, nothing when unset.
  const standIn = [
    'get_octopusvariable() {',
    `  local file="${values}/$1"`,
    '  if [ -f "$file" ]; then cat "$file"; fi',
    '}',
  ].join('\n');
  writeFileSync(path.join(dir, 'bootstrap.sh'), `${standIn}\nsource "${path.join(dir, 'script.sh')}"\n`);
  writeFileSync(path.join(dir, 'script.sh'), body);
  return run('/bin/bash', [path.join(dir, 'bootstrap.sh')], options, dir);
}

export function runPowerShellScriptBody(body: string, options: RunScriptOptions): Promise<ScriptRun> {
  const pwsh = findPwsh();
  if (!pwsh) throw new Error('pwsh not found: .ci/run installs it (dotnet tool install --global PowerShell)');
  const bootstrap = writePowerShellBootstrap(body, options.parameters);
  return run(pwsh, ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', bootstrap], options, path.dirname(bootstrap));
}

/** Writes the ScriptBody and a stand-in for Calamari's Bootstrap.ps1 around it; returns the bootstrap's path. */
export function writePowerShellBootstrap(body: string, parameters: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-pwsh-'));
  writeFileSync(path.join(dir, 'variables.json'), JSON.stringify(parameters));
  // Like Calamari's Bootstrap.ps1: Stop on errors, a case-insensitive Dictionary[string,string]
  // named $OctopusParameters, the script dot-sourced, then exit with the last exit code.
  const standIn = [
    "$ErrorActionPreference = 'Stop'",
    "$OctopusParameters = New-Object 'System.Collections.Generic.Dictionary[String,String]' ([System.StringComparer]::OrdinalIgnoreCase)",
    `$json = [IO.File]::ReadAllText('${path.join(dir, 'variables.json')}', [Text.Encoding]::UTF8) | ConvertFrom-Json`,
    'foreach ($p in $json.PSObject.Properties) { $OctopusParameters[$p.Name] = [string]$p.Value }',
    `. '${path.join(dir, 'script.ps1')}'`,
    'if ((Test-Path variable:global:LASTEXITCODE)) { exit $LASTEXITCODE }',
  ].join('\n');
  writeFileSync(path.join(dir, 'bootstrap.ps1'), standIn);
  writeFileSync(path.join(dir, 'script.ps1'), body);
  return path.join(dir, 'bootstrap.ps1');
}
