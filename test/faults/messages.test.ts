// What the user sees when things go wrong, from the steps run in-process as from the command line
// (the built bundle where a step runs as another user): no secret (or a piece of one)
// in any output, variable, artifact or file; every failure's last line says what failed and
// what to do, with the right exit code; never "Unexpected error". Real faults: a full tmpfs at
// each write point, read-only and forbidden folders, TLS against the SQL Server simulator, bad
// numbers, a report directory that is missing or unwritable.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { keyIdOf } from '../../steps/engines/master-key';
import { StepFailure } from '../../steps/runtime/errors';
import { quoteValue } from '../../steps/runtime/parameters';
import { Redactor } from '../../steps/runtime/redactor';
import { describeFileError, exitCodeOf, failureMessage } from '../../steps/runtime/failure';
import { longestSharedRun, SECRET_FRAGMENT_LENGTH, secretsInValues } from '../../steps/runtime/secret-values';
import { parseServiceMessages } from '../../steps/runtime/service-messages';
import { backupDatabase } from '../../templates/backup-database';
import { SqlConnectionStringError, SqlError } from '../../steps/engines/sql';
import { describeNetworkFailure, describeTlsFailure } from '../../steps/engines/sql/errors';
import { Lab, octopusTables, PASSWORD } from '../database/harness';
import { makeStore, pseudoRandomBytes, write } from '../file-store/helpers';
import { builtStep } from '../helpers/bundle';
import { runStepInProcess } from '../helpers/in-process';
import { asNobodyArgs, canRunAsNobody } from '../helpers/unprivileged';
import { octopusDatabase } from '../master-key/octopus-database';
import { SqlSimulator } from '../sql-simulator/server';

const ROOT = path.resolve(__dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'octopus-dr-messages-'));
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a step in this process; the built bundle with `bundle`, or with `command` (setpriv, to run it
 * as another user). `onStdout` sees the output as it arrives (to fill a disk at the right moment).
 */
