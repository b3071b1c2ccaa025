import { mkdtempSync, writeFileSync } from 'node:fs';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import * as os from 'node:os';
import * as path from 'node:path';
import { backupFileStore } from '../../templates/backup-file-store';
import { checkWorker } from '../../templates/check-worker';
import { maintenanceMode } from '../../templates/maintenance-mode';
import { defineParameter, defineTemplate } from '../../templates/model';
import { helpText, parseCommandLine } from '../../steps/runtime/cli';
import { MemorySink } from '../../steps/runtime/console-output';
import { CancelledError, StepFailure } from '../../steps/runtime/errors';
import { runStep } from '../../steps/runtime/run-step';
import { parseServiceMessages } from '../../steps/runtime/service-messages';
import { StepContext } from '../../steps/runtime/step-context';

const template = defineTemplate({
  stepId: 'sample',
  name: 'Octopus DR - Sample',
  description: 'Does a sample thing.\n\nMore.',
  id: '11111111-2222-4333-8444-555555555555',
  bashId: '11111111-2222-4333-8444-666666666666',
  version: 1,
  lastModified: '2026-11-27T00:00:00.000Z',
  category: 'octopus',
  exitCodes: [{ code: 3, meaning: 'Inconclusive.' }],
  params: {
    folders: defineParameter({ name: 'OctopusDr.Sample.Folders', label: 'Folders', helpText: 'One per line.', type: 'path', multiLine: true, required: false, defaultValue: '', flag: 'folders' }),
    verify: defineParameter({ name: 'OctopusDr.Sample.Verify', label: 'Verify', helpText: '', type: 'bool', required: false, defaultValue: 'True', flag: 'verify' }),
    password: defineParameter({ name: 'OctopusDr.Sample.Password', label: 'Password', helpText: '', type: 'secret', required: true, defaultValue: '', flag: 'password' }),
  },
});

