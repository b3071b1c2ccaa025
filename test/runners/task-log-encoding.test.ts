// What reaches an Octopus task log from a step run by the PowerShell runner. On Windows, Calamari
// starts powershell.exe or pwsh with redirected output and decodes it in the OEM code page
// (Calamari source/Calamari.Common/Features/Processes/SilentProcessRunner.cs: StandardOutputEncoding
// = Encoding.GetEncoding(GetCPInfoEx(CP_OEMCP).CodePage), 850 as its fallback). The runner is run here
// under a stand-in that starts it the same way, with the same .NET decoding, so the test reads what
// the task log would show.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleEntry } from '../../scripts/build/bundle';
import { packBundle } from '../../scripts/build/index';
import { powerShellRunner } from '../../scripts/build/runners';
import { asciiSafe, asciiWriter, needsAsciiOutput } from '../../steps/runtime/console-output';
import { outputVariablesIn, parseServiceMessages } from '../../steps/runtime/service-messages';
import { findPwsh, writePowerShellBootstrap } from '../helpers/runners';
import { echoTemplate } from './echo-step';

const PATH_TEXT = 'D:\\Sauvegardes\\Jörg Müller\\日本 – 1…';
const PATH_AS_ASCII = 'D:\\Sauvegardes\\J<U+00F6>rg M<U+00FC>ller\\<U+65E5><U+672C> - 1...';

describe('ASCII output', () => {
  test('typographic characters get their ASCII spelling, everything else its code point', () => {
    expect(asciiSafe(PATH_TEXT)).toBe(PATH_AS_ASCII);
    expect(asciiSafe('emoji 😀 “quoted” ≥ 2 → done')).toBe('emoji <U+1F600> "quoted" >= 2 -> done');
    expect(asciiSafe("plain ASCII: ##octopus[setVariable name='TmFtZQ==']")).toBe("plain ASCII: ##octopus[setVariable name='TmFtZQ==']");
  });

  test('is on under a runner on Windows, off elsewhere, and can be forced either way', () => {
    expect(needsAsciiOutput({ OCTOPUSDR_RUNNER: 'powershell' }, 'win32')).toBe(true);
    expect(needsAsciiOutput({ OCTOPUSDR_RUNNER: 'bash' }, 'win32')).toBe(true);
    expect(needsAsciiOutput({}, 'win32')).toBe(false); // the CLI in a Windows terminal: node writes the console in UTF-16
    expect(needsAsciiOutput({ OCTOPUSDR_RUNNER: 'powershell' }, 'linux')).toBe(false); // Calamari on Linux decodes UTF-8
    expect(needsAsciiOutput({ OCTOPUSDR_ASCII_OUTPUT: '1' }, 'linux')).toBe(true);
    expect(needsAsciiOutput({ OCTOPUSDR_RUNNER: 'powershell', OCTOPUSDR_ASCII_OUTPUT: '0' }, 'win32')).toBe(false);
  });

  test('the form is explained once, on stdout, after the first line that used it', () => {
    const written: string[] = [];
    const write = asciiWriter((t) => written.push(t), true);
    write('no escapes\n');
    write(`Backing up ${PATH_TEXT}`);
    write(' (partial line)\n');
    write(`again ${PATH_TEXT}\n`);
    expect(written.join('')).toBe(
      `no escapes\nBacking up ${PATH_AS_ASCII} (partial line)\n` +
        'Note: characters outside ASCII are written as <U+XXXX> (Unicode code points), because Octopus reads the output of a script on Windows in the OEM code page.\n' +
        `again ${PATH_AS_ASCII}\n`,
    );
    const errors: string[] = [];
    asciiWriter((t) => errors.push(t), false)(`${PATH_TEXT}\n`);
    expect(errors).toEqual([`${PATH_AS_ASCII}\n`]);
  });
});

const pwsh = findPwsh();
const describeWithPwsh = pwsh ? describe : describe.skip;

/**
 * Starts the runner the way Calamari's SilentProcessRunner does (UseShellExecute false, CreateNoWindow,
 * stdout and stderr redirected and decoded with the given code page, read line by line through
 * OutputDataReceived) and returns the lines as Calamari would log them.
 */
