// The Check Worker step on real directories and real TCP sockets, in-process and through the
// built bundle (`npm run build` first; `npm test` does).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkWorker as template } from '../../templates/check-worker';
import { checkWorker } from '../../steps/check-worker/check-worker';
import { parseEndpoint } from '../../steps/check-worker/endpoint';
import { promises as fsPromises } from 'node:fs';
import { builtStep } from '../helpers/bundle';
import { asNobodyArgs, canRunAsNobody } from '../helpers/unprivileged';
import { MemorySink } from '../../steps/runtime/console-output';
import { runStep } from '../../steps/runtime/run-step';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';


let listener: net.Server;
let openPort: number;
let closedPort: number;

beforeAll(async () => {
  listener = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  openPort = (listener.address() as net.AddressInfo).port;
  // A port that was just free: bind, note it, close.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
});

afterAll(() => new Promise((resolve) => listener.close(resolve)));

async function run(argv: string[]) {
  const sink = new MemorySink();
  const code = await runStep(template, checkWorker, { argv: ['--service-messages', ...argv], env: {}, sink, handleSignals: false });
  const outputs = outputVariablesIn(sink.out);
  const result = resultMessageIn(sink.out) ?? '';
  return { code, outputs, result, sink };
}

test('passes for a writable directory and an open port, leaving no probe file behind', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-check-'));
  const { code, outputs, result } = await run(['--directories', dir, '--tcp-endpoints', `127.0.0.1:${openPort}`, '--minimum-free-space-gb', '0']);
  expect(code).toBe(0);
  expect(result).toBe('Worker is ready (1 directory and 1 endpoint checked).');
  expect(outputs).toMatchObject({
    'Directory.1.Path': dir,
    'Directory.1.Exists': 'True',
    'Directory.1.Writable': 'True',
    'Directory.1.Passed': 'True',
    'Endpoint.1.Address': `127.0.0.1:${openPort}`,
    'Endpoint.1.Passed': 'True',
    Passed: 'True',
    Failures: '',
    NodeVersion: process.versions.node,
    Platform: process.platform,
  });
  expect(Number(outputs['Directory.1.FreeSpaceGB'])).toBeGreaterThan(0);
  expect(readdirSync(dir)).toEqual([]);
});