async function runStep(step: string, args: string[], env: NodeJS.ProcessEnv = {}, options: { onStdout?: (all: string) => void; command?: string[]; bundle?: boolean } = {}): Promise<Run> {
  if (!options.command && !options.bundle) return runStepInProcess(step, args, { env, onStdout: options.onStdout });
  const [command, ...prefix] = options.command ?? [process.execPath];
  const commandArgs = options.command ? [...prefix, ...asNobodyArgs(builtStep(step), args)] : [builtStep(step), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { cwd: work, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      options.onStdout?.(stdout);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The last line a person reads: the last non-empty line on stderr (the CLI) . */
function lastLine(run: Run): string {
  const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

/** Every text the user can see in a service-message run: plain lines and decoded message attributes (masks aside). */
function visibleTexts(run: Run): string[] {
  const messages = parseServiceMessages(run.stdout).filter((m) => m.name !== 'mask');
  return [run.stdout.replace(/##octopus\[[^\]]*\]/g, ''), run.stderr, ...messages.flatMap((m) => Object.values(m.attributes))];
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

/** The secret, its lower- and upper-case forms and every 6-character piece of it appear nowhere. */
function expectNoSecret(secret: string, texts: string[], directories: string[] = []): void {
  const contents = [...texts, ...directories.flatMap((d) => filesUnder(d).map((f) => readFileSync(f, 'latin1')))];
  const pieces = new Set<string>([secret, secret.toLowerCase(), secret.toUpperCase()]);
  for (let i = 0; i + 6 <= secret.length; i++) pieces.add(secret.slice(i, i + 6).toLowerCase());
  for (const text of contents) {
    const lower = text.toLowerCase();
    for (const piece of pieces) {
      if (lower.includes(piece.toLowerCase())) throw new Error(`a piece of the secret ("${piece}") is visible in: ${text.slice(Math.max(0, lower.indexOf(piece.toLowerCase()) - 80), lower.indexOf(piece.toLowerCase()) + 80)}`);
    }
  }
}

/** Runs the same step twice, as on the command line and as under Octopus, checking both for the secret. */
async function runBoth(step: string, args: string[], env: NodeJS.ProcessEnv, secret: string, directories: string[] = []): Promise<Run> {
  const plain = await runStep(step, args, env);
  const octopus = await runStep(step, ['--service-messages', ...args], env);
  expect(octopus.code).toBe(plain.code);
  expectNoSecret(secret, [plain.stdout, plain.stderr, ...visibleTexts(octopus)], directories);
  expect(plain.stdout + plain.stderr + octopus.stdout).not.toMatch(/Unexpected error/i);
  return plain;
}

function mountTmpfs(dir: string, options: string): boolean {
  mkdirSync(dir, { recursive: true });
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status === 0;
  if (ok) mounts.push(dir);
  return ok;
}

/** Fills a disk to the last byte. */
function fillDisk(dir: string): void {
  const chunk = Buffer.alloc(64 * 1024);
  const file = path.join(dir, `filler-${randomBytes(3).toString('hex')}`);
  try {
    for (;;) writeFileSync(file, chunk, { flag: 'a' });
  } catch {
    // ENOSPC: full.
  }
  for (const size of [4096, 512, 1]) {
    try {
      for (;;) writeFileSync(file, Buffer.alloc(size), { flag: 'a' });
    } catch {
      // full at this granularity too
    }
  }
}

const canMount = process.getuid?.() === 0 && (() => {
  const probe = path.join(work, 'mount-probe');
  const ok = mountTmpfs(probe, 'size=1m');
  if (ok) spawnSync('umount', [probe]);
  mounts.pop();
  return ok;
})();
const withMount = canMount ? test : test.skip;
if (!canMount) console.warn('mount is not available here (not root?): the full-disk and read-only cases are skipped');

describe('no secret, or part of one, in any message (invariant 7)', () => {
  const key = randomBytes(32).toString('base64');

  test('the master key pasted into Master key ID of the backup step: exit 2, the key not shown', async () => {
    const backups = path.join(work, 'mk-backups');
    mkdirSync(backups, { recursive: true });
    const run = await runBoth(
      'backup-database',
      ['--master-key-id', key, '--backup-directory', backups],
      { OCTOPUSDR_SQL_CONNECTIONSTRING: 'Server=127.0.0.1,1;Database=Octopus;User ID=sa;Password=Unused-Pw-1' },
      key,
      [backups],
    );
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/^ERROR: "Master key ID" must be 16 hexadecimal characters .*not the value given \(not shown: it could be a key or password\): set "Master key ID"/);
  });

  // Red-team finding (stop 36): these three printed the value whole, key or SAS signature included.
  test.each([
    ['an S3 key pair inside "S3 endpoint URL"', 'copy-offsite', (dir: string, secret: string) => ['--offsite-url', 's3://bucket/dr', '--backup-directory', dir, '--endpoint-url', `https://AKIAEXAMPLEKEY0001:${secret}@minio.example.com:9000`], /"S3 endpoint URL".*not the value given \(not shown/],
    ['a SAS URL without its scheme as "Offsite URL" of the fetch', 'fetch-offsite', (dir: string, secret: string) => ['--offsite-url', `acmedr.blob.core.windows.net/c/p?sv=2024-01-01&sig=${secret}`, '--download-directory', dir], /"Offsite URL".*not the value given \(not shown/],
    ['a SAS URL without its scheme as the restore source', 'restore-file-store', (dir: string, secret: string) => ['--source', `acmedr.blob.core.windows.net/c/p?sv=2024-01-01&sig=${secret}`, '--folders', `TaskLogs=${dir}/t`], /not the value given \(not shown: it looks like a URL/],
    // Red-team finding (stop 37): the identity pasted as the recipient was printed whole.
    ['an age identity (secret key) as "Encryption recipient"', 'copy-offsite', (dir: string, secret: string) => ['--offsite-url', 's3://bucket/dr', '--backup-directory', dir, '--encryption-recipient', `AGE-SECRET-KEY-1${secret.toUpperCase()}`], /"Encryption recipient".*holds an age identity .* it is not shown here/],
    ['the identity lower-cased as "Encryption recipient"', 'copy-offsite', (dir: string, secret: string) => ['--offsite-url', 's3://bucket/dr', '--backup-directory', dir, '--encryption-recipient', `age-secret-key-1${secret.toLowerCase()}`], /"Encryption recipient".*holds an age identity/],
    ['a passphrase as "Encryption recipient"', 'copy-offsite', (dir: string, secret: string) => ['--offsite-url', 's3://bucket/dr', '--backup-directory', dir, '--encryption-recipient', `correct horse ${secret}`], /"Encryption recipient".*must be an age public key .*it is not shown, in case it is a secret/],
  ])('%s: exit 2, the secret not shown', async (_name, step, args, expected) => {
    const dir = mkdtempSync(path.join(work, 'url-'));
    const secret = randomBytes(18).toString('base64url');
    const run = await runBoth(step, args(dir, secret), {}, secret, [dir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(expected);
  });

  test.each([
    ['the key itself', (k: string) => k],
    ['the key lower-cased', (k: string) => k.toLowerCase()],
    ['a piece of the key', (k: string) => k.slice(5, 21)],
  ])('%s pasted into Expected key ID: refused (exit 2) without echo', async (_name, pasted) => {
    const run = await runBoth('verify-master-key', ['--expected-key-id', pasted(key)], { OCTOPUSDR_MASTERKEY: key }, key);
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/^ERROR: "Expected key ID" contains the secret "Master key", or a part of it, so its value is refused and not shown\. Give "Expected key ID" the value it asks for/);
  });

  test('the key ID itself is of course accepted (the threshold does not catch a key ID)', async () => {
    const run = await runStep('verify-master-key', ['--expected-key-id', keyIdOf(Buffer.from(key, 'base64'))], { OCTOPUSDR_MASTERKEY: key, OCTOPUSDR_SQL_CONNECTIONSTRING: '' });
    expect(run.code).toBe(0);
  });

  test('Password=Hunter2;Tail=ZZsecretZZ (an unquoted ;) is refused by position, nothing of the password shown', async () => {
    const password = 'Hunter2;Tail=ZZsecretZZ';
    const run = await runBoth('backup-database', [], { OCTOPUSDR_SQL_CONNECTIONSTRING: `Server=127.0.0.1,1;Database=Octopus;User ID=sa;Password=${password}` }, password);
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/"SQL connection string" cannot be used: The connection string's 5th keyword \(after Password\) is not recognised .*quote it: Password="a;b"/);
  });

  test('Server=<password>: the host-name lookup error shows the password in no letter case', async () => {
    const password = `NoSuchHost${randomBytes(4).toString('hex').toUpperCase()}Q`;
    const run = await runBoth('backup-database', [], { OCTOPUSDR_SQL_CONNECTIONSTRING: `Server=${password};Database=Octopus;User ID=sa;Password=${password};Connect Timeout=5` }, password);
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(/^ERROR: Cannot connect to SQL Server: The name of SQL Server \*\*\*\*\*\*\*\* cannot be resolved to an address \(.*(ENOTFOUND|EAI_AGAIN).*\)\. Check Server= in the connection string/);
  });

  test('a password pasted into a path is refused (exit 2) without echo', async () => {
    const password = `Pw-${randomBytes(6).toString('hex')}`;
    const run = await runBoth(
      'backup-database',
      ['--backup-directory-on-worker', path.join(work, password)],
      { OCTOPUSDR_SQL_CONNECTIONSTRING: `Server=127.0.0.1,1;Database=Octopus;User ID=sa;Password=${password}` },
      password,
    );
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/^ERROR: "Backup directory on this worker" contains the password or another secret of "SQL connection string"/);
  });

  test('a client secret or token keyword is a secret of its own: pasted alone into a path, it is refused', async () => {
    const clientSecret = `cs-${randomBytes(6).toString('hex')}`;
    const run = await runBoth(
      'backup-database',
      ['--backup-directory-on-worker', `/backups/${clientSecret}`],
      { OCTOPUSDR_SQL_CONNECTIONSTRING: `Server=127.0.0.1,1;Database=Octopus;User ID=sa;Password=p4ss-word;Client Secret=${clientSecret}` },
      clientSecret,
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/"Backup directory on this worker" contains the password or another secret/);
    expect(lastLine(run)).toMatch(/"SQL connection string" cannot be used: .*keyword .* is not recognised/);
  });
});

describe('the threshold: what counts as carrying a secret', () => {
  const template = backupDatabase;
  const refused = (connectionString: string, directory: string) =>
    secretsInValues(template, { [template.params.connectionString.name]: connectionString, [template.params.backupDirectoryOnWorker.name]: directory });
  const cs = (password: string) => `Server=sql01;Database=Octopus;User ID=octopus-dr;Password=${password}`;

  test('a value containing the whole password, in any letter case, is refused', () => {
    expect(refused(cs('Hunter2'), '/backups/hunter2')).toHaveLength(1);
    expect(refused(cs('Hunter2'), '/backups/HUNTER2/x')).toHaveLength(1);
  });

  test(`${SECRET_FRAGMENT_LENGTH} characters shared with a longer password are refused; fewer are not`, () => {
    expect(refused(cs('Kx9-ZebraTrain-77'), '/backups/ZebraTra')).toHaveLength(1);
    expect(refused(cs('Kx9-ZebraTrain-77'), '/backups/ZebraTr')).toEqual([]);
  });

  test('names that are also in the connection string (server, database, login) are not secrets', () => {
    expect(refused(cs('Hunter2-long-pw'), '/backups/Octopus/sql01/octopus-dr')).toEqual([]);
    // A word inside the password, shorter than the threshold, does not refuse an ordinary name.
    expect(refused(cs('Octopus!2024'), '/backups/Octopus')).toEqual([]);
  });

  test('masking ignores letter case (drivers and the OS lower-case what they quote)', () => {
    const redactor = new Redactor();
    redactor.add('Hunter2-Secret');
    expect(redactor.redact('getaddrinfo ENOTFOUND hunter2-secret; HUNTER2-SECRET; Hunter2-Secret')).toBe('getaddrinfo ENOTFOUND ********; ********; ********');
  });

  test('a refused value is quoted only when it cannot be a key or password', () => {
    expect(quoteValue('1O')).toBe('"1O"');
    expect(quoteValue(randomBytes(32).toString('base64'))).toMatch(/not shown/);
    expect(quoteValue('API-ABCDEF')).toMatch(/not shown/);
  });

  test('the shared run is found anywhere in either text', () => {
    expect(longestSharedRun('abcdefXYZ123', 'zzxyz123q')).toBe(6);
    expect(longestSharedRun('', 'abc')).toBe(0);
  });
});

describe('bad numbers and values exit 2 naming the parameter (invariant 8)', () => {
  const connection = 'Server=127.0.0.1,1;Database=Octopus;User ID=sa;Password=Bad-Numbers-1';
  test.each([
    [['--stripes', '-1'], /^ERROR: "Files \(stripes\)" must be from 1 to 64, not -1: set "Files \(stripes\)"/],
    [['--stripes=-1'], /^ERROR: "Files \(stripes\)" must be from 1 to 64, not -1/],
    [['--retention-days', '-3'], /^ERROR: "Retention \(days\)" must be/],
  ])('backup-database %j', async (args, expected) => {
    const run = await runStep('backup-database', args as string[], { OCTOPUSDR_SQL_CONNECTIONSTRING: connection });
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(expected as RegExp);
  });

  test.each([
    ['Connect Timeout=abc', /Connect Timeout must be a whole number/],
    ['Packet Size=-1', /Packet Size must be a whole number/],
    ['Encrypt=maybe', /Encrypt value is not understood; use True, False or Strict/],
    ['TrustServerCertificate=yess', /TrustServerCertificate value is not understood; use True or False/],
  ])('%s in the connection string: exit 2 before connecting, the value not shown', async (keyword, expected) => {
    const sim = await SqlSimulator.start({});
    try {
      const run = await runStep('backup-database', [], { OCTOPUSDR_SQL_CONNECTIONSTRING: sim.connectionString({ database: 'Octopus', extra: keyword }) });
      expect(run.code).toBe(2);
      expect(lastLine(run)).toMatch(/^ERROR: "SQL connection string" cannot be used: /);
      expect(lastLine(run)).toMatch(expected);
      expect(lastLine(run)).not.toContain(keyword.split('=')[1]);
      expect(sim.events.filter((e) => e.kind === 'login')).toEqual([]);
    } finally {
      await sim.stop();
    }
  });
});

describe('TLS problems say what to change (invariant 8)', () => {
  let key = '';
  let cert = '';
  beforeAll(() => {
    const dir = path.join(work, 'tls');
    mkdirSync(dir, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    key = readFileSync(path.join(dir, 'key.pem'), 'utf8');
    cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  });

  test.each([
    ['a self-signed certificate (Encrypt=True)', { mode: 'prelogin' }, 'Encrypt=True', /presented a TLS certificate this worker does not trust .*install the certificate authority .*NODE_EXTRA_CA_CERTS.*or, on a network you trust, add TrustServerCertificate=True/],
    ['a self-signed certificate (Encrypt=Strict)', { mode: 'strict' }, 'Encrypt=Strict', /does not trust .*With Encrypt=Strict the certificate is always checked: install the certificate authority/],
    ['a server that requires strict encryption', { mode: 'strict' }, 'Encrypt=True;TrustServerCertificate=True', /closed the connection during the handshake .*set Encrypt=Strict in the connection string/],
    ['a server that forces encryption, Encrypt=False', { mode: 'prelogin', forceEncryption: true }, 'Encrypt=False', /requires encrypted connections \(Force Encryption is on\).*set Encrypt=True/],
    ['Encrypt=Strict against a server without TDS 8', { mode: 'prelogin' }, 'Encrypt=Strict', /did not accept Encrypt=Strict .*set Encrypt=True in the connection string/],
  ] as const)('%s', async (_name, tls, encrypt, expected) => {
    const sim = await SqlSimulator.start({ tls: { key, cert, ...tls }, seed: { databases: [{ name: 'Octopus' }] } });
    try {
      const cs = `Server=localhost,${sim.port};Database=Octopus;User ID=sa;Password=Sim-Passw0rd!;${encrypt};Connect Timeout=5`;
      const run = await runStep('backup-database', ['--backup-directory', work], { OCTOPUSDR_SQL_CONNECTIONSTRING: cs });
      expect(run.code).toBe(1);
      expect(lastLine(run)).toMatch(/^ERROR: Cannot connect to SQL Server: /);
      expect(lastLine(run)).toMatch(expected);
      expect(run.stderr).not.toMatch(/Unexpected error/);
    } finally {
      await sim.stop();
    }
  });
});

describe('TLS hints are shared by both transports (driver texts as tedious and System.Data.SqlClient word them)', () => {
  const c = { server: 'sql01', encrypt: true, trustServerCertificate: false, connecting: true } as const;
  test.each([
    ['self-signed certificate', c, /does not trust .*TrustServerCertificate=True/],
    ['The certificate chain was issued by an authority that is not trusted.', c, /does not trust .*TrustServerCertificate=True/],
    ["Hostname/IP does not match certificate's altnames: Host: sql01. is not in the cert's altnames", c, /issued for another name/],
    ["Server requires encryption, set 'encrypt' config option to true.", { ...c, encrypt: false }, /requires encrypted connections .*set Encrypt=True/],
    ['An existing connection was forcibly closed by the remote host.', c, /closed the connection during the handshake .*Encrypt=Strict/],
    ['SSL routines:ssl3_get_record:wrong version number', { ...c, encrypt: 'strict' }, /did not accept Encrypt=Strict/],
    ['A connection was successfully established with the server, but then an error occurred during the pre-login handshake.', c, /TLS with SQL Server sql01 failed .*Check Encrypt/],
  ] as const)('%s', (text, context, expected) => {
    expect(describeTlsFailure(text, context)).toMatch(expected);
  });

  test('a connection dropped mid-statement is no TLS problem', () => {
    expect(describeTlsFailure('Connection lost - socket hang up', { ...c, connecting: false })).toBeUndefined();
    expect(describeTlsFailure('Connection lost - socket hang up', { ...c, encrypt: 'strict', connecting: false })).toBeUndefined();
  });
});

describe('network failures while connecting say what to check', () => {
  test.each([
    ['Failed to connect to nohost:1433 - getaddrinfo ENOTFOUND nohost', /cannot be resolved to an address .*Check Server=/],
    ['Failed to connect to 127.0.0.1:1 - connect ECONNREFUSED 127.0.0.1:1', /refused the connection .*Check the port/],
    ['Failed to connect to 10.1.2.3:1433 in 15000ms', /did not answer in time .*raise Connect Timeout/],
    ['A network-related or instance-specific error occurred (No such host is known.)', /cannot be resolved/],
  ])('%s', (text, expected) => {
    expect(describeNetworkFailure(text, 'sql01,1433')).toMatch(expected);
  });

  test('a refused port, from the built step', async () => {
    const run = await runStep('backup-database', [], { OCTOPUSDR_SQL_CONNECTIONSTRING: 'Server=127.0.0.1,1;Database=Octopus;User ID=sa;Password=Refused-Pw-1' });
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(/^ERROR: Cannot connect to SQL Server: SQL Server 127\.0\.0\.1,1 refused the connection \(.*Could not connect \(sequence\)\)\. Check the port/);
  });
});

describe('full disks, read-only and forbidden folders (invariant 8)', () => {
  const home = path.join(work, 'fs-home');
  beforeAll(() => {
    makeStore(home);
    // More than the 2 MB disk below can hold.
    for (let i = 0; i < 3; i++) write(path.join(home, 'Packages', `big${i}.nupkg`), pseudoRandomBytes(1024 * 1024, i));
  });

  withMount('backup-file-store: the disk fills while writing the archive', async () => {
    const full = path.join(work, 'fs-full');
    mountTmpfs(full, 'size=2m');
    const run = await runStep('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', full]);
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(
      new RegExp(`^ERROR: The disk holding ${full} is full \\(ENOSPC\\) while writing the archive .* \\(the partial archive was deleted\\); .* free: free at least .* there or choose another directory\\.$`),
    );
    expect(readdirSync(full)).toEqual([]);
  });

  withMount('backup-file-store: a read-only backup folder (EROFS)', async () => {
    const readOnly = path.join(work, 'fs-ro');
    mountTmpfs(readOnly, 'size=2m,ro');
    const run = await runStep('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', readOnly]);
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(/^ERROR: .* is on a read-only file system \(EROFS\) while .*: choose a directory on a writable disk, or mount that disk read-write\.$/);
  });

  withMount('check-worker: a read-only directory is named as read-only, not as a permission problem', async () => {
    const readOnly = path.join(work, 'cw-ro');
    mountTmpfs(readOnly, 'size=1m,ro');
    const run = await runStep('check-worker', ['--directories', readOnly, '--minimum-free-space-gb', '0']);
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(/^\s+- .*cw-ro.* is on a read-only file system \(EROFS\) while writing a probe file: choose a directory on a writable disk, or mount that disk read-write\.$/);
  });

  (canRunAsNobody() ? test : test.skip)('backup-file-store: a folder the account may not write (EACCES) names the path and the account', async () => {
    const locked = path.join(work, 'fs-locked');
    mkdirSync(locked, { recursive: true });
    chmodSync(locked, 0o755);
    const readable = path.join(work, 'fs-home-readable');
    makeStore(readable);
    for (let dir = readable; dir !== path.dirname(dir) && dir.startsWith(work); dir = path.dirname(dir)) chmodSync(dir, 0o755);
    chmodSync(work, 0o755);
    spawnSync('chmod', ['-R', 'a+rX', readable]);
    const run = await runStep('backup-file-store', ['--home-directory', readable, '--file-store-backup-directory', locked], {}, { command: ['setpriv'] });
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(/^ERROR: .*fs-locked.* cannot be accessed by the account nobody \(EACCES: permission denied\) while .*: give that account read and write access to .*, or choose another directory\.$/);
  });

  test('restore-file-store: a truncated archive ends with what to do, for verify and for restore', async () => {
    const backups = path.join(work, 'fs-truncated');
    mkdirSync(backups); // a backup directory must exist (invariant 3)
    expect((await runStep('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', backups])).code).toBe(0);
    const archive = readdirSync(backups).find((f) => f.endsWith('.zip'))!;
    const full = readFileSync(path.join(backups, archive));
    writeFileSync(path.join(backups, archive), full.subarray(0, Math.floor(full.length / 2)));
    for (const args of [['--verify-only'], ['--home-directory', path.join(work, 'fs-truncated-target')]]) {
      const run = await runStep('restore-file-store', ['--source', backups, ...args]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/cannot be opened \(.*truncated/);
      expect(lastLine(run)).toBe(
        'Restore an earlier backup set or the offsite copy of this one (give its archive or manifest as "Backup to restore"), check the storage that holds this one, and run the file-store backup again so that a sound set exists.',
      );
    }
  });

  withMount('restore-file-store: the disk fills while extracting', async () => {
    const backups = path.join(work, 'fs-restore-backups');
    mkdirSync(backups); // a backup directory must exist (invariant 3)
    expect((await runStep('backup-file-store', ['--home-directory', home, '--file-store-backup-directory', backups])).code).toBe(0);
    const target = path.join(work, 'fs-restore-full');
    mountTmpfs(target, 'size=2m');
    const run = await runStep('restore-file-store', ['--source', backups, '--home-directory', target]);
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(/^ERROR: The disk holding .*fs-restore-full.* is full \(ENOSPC\) while .*: free .* there or choose another directory\.$/);
  });
});

describe('database steps: full disks and the test report (invariants 8 and 9)', () => {
  const lab = new Lab();
  const masterKey = randomBytes(32);
  beforeAll(async () => {
    const db = octopusDatabase({ name: 'Octopus', key: masterKey, variableSets: 6, frozenVariableSets: 2, certificateTable: 'Configuration' });
    const have = new Set((db.seed.tables ?? []).map((t) => t.name.toLowerCase()));
    const tables = [...(db.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
    await lab.start({ operationMs: 100 }, [{ ...db.seed, name: 'Octopus', recoveryModel: 'FULL', tables }]);
    const full = await lab.run('backup-database', 'Octopus', ['--backup-type', 'Full', '--master-key-id', keyIdOf(masterKey)]);
    expect(full.code).toBe(0);
  }, 60_000);
  afterAll(() => lab.stop());

  const testRestoreEnv = () => ({ OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('master'), OCTOPUSDR_MASTERKEY: masterKey.toString('base64') });
  const logins = () => lab.sim.events.filter((e) => e.kind === 'login').length;

  test('the report goes beside the backups by default, and the slow phases keep talking', async () => {
    // A slow RESTORE VERIFYONLY: the phase must not stay silent.
    lab.sim.faults.push({ match: /RESTORE VERIFYONLY/, delayFirstPacketMs: 6500, times: 1 });
    const before = readdirSync(lab.backups).filter((f) => f.startsWith('octopus-dr-test-restore-'));
    const run = await runStep('test-restore', ['--service-messages', '--source', lab.backups], testRestoreEnv());
    expect(run.code).toBe(0);
    const reports = readdirSync(lab.backups).filter((f) => f.startsWith('octopus-dr-test-restore-') && !before.includes(f));
    // The JSON report and the HTML page beside it.
    expect(reports.map((f) => path.extname(f)).sort()).toEqual(['.html', '.json']);
    expect(readdirSync(work).filter((f) => f.startsWith('octopus-dr-test-restore-'))).toEqual([]);
    expect(run.stdout).toContain('Finding, reading and verifying the newest backup...');
    expect(run.stdout).toMatch(/Verifying .* \(RESTORE VERIFYONLY\)/);
    expect(run.stdout).toMatch(/still verifying .* \(RESTORE VERIFYONLY\) \(\d+ s\)/);
    const progress = parseServiceMessages(run.stdout).filter((m) => m.name === 'progress').map((m) => m.attributes.message);
    expect(progress.some((m) => /RESTORE VERIFYONLY\) \(\d+ s\)/.test(m))).toBe(true);
    // A whole run: neither the SQL password nor the master key in any output, variable, report or manifest.
    for (const secret of [PASSWORD, masterKey.toString('base64')]) expectNoSecret(secret, visibleTexts(run), [lab.backups]);
    for (const report of reports) rmSync(path.join(lab.backups, report));
  }, 60_000);

  test('restore-database: reading and verifying the backup is never silent for long', async () => {
    lab.sim.faults.push({ match: /RESTORE VERIFYONLY/, delayFirstPacketMs: 6500, times: 1 });
    const run = await runStep('restore-database', ['--service-messages', '--source', lab.backups, '--target-database', 'Octopus-copy', '--dry-run'], {
      OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('master'),
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Reading and verifying the backup...');
    expect(run.stdout).toMatch(/still verifying .* \(RESTORE VERIFYONLY\) \(\d+ s\)/);
  }, 60_000);

  test('backup-database: a slow RESTORE VERIFYONLY of the new backup is never silent for long', async () => {
    const backups = path.join(work, 'slow-verify');
    mkdirSync(backups, { recursive: true });
    lab.sim.faults.push({ match: /RESTORE VERIFYONLY/, delayFirstPacketMs: 6500, times: 1 });
    const run = await runStep('backup-database', ['--service-messages', '--backup-directory', backups], { OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('Octopus') });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Verifying the backup (RESTORE VERIFYONLY WITH CHECKSUM)...');
    expect(run.stdout).toMatch(/still verifying the backup \(RESTORE VERIFYONLY WITH CHECKSUM\) \(\d+ s\)/);
    const progress = parseServiceMessages(run.stdout).filter((m) => m.name === 'progress').map((m) => m.attributes.message);
    expect(progress.some((m) => /^Verifying the backup .*\(\d+ s\)$/.test(m))).toBe(true);
  }, 60_000);

  test('a failed test ends with what to do and where the report is', async () => {
    const reportDirectory = path.join(work, 'report-failed');
    mkdirSync(reportDirectory, { recursive: true });
    const wrongKey = randomBytes(32).toString('base64');
    const run = await runStep('test-restore', ['--source', lab.backups, '--report-directory', reportDirectory], { ...testRestoreEnv(), OCTOPUSDR_MASTERKEY: wrongKey });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Test restore FAILED/);
    const reports = readdirSync(reportDirectory).filter((f) => f.endsWith('.json'));
    expect(reports).toHaveLength(1);
    expect(lastLine(run)).toBe(`Fix the problems above (each says what to do) and run the test again; the report is ${path.join(reportDirectory, reports[0])}.`);
    expectNoSecret(wrongKey, [run.stdout, run.stderr], [reportDirectory]);
  }, 60_000);

  test('a missing report directory: exit 2 before connecting', async () => {
    const before = logins();
    const run = await runStep('test-restore', ['--source', lab.backups, '--report-directory', path.join(work, 'no-such-dir')], testRestoreEnv());
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/^ERROR: "Report directory" .*no-such-dir does not exist on this worker\. Create it, or correct the path\. Set "Report directory" to a writable folder/);
    expect(logins()).toBe(before);
  });

  withMount('a read-only report directory: exit 2 before connecting', async () => {
    const readOnly = path.join(work, 'report-ro');
    mountTmpfs(readOnly, 'size=1m,ro');
    const before = logins();
    const run = await runStep('test-restore', ['--source', lab.backups, '--report-directory', readOnly], testRestoreEnv());
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/^ERROR: The test report cannot be written: .*read-only file system \(EROFS\).* Set "Report directory" to a writable folder/);
    expect(logins()).toBe(before);
  });

  (canRunAsNobody() ? test : test.skip)('a report directory the account may not write: exit 2 naming the account, before connecting', async () => {
    const locked = path.join(work, 'report-locked');
    mkdirSync(locked, { recursive: true });
    chmodSync(locked, 0o755);
    chmodSync(work, 0o755);
    const source = path.join(work, 'report-locked-source');
    mkdirSync(source, { recursive: true });
    const before = logins();
    const run = await runStep('test-restore', ['--source', source, '--report-directory', locked], testRestoreEnv(), { command: ['setpriv'] });
    expect(run.code).toBe(2);
    expect(lastLine(run)).toMatch(/^ERROR: The test report cannot be written: .*report-locked cannot be accessed by the account nobody \(EACCES/);
    expect(logins()).toBe(before);
  });

  withMount('the disk fills before the report is written: the last line says so, the result is still reported', async () => {
    const reportDisk = path.join(work, 'report-full');
    mountTmpfs(reportDisk, 'size=1m');
    let filled = false;
    const run = await runStep('test-restore', ['--service-messages', '--source', lab.backups, '--report-directory', reportDisk], testRestoreEnv(), {
      onStdout: (all) => {
        if (!filled && all.includes('Finding, reading and verifying')) {
          filled = true;
          fillDisk(reportDisk);
        }
      },
    });
    expect(filled).toBe(true);
    expect(run.code).toBe(1);
    const result = parseServiceMessages(run.stdout).find((m) => m.name === 'resultMessage')?.attributes.message ?? '';
    expect(result).toMatch(new RegExp(`^The disk holding ${reportDisk} is full \\(ENOSPC\\) while writing the test report \\(the test itself passed\\); .* free: free at least .* there or choose another directory\\.$`));
    expect(parseServiceMessages(run.stdout).find((m) => m.name === 'setVariable' && m.attributes.name === 'Result')?.attributes.value).toBe('PASS');
  }, 60_000);

  withMount('backup-database: the disk fills before the manifest is written; the backup files are deleted', async () => {
    const disk = path.join(work, 'db-full');
    mountTmpfs(disk, 'size=1m');
    let filled = false;
    const run = await runStep('backup-database', ['--backup-directory', disk], { OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('Octopus') }, {
      onStdout: (all) => {
        if (!filled && all.includes('Verifying the backup')) {
          filled = true;
          fillDisk(disk);
        }
      },
    });
    expect(filled).toBe(true);
    expect(run.code).toBe(1);
    expect(lastLine(run)).toMatch(new RegExp(`^ERROR: The disk holding ${disk} is full \\(ENOSPC\\) while writing the manifest .*\\.manifest\\.json \\(the backup files were deleted\\); .* free: free at least .* there or choose another directory\\.$`));
    expect(readdirSync(disk).filter((f) => f.endsWith('.bak') || f.endsWith('.json'))).toEqual([]);
  }, 60_000);
});

describe('no failure reaches the user as "Unexpected error"', () => {
  const osError = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`${code}: something`), { code, syscall: 'write', ...extra });

  test.each([
    ['ENOSPC', { path: '/var/backups/x.json' }, /The disk holding \/var\/backups is full \(ENOSPC\) while writing \/var\/backups\/x\.json.*: free space there or choose another directory/],
    ['EDQUOT', { path: '/var/backups/x.json' }, /quota .* free space there or choose another directory/],
    ['EFBIG', { path: '/var/backups/x.zip' }, /largest file size allowed .*ulimit -f/],
    ['EACCES', { path: '/var/backups' }, /cannot be accessed by the account .* give that account read and write access/],
    ['EPERM', { path: '/var/backups' }, /cannot be accessed by the account .* give that account/],
    ['EROFS', { path: '/var/backups' }, /read-only file system \(EROFS\).*choose a directory on a writable disk/],
    ['ENOENT', { path: '/nope' }, /does not exist \(ENOENT\).*create it, or correct the path/],
    ['EMFILE', {}, /Too many files are open .*ulimit -n/],
    ['EIO', { path: '/var/backups' }, /input\/output error .*check the disk/],
    ['EBUSY', { path: '/var/backups/x' }, /is in use \(EBUSY\).*stop the program/],
    ['ECONNREFUSED', { address: '10.0.0.1', port: 1433 }, /Cannot reach 10\.0\.0\.1:1433 \(ECONNREFUSED\): check the address/],
    ['EWHATEVER', { path: '/x' }, /\(EWHATEVER\) while .*: check the path, the disk and the account's permissions/],
  ])('an operating-system error %s says what failed and what to do', (code, extra, expected) => {
    const message = failureMessage(osError(code, extra), 'Octopus DR - Test');
    expect(message).toMatch(expected);
    expect(message).not.toMatch(/Unexpected error/);
  });

  test.each([
    ['scandir', 'reading'],
    ['lstat', 'reading'],
    ['open', 'writing'],
    ['rename', 'writing'],
  ])('an error with no operation given says "while reading" only for a call that reads (%s)', (syscall, verb) => {
    const message = failureMessage(osError('EACCES', { path: '/var/backups', syscall }), 'S');
    expect(message).toContain(`(EACCES: permission denied) while ${verb} /var/backups:`);
  });

  test('errors written for users pass through; StepFailure as it is; anything else says how to report it', () => {
    expect(failureMessage(new StepFailure('Database x is OFFLINE.'))).toBe('Database x is OFFLINE.');
    expect(failureMessage(new SqlError('login', 'SQL Server s rejected the login. Check User ID.'))).toBe('SQL Server s rejected the login. Check User ID.');
    const bug = failureMessage(new TypeError("Cannot read properties of undefined (reading 'x')"), 'Octopus DR - Test');
    expect(bug).toMatch(/^Octopus DR - Test stopped on an internal error .*: Cannot read properties .*Run it again with --verbose .* report this message and that log/);
    expect(failureMessage('a thrown string', 'S')).not.toMatch(/Unexpected error/);
  });

  test('domain errors are StepFailures with their own exit codes: bad connection settings are exit 2, an unforeseen error 1', () => {
    expect(exitCodeOf(new SqlError('configuration', 'Encrypt=Maybe is not a value SqlClient accepts.'))).toBe(2);
    expect(exitCodeOf(new SqlError('login', 'SQL Server s rejected the login.'))).toBe(1);
    expect(exitCodeOf(new SqlConnectionStringError('The connection string has no Server.'))).toBe(2);
    expect(exitCodeOf(new TypeError('x'))).toBe(1);
  });

  test('a file error that knows how much was needed says how much to free', () => {
    const message = describeFileError(osError('ENOSPC'), { path: work, what: 'writing the report', neededBytes: 10 * 1024 ** 4 });
    // Beyond what is free on that disk (which the message gives): "more".
    expect(message).toMatch(/ free: free at least [\d.]+ [KMGT]?B more there/);
  });

  test('no step source builds an "Unexpected error" message any more', () => {
    const sources = filesUnder(path.join(ROOT, 'steps')).filter((f) => f.endsWith('.ts'));
    expect(sources.length).toBeGreaterThan(20);
    for (const file of sources) expect(`${file}: ${readFileSync(file, 'utf8')}`).not.toMatch(/Unexpected error/i);
  });

  test('check-worker, restore-file-store and backup-file-store given a missing path: a clear last line, never "Unexpected error"', async () => {
    // The simplest fault each step meets before doing anything: what it is given does not exist.
    const missing = path.join(work, 'does-not-exist');
    const runs = await Promise.all([
      runStep('check-worker', ['--directories', missing]),
      runStep('restore-file-store', ['--source', missing, '--home-directory', path.join(work, 'rfs-home')]),
      runStep('backup-file-store', ['--folders', `Packages=${missing}`, '--file-store-backup-directory', path.join(work, 'bfs-out')]),
    ]);
    for (const run of runs) {
      expect(run.code).not.toBe(0);
      expect(lastLine(run)).toMatch(/^(ERROR: |\s+- )/);
      expect(run.stdout + run.stderr).not.toMatch(/Unexpected error/);
    }
    expect(statSync(work).isDirectory()).toBe(true);
  });
});
