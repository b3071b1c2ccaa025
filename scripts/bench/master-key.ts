// `npm run bench -- master-key [--trials=N] [--keys=N] [--variable-sets=N]`: how often the master-key
// decision rule would accept a wrong key, measured and computed, per value and for a whole verdict;
// and how long the built step takes on a simulated Octopus database with N variable sets.
//
// Under a wrong key, AES-CBC decryption yields bytes indistinguishable from random, so:
//   P(value passes) = sum over n = 1..16 of 256^-n * V(16 * blocks - n)
// where 256^-n is the chance of valid PKCS7 padding of length n and V(m) the chance that m random
// bytes are strict UTF-8 without control characters (computed exactly below by dynamic
// programming over the UTF-8 automaton). The measurement checks the model against the real code.
import { execFile } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { octopusDatabase } from '../../test/master-key/octopus-database';
import { SqlSimulator } from '../../test/sql-simulator/server';
import { checkEncryptedValue, decide, EvidenceCollector, parseEncryptedValue, parseMasterKey, type EncryptedValue } from '../../steps/engines/master-key';
import { classifyText, decryptToBuffer } from '../../steps/engines/master-key/decrypt';

function option(args: string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
}

function encrypt(key: Buffer, plaintext: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv(`aes-${key.length * 8}-cbc`, key, iv);
  return `${Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('base64')}|${iv.toString('base64')}`;
}

function asValue(text: string): EncryptedValue {
  const v = parseEncryptedValue(text, '$');
  if (!v || 'problem' in v) throw new Error('bad value');
  return v;
}

/**
 * V(m) for m = 0..max: the probability that m uniformly random bytes are strict UTF-8 with no C0
 * control other than tab/LF/CR, no DEL and no C1 control (the rule in decrypt.ts). States count
 * how a partial sequence may continue: the second byte of E0/ED/F0/F4/C2 sequences is restricted.
 */
export function textProbabilities(max: number): number[] {
  type State = 'start' | 'c2' | 'cont1' | 'e0' | 'ed' | 'cont2' | 'f0' | 'f4' | 'cont3';
  const transitions = (state: State): Array<[State, number]> => {
    switch (state) {
      case 'start':
        return [
          ['start', 95 + 3], // printable ASCII 0x20-0x7E, plus tab, LF, CR
          ['c2', 1], // C2: next byte A0-BF only (80-9F would be a C1 control)
          ['cont1', 0xdf - 0xc3 + 1], // C3-DF
          ['e0', 1],
          ['cont2', 0xec - 0xe1 + 1 + 2], // E1-EC, EE-EF
          ['ed', 1],
          ['f0', 1],
          ['cont3', 3], // F1-F3
          ['f4', 1],
        ];
      case 'c2':
        return [['start', 0x20]];
      case 'cont1':
        return [['start', 0x40]];
      case 'e0':
        return [['cont1', 0x20]];
      case 'ed':
        return [['cont1', 0x20]];
      case 'cont2':
        return [['cont1', 0x40]];
      case 'f0':
        return [['cont2', 0x30]];
      case 'f4':
        return [['cont2', 0x10]];
      case 'cont3':
        return [['cont2', 0x40]];
    }
  };
  const states: State[] = ['start', 'c2', 'cont1', 'e0', 'ed', 'cont2', 'f0', 'f4', 'cont3'];
  let current = new Map<State, number>(states.map((s) => [s, s === 'start' ? 1 : 0]));
  const result = [1];
  for (let m = 1; m <= max; m++) {
    const next = new Map<State, number>(states.map((s) => [s, 0]));
    for (const [state, p] of current) {
      if (p === 0) continue;
      for (const [to, count] of transitions(state)) next.set(to, next.get(to)! + (p * count) / 256);
    }
    current = next;
    result.push(current.get('start')!);
  }
  return result;
}

/** P(a wrong key passes one value of `blocks` AES blocks), from the model. */
export function valueFalsePassProbability(blocks: number, v: number[]): number {
  let p = 0;
  for (let n = 1; n <= 16; n++) p += 256 ** -n * v[16 * blocks - n];
  return p;
}

function formatRate(hits: number, trials: number): string {
  const upper = hits === 0 ? 3 / trials : undefined; // "rule of three": 95% upper bound when none seen
  return `${hits} / ${trials.toLocaleString('en-US')} = ${(hits / trials).toExponential(2)}${upper ? ` (95% upper bound ${upper.toExponential(1)})` : ''}`;
}

const BUNDLE = path.resolve(__dirname, '../../build/steps/verify-master-key.js');

function runBundle(env: Record<string, string>, args: string[]): Promise<{ ms: number; code: number; stdout: string }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    execFile(process.execPath, [BUNDLE, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => {
      const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout });
    });
  });
}

