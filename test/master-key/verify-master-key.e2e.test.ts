// Verify Master Key end to end: in-process through runStep(), and as the built bundle and templates
// (`npm run build` first; `npm test` does), run as a
// command-line program and under the Octopus runner's service messages, against the SQL Server
// simulator seeded with an Octopus-shaped database. Every run asserts that neither the key (in any
// encoding) nor any plaintext appears in stdout, stderr or output variables.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { builtStep, builtTemplate } from '../helpers/bundle';
import { runStepInProcess } from '../helpers/in-process';
import { findNode18 } from '../helpers/node18';
import { runBashScriptBody, runPowerShellScriptBody } from '../helpers/runners';
import { SqlSimulator } from '../sql-simulator/server';
import { expectNoLeak } from './octopus-crypto';
import { octopusDatabase, type OctopusDatabaseOptions } from './octopus-database';
import { outputVariablesIn } from '../../steps/runtime/service-messages';
import { transportEnv } from '../database/harness';

const scriptBody = (syntax: 'bash' | 'powershell'): string =>
  JSON.parse(readFileSync(builtTemplate(syntax, 'verify-master-key'), 'utf8')).Properties['Octopus.Action.Script.ScriptBody'];
const INCONCLUSIVE = 3;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Output variables, from service messages (with --service-messages) or "output X = Y" lines (--verbose). */
  outputs: Record<string, string>;
}

function outputsOf(stdout: string): Record<string, string> {
  const outputs = outputVariablesIn(stdout);
  for (const m of stdout.matchAll(/^output ([A-Za-z.]+) = (.*)$/gm)) outputs[m[1]] = m[2];
  return outputs;
}

/** Runs the step in this process, or with `bundle` the built bundle as a child process. */
async function runStep(env: Record<string, string>, args: string[] = ['--verbose'], options: { bundle?: boolean } = {}): Promise<Run> {
  if (!options.bundle) {
    const run = await runStepInProcess('verify-master-key', args, { env });
    return { ...run, outputs: outputsOf(run.stdout) };
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [builtStep('verify-master-key'), ...args], { env: { PATH: process.env.PATH ?? '', ...transportEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, outputs: outputsOf(stdout) }));
  });
}

