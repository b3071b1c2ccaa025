// The version gate: Octopus versions parsed and ordered, the gate's three outcomes with their exact
// messages, and the standby's version read from the Octopus simulator (and from servers that fail
// in the ways real ones do) over a socket.
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { build } from 'esbuild';
import {
  checkStandbyVersion,
  checkVersionGate,
  compareOctopusVersions,
  OCTOPUS_MOVE_RULE_URL,
  parseOctopusVersion,
  readStandbyVersion,
  resolveStandbyVersion,
  standbyParameterProblems,
} from '../../steps/engines/standby';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { findNode18 } from '../helpers/node18';
import { OctopusSimulator } from '../octopus-simulator/simulator';

const order = (a: string, b: string) => Math.sign(compareOctopusVersions(parseOctopusVersion(a)!, parseOctopusVersion(b)!));

describe('Octopus versions', () => {
  test('parse: year.release.build, older 3-part, 2 and 4 parts, pre-release and build metadata; anything else is not a version', () => {
    expect(parseOctopusVersion('2025.4.100')).toEqual({ text: '2025.4.100', numbers: [2025, 4, 100, 0], preRelease: [] });
    expect(parseOctopusVersion(' 2026.1.5021-rc.2+Branch.main.Sha.0a1b ')).toEqual({ text: '2026.1.5021-rc.2+Branch.main.Sha.0a1b', numbers: [2026, 1, 5021, 0], preRelease: ['rc', '2'] });
    expect(parseOctopusVersion('3.17.14')?.numbers).toEqual([3, 17, 14, 0]);
    expect(parseOctopusVersion('2022.3')?.numbers).toEqual([2022, 3, 0, 0]);
    expect(parseOctopusVersion('2019.3.2.1')?.numbers).toEqual([2019, 3, 2, 1]);
    for (const bad of ['', 'latest', '2025', '2025.4.x', '2025.4.100-', '2025..1', '0.0.0-local junk', null, undefined]) expect(parseOctopusVersion(bad)).toBeUndefined();
  });

  test('order: numbers part by part (not as text), a pre-release before its release, SemVer pre-release rules, build metadata ignored', () => {
    expect(order('2026.1.5021', '2025.4.100')).toBe(1);
    expect(order('2025.4.100', '2025.4.99')).toBe(1); // 100 > 99, though "100" < "99" as text
    expect(order('2025.10.1', '2025.9.9000')).toBe(1);
    expect(order('2025.4.100', '2025.4.100.0')).toBe(0);
    expect(order('2026.1.5021-rc.1', '2026.1.5021')).toBe(-1);
    expect(order('2026.1.5021-alpha', '2026.1.5021-alpha.1')).toBe(-1);
    expect(order('2026.1.5021-alpha.1', '2026.1.5021-alpha.beta')).toBe(-1); // numeric before alphanumeric
    expect(order('2026.1.5021-beta.2', '2026.1.5021-beta.11')).toBe(-1); // numeric identifiers numerically
    expect(order('2026.1.5021-beta', '2026.1.5021-alpha')).toBe(1);
    expect(order('2026.1.5021+a', '2026.1.5021+b')).toBe(0);
    expect(order('2026.1.5020', '2026.1.5021-rc.1')).toBe(-1);
  });
});