describe('command line', () => {
  test('accepts the kebab flag and the full parameter name; repeats build multi-line values', () => {
    const cli = parseCommandLine(template, ['--OctopusDr.Sample.Folders', '/b', '--no-verify'], {});
    expect(cli.raw).toEqual({ 'OctopusDr.Sample.Folders': '/b', 'OctopusDr.Sample.Verify': 'False' });
    expect(() => parseCommandLine(template, ['--folders', '/a', '--OctopusDr.Sample.Folders', '/b'], {})).toThrow(
      '"Folders" is given twice (--folders and --OctopusDr.Sample.Folders); use one of them.',
    );
    const byFlag = parseCommandLine(template, ['--folders', '/a', '--folders', '/c d', '--verify'], {});
    expect(byFlag.raw).toEqual({ 'OctopusDr.Sample.Folders': '/a\n/c d', 'OctopusDr.Sample.Verify': 'True' });
    expect(parseCommandLine(template, ['--OctopusDr.Sample.Verify', 'False'], {}).raw['OctopusDr.Sample.Verify']).toBe('False');
  });

  test('refuses a secret on the command line and says where to put it', () => {
    expect(() => parseCommandLine(template, ['--password', 'hunter22'], {})).toThrow(
      /"Password" is a secret and is not accepted as a command-line value .* Set the environment variable OCTOPUSDR_SAMPLE_PASSWORD, or use --password-file <file>\./,
    );
    expect(() => parseCommandLine(template, ['--password', 'hunter22'], {})).not.toThrow(/hunter22/);
  });

  test('reads a secret from its environment variable or from a file (without the trailing newline)', () => {
    expect(parseCommandLine(template, [], { OCTOPUSDR_SAMPLE_PASSWORD: 'from-env' }).raw['OctopusDr.Sample.Password']).toBe('from-env');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-cli-')), 'password');
    writeFileSync(file, 'from-file\n');
    expect(parseCommandLine(template, ['--password-file', file], {}).raw['OctopusDr.Sample.Password']).toBe('from-file');
    expect(() => parseCommandLine(template, ['--password-file', '/nonexistent/pw'], {})).toThrow(
      /^"Password": cannot read the file given to --password-file \(ENOENT: no such file\)\. The value is not shown: it may be the secret itself\. Give the path of a file that holds the secret/,
    );
  });

  test('a secret given to --<flag>-file instead of a file name is never repeated (red team 38)', () => {
    const parse = (value: string) => () => parseCommandLine(template, ['--password-file', value], {});
    for (const secret of ['hPO6Sf0kS0FTyJ6RMZ4uCQQPn9UOuRTxq4lPM3N9Dzo=', 'Server=sql01;User ID=sa;Password=Zq8-verySecret-Pw!', 'hunter22']) {
      expect(parse(secret)).toThrow(/cannot read the file given to --password-file \(ENOENT/);
      expect(parse(secret)).not.toThrow(secret);
      expect(parse(secret)).not.toThrow('verySecret');
    }
    // A folder is said as such, without its name either.
    expect(parse(os.tmpdir())).toThrow(/\(EISDIR: it is a folder\)/);
  });

  test('a value without a flag is named by its position, never repeated (it may be a password)', () => {
    // --verify takes no value, so what follows it stands alone.
    const parse = () => parseCommandLine(template, ['--folders', '/a', '--verify', 'hunter22'], {});
    expect(parse).toThrow(/^Argument 4 has no --flag before it .* Run with --help to see the parameters\.$/);
    expect(parse).not.toThrow(/hunter22/);
  });

  test('the stray value is numbered where it stands, not where the same text first appears', () => {
    const parse = () => parseCommandLine(template, ['--folders', 'hunter22', 'hunter22'], {});
    expect(parse).toThrow(/^Argument 3 has no --flag before it /);
    expect(parse).not.toThrow(/hunter22/);
  });

  test('an unknown option points to --help', () => {
    expect(() => parseCommandLine(template, ['--colour', 'blue'], {})).toThrow(/Unknown option '--colour'.*Run with --help/);
  });

  test('help lists every parameter with its flag, name, default and the exit codes', () => {
    const help = helpText(checkWorker, 'node check-worker.js');
    for (const p of checkWorker.parameters.filter((parameter) => !parameter.runnerOnly)) {
      expect(help).toContain(`--${p.flag}`);
      expect(help).toContain(p.name);
    }
    // Where node is matters to the runner only; on the command line node is already running.
    expect(help).not.toContain('--node-path');
    expect(() => parseCommandLine(checkWorker, ['--node-path', '/usr/bin/node'], {})).toThrow(/Unknown option '--node-path'/);
    expect(help).toContain('default: 10');
    expect(helpText(template, 'x')).toMatch(/--password-file <file> {2}\(or env OCTOPUSDR_SAMPLE_PASSWORD\)/);
    expect(helpText(template, 'x')).toMatch(/ 3 {3}Inconclusive\./);
  });

  test("help shows a list's default on one line, as the list it is", () => {
    const help = helpText(backupFileStore, 'node backup-file-store.js');
    expect(help).toContain('(OctopusDr.FileStore.Include; default: TaskLogs, Artifacts, Packages, EventExports)');
    // Every parameter's line of facts is one line.
    for (const line of help.split('\n').filter((l) => l.startsWith('      ') && l.includes('(OctopusDr.'))) expect(line).toMatch(/\)$/);
  });

  test('help names the environment-variable form, and shows an Octopus-variable default as applying under Octopus only', () => {
    const help = helpText(maintenanceMode, 'node maintenance-mode.js');
    expect(help.replace(/\s+/g, ' ')).toContain('(e.g. OCTOPUSDR_OCTOPUS_SERVERURL for OctopusDr.Octopus.ServerUrl)');
    expect(help).toContain('default under Octopus: #{Octopus.Web.ServerUri}');
    expect(help).not.toContain('default: #{');
    expect(help).toContain('default: On');
  });
});

describe('step context', () => {
  test('redacts registered secrets from every line and masks them under Octopus', () => {
    const sink = new MemorySink();
    const context = new StepContext({ sink, serviceMessages: true });
    context.setSecret('Pa55word!');
    context.log.info('connecting with Pa55word! as sa');
    context.log.warn('again: Pa55word!');
    context.setOutput('Plain', 'x Pa55word! y');
    context.result('failed for Pa55word!');
    expect(sink.out.split('\n').filter((l) => !l.startsWith('##octopus')).join('\n')).not.toContain('Pa55word!');
    const messages = parseServiceMessages(sink.out);
    expect(messages[0]).toEqual({ name: 'mask', attributes: { value: 'Pa55word!' } });
    expect(messages.find((m) => m.name === 'setVariable')?.attributes.value).toBe('x ******** y');
    expect(messages.find((m) => m.name === 'resultMessage')?.attributes.message).toBe('failed for ********');
    expect(sink.out).toContain('connecting with ******** as sa');
  });

  test('command line: plain text, warnings on stderr, sensitive outputs hidden', () => {
    const sink = new MemorySink();
    const context = new StepContext({ sink, serviceMessages: false, verbose: true });
    context.setOutput('Key', 'very-secret-value', { sensitive: true });
    context.log.warn('careful');
    context.log.info('very-secret-value leaked?');
    expect(sink.out).toContain('output Key = ********');
    expect(sink.out).toContain('******** leaked?');
    expect(sink.out).not.toContain('##octopus');
    expect(sink.err).toBe('WARNING: careful\n');
  });

  test('progress is throttled to whole percent steps and always reports 100', () => {
    let now = 0;
    const sink = new MemorySink();
    const context = new StepContext({ sink, serviceMessages: true, now: () => now });
    for (let p = 0; p <= 100; p += 0.5) {
      now += 10;
      context.progress(p, 'Backing up');
    }
    const bars = parseServiceMessages(sink.out).filter((m) => m.name === 'progress');
    expect(bars.length).toBeGreaterThan(10);
    expect(bars.length).toBeLessThanOrEqual(25);
    expect(bars[bars.length - 1].attributes.percentage).toBe('100');
  });

  test('cleanups run last-registered first, and a failing cleanup does not stop the others', async () => {
    const order: string[] = [];
    const context = new StepContext({ sink: new MemorySink(), serviceMessages: false });
    context.onCleanup(() => void order.push('first'));
    context.onCleanup(() => {
      throw new Error('boom');
    });
    const unregister = context.onCleanup(() => void order.push('never'));
    context.onCleanup(async () => void order.push('last'));
    unregister();
    await context.runCleanups();
    expect(order).toEqual(['last', 'first']);
  });
});

