// The script bodies Octopus runs. Each carries the step's bundle brotli-compressed and base64-encoded
// (so neither Octostache `#{...}` nor shell quoting can touch it), writes it to a private temp
// folder, finds Node.js 18+, hands every parameter to node through its environment (never
// argv), propagates node's exit code and removes the temp folder on every path.
import type { StepTemplateDefinition } from '../../templates/model';
import { environmentNameOf } from '../../templates/model';

export const MINIMUM_NODE_MAJOR = 18;
const NODE_PATH_PARAMETER = 'OctopusDr.NodePath';

/** A step whose dependencies need a newer Node.js says so in its definition. */
export function minimumNodeOf(template: StepTemplateDefinition): number {
  return Math.max(MINIMUM_NODE_MAJOR, template.minimumNodeMajor ?? MINIMUM_NODE_MAJOR);
}

/**
 * Lines of 1,000 characters: the template JSON spells each line break `\n`, two bytes, so lines of 100
 * cost 2 % of the payload (test-restore: 13 KB of its 700 KB budget); 1,000 still edits and diffs.
 */
function wrapBase64(base64: string, width = 1000): string {
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += width) lines.push(base64.slice(i, i + width));
  return lines.join('\n');
}

/** How to get Node.js, shared by both runners' error messages. */
function nodeHelp(stepName: string, minimum = MINIMUM_NODE_MAJOR): string {
  return (
    `${stepName} needs Node.js ${minimum} or newer on the worker. Either: ` +
    `run the step in the octopusdeploy/worker-tools container image (it has Node.js); ` +
    `install Node.js ${minimum}+ on the worker (https://nodejs.org, or your package manager) so that node is on the PATH; ` +
    `or set the parameter Node.js executable (${NODE_PATH_PARAMETER}) to the full path of a node executable.`
  );
}

