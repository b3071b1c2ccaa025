// Runs the generated PowerShell and Bash ScriptBodies for real, as Octopus would.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleEntry } from '../../scripts/build/bundle';
import { packBundle } from '../../scripts/build/index';
import { bashRunner, powerShellRunner } from '../../scripts/build/runners';
import { parseServiceMessages, outputVariablesIn } from '../../steps/runtime/service-messages';
import { findPwsh, runBashScriptBody, runPowerShellScriptBody, type RunScriptOptions, type ScriptRun } from '../helpers/runners';
import { echoTemplate } from './echo-step';

const TRICKY = `it's "quoted" $HOME \`whoami\` #{Octopus.Project.Name} ]]> \\back\\slash\\ Zürich ✓ 日本語 %PATH% ;&| end`;
const SECRET = `s3cr3t-'"$(id)-#{x}-Pässwörd`;

type Syntax = 'bash' | 'powershell';
const syntaxes: Syntax[] = findPwsh() ? ['bash', 'powershell'] : ['bash'];
const bodies: Record<Syntax, string> = { bash: '', powershell: '' };

beforeAll(async () => {
  const bundle = await bundleEntry(path.join(__dirname, 'echo-step.ts'), echoTemplate.stepId, 'test');
  const packed = packBundle(bundle.code);
  bodies.bash = bashRunner(echoTemplate, packed, 'test');
  bodies.powershell = powerShellRunner(echoTemplate, packed, 'test');
});

function runBody(syntax: Syntax, options: RunScriptOptions): Promise<ScriptRun> {
  return syntax === 'bash' ? runBashScriptBody(bodies.bash, options) : runPowerShellScriptBody(bodies.powershell, options);
}

function outputs(run: ScriptRun): Record<string, string> {
  return outputVariablesIn(run.stdout);
}

function privateTempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-runner-tmp-'));
}

/** Every process's command line, to prove secrets never reach argv. */
function allCommandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // the process ended
    }
  }
  return lines;
}