test('lists every failure, not just the first', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-check-'));
  const missing = path.join(dir, 'missing');
  const { code, outputs, result } = await run([
    '--directories', missing,
    '--directories', dir,
    '--tcp-endpoints', `127.0.0.1:${closedPort}`,
    '--tcp-endpoints', `127.0.0.1:${openPort}`,
    '--tcp-endpoints', `127.0.0.1:${closedPort}`,
    '--minimum-free-space-gb', '1000000',
  ]);
  expect(code).toBe(1);
  expect(result).toMatch(/^Worker check failed \(4 problems\):/);
  expect(result).toContain(`${missing} does not exist. Create it, or correct the path.`);
  expect(result).toMatch(new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has [\\d.]+ GB free, less than the 1000000.0 GB required\\.`));
  expect(result).toContain(`127.0.0.1:${closedPort} refused the connection`);
  expect(outputs).toMatchObject({ 'Directory.1.Passed': 'False', 'Directory.2.Passed': 'False', 'Endpoint.1.Passed': 'False', 'Endpoint.2.Passed': 'True', 'Endpoint.3.Passed': 'False', Passed: 'False' });
  expect(outputs.Failures.split('\n')).toHaveLength(4);
});

test('parses host:port forms', () => {
  expect(parseEndpoint('sql01.corp:1433')).toEqual({ host: 'sql01.corp', port: 1433 });
  expect(parseEndpoint('[fd00::5]:443')).toEqual({ host: 'fd00::5', port: 443 });
  expect(parseEndpoint('sql01:0')).toMatch(/port 0; a port is from 1 to 65535/);
  expect(parseEndpoint('fd00::5:443')).toMatch(/not host:port/);
});

test('bad parameter values fail with exit code 2 and the label', async () => {
  const { code, result } = await run(['--timeout-seconds', '0']);
  expect(code).toBe(2);
  expect(result).toBe('"Connection timeout (seconds)" must be from 1 to 300, not 0: set "Connection timeout (seconds)" (OctopusDr.Worker.TimeoutSeconds) in the step, or --timeout-seconds on the command line.');
});

test('nothing to check (no directory, no endpoint) is refused with exit 2, not reported as a ready worker', async () => {
  const { code, result, outputs } = await run([]);
  expect(code).toBe(2);
  expect(result).toMatch(/^Nothing to check: "Directories" and "TCP endpoints" are both empty/);
  expect(result).toContain('--directories or --tcp-endpoints on the command line');
  expect(outputs.Passed).toBeUndefined();
});

test('an endpoint that is not host:port is refused with exit 2 before any endpoint is connected to (red team 38)', async () => {
  let connections = 0;
  const counting = net.createServer((socket) => {
    connections += 1;
    socket.end();
  });
  await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
  const port = (counting.address() as net.AddressInfo).port;
  try {
    for (const bad of ['sql01', 'sql01:70000', 'fd00::5:443']) {
      const { code, result } = await run(['--tcp-endpoints', `127.0.0.1:${port}`, '--tcp-endpoints', bad, '--minimum-free-space-gb', '0']);
      expect(code).toBe(2);
      expect(result).toBe(
        `"TCP endpoints" must be host:port with a port from 1 to 65535 ([address]:port for an IPv6 address), e.g. sql01:1433, not "${bad}": ` +
          'set "TCP endpoints" (OctopusDr.Worker.TcpEndpoints) in the step, or --tcp-endpoints on the command line.',
      );
    }
    expect(connections).toBe(0);
  } finally {
    await new Promise((resolve) => counting.close(resolve));
  }
});

test('a minimum free space that cannot be checked (Node.js 18 before 18.15 has no statfs) fails the check, never passes it (red team 38)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-check-'));
  const promises = fsPromises as unknown as { statfs?: unknown };
  const saved = promises.statfs;
  promises.statfs = undefined;
  try {
    const asked = await run(['--directories', dir, '--minimum-free-space-gb', '10']);
    expect(asked.code).toBe(1);
    expect(asked.result).toContain(
      `Free space of ${dir} cannot be checked: Node.js ${process.version} has no fs.statfs (it came in 18.15). ` +
        'Use Node.js 18.15 or newer on this worker, or set "Minimum free space (GB)" (OctopusDr.Worker.MinimumFreeSpaceGB) to 0 to skip the check.',
    );
    expect(asked.outputs).toMatchObject({ 'Directory.1.Passed': 'False', Passed: 'False' });
    // 0 asks for no check: the directory passes, its free space unknown.
    const skipped = await run(['--directories', dir, '--minimum-free-space-gb', '0']);
    expect(skipped.code).toBe(0);
    expect(skipped.sink.out).toContain(`OK   directory ${dir}: exists, writable, free space unknown`);
  } finally {
    promises.statfs = saved;
  }
});

// Root can write anywhere, so the read-only case runs the built step as `nobody`.
(canRunAsNobody() ? test : test.skip)('a read-only directory fails the write check (built bundle, run as nobody)', () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-ro-'));
  chmodSync(parent, 0o755);
  const child = spawnSync(
    'setpriv',
    asNobodyArgs(builtStep('check-worker'), ['--directories', parent, '--minimum-free-space-gb', '0']),
    { encoding: 'utf8' },
  );
  expect(child.status).toBe(1);
  expect(child.stdout).toContain(`FAIL directory ${parent}: exists, not writable`);
  expect(child.stderr).toContain(`${parent} is not writable by this worker's account, nobody (EACCES). Grant it modify permission.`);
  expect(readdirSync(parent)).toEqual([]);
});

test('the built bundle runs from the command line and prints plain progress', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-check-'));
  const child = spawnSync(process.execPath, [builtStep('check-worker'), '--directories', dir, '--minimum-free-space-gb', '0'], { encoding: 'utf8' });
  expect(child.status).toBe(0);
  expect(child.stdout).toContain(`OK   directory ${dir}: exists, writable`);
  expect(child.stdout).toContain('Worker is ready');
  expect(child.stdout).not.toContain('##octopus');
});

test('a missing directory says what is unknown about it', () => {
  const missing = path.join(mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-check-')), 'absent');
  const child = spawnSync(process.execPath, [builtStep('check-worker'), '--directories', missing], { encoding: 'utf8' });
  expect(child.status).toBe(1);
  expect(child.stdout).toContain(`FAIL directory ${missing}: missing, not writable, free space unknown`);
  expect(child.stderr).toContain(`${missing} does not exist. Create it, or correct the path.`);
});