describe('running a step', () => {
  test('a StepFailure becomes the result message and exit code; cleanup runs', async () => {
    const sink = new MemorySink();
    let cleaned = false;
    const code = await runStep(
      template,
      async (_params, context) => {
        context.onCleanup(() => void (cleaned = true));
        throw new StepFailure('Nothing to verify.', { exitCode: 3 });
      },
      { argv: ['--service-messages'], env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' }, sink, handleSignals: false },
    );
    expect(code).toBe(3);
    expect(cleaned).toBe(true);
    expect(parseServiceMessages(sink.out).find((m) => m.name === 'resultMessage')?.attributes.message).toBe('Nothing to verify.');
  });

  test('secrets are masked before anything else is printed', async () => {
    const sink = new MemorySink();
    await runStep(template, async (_p, context) => context.log.info('hello'), {
      argv: ['--service-messages'],
      env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' },
      sink,
      handleSignals: false,
    });
    expect(sink.out.split('\n')[0]).toBe(`##octopus[mask value='${Buffer.from('pw-1234').toString('base64')}']`);
  });

  test('an unforeseen error fails with exit code 1, says how to report it, and never leaks a secret', async () => {
    const sink = new MemorySink();
    const code = await runStep(
      template,
      async (params) => {
        throw new Error(`login failed for password ${params.password}`);
      },
      { argv: [], env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' }, sink, handleSignals: false },
    );
    expect(code).toBe(1);
    expect(sink.err).toContain('ERROR: Octopus DR - Sample stopped on an internal error it does not know how to handle: login failed for password ********.');
    expect(sink.err).toMatch(/--verbose .* report this message and that log/);
    expect(sink.err).not.toContain('Unexpected error');
    expect(sink.out + sink.err).not.toContain('pw-1234');
  });

  test('cancel: the step sees the abort, cleanup runs, exit code 143', async () => {
    const sink = new MemorySink();
    const controller = new AbortController();
    let cleaned = false;
    const running = runStep(
      template,
      (_p, context) =>
        new Promise<void>((_resolve, reject) => {
          context.onCleanup(() => void (cleaned = true));
          context.signal.addEventListener('abort', () => reject(context.signal.reason));
        }),
      { argv: [], env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' }, sink, handleSignals: false, signal: controller.signal },
    );
    controller.abort(new CancelledError('SIGTERM'));
    expect(await running).toBe(143);
    expect(cleaned).toBe(true);
    expect(sink.err).toContain('Cancelled (SIGTERM)');
  });

  test('cancel after the step kept its result: still 143, and the last line says what was finished and kept (its latest word), redacted', async () => {
    const sink = new MemorySink();
    const controller = new AbortController();
    const running = runStep(
      template,
      async (_p, context) => {
        context.finished('A first sentence, replaced.');
        context.finished('The set /b/pw-1234.zip was complete, so it is kept; retention did not run.');
        controller.abort(new CancelledError('SIGTERM'));
        context.throwIfCancelled();
      },
      { argv: [], env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' }, sink, handleSignals: false, signal: controller.signal },
    );
    expect(await running).toBe(143);
    const last = sink.err.trim().split('\n').pop();
    expect(last).toMatch(/Cancelled \(SIGTERM\); cleanup has run\. The set \/b\/\S+\.zip was complete, so it is kept; retention did not run\.$/);
    expect(sink.err).not.toContain('pw-1234');
    expect(sink.err).not.toContain('A first sentence');
  });

  test('a failure that is not a cancel does not carry the finished sentence', async () => {
    const sink = new MemorySink();
    const code = await runStep(
      template,
      async (_p, context) => {
        context.finished('Kept X.');
        throw new StepFailure('Retention failed: disk gone.');
      },
      { argv: [], env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' }, sink, handleSignals: false },
    );
    expect(code).toBe(1);
    expect(sink.err).toContain('Retention failed: disk gone.');
    expect(sink.err).not.toContain('Kept X.');
  });

  test('cancel: a step that ignores the abort is cut off after the grace period and still cleaned up', async () => {
    const controller = new AbortController();
    let cleaned = false;
    const running = runStep(
      template,
      (_p, context) => {
        context.onCleanup(() => void (cleaned = true));
        return new Promise<void>(() => undefined);
      },
      { argv: [], env: { OCTOPUSDR_SAMPLE_PASSWORD: 'pw-1234' }, sink: new MemorySink(), handleSignals: false, signal: controller.signal, cancelGraceMs: 50 },
    );
    controller.abort(new CancelledError('SIGINT'));
    expect(await running).toBe(130);
    expect(cleaned).toBe(true);
  });

  test('--help prints help and exits 0 without running the step', async () => {
    const sink = new MemorySink();
    let ran = false;
    const code = await runStep(template, async () => void (ran = true), { argv: ['--help'], env: {}, sink, handleSignals: false });
    expect(code).toBe(0);
    expect(ran).toBe(false);
    expect(sink.out).toContain('Usage:');
  });
});

describe('one flag, one meaning: --mode was both On/Off and Full/Incremental; the earlier flag still works and warns', () => {
  test('maintenance mode is --maintenance-mode; --mode still sets it, with a deprecation warning naming the new flag', () => {
    const current = parseCommandLine(maintenanceMode, ['--maintenance-mode', 'Off'], {});
    expect(current.raw['OctopusDr.Octopus.MaintenanceMode']).toBe('Off');
    expect(current.warnings).toEqual([]);
    const earlier = parseCommandLine(maintenanceMode, ['--mode', 'Off'], {});
    expect(earlier.raw['OctopusDr.Octopus.MaintenanceMode']).toBe('Off');
    expect(earlier.warnings).toEqual(['--mode is deprecated and will be removed: use --maintenance-mode ("Maintenance mode") instead.']);
  });

  test('the file-store backup type is --backup-type, as the database backup\'s; --mode still sets it, with a warning', () => {
    expect(backupFileStore.params.mode.flag).toBe('backup-type');
    const earlier = parseCommandLine(backupFileStore, ['--mode', 'Incremental'], {});
    expect(earlier.raw['OctopusDr.FileStore.Mode']).toBe('Incremental');
    expect(earlier.warnings).toEqual(['--mode is deprecated and will be removed: use --backup-type ("Backup type") instead.']);
    expect(parseCommandLine(backupFileStore, ['--backup-type', 'Incremental'], {}).warnings).toEqual([]);
  });

  test('both spellings at once are refused; --help names the deprecated one', () => {
    expect(() => parseCommandLine(maintenanceMode, ['--mode', 'On', '--maintenance-mode', 'Off'], {})).toThrow(
      '"Maintenance mode" is given twice (--maintenance-mode and --mode); use --maintenance-mode only.',
    );
    expect(helpText(maintenanceMode, 'node maintenance-mode.js')).toContain('--maintenance-mode <On|Off>');
    expect(helpText(maintenanceMode, 'node maintenance-mode.js')).toMatch(/Maintenance mode \(OctopusDr\.Octopus\.MaintenanceMode; required; default: On; --mode is deprecated\)/);
  });

  test('runStep logs the deprecation as a warning, then runs the step', async () => {
    const sink = new MemorySink();
    let seen: unknown;
    const code = await runStep(
      maintenanceMode,
      async (params) => {
        seen = params.mode;
      },
      { argv: ['--server-url', 'https://octopus.example.com', '--mode', 'Off'], env: { OCTOPUSDR_OCTOPUS_APIKEY: 'API-X' }, sink, handleSignals: false },
    );
    expect(code).toBe(0);
    expect(seen).toBe('Off');
    expect(sink.err + sink.out).toContain('--mode is deprecated and will be removed: use --maintenance-mode ("Maintenance mode") instead.');
  });
});

test('quietEngineContext: cleanups run last first, and unregistering one twice leaves the others registered', async () => {
  const context = quietEngineContext();
  const ran: string[] = [];
  const unregisterA = context.onCleanup(() => void ran.push('a'));
  context.onCleanup(() => void ran.push('b'));
  context.onCleanup(() => void ran.push('c'));
  unregisterA();
  unregisterA(); // must not remove 'c' (splice(-1, 1) would)
  await context.runCleanups();
  expect(ran).toEqual(['c', 'b']);
});