async function runUnderCalamari(body: string, parameters: Record<string, string>, codePage: number, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const bootstrap = writePowerShellBootstrap(body, parameters);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-calamari-'));
  const result = path.join(dir, 'result.json');
  const standIn = path.join(dir, 'calamari-stand-in.ps1');
  writeFileSync(
    standIn,
    [
      "$ErrorActionPreference = 'Stop'",
      `$encoding = [Text.Encoding]::GetEncoding(${codePage})`,
      '$info = New-Object Diagnostics.ProcessStartInfo',
      `$info.FileName = '${pwsh}'`,
      `$info.Arguments = '-NoLogo -NoProfile -NonInteractive -File "${bootstrap}"'`,
      '$info.UseShellExecute = $false',
      '$info.CreateNoWindow = $true',
      '$info.RedirectStandardOutput = $true',
      '$info.RedirectStandardError = $true',
      '$info.StandardOutputEncoding = $encoding',
      '$info.StandardErrorEncoding = $encoding',
      '$process = New-Object Diagnostics.Process',
      '$process.StartInfo = $info',
      '$out = [Collections.Concurrent.ConcurrentQueue[string]]::new()',
      '$err = [Collections.Concurrent.ConcurrentQueue[string]]::new()',
      "$onOut = Register-ObjectEvent -InputObject $process -EventName OutputDataReceived -MessageData $out -Action { if ($null -ne $EventArgs.Data) { $Event.MessageData.Enqueue($EventArgs.Data) } }",
      "$onErr = Register-ObjectEvent -InputObject $process -EventName ErrorDataReceived -MessageData $err -Action { if ($null -ne $EventArgs.Data) { $Event.MessageData.Enqueue($EventArgs.Data) } }",
      '[void]$process.Start()',
      '$process.BeginOutputReadLine()',
      '$process.BeginErrorReadLine()',
      '$process.WaitForExit()',
      'Start-Sleep -Milliseconds 300',
      'Unregister-Event -SourceIdentifier $onOut.Name; Unregister-Event -SourceIdentifier $onErr.Name',
      `$json = @{ code = $process.ExitCode; stdout = @($out.ToArray()); stderr = @($err.ToArray()) } | ConvertTo-Json -Depth 3`,
      `[IO.File]::WriteAllText('${result}', $json, (New-Object Text.UTF8Encoding($false)))`,
    ].join('\n'),
  );
  await new Promise<void>((resolve, reject) => {
    const child = spawn(pwsh!, ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', standIn], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`stand-in failed (${code}): ${stderr}`))));
  });
  return JSON.parse(readFileSync(result, 'utf8')) as { code: number; stdout: string[]; stderr: string[] };
}

describeWithPwsh('the PowerShell runner read as Calamari reads it on Windows (OEM code page)', () => {
  let body = '';
  beforeAll(async () => {
    const bundle = await bundleEntry(path.join(__dirname, 'echo-step.ts'), echoTemplate.stepId, 'test');
    body = powerShellRunner(echoTemplate, packBundle(bundle.code), 'test');
  });

  test('UTF-8 from node arrives garbled: the problem this solves', async () => {
    const run = await runUnderCalamari(body, { 'OctopusDr.Test.Text': PATH_TEXT }, 850, { OCTOPUSDR_ASCII_OUTPUT: '0' });
    const line = run.stdout.find((l) => l.startsWith('Text as given: '))!;
    expect(line).not.toBe(`Text as given: ${PATH_TEXT}`);
    expect(line).toContain('J├Ârg'); // "ö" as UTF-8 bytes C3 B6, read as code page 850
  }, 180_000);

  test.each([850])('ASCII output arrives intact in code page %i (Calamari\'s fallback OEM code page); names and paths are readable as code points, service messages exact', async (codePage) => {
    // On a Windows worker node turns ASCII output on by itself (a runner, win32); here it is forced.
    const run = await runUnderCalamari(body, { 'OctopusDr.Test.Text': PATH_TEXT, 'OctopusDr.Test.ExitCode': '3' }, codePage, { OCTOPUSDR_ASCII_OUTPUT: '1' });
    expect(run.code).toBe(3);
    const log = run.stdout.join('\n');
    expect(run.stdout).toContain(`Text as given: ${PATH_AS_ASCII}`);
    expect(run.stdout.filter((l) => l.startsWith('Note: characters outside ASCII'))).toHaveLength(1);
    expect([...log].every((c) => c.charCodeAt(0) < 0x80)).toBe(true);
    // Output variables and the failure message travel base64-encoded UTF-8: exact, whatever the code page.
    expect(outputVariablesIn(log)['Echo.Text']).toBe(PATH_TEXT);
    expect(parseServiceMessages(log).find((m) => m.name === 'resultMessage')?.attributes.message).toBe(`Asked to exit with 3 (${PATH_TEXT})`);
    // The error line (stdout-error under Octopus) is ASCII too.
    expect(run.stdout).toContain(`Asked to exit with 3 (${PATH_AS_ASCII})`);
  }, 180_000);
});