describe('verify-master-key against an Octopus-shaped database', () => {
  let sim: SqlSimulator;
  const databases = new Map<string, { key?: Buffer; plaintexts: string[] }>();

  function addDatabase(name: string, options: OctopusDatabaseOptions): void {
    const db = octopusDatabase({ ...options, name });
    sim.model.addDatabase(db.seed);
    databases.set(name, { key: options.key, plaintexts: db.plaintexts });
  }

  const key256 = randomBytes(32);
  const key128 = randomBytes(16);
  const preRotationKey = randomBytes(16);
  const wrongKeys = [randomBytes(16), randomBytes(32)];

  beforeAll(async () => {
    sim = await SqlSimulator.start();
    addDatabase('Octopus', { key: key256, variableSets: 20, frozenVariableSets: 10 });
    addDatabase('Octopus128', { key: key128, variableSets: 8, frozenVariableSets: 2, certificateTable: 'CompressedConfiguration' });
    addDatabase('OctopusEmpty', { key: undefined, variableSets: 5, frozenVariableSets: 0 });
    addDatabase('OctopusDamaged', { key: key256, variableSets: 30, frozenVariableSets: 0, corruptValues: 1, truncatedValues: 1 });
    addDatabase('NoCertificate', { key: key256, variableSets: 10, frozenVariableSets: 2, certificateTable: 'none' });
  }, 60_000);

  afterAll(async () => {
    await sim?.stop();
  });

  async function verify(database: string, key: Buffer | string, extraEnv: Record<string, string> = {}, args?: string[], options: { bundle?: boolean } = {}): Promise<Run> {
    const connectionString = sim.connectionString({ database });
    const keyText = typeof key === 'string' ? key : key.toString('base64');
    const run = await runStep({ OCTOPUSDR_MASTERKEY: keyText, OCTOPUSDR_SQL_CONNECTIONSTRING: connectionString, ...extraEnv }, args, options);
    const everything = `${run.stdout}\n${run.stderr}\n${JSON.stringify(run.outputs)}`;
    const db = databases.get(database);
    const keyBytes = typeof key === 'string' ? undefined : key;
    expectNoLeak(everything, [...(keyBytes ? [keyBytes] : []), ...(db?.key ? [db.key] : []), ...(db?.plaintexts ?? []).filter((p) => p.length >= 6)]);
    expect(everything).not.toContain('Sim-Passw0rd!');
    // The step attaches no artifacts (nothing to leak there).
    expect(run.stdout).not.toMatch(/##octopus\[createArtifact|^Artifact: /m);
    return run;
  }

  test('the right 32-byte key passes: certificate and sampled values, counts as output variables', async () => {
    const run = await verify('Octopus', key256);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({
      Result: 'PASS',
      Passed: 'True',
      Algorithm: 'AES-256-CBC',
      KeyBits: '256',
      CertificateTable: 'Configuration',
      CertificateVerified: 'True',
      TablesScanned: '6',
      ValuesFailed: '0',
      MalformedValues: '0',
    });
    expect(Number(run.outputs.ValuesTested)).toBe(26); // certificate + the default sample of 25
    expect(run.outputs.ValuesVerified).toBe('26');
    expect(run.outputs.KeyId).toMatch(/^[0-9a-f]{16}$/);
    // The key ID a backup may record: only ever set when the key passed.
    expect(run.outputs.VerifiedKeyId).toBe(run.outputs.KeyId);
    expect(run.stdout).toMatch(/PASS: The master key \(AES-256-CBC, key ID [0-9a-f]{16}\) decrypts the server certificate \(Configuration 'certificate-global'\)/);
  });

  test('the built bundle, run from the command line, passes the right key', async () => {
    const run = await verify('Octopus', key256, {}, ['--verbose'], { bundle: true });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ Result: 'PASS', Passed: 'True', Algorithm: 'AES-256-CBC', ValuesVerified: '26' });
  });

  test('a 16-byte key with the certificate in a compressed JSONBlob table passes (AES-128)', async () => {
    const run = await verify('Octopus128', key128, {}, ['--verbose', '--sample-size', '100']);
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ Result: 'PASS', Algorithm: 'AES-128-CBC', CertificateTable: 'CompressedConfiguration' });
    // 10 variable sets x 2 values, SMTP, 2 accounts and the compressed feed: every one found.
    expect(run.outputs.ValuesTested).toBe(String(1 + 20 + 1 + 2 + 1));
  });

  test('key pasted as show-master-key output, text and JSON, under the Octopus runner', async () => {
    for (const pasted of [`Octopus Master Key:\r\n${key256.toString('base64')}\r\n`, `{\n  "MasterKey": "${key256.toString('base64')}"\n}`]) {
      const run = await verify('Octopus', pasted, { OCTOPUSDR_RUNNER: 'test' }, []);
      expectNoLeak(run.stdout + run.stderr, [key256]);
      expect(run.code).toBe(0);
      expect(run.outputs.Result).toBe('PASS');
      // The key is registered for masking before anything else is printed.
      const firstLine = run.stdout.split('\n')[0];
      expect(firstLine).toMatch(/^##octopus\[mask value='/);
      const masks = [...run.stdout.matchAll(/##octopus\[mask value='([^']*)'\]/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
      expect(masks).toContain(key256.toString('base64'));
    }
  });

  test('wrong keys of both sizes fail with the rotation and key-size hints', async () => {
    for (const wrong of wrongKeys) {
      const run = await verify('Octopus', wrong);
      expect(run.code).toBe(1);
      expect(run.outputs).toMatchObject({ Result: 'FAIL', Passed: 'False', CertificateVerified: 'False', ValuesVerified: '0' });
      expect(run.outputs.VerifiedKeyId).toBeUndefined();
      expect(run.stderr).toMatch(/does not decrypt the server certificate/);
      expect(run.stderr).toMatch(/rotate-master-key/);
      expect(run.stderr).toMatch(wrong.length === 16 ? /32-byte \(AES-256\)/ : /16-byte \(AES-128\)/);
    }
  });

  test('a key from before a rotation fails, and the rotation hint says which key a backup needs', async () => {
    // The database was re-encrypted with key128 by rotate-master-key; the old key no longer works.
    const run = await verify('Octopus128', preRotationKey);
    expect(run.code).toBe(1);
    expect(run.outputs.Result).toBe('FAIL');
    expect(run.stderr).toMatch(/rotated[\s\S]*a backup from before the rotation needs the old key/);
  });

  test('a database without encrypted values is INCONCLUSIVE, with its own exit code', async () => {
    const run = await verify('OctopusEmpty', key256);
    expect(run.code).toBe(INCONCLUSIVE);
    expect(run.outputs).toMatchObject({ Result: 'INCONCLUSIVE', Passed: 'False', ValuesTested: '0' });
    expect(run.outputs.VerifiedKeyId).toBeUndefined();
    expect(run.stderr).toMatch(/INCONCLUSIVE: no encrypted values of the known form/);
    expect(run.stderr).not.toMatch(/wrong key|not the key/i);
  });

  test('a database that is not Octopus (master) is INCONCLUSIVE and says no table holds the certificate', async () => {
    const run = await verify('master', key256);
    expect(run.code).toBe(INCONCLUSIVE);
    expect(run.outputs).toMatchObject({ Result: 'INCONCLUSIVE', TablesScanned: '0', CertificateTable: '' });
    expect(run.stderr).toMatch(/No table holds the 'certificate-global' document/);
  });

  test('damaged values are reported by document id and JSON path, and the right key still passes', async () => {
    const run = await verify('OctopusDamaged', key256);
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ Result: 'PASS', ValuesFailed: '1', MalformedValues: '1' });
    expect(run.stderr).toMatch(/VariableSet 'variableset-Projects-1' \$\.Variables\[0\]\.Value: does not decrypt|VariableSet 'variableset-Projects-1' \$\.Variables\[0\]\.Value: decrypts to/);
    expect(run.stderr).toMatch(/VariableSet 'variableset-Projects-1' \$\.Variables\[1\]\.Value: is shaped like an encrypted value, but its ciphertext is not a whole number of AES blocks/);
  });

  test('without the certificate document, sampled values prove the key (with a warning)', async () => {
    const run = await verify('NoCertificate', key256);
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ Result: 'PASS', CertificateTable: '', CertificateVerified: 'False' });
    expect(run.stderr).toMatch(/No table holds the 'certificate-global' document/);
  });

  test('expected key ID: matches, mismatches, and works without a database', async () => {
    const right = await verify('Octopus', key256);
    const keyId = right.outputs.KeyId;
    const match = await verify('Octopus', key256, { OCTOPUSDR_MASTERKEY_EXPECTEDKEYID: keyId.toUpperCase() });
    expect(match.code).toBe(0);
    expect(match.outputs.KeyIdMatches).toBe('True');
    const mismatch = await verify('Octopus', wrongKeys[1], { OCTOPUSDR_MASTERKEY_EXPECTEDKEYID: keyId });
    expect(mismatch.code).toBe(1);
    expect(mismatch.outputs.KeyIdMatches).toBe('False');
    const noDatabase = await runStep({ OCTOPUSDR_MASTERKEY: key256.toString('base64'), OCTOPUSDR_MASTERKEY_EXPECTEDKEYID: keyId }, ['--verbose']);
    expectNoLeak(noDatabase.stdout + noDatabase.stderr, [key256]);
    expect(noDatabase.code).toBe(0);
    expect(noDatabase.stdout).toMatch(/matches the expected key ID/);
    // Neither a database nor an expected key ID: both ways to give the connection string are named.
    const neither = await runStep({ OCTOPUSDR_MASTERKEY: key256.toString('base64') }, []);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('OCTOPUSDR_SQL_CONNECTIONSTRING or --connection-string-file <file>');
    expect(neither.stderr).toContain('set "Expected key ID" instead');
    // A malformed expected key ID is refused by parameter parsing, in the definition's words, before the key is used.
    const malformed = await runStep({ OCTOPUSDR_MASTERKEY: key256.toString('base64'), OCTOPUSDR_MASTERKEY_EXPECTEDKEYID: 'abc' }, []);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('"Expected key ID" must be 16 hexadecimal characters (the KeyId output variable of Octopus DR - Verify Master Key');
    expect(malformed.stderr).toContain('not "abc": set "Expected key ID" (OctopusDr.MasterKey.ExpectedKeyId) in the step, or --expected-key-id on the command line.');
  });

  test('bad keys are refused with exit code 2, naming the parameter, without echoing the key', async () => {
    const short = randomBytes(20).toString('base64');
    const run = await verify('Octopus', short);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/"Master key" \(OctopusDr\.MasterKey\) decodes to 20 bytes/);
    expect(run.stdout + run.stderr).not.toContain(short);
  });

  test('the key given to --master-key-file instead of a file name is refused without echoing it (red team 38)', async () => {
    const key = randomBytes(32).toString('base64');
    const run = await runStepInProcess('verify-master-key', ['--master-key-file', key, '--expected-key-id', '0123456789abcdef']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/"Master key": cannot read the file given to --master-key-file \(ENOENT: no such file\)\. The value is not shown/);
    expect(run.stdout + run.stderr).not.toContain(key);
    expect(run.stdout + run.stderr).not.toContain(key.slice(0, 12));
  });

  test('as Octopus runs it: the Bash template on Node.js 18 (when installed) passes; the PowerShell template fails a wrong key', async () => {
    const node18 = findNode18();
    const bash = await runBashScriptBody(scriptBody('bash'), {
      parameters: {
        'OctopusDr.MasterKey': `Octopus Master Key:\n${key256.toString('base64')}\n`,
        'OctopusDr.Sql.ConnectionString': sim.connectionString({ database: 'Octopus' }),
        ...(node18 ? { 'OctopusDr.NodePath': node18 } : {}),
      },
    });
    const db = databases.get('Octopus')!;
    expectNoLeak(bash.stdout + bash.stderr, [key256, ...db.plaintexts.filter((p) => p.length >= 6)]);
    expect(bash.code).toBe(0);
    expect(outputsOf(bash.stdout)).toMatchObject({ Result: 'PASS', Algorithm: 'AES-256-CBC' });
    if (node18) expect(bash.stdout).toMatch(/Node\.js v18\./);

    const powershell = await runPowerShellScriptBody(scriptBody('powershell'), {
      parameters: { 'OctopusDr.MasterKey': wrongKeys[0].toString('base64'), 'OctopusDr.Sql.ConnectionString': sim.connectionString({ database: 'Octopus' }) },
    });
    expectNoLeak(powershell.stdout + powershell.stderr, [wrongKeys[0], key256, ...db.plaintexts.filter((p) => p.length >= 6)]);
    expect(powershell.code).toBe(1);
    expect(outputsOf(powershell.stdout)).toMatchObject({ Result: 'FAIL', Passed: 'False' });
  }, 60_000);

  test('a connection to a database that does not exist fails clearly, without the connection string', async () => {
    const run = await verify('NoSuchDatabase', key256);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Cannot connect to SQL Server: Database 'NoSuchDatabase' on .* does not exist or the login cannot open it/);
  });
});