/** The built step against the simulator seeded with `variableSets` variable sets (80% live, 20% frozen). */
async function timeOnSeededDatabase(variableSets: number, out: (line: string) => void): Promise<void> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first.`);
  const key = randomBytes(32);
  const live = Math.round(variableSets * 0.8);
  const seedStarted = process.hrtime.bigint();
  const db = octopusDatabase({ key, name: 'Octopus', variableSets: live, frozenVariableSets: variableSets - live });
  const sim = await SqlSimulator.start();
  try {
    sim.model.addDatabase(db.seed);
    const seedMs = Number(process.hrtime.bigint() - seedStarted) / 1e6;
    const rows = db.seed.tables?.find((t) => t.name === 'VariableSet')?.rows?.length ?? 0;
    out(`Seeded database: ${rows.toLocaleString('en-US')} VariableSet rows (${live} live, ${variableSets - live} frozen, 2 sensitive values each), seeded in ${seedMs.toFixed(0)} ms.`);
    const env = { OCTOPUSDR_MASTERKEY: key.toString('base64'), OCTOPUSDR_SQL_CONNECTIONSTRING: sim.connectionString({ database: 'Octopus' }) };
    for (const sample of [25, 1000]) {
      const times: number[] = [];
      let last = { code: 0, stdout: '' };
      for (let i = 0; i < 3; i++) {
        const r = await runBundle(env, ['--verbose', '--sample-size', String(sample)]);
        times.push(r.ms);
        last = r;
      }
      times.sort((a, b) => a - b);
      const tested = /output ValuesTested = (\d+)/.exec(last.stdout)?.[1];
      out(`  sample size ${String(sample).padStart(4)}: exit ${last.code}, ${tested} values tested, wall time median ${times[1].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[2].toFixed(0)}) for the whole program, simulator in-process`);
    }
    const bare = await runBundle({}, ['--version']);
    out(`  for scale: starting the bundle to print --version takes ${bare.ms.toFixed(0)} ms.`);
  } finally {
    await sim.stop();
  }
}

export async function run(args: string[]): Promise<void> {
  const trials = option(args, 'trials', 1_000_000);
  const keys = option(args, 'keys', 10_000);
  const variableSets = option(args, 'variable-sets', 10_000);
  const out = (line: string) => process.stdout.write(`${line}\n`);

  const v = textProbabilities(16 * 4);
  out('Model (wrong key => random plaintext bytes):');
  out(`  V(15) = ${v[15].toExponential(3)}: chance 15 random bytes are strict UTF-8 text without control characters`);
  for (const blocks of [1, 2, 3]) {
    out(`  P(value of ${blocks} block${blocks > 1 ? 's' : ''} passes padding + text) = ${valueFalsePassProbability(blocks, v).toExponential(3)}   (padding alone: ${(1 / 255).toExponential(3)})`);
  }

  // Measured: the text rule on random bytes, against the model's V(m) (checks the automaton).
  out(`Text rule on ${trials.toLocaleString('en-US')} random byte strings per length (measured vs model V(m)):`);
  for (const m of [1, 2, 3, 5, 8]) {
    let ok = 0;
    const pool = randomBytes(trials * m);
    for (let i = 0; i < trials; i++) if (classifyText(pool.subarray(i * m, i * m + m)) === 'ok') ok += 1;
    out(`  m = ${m}: ${(ok / trials).toExponential(3)} measured, ${v[m].toExponential(3)} model`);
  }

  // Measured: one-block values (the weakest case: fewest bytes to check) under random wrong keys.
  const rightKey = randomBytes(16);
  const value = asValue(encrypt(rightKey, 'pw'));
  let padding = 0;
  let text = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < trials; i++) {
    const raw = randomBytes(i % 2 === 0 ? 16 : 32);
    const plaintext = decryptToBuffer(raw, value);
    if (!plaintext) continue;
    padding += 1;
    plaintext.fill(0);
    if (checkEncryptedValue(parseMasterKey(raw.toString('base64')), value) === 'verified') text += 1;
  }
  const perTrialUs = Number(process.hrtime.bigint() - started) / 1000 / trials;
  out(`Measured on a one-block value, ${trials.toLocaleString('en-US')} random wrong keys (half 16-byte, half 32-byte), ${perTrialUs.toFixed(1)} µs per try:`);
  out(`  valid padding alone:          ${formatRate(padding, trials)}`);
  out(`  padding + strict UTF-8 text:  ${formatRate(text, trials)}`);

  // Whole verdicts: the certificate (a real-sized PKCS#12 in base64) plus 25 sampled values.
  const right256 = randomBytes(32);
  const pfxLike = Buffer.concat([Buffer.from('308209c3020103', 'hex'), randomBytes(2500)]).toString('base64');
  const documents = [
    { table: 'Configuration', id: 'certificate-global', json: JSON.stringify({ CertificateData: encrypt(right256, pfxLike) }), role: 'certificate' as const },
    ...Array.from({ length: 25 }, (_, i) => ({ table: 'VariableSet', id: `vs-${i}`, json: JSON.stringify({ V: encrypt(right256, `value-${i}`.repeat(1 + (i % 3))) }), role: 'sample' as const })),
  ];
  const statuses: Record<string, number> = { PASS: 0, FAIL: 0, INCONCLUSIVE: 0 };
  const verdictStarted = process.hrtime.bigint();
  for (let i = 0; i < keys; i++) {
    const key = parseMasterKey(randomBytes(i % 2 === 0 ? 16 : 32).toString('base64'));
    const collector = new EvidenceCollector(key);
    for (const d of documents) collector.addDocument({ table: d.table, documentId: d.id }, d.json, d.role);
    statuses[decide(collector.evidence()).status] += 1;
  }
  const perVerdictMs = Number(process.hrtime.bigint() - verdictStarted) / 1e6 / keys;
  out(`Decision rule, ${keys.toLocaleString('en-US')} random wrong keys, evidence = certificate + 25 values (${perVerdictMs.toFixed(3)} ms per verdict):`);
  out(`  PASS ${formatRate(statuses.PASS, keys)}; FAIL ${statuses.FAIL}; INCONCLUSIVE ${statuses.INCONCLUSIVE}`);
  const p1 = valueFalsePassProbability(1, v);
  const withoutCertificate = (25 * 24 * 23) / 6 * p1 ** 3;
  out('  Model: with the certificate, a false PASS needs ~3,300 random bytes to decrypt to base64 of a PKCS#12 blob');
  out(`  (< 4^-3300, effectively 0); without it, >= 3 of 25 values must pass: <= C(25,3) * p^3 = ${withoutCertificate.toExponential(2)}.`);

  if (variableSets > 0) await timeOnSeededDatabase(variableSets, out);
}