describe.each(syntaxes)('%s runner', (syntax) => {
  test('hands every parameter to node intact, through the environment only', async () => {
    const tmp = privateTempDir();
    let sawNode = false;
    const leaks: string[] = [];
    const workDirModes = new Set<number>();
    const run = await runBody(syntax, {
      parameters: {
        'OctopusDr.Test.Text': TRICKY,
        'OctopusDr.Test.Lines': `first line\nsecond: ${TRICKY}\r\nthird`,
        'OctopusDr.Test.Secret': SECRET,
        'OctopusDr.Test.Flag': 'True',
        'OctopusDr.Test.HoldMs': '1500',
      },
      env: { TMPDIR: tmp },
      whileRunning: () => {
        for (const entry of readdirSync(tmp).filter((e) => e.startsWith('octopus-dr'))) {
          try {
            workDirModes.add(statSync(path.join(tmp, entry)).mode & 0o777);
          } catch {
            // removed meanwhile
          }
        }
        for (const line of allCommandLines()) {
          if (line.includes('echo-parameters.cjs')) sawNode = true;
          if (line.includes(SECRET) || line.includes('s3cr3t')) leaks.push(line);
        }
      },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = outputs(run);
    expect(out['Echo.Text']).toBe(TRICKY.trim());
    expect(JSON.parse(out['Echo.Lines'])).toEqual(['first line', `second: ${TRICKY}`, 'third']);
    expect(out['Echo.SecretSha256']).toBe(require('node:crypto').createHash('sha256').update(SECRET).digest('hex'));
    expect(out['Echo.Flag']).toBe('true');
    // The runtime removes parameter variables so child processes never inherit secrets.
    expect(out['Echo.ParameterVariablesLeft']).toBe('');
    expect(sawNode).toBe(true);
    // The folder holding the program is private to the worker's account.
    expect([...workDirModes]).toEqual([0o700]);
    expect(leaks).toEqual([]);
    // Octopus is told to mask the secret, and our own output redacts it.
    expect(parseServiceMessages(run.stdout).some((m) => m.name === 'mask' && m.attributes.value === SECRET)).toBe(true);
    expect(run.stdout).toContain('Secret as given: ********');
    expect(run.stdout).not.toContain(SECRET);
    // The temp folder holding the program is gone.
    expect(readdirSync(tmp)).toEqual([]);
  });

  test.each([0, 1, 7, 42])('propagates node exit code %i', async (exitCode) => {
    const tmp = privateTempDir();
    const run = await runBody(syntax, { parameters: { 'OctopusDr.Test.ExitCode': String(exitCode) }, env: { TMPDIR: tmp } });
    expect(run.code).toBe(exitCode);
    if (exitCode !== 0) {
      const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage');
      expect(result?.attributes.message).toBe(`Asked to exit with ${exitCode}`);
    }
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('a bad parameter fails with exit code 2 naming its label', async () => {
    const run = await runBody(syntax, { parameters: { 'OctopusDr.Test.HoldMs': 'soon' }, env: { TMPDIR: privateTempDir() } });
    expect(run.code).toBe(2);
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage');
    expect(result?.attributes.message).toContain('"Hold (ms)" must be a whole number');
  });

  test('a missing node executable gives the ways to get Node.js', async () => {
    const tmp = privateTempDir();
    const run = await runBody(syntax, { parameters: { 'OctopusDr.NodePath': '/nonexistent/node' }, env: { TMPDIR: tmp } });
    expect(run.code).toBe(1);
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
    expect(result).toContain('/nonexistent/node');
    expect(result).toContain('octopusdeploy/worker-tools');
    expect(result).toContain('OctopusDr.NodePath');
    expect(run.stderr).toContain('Node.js 18 or newer');
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('a too-old node is refused with the ways to get a newer one', async () => {
    const fakeBin = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-old-node-'));
    const fakeNode = path.join(fakeBin, 'node');
    // A real node that says it is 16: the Bash runner asks `node --version`, the PowerShell runner's
    // unpack.js reads process.versions.
    const pretend16 = path.join(fakeBin, 'pretend-16.js');
    writeFileSync(pretend16, 'for (const [k, v] of [["versions", Object.assign({}, process.versions, { node: "16.20.2" })], ["version", "v16.20.2"]]) Object.defineProperty(process, k, { value: v });');
    writeFileSync(fakeNode, `#!/bin/sh\n[ "$1" = --version ] && echo v16.20.2 && exit 0\nexec '${process.execPath}' -r '${pretend16}' "$@"\n`);
    chmodSync(fakeNode, 0o755);
    const run = await runBody(syntax, { parameters: { 'OctopusDr.NodePath': fakeNode }, env: { TMPDIR: privateTempDir() } });
    expect(run.code).toBe(1);
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
    expect(result).toContain('v16.20.2');
    expect(result).toContain('too old');
    expect(result).toContain('install Node.js 18+');
  });

  test('an executable that is not Node.js is never taken for a run', async () => {
    const fakeBin = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-not-node-'));
    const fakeNode = path.join(fakeBin, 'node');
    writeFileSync(fakeNode, '#!/bin/sh\necho v20.1.0\nexit 0\n');
    chmodSync(fakeNode, 0o755);
    const tmp = privateTempDir();
    const run = await runBody(syntax, { parameters: { 'OctopusDr.NodePath': fakeNode }, env: { TMPDIR: tmp } });
    expect(run.code).toBe(1);
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
    expect(result).toContain(fakeNode);
    expect(result).toContain('octopusdeploy/worker-tools');
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('a damaged payload is reported as such, not as a node that is not Node.js', async () => {
    const damaged = syntax === 'bash' ? bashRunner(echoTemplate, Buffer.from('not brotli'), 'test') : powerShellRunner(echoTemplate, Buffer.from('not brotli'), 'test');
    const tmp = privateTempDir();
    const run = await (syntax === 'bash' ? runBashScriptBody : runPowerShellScriptBody)(damaged, { parameters: {}, env: { TMPDIR: tmp } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Cannot unpack the step program');
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
    expect(result).not.toMatch(/not Node\.js|not look like Node\.js/);
    expect(run.stderr.trim().split('\n').pop()).toContain('Cannot unpack the step program');
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('runs under a temp folder inside an ES-module package (a package.json with "type": "module" above it)', async () => {
    // Node takes a .js file there for an ES module, in which require is not defined.
    const esmPackage = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-esm-package-'));
    writeFileSync(path.join(esmPackage, 'package.json'), '{"type":"module"}');
    const tmp = mkdtempSync(path.join(esmPackage, 'tmp-'));
    const run = await runBody(syntax, { parameters: { 'OctopusDr.Test.Text': 'plain' }, env: { TMPDIR: tmp } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('runs with a relative TMPDIR', async () => {
    const run = await runBody(syntax, { parameters: { 'OctopusDr.Test.Text': 'plain' }, env: { TMPDIR: '.' } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  test('no node on the PATH gives the ways to get Node.js', async () => {
    // A PATH with only what the runner itself needs before it looks for node.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-no-node-'));
    // (The pwsh global tool's shim starts `dotnet` from the PATH.)
    for (const tool of ['base64', 'tr', 'cat', 'mktemp', 'rm', 'dotnet']) {
      for (const dir of (process.env.PATH ?? '').split(':')) {
        if (existsSync(path.join(dir, tool)) && !existsSync(path.join(bin, tool))) symlinkSync(path.join(dir, tool), path.join(bin, tool));
      }
    }
    const run = await runBody(syntax, { parameters: {}, env: { PATH: bin, TMPDIR: privateTempDir() } });
    expect(run.code).toBe(1);
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
    expect(result).toContain('No node was found on the PATH');
    expect(result).toContain('octopusdeploy/worker-tools');
  });
});

test('bash runner: a cancel (TERM) reaches node, which cleans up, and the temp folder is removed', async () => {
  const tmp = privateTempDir();
  const run = await runBashScriptBody(bodies.bash, {
    parameters: { 'OctopusDr.Test.HoldMs': '20000' },
    env: { TMPDIR: tmp },
    // Once node is holding (its outputs are out), not after a fixed time: node may start slowly.
    signalWhenStdout: { signal: 'SIGTERM', pattern: /Secret as given/ },
  });
  expect(run.code).toBe(143);
  expect(run.stdout).toContain('SIGTERM received');
  const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage');
  expect(result?.attributes.message).toMatch(/Cancelled \(SIGTERM\)/);
  expect(readdirSync(tmp)).toEqual([]);
});

test('the PowerShell runner runs node outside Stop, so a stderr line cannot abort Windows PowerShell 5.1', () => {
  const lines = bodies.powershell.split('\n').map((l) => l.trim());
  const run = lines.findIndex((l) => l.includes('& $node $unpack $packed $program'));
  expect(run).toBeGreaterThan(0);
  expect(lines.slice(0, run).reverse().find((l) => l.startsWith('$ErrorActionPreference'))).toBe("$ErrorActionPreference = 'Continue'");
  expect(lines[run + 1]).toBe('$exitCode = $LASTEXITCODE');
});

test('the PowerShell runner uses nothing Windows PowerShell 5.1 lacks', () => {
  const body = bodies.powershell.split("$bundle = @'")[0] + bodies.powershell.split("'@")[1];
  // PowerShell 7-only operators and syntax.
  for (const pattern of [/\?\?/, /\?\./, /\s&&\s/, /\s\|\|\s/, /\s\?\s.+\s:\s/, /2>&1/, /-Encoding\s+utf8NoBOM/i]) {
    expect(body).not.toMatch(pattern);
  }
});

(findPwsh() ? test : test.skip)('PowerShell runner: a packed program node cannot read (an antivirus scanning it) is reported as such, not as "not Node.js"', async () => {
  const fakeBin = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-av-node-'));
  const fakeNode = path.join(fakeBin, 'node');
  // Windows reports a file an antivirus holds open as EBUSY to readFileSync, and refuses to delete it.
  const holdPacked = path.join(fakeBin, 'hold-packed.js');
  writeFileSync(
    holdPacked,
    'const fs = require("fs"); const read = fs.readFileSync, unlink = fs.unlinkSync;' +
      'const busy = (p) => Object.assign(new Error("EBUSY: resource busy or locked, open \'" + p + "\'"), { code: "EBUSY" });' +
      'fs.readFileSync = function (p, ...rest) { if (String(p).endsWith(".br")) throw busy(p); return read.call(this, p, ...rest); };' +
      'fs.unlinkSync = function (p) { if (String(p).endsWith(".br")) throw busy(p); return unlink.call(this, p); };',
  );
  writeFileSync(fakeNode, `#!/bin/sh\nexec '${process.execPath}' -r '${holdPacked}' "$@"\n`);
  chmodSync(fakeNode, 0o755);
  const tmp = privateTempDir();
  const run = await runBody('powershell', { parameters: { 'OctopusDr.NodePath': fakeNode }, env: { TMPDIR: tmp } });
  expect(run.code).toBe(1);
  const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
  expect(result).not.toContain('does not look like Node.js');
  expect(run.stderr.trim().split('\n').pop()).toContain('EBUSY');
});