/** Checked so that the help text can sit inside both a Bash double-quoted and a PowerShell single-quoted string. */
function assertSafeForScript(text: string, what: string): void {
  // (Parameter names are embedded too: they are checked by assertSafeParameterNames.)
  // The runners quote these in single-quoted strings; reject anything that would need escaping.
  if (/['"`$\\\n\r]|#\{/.test(text)) throw new Error(`${what} contains a character the runner cannot embed: ${text}`);
}

/**
 * Node unpacks the program (brotli: .NET Framework, under Windows PowerShell 5.1, cannot) into the
 * private folder and runs it, in the one node process the step needs. Plain ES5 and old APIs only.
 * The Bash runner runs it with `node -e`, the program's path as its argument and the packed program
 * on stdin.
 */
const UNPACK = 'var z=require("zlib"),f=require("fs");' + 'function unpack(d,p){try{f.writeFileSync(p,z.brotliDecompressSync(Buffer.from(d,"base64")),{mode:384})}' + 'catch(e){console.error("Cannot unpack the step program into "+p+": "+e.message);process.exit(1)}}';
/**
 * The first thing either loader does is to leave `<program>.node` beside the program: the runner then
 * knows that Node.js ran the loader, so a loader that failed (its message above) is not reported as
 * an executable that is not Node.js, and only an executable that left no mark, or a success without
 * the program, is.
 */
const MARK = 'f.writeFileSync(p+".node","");';
const BASH_LOADER = `${UNPACK}var p=require("path").resolve(process.argv[1]);${MARK}unpack(f.readFileSync(0,"latin1"),p);require(p)`;
/**
 * The PowerShell runner writes this to a file and runs `node unpack.cjs <packed> <program>` (an
 * argument with double quotes would not survive Windows PowerShell 5.1's command line). It also
 * checks Node's version, so PowerShell starts node once, not twice (`node --version` cost ~45 ms);
 * it marks that it ran (see MARK), checks the version, removes the packed file and writes the program. The step then
 * sees the command line it would have had as `node <program>`.
 */
function powerShellLoader(template: StepTemplateDefinition): string {
  const help = nodeHelp(template.name, minimumNodeOf(template));
  return (
    `${UNPACK}var a=process.argv,s=a[2],p=a[3],d;${MARK}` +
    // The version first: it needs nothing a very old node lacks (its readFileSync knows no "latin1").
    `if((process.versions.node.split(".")[0]|0)<${minimumNodeOf(template)}){var t="Node.js "+process.version+" at "+process.execPath+" is too old. ${help}";` +
    `console.log("##octopus[resultMessage message=\\x27"+(Buffer.from?Buffer.from(t):new Buffer(t)).toString("base64")+"\\x27]");console.error(t);process.exit(1)}` +
    `try{d=f.readFileSync(s,"latin1")}catch(e){console.error("Cannot read the packed step program "+s+": "+e.message);process.exit(1)}try{f.unlinkSync(s)}catch(e){}` +
    'unpack(d,p);process.argv=[a[0],p];require(p)'
  );
}

/*
 * The files the runners write are named .cjs: under a folder with a package.json that says
 * "type": "module" above the temp folder, Node would take a .js file for an ES module, in which the
 * bundle's require is not defined. (Node before 12 knows no .cjs and loads it as .js.)
 */

/** Parameter names are embedded unquoted in both runners (variable names, single-quoted strings). */
function assertSafeParameterNames(template: StepTemplateDefinition): void {
  for (const p of template.parameters) {
    if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$/.test(p.name)) throw new Error(`Parameter name cannot be embedded in a runner: ${p.name}`);
  }
}

export function bashRunner(template: StepTemplateDefinition, packedBundle: Buffer, toolVersion: string): string {
  assertSafeForScript(template.name, 'Template name');
  assertSafeParameterNames(template);
  const exports = template.parameters
    .filter((p) => p.name !== NODE_PATH_PARAMETER)
    .map((p) => `export ${environmentNameOf(p.name)}="$(get_octopusvariable '${p.name}')"`);
  return [
    '#!/usr/bin/env bash',
    `# ${template.name} (octopus-dr ${toolVersion}). Generated by the octopus-dr build; do not edit.`,
    '# Runs the embedded Node.js program. Parameters reach node through its environment, never its command line.',
    'set -u',
    '',
    'octopus_dr_fail() {',
    '  echo "##octopus[resultMessage message=\'$(printf \'%s\' "$1" | base64 | tr -d \'\\n\')\']"',
    '  echo "$1" >&2',
    '  exit 1',
    '}',
    '',
    `node_bin="$(get_octopusvariable '${NODE_PATH_PARAMETER}')"`,
    'if [ -n "$node_bin" ]; then',
    '  if [ ! -x "$node_bin" ] || [ -d "$node_bin" ]; then',
    `    octopus_dr_fail "Node.js executable \\"$node_bin\\" (${NODE_PATH_PARAMETER}) does not exist or is not executable. ${nodeHelp(template.name, minimumNodeOf(template))}"`,
    '  fi',
    'else',
    '  node_bin="$(command -v node 2>/dev/null || true)"',
    '  if [ -z "$node_bin" ]; then',
    `    octopus_dr_fail "No node was found on the PATH. ${nodeHelp(template.name, minimumNodeOf(template))}"`,
    '  fi',
    'fi',
    'node_version="$("$node_bin" --version 2>/dev/null || true)"',
    'node_major="${node_version#v}"',
    'node_major="${node_major%%.*}"',
    'case "$node_major" in',
    `  ''|*[!0-9]*) octopus_dr_fail "\\"$node_bin --version\\" did not print a Node.js version. ${nodeHelp(template.name, minimumNodeOf(template))}" ;;`,
    'esac',
    `if [ "$node_major" -lt ${minimumNodeOf(template)} ]; then`,
    `  octopus_dr_fail "Node.js $node_version at $node_bin is too old. ${nodeHelp(template.name, minimumNodeOf(template))}"`,
    'fi',
    '',
    'work_dir="$(mktemp -d "${TMPDIR:-/tmp}/octopus-dr.XXXXXXXXXX")" || octopus_dr_fail "Cannot create a temporary folder in ${TMPDIR:-/tmp}."',
    'node_pid=""',
    'octopus_dr_cleanup() { rm -rf "$work_dir"; }',
    'trap octopus_dr_cleanup EXIT',
    'trap \'[ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null\' TERM INT',
    '',
    'export OCTOPUSDR_RUNNER=bash',
    ...exports,
    '',
    '# One node process unpacks the program (brotli-compressed, base64-encoded, on its stdin) into the private folder',
    '# and runs it: no other tool is needed, and node starts once. In the background, so that a cancel',
    '# (TERM) reaches node at once and node can clean up.',
    `"$node_bin" -e '${BASH_LOADER}' "$work_dir/${template.stepId}.cjs" <<'OCTOPUS_DR_BUNDLE' &`,
    wrapBase64(packedBundle.toString('base64')),
    'OCTOPUS_DR_BUNDLE',
    'node_pid=$!',
    'wait "$node_pid"',
    'status=$?',
    'while kill -0 "$node_pid" 2>/dev/null; do',
    '  wait "$node_pid"',
    '  status=$?',
    'done',
    '# The loader marks that Node.js ran it, then unpacks the program: with no mark, or a success without the',
    '# program, what ran was not our loader in Node.js (a loader that failed has said why).',
    `if [ ! -f "$work_dir/${template.stepId}.cjs" ] && { [ "$status" -eq 0 ] || [ ! -f "$work_dir/${template.stepId}.cjs.node" ]; }; then`,
    `  octopus_dr_fail "\\"$node_bin\\" did not run the step program (exit code $status): if no line above says why, it is not Node.js. ${nodeHelp(template.name, minimumNodeOf(template))}"`,
    'fi',
    'exit "$status"',
    '',
  ].join('\n');
}

export function powerShellRunner(template: StepTemplateDefinition, packedBundle: Buffer, toolVersion: string): string {
  assertSafeForScript(template.name, 'Template name');
  assertSafeParameterNames(template);
  const names = template.parameters.filter((p) => p.name !== NODE_PATH_PARAMETER);
  return [
    `# ${template.name} (octopus-dr ${toolVersion}). Generated by the octopus-dr build; do not edit.`,
    '# Runs the embedded Node.js program. Parameters reach node through its environment, never its command line.',
    '# Works in Windows PowerShell 5.1 and PowerShell 7.',
    "$ErrorActionPreference = 'Stop'",
    '# .NET calls rather than cmdlets from Microsoft.PowerShell.Utility and .Management: loading those',
    '# modules costs PowerShell hundreds of milliseconds before the step starts.',
    '',
    "# A parameter reads as '' when missing or null. No function of our own is called on the way to node:",
    '# the first call of one cost PowerShell tens of milliseconds.',
    'if ($null -eq $OctopusParameters) { $OctopusParameters = @{} }',
    '',
    'function Stop-OctopusDr([string]$Message) {',
    '  $encoded = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($Message))',
    "  Write-Host \"##octopus[resultMessage message='$encoded']\"",
    '  [Console]::Error.WriteLine($Message)',
    '  exit 1',
    '}',
    '',
    `$nodeHelp = '${nodeHelp(template.name, minimumNodeOf(template))}'`,
    `$node = [string]$OctopusParameters['${NODE_PATH_PARAMETER}']`,
    "if ($node -ne '') {",
    '  if (-not [IO.File]::Exists($node)) {',
    `    Stop-OctopusDr "Node.js executable \`"$node\`" (${NODE_PATH_PARAMETER}) does not exist. $nodeHelp"`,
    '  }',
    '} else {',
    '  # PowerShell finds it on the PATH when it runs it (below): Get-Command, or a search of the PATH in',
    '  # script, cost ~70-150 ms before node started.',
    "  $node = 'node'",
    '}',
    '# Node checks its own version (in unpack.cjs): one node process instead of two.',
    '',
    '# A full path: unpack.cjs requires the program by it, and a relative TMPDIR would be looked up as a module.',
    "$workDir = [IO.Path]::GetFullPath([IO.Path]::Combine([IO.Path]::GetTempPath(), 'octopus-dr-' + [Guid]::NewGuid().ToString('N')))",
    '# Private from the start on Linux and macOS; on Windows the',
    '# per-user %TEMP% already is.',
    '# ($IsLinux and $IsMacOS do not exist in Windows PowerShell 5.1: $null there.)',
    'if ($IsLinux -or $IsMacOS) {',
    '  # .NET 7+ (PowerShell 7.3+) creates it with mode 0700 itself; older ones need mkdir, a process more.',
    '  try { [void][IO.Directory]::CreateDirectory($workDir, [IO.UnixFileMode]448) } catch {',
    '    & mkdir -m 700 $workDir',
    "    if ($LASTEXITCODE -ne 0) { Stop-OctopusDr \"Cannot create a temporary folder in $([IO.Path]::GetTempPath()).\" }",
    '  }',
    '} else {',
    '  [void][IO.Directory]::CreateDirectory($workDir)',
    '}',
    `$program = [IO.Path]::Combine($workDir, '${template.stepId}.cjs')`,
    '$exitCode = 1',
    'try {',
    '  # The program, brotli-compressed and base64-encoded: node unpacks it (see unpack.cjs) and runs it.',
    "  $bundle = @'",
    wrapBase64(packedBundle.toString('base64')),
    "'@",
    `  $packed = [IO.Path]::Combine($workDir, '${template.stepId}.cjs.br')`,
    '  [IO.File]::WriteAllText($packed, $bundle)',
    "  $unpack = [IO.Path]::Combine($workDir, 'unpack.cjs')",
    `  [IO.File]::WriteAllText($unpack, '${powerShellLoader(template)}')`,
    '',
    "  $env:OCTOPUSDR_RUNNER = 'powershell'",
    ...names.map((p) => `  $env:${environmentNameOf(p.name)} = [string]$OctopusParameters['${p.name}']`),
    '  # Calamari reads this script\'s output in the OEM code page on Windows, whatever PowerShell is told,',
    '  # so node writes ASCII there (other characters as <U+XXXX>); the console encoding is left alone.',
    "  # Under 'Stop', Windows PowerShell 5.1 with redirected streams turns a line node writes to stderr into a",
    '  # terminating error; node reports failure through its exit code instead.',
    "  $ErrorActionPreference = 'Continue'",
    '  try { & $node $unpack $packed $program } catch [Management.Automation.CommandNotFoundException] { Stop-OctopusDr "No node was found on the PATH. $nodeHelp" }',
    '  $exitCode = $LASTEXITCODE',
    "  $ErrorActionPreference = 'Stop'",
    '  # unpack.cjs marks that Node.js ran it, then unpacks the program: with no mark, or a success without',
    '  # the program, what ran was not Node.js (an unpack.cjs that failed, e.g. on a file an antivirus holds, has said why).',
    '  if (-not [IO.File]::Exists($program) -and ($exitCode -eq 0 -or -not [IO.File]::Exists("$program.node"))) {',
    '    Stop-OctopusDr "`"$node`" did not run the step program (exit code $exitCode): it does not look like Node.js. $nodeHelp"',
    '  }',
    '} finally {',
    ...names.map((p) => `  [Environment]::SetEnvironmentVariable('${environmentNameOf(p.name)}', $null)`),
    "  [Environment]::SetEnvironmentVariable('OCTOPUSDR_RUNNER', $null)",
    '  try { [IO.Directory]::Delete($workDir, $true) } catch { }',
    '}',
    'exit $exitCode',
    '',
  ].join('\n');
}