describe('checkVersionGate', () => {
  test('a backup from a newer Octopus than the standby is refused, with what to do and the source of the rule', () => {
    const result = checkVersionGate({ backupVersion: '2026.1.5021', standbyVersion: '2025.4.100', standbySource: 'read from https://standby/api', backupLabel: 'Octopus_FULL_20261201T013000Z.manifest.json' });
    expect(result.outcome).toBe('refuse');
    expect(result.message).toBe(
      "The backup (Octopus_FULL_20261201T013000Z.manifest.json) is from Octopus 2026.1.5021, newer than the standby's Octopus 2025.4.100 (read from https://standby/api). " +
        'Octopus cannot start on a database schema newer than itself, so nothing was restored. ' +
        `Upgrade the standby's Octopus Server to 2026.1.5021 first (Octopus moves a server only between the same versions: ${OCTOPUS_MOVE_RULE_URL}), then run this step again.`,
    );
    // A release is newer than its own pre-release.
    expect(checkVersionGate({ backupVersion: '2026.1.5021', standbyVersion: '2026.1.5021-rc.3' }).outcome).toBe('refuse');
  });

  test('an older backup is allowed with a warning that the standby upgrades the schema when it starts', () => {
    const result = checkVersionGate({ backupVersion: '2025.4.100', standbyVersion: '2026.1.5021', standbySource: 'given in "Standby Octopus version"' });
    expect(result.outcome).toBe('warn');
    expect(result.message).toBe(
      'The backup is from Octopus 2025.4.100, older than the standby\'s Octopus 2026.1.5021 (given in "Standby Octopus version"). ' +
        "The restore goes ahead: when the standby's Octopus Server starts on this database it upgrades the schema to 2026.1.5021, and that cannot be undone, so keep this backup. " +
        `Octopus's guide moves a server only between the same versions (${OCTOPUS_MOVE_RULE_URL}); to follow it exactly, install 2025.4.100 on the standby.`,
    );
  });

  test('the same version passes; build metadata does not make a difference', () => {
    expect(checkVersionGate({ backupVersion: '2026.1.5021', standbyVersion: '2026.1.5021+Branch.main' })).toEqual({
      outcome: 'ok',
      message: 'The backup and the standby both run Octopus 2026.1.5021.',
      backupVersion: '2026.1.5021',
      standbyVersion: '2026.1.5021+Branch.main',
    });
  });

  test('what cannot be compared: no backup version or no standby version warns (saying how to check); an unreadable standby version is refused', () => {
    const noBackup = checkVersionGate({ backupVersion: null, standbyVersion: '2026.1.5021' });
    expect(noBackup.outcome).toBe('warn');
    expect(noBackup.message).toMatch(/^The backup records no Octopus version, so it was not compared with the standby's\. Before starting Octopus/);
    expect(checkVersionGate({ backupVersion: 'garbage', standbyVersion: '2026.1.5021' }).message).toMatch(/records an Octopus version that cannot be read \("garbage"\)/);
    const noStandby = checkVersionGate({ backupVersion: '2026.1.5021', standbyVersion: '' });
    expect(noStandby.outcome).toBe('warn');
    expect(noStandby.message).toBe(
      'The backup is from Octopus 2026.1.5021; the standby\'s version was not checked. Set "Standby Octopus Server URL" or "Standby Octopus version" to check it: ' +
        `the standby must run Octopus 2026.1.5021 (Octopus cannot start on a newer schema; ${OCTOPUS_MOVE_RULE_URL}).`,
    );
    expect(checkVersionGate({ backupVersion: '2026.1.5021', standbyVersion: 'next' })).toMatchObject({ outcome: 'refuse', message: expect.stringMatching(/"next" is not a version such as 2025\.4\.100\. Correct "Standby Octopus version"/) });
  });

  test('parameter problems name the parameter by its label', () => {
    expect(standbyParameterProblems({ standbyUrl: '', standbyVersion: '' })).toEqual([]);
    expect(standbyParameterProblems({ standbyUrl: 'https://standby.example.com/', standbyVersion: '2026.1.5021' })).toEqual([]);
    expect(standbyParameterProblems({ standbyUrl: 'standby', standbyVersion: 'v-next' })).toEqual([
      '"Standby Octopus Server URL" must be the Octopus Server\'s address (http:// or https://, no query), e.g. https://octopus.example.com, not "standby": ' +
        'set "Standby Octopus Server URL" (OctopusDr.Standby.ServerUrl) in the step, or --standby-server-url on the command line.',
      '"Standby Octopus version" must be an Octopus version as shown in Octopus under Configuration > About, e.g. 2025.4.100, not "v-next": ' +
        'set "Standby Octopus version" (OctopusDr.Standby.OctopusVersion) in the step, or --standby-octopus-version on the command line.',
    ]);
  });
});

describe('the standby version from its API', () => {
  let simulator: OctopusSimulator;
  let url: string;
  beforeAll(async () => {
    simulator = new OctopusSimulator({ version: '2026.1.5021' });
    url = await simulator.start();
  });
  afterAll(() => simulator.stop());

  test('GET /api answers Version, with or without the API key (the route is anonymous)', async () => {
    await expect(readStandbyVersion({ serverUrl: `${url}/api/` })).resolves.toBe('2026.1.5021');
    await expect(readStandbyVersion({ serverUrl: url, apiKey: 'API-STANDBY' })).resolves.toBe('2026.1.5021');
    expect(simulator.requests.filter((r) => r.url === '/api' && r.status === 200)).toHaveLength(2);
  });

  test('gate end to end: the simulator standby is older than the backup, so the restore is refused; the same version passes', async () => {
    const refused = await checkStandbyVersion({ backupVersion: '2026.2.100', standbyUrl: url, apiKey: 'API-STANDBY' });
    expect(refused.outcome).toBe('refuse');
    expect(refused.message).toContain(`newer than the standby's Octopus 2026.1.5021 (read from ${url}/api)`);
    const same = await checkStandbyVersion({ backupVersion: '2026.1.5021', standbyUrl: url });
    expect(same).toMatchObject({ outcome: 'ok', message: `The backup and the standby both run Octopus 2026.1.5021 (read from ${url}/api).`, warnings: [] });
  });

  test('on Node.js 18 (the floor) too: fetch reads the version, with no experimental-feature warning on stderr', async () => {
    const node18 = findNode18();
    if (!node18) return console.warn('Node.js 18 not installed (.ci/run installs it): skipped');
    const folder = mkdtempSync(path.join(tmpdir(), 'octopus-dr-standby-'));
    try {
      const script = path.join(folder, 'read.js');
      await build({
        stdin: { contents: `require(${JSON.stringify(path.resolve(__dirname, '../../steps/engines/standby/version-gate.ts'))}).readStandbyVersion({ serverUrl: process.argv[2] }).then((v) => console.log(v), (e) => { console.error(e.message); process.exit(1); });`, resolveDir: folder, loader: 'js' },
        bundle: true, platform: 'node', target: 'node18', outfile: script, logLevel: 'silent',
      });
      // Asynchronously: the simulator answering it runs in this process.
      const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(node18, [script, url]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (code: number | null) => resolve({ code, stdout, stderr }));
      });
      expect(run).toEqual({ code: 0, stdout: '2026.1.5021\n', stderr: '' });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('the API wins over a stale version parameter, with a warning to fix the parameter', async () => {
    const standby = await resolveStandbyVersion({ standbyUrl: url, standbyVersion: '2025.4.100' });
    expect(standby.version).toBe('2026.1.5021');
    expect(standby.warnings).toEqual([`"Standby Octopus version" says 2025.4.100, but the standby answers 2026.1.5021 (read from ${url}/api); 2026.1.5021 is used. Update or clear "Standby Octopus version".`]);
  });
});

describe('standby servers that do not answer as they should', () => {
  const servers: http.Server[] = [];
  const sockets: net.Socket[] = [];
  async function serve(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler);
    server.on('connection', (s) => sockets.push(s));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  test('a stopped standby (connection refused): a clear failure, and the version parameter as the way out', async () => {
    const closed = await serve(() => undefined);
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await expect(readStandbyVersion({ serverUrl: closed })).rejects.toThrow(
      `Cannot read the standby's Octopus version from ${closed}/api: the connection was refused (is its Octopus Server stopped?) (ECONNREFUSED). ` +
        'If the standby\'s Octopus Server is stopped (as it should be while its database is restored), give "Standby Octopus version" instead.',
    );
    // fetch refuses a few ports outright (the Fetch standard's "bad ports"): the reason is shown.
    await expect(readStandbyVersion({ serverUrl: 'http://127.0.0.1:1' })).rejects.toThrow(/from http:\/\/127\.0\.0\.1:1\/api: fetch failed: bad port\./);
    // Only a URL: the gate refuses (the user asked for a check that could not be made).
    const refused = await checkStandbyVersion({ backupVersion: '2026.1.5021', standbyUrl: closed });
    expect(refused.outcome).toBe('refuse');
    expect(refused.message).toMatch(/ECONNREFUSED/);
    // URL and version: the version is used, with the reason as a warning.
    const fallback = await checkStandbyVersion({ backupVersion: '2026.1.5021', standbyUrl: closed, standbyVersion: '2026.1.5021' });
    expect(fallback.outcome).toBe('ok');
    expect(fallback.message).toBe('The backup and the standby both run Octopus 2026.1.5021 (given in "Standby Octopus version").');
    expect(fallback.warnings[0]).toMatch(/ECONNREFUSED.*Using "Standby Octopus version" \(2026\.1\.5021\)\.$/);
  });

  test('not an Octopus Server (HTML, no Version), an error status, a redirect (the key is not sent on), a silent server', async () => {
    const html = await serve((_, res) => res.end('<html>login</html>'));
    await expect(readStandbyVersion({ serverUrl: html })).rejects.toThrow(`${html}/api did not answer like an Octopus Server (no Octopus version in its answer).`);
    const failing = await serve((_, res) => {
      res.statusCode = 503;
      res.end('{}');
    });
    await expect(readStandbyVersion({ serverUrl: failing })).rejects.toThrow(/answered GET \/api with 503\. If the standby's Octopus Server is stopped/);
    const seenKeys: (string | undefined)[] = [];
    const target = await serve((req, res) => {
      seenKeys.push(req.headers['x-octopus-apikey'] as string | undefined);
      res.end(JSON.stringify({ Version: '2026.1.5021' }));
    });
    const redirecting = await serve((_, res) => {
      res.writeHead(302, { Location: `${target}/api` });
      res.end();
    });
    await expect(readStandbyVersion({ serverUrl: redirecting, apiKey: 'API-SECRETKEY123' })).rejects.toThrow(`${redirecting}/api redirects to ${target}/api; set "Standby Octopus Server URL"`);
    expect(seenKeys).toEqual([]);
    const silent = await serve(() => undefined);
    const error = await readStandbyVersion({ serverUrl: silent, apiKey: 'API-SECRETKEY123', timeoutMs: 300 }).catch((e: Error) => e);
    expect((error as Error).message).toBe(`The standby's Octopus Server at ${silent} did not answer GET /api within 300 ms. If the standby's Octopus Server is stopped (as it should be while its database is restored), give "Standby Octopus version" instead.`);
    expect((error as Error).message).not.toContain('SECRETKEY');
  });
});

test('the standby checks bundle without @octopusdeploy/api-client (the restore templates are near their size budget)', async () => {
  const result = await build({
    entryPoints: [path.resolve(__dirname, '../../steps/engines/standby/index.ts')],
    bundle: true,
    platform: 'node',
    write: false,
    logLevel: 'silent',
    external: ['mssql', 'tedious'],
  });
  const text = result.outputFiles[0].text;
  expect(text).not.toMatch(/axios|api-client/);
  expect(text.length).toBeLessThan(60_000);
});
