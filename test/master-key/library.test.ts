import { randomBytes } from 'node:crypto';
import { classifyText, decryptToBuffer } from '../../steps/engines/master-key/decrypt';
import { looksLikePkcs12 } from '../../steps/engines/master-key/pkcs12';
import {
  checkEncryptedValue,
  decide,
  EvidenceCollector,
  findEncryptedValues,
  keyIdOf,
  parseEncryptedValue,
  parseMasterKey,
  type EncryptedValue,
  type Evidence,
  type TestedValue,
} from '../../steps/engines/master-key';
import { ParameterError } from '../../steps/runtime/errors';
import { encryptOctopusValue, expectNoLeak, makePfx } from './octopus-crypto';

const KEY16_TEXT = '5qJcW9E6B99teMmrOzaYNA==';
const KEY32 = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

function valueOf(encrypted: string, path = '$.Value'): EncryptedValue {
  const parsed = parseEncryptedValue(encrypted, path);
  if (!parsed || 'problem' in parsed) throw new Error('not an encrypted value');
  return parsed;
}

function parseError(input: string): string {
  try {
    parseMasterKey(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ParameterError);
    return (error as Error).message;
  }
  throw new Error('expected a ParameterError');
}

describe('parseMasterKey', () => {
  test('raw base64 of 16 and 32 bytes gives AES-128 and AES-256', () => {
    const k16 = parseMasterKey(KEY16_TEXT);
    expect(k16.bits).toBe(128);
    expect(k16.algorithm).toBe('AES-128-CBC');
    expect(k16.bytes.toString('base64')).toBe(KEY16_TEXT);
    expect(k16.warnings).toEqual([]);
    const k32 = parseMasterKey(`  ${KEY32.toString('base64')}\n`);
    expect(k32.bits).toBe(256);
    expect(k32.bytes.equals(KEY32)).toBe(true);
  });

  test('key ID is the first 16 hex of HMAC-SHA256(key, "octopus-dr/key-id/v1") (values computed with Python hmac)', () => {
    expect(parseMasterKey(KEY16_TEXT).keyId).toBe('41252bd34faf3857');
    expect(keyIdOf(KEY32)).toBe('e7eed627ce5cc7d3');
  });

  test('show-master-key text output: the last non-empty line', () => {
    const key = parseMasterKey(`Octopus Master Key:\r\n${KEY16_TEXT}\r\n\r\n`);
    expect(key.bytes.toString('base64')).toBe(KEY16_TEXT);
    expect(parseMasterKey(`Octopus Master Key: ${KEY16_TEXT}`).bytes.toString('base64')).toBe(KEY16_TEXT);
    expect(parseMasterKey(`"${KEY16_TEXT}"`).bytes.toString('base64')).toBe(KEY16_TEXT);
    expect(parseMasterKey(`MASTER_KEY='${KEY16_TEXT}'`.replace('=', ': ')).bytes.toString('base64')).toBe(KEY16_TEXT);
  });

  test('show-master-key --format=json output', () => {
    expect(parseMasterKey(`{\n  "MasterKey": "${KEY32.toString('base64')}"\n}\n`).bits).toBe(256);
    expect(parseError('{"Something": "x"}')).toMatch(/"Master key" \(OctopusDr\.MasterKey\) is JSON without a "MasterKey"/);
    expect(parseError('{"MasterKey": ')).toMatch(/not valid JSON/);
  });

  test('24 bytes is accepted with a warning', () => {
    const key = parseMasterKey(randomBytes(24).toString('base64'));
    expect(key.bits).toBe(192);
    expect(key.warnings[0]).toMatch(/24 bytes/);
  });

  test('missing "=" padding is tolerated; the secret forms include what was pasted and the canonical form', () => {
    const key = parseMasterKey(KEY16_TEXT.replace(/=+$/, ''));
    expect(key.bytes.toString('base64')).toBe(KEY16_TEXT);
    expect(key.secretForms).toEqual(expect.arrayContaining([KEY16_TEXT, KEY16_TEXT.replace(/=+$/, '')]));
  });

  test('bad input is refused with a message that names the parameter and never contains the key', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /is empty/],
      ['   \n ', /is empty/],
      [`${KEY16_TEXT.slice(0, 10)} ${KEY16_TEXT.slice(10)}`, /not base64 text/],
      ['ab-_cd-_ef-_gh-_ij-_kQ==', /URL-safe/],
      ['ab+/cd+/ef+/gh+/ij+/kQ== extra', /not base64 text/],
      [randomBytes(20).toString('base64'), /decodes to 20 bytes/],
      [randomBytes(64).toString('base64'), /decodes to 64 bytes/],
      [KEY16_TEXT.slice(0, 21), /impossible/],
      [`${KEY16_TEXT}=`, /not base64|wrong number/],
      ['5qJcW9E6B99teMmrOzaYNB==', /not a possible ending/],
    ];
    for (const [input, pattern] of cases) {
      const message = parseError(input);
      expect(message).toMatch(pattern);
      expect(message).toMatch(/"Master key" \(OctopusDr\.MasterKey\)/);
      expect(message).toMatch(/show-master-key/);
      if (input.trim().length >= 6) expect(message).not.toContain(input.trim());
    }
  });

  test('URL-safe alphabet gets its own explanation', () => {
    const urlSafe = Buffer.from('fbff' + '00'.repeat(14), 'hex').toString('base64url');
    expect(parseError(urlSafe)).toMatch(/URL-safe/);
  });
});

describe('findEncryptedValues', () => {
  const key = randomBytes(16);
  test('finds every cipher|iv string anywhere, with JSON paths, independent of property names', () => {
    const a = encryptOctopusValue(key, 'one');
    const b = encryptOctopusValue(key, 'two');
    const c = encryptOctopusValue(key, 'three');
    const document = {
      Id: 'variableset-Projects-1',
      Variables: [
        { Name: 'Plain', Value: 'not|secret', Type: 'String' },
        { Name: 'Secret', Value: a, Type: 'Sensitive' },
      ],
      'Odd name': { Deep: [[b]] },
      Nested: JSON.stringify({ Inner: c }),
      Number: 5,
      Nothing: null,
    };
    const found = findEncryptedValues(document);
    expect(found.values.map((v) => v.path)).toEqual(['$.Variables[1].Value', '$["Odd name"].Deep[0][0]', '$.Nested<json>.Inner']);
    expect(found.malformed).toEqual([]);
    expect(found.values[0].iv).toHaveLength(16);
  });

  test('damaged values are reported as malformed, unrelated strings are ignored', () => {
    const good = encryptOctopusValue(key, 'hello world, a longer value');
    const [cipher, iv] = good.split('|');
    const document = {
      Truncated: `${cipher.slice(0, -4)}|${iv}`, // no longer a whole number of blocks
      BadBase64: `${cipher.slice(0, 8)}!${cipher.slice(9)}|${iv}`,
      NonCanonical: `${cipher.slice(0, -2)}B=|${iv}`.replace(/==\|/, '=|'),
      Pipe: 'a|b',
      Url: 'https://example.com/?a=1|2',
    };
    const found = findEncryptedValues(document);
    expect(found.values).toEqual([]);
    expect(found.malformed.map((m) => m.path).sort()).toEqual(['$.BadBase64', '$.Truncated', ...(found.malformed.some((m) => m.path === '$.NonCanonical') ? ['$.NonCanonical'] : [])].sort());
    for (const m of found.malformed) expect(m.problem).not.toContain(cipher.slice(0, 8));
  });
});

describe('decryption and plausibility', () => {
  test('right key verifies; empty, long and non-ASCII values; 16- and 32-byte keys', () => {
    for (const raw of [randomBytes(16), randomBytes(32)]) {
      const key = parseMasterKey(raw.toString('base64'));
      for (const text of ['', 'p', 'Pässwörd ✓ 日本語 🚀\ttab\r\nline', 'x'.repeat(100_000)]) {
        expect(checkEncryptedValue(key, valueOf(encryptOctopusValue(raw, text)))).toBe('verified');
        const plaintext = decryptToBuffer(raw, valueOf(encryptOctopusValue(raw, text)));
        expect(plaintext?.toString('utf8')).toBe(text);
      }
    }
  });

  test('a wrong key of either size is rejected', () => {
    const right = randomBytes(32);
    const value = valueOf(encryptOctopusValue(right, 'sa-password-123'));
    for (let i = 0; i < 200; i++) {
      const wrong = parseMasterKey(randomBytes(i % 2 ? 16 : 32).toString('base64'));
      expect(checkEncryptedValue(wrong, value)).not.toBe('verified');
    }
  });

  test('valid padding alone is not enough: binary and control-character plaintexts are refused', () => {
    const key = randomBytes(16);
    const parsed = parseMasterKey(key.toString('base64'));
    expect(checkEncryptedValue(parsed, valueOf(encryptOctopusValue(key, Buffer.from([0xff, 0xfe, 0x41]))))).toBe('not-utf8');
    expect(checkEncryptedValue(parsed, valueOf(encryptOctopusValue(key, 'bell\u0007')))).toBe('control-characters');
    expect(checkEncryptedValue(parsed, valueOf(encryptOctopusValue(key, 'c1\u0085')))).toBe('control-characters');
    expect(checkEncryptedValue(parsed, valueOf(encryptOctopusValue(key, 'plain text')), 'pkcs12')).toBe('not-pkcs12');
  });

  test('classifyText is strict UTF-8', () => {
    expect(classifyText(Buffer.from('ascii\ttab\r\n', 'utf8'))).toBe('ok');
    expect(classifyText(Buffer.from('€ 𝄞 ß', 'utf8'))).toBe('ok');
    expect(classifyText(Buffer.from([0xc0, 0xaf]))).toBe('not-utf8'); // overlong "/"
    expect(classifyText(Buffer.from([0xe0, 0x80, 0xaf]))).toBe('not-utf8'); // overlong
    expect(classifyText(Buffer.from([0xed, 0xa0, 0x80]))).toBe('not-utf8'); // surrogate
    expect(classifyText(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe('not-utf8'); // > U+10FFFF
    expect(classifyText(Buffer.from([0xe2, 0x82]))).toBe('not-utf8'); // truncated
    expect(classifyText(Buffer.from([0x41, 0x00]))).toBe('control-characters');
    expect(classifyText(Buffer.from([0x7f]))).toBe('control-characters');
  });

  test('PKCS#12 shape: an openssl PFX passes, other DER and random bytes do not', () => {
    const pfx = makePfx();
    expect(looksLikePkcs12(pfx)).toBe(true);
    expect(looksLikePkcs12(pfx.subarray(0, pfx.length - 1))).toBe(false);
    expect(looksLikePkcs12(Buffer.from('3003020101', 'hex'))).toBe(false);
    for (let i = 0; i < 1000; i++) expect(looksLikePkcs12(randomBytes(1 + (i % 300)))).toBe(false);
    const key = randomBytes(32);
    const parsed = parseMasterKey(key.toString('base64'));
    expect(checkEncryptedValue(parsed, valueOf(encryptOctopusValue(key, pfx.toString('base64'))), 'pkcs12')).toBe('verified');
  });
});

describe('decide', () => {
  const rightRaw = randomBytes(32);
  const right = parseMasterKey(rightRaw.toString('base64'));
  const pfxBase64 = makePfx().toString('base64');
  const secrets = ['S3cr3t-Production-Password', 'another sensitive value', 'Pässwörd ✓', '', 'x'.repeat(400), 'db=prod;pwd=hunter22'];

  function collect(key: ReturnType<typeof parseMasterKey>, options: { certificate?: boolean; samples?: number; corrupt?: number } = {}): Evidence {
    const collector = new EvidenceCollector(key);
    if (options.certificate ?? true) {
      collector.addDocument({ table: 'Configuration', documentId: 'certificate-global' }, JSON.stringify({ Id: 'certificate-global', CertificateData: encryptOctopusValue(rightRaw, pfxBase64), Thumbprint: 'ABCDEF' }), 'certificate');
    }
    for (let i = 0; i < (options.samples ?? 25); i++) {
      let value = encryptOctopusValue(rightRaw, secrets[i % secrets.length]);
      if (i < (options.corrupt ?? 0)) {
        // Flip bits in the last block: the value stays well-formed but no longer decrypts.
        const [c, iv] = value.split('|');
        const bytes = Buffer.from(c, 'base64');
        bytes[bytes.length - 1] ^= 0x5a;
        bytes[bytes.length - 16] ^= 0xa5;
        value = `${bytes.toString('base64')}|${iv}`;
      }
      collector.addDocument({ table: 'VariableSet', documentId: `variableset-Projects-${i}` }, JSON.stringify({ Variables: [{ Name: 'V', Type: 'Sensitive', Value: value }] }), 'sample');
    }
    return collector.evidence();
  }

  function expectClean(verdict: ReturnType<typeof decide>): void {
    expectNoLeak(JSON.stringify(verdict), [rightRaw, ...secrets.filter((s) => s.length >= 6), pfxBase64.slice(0, 40)]);
  }

  test('the right key passes', () => {
    const verdict = decide(collect(right));
    expect(verdict.status).toBe('PASS');
    expect(verdict.counts).toMatchObject({ valuesTested: 26, valuesVerified: 26, valuesFailed: 0, certificateVerified: true });
    expect(verdict.summary).toContain(right.keyId);
    expectClean(verdict);
  });

  test('the certificate alone proves a key when there are no other encrypted values', () => {
    expect(decide(collect(right, { samples: 0 })).status).toBe('PASS');
  });

  test('wrong keys of both sizes fail with the rotation and key-size hints', () => {
    for (const size of [16, 32]) {
      const verdict = decide(collect(parseMasterKey(randomBytes(size).toString('base64'))));
      expect(verdict.status).toBe('FAIL');
      expect(verdict.reason).toBe('wrong-key');
      expect(verdict.hints.join('\n')).toMatch(/rotate-master-key/);
      expect(verdict.hints.join('\n')).toMatch(size === 16 ? /32-byte \(AES-256\)/ : /16-byte \(AES-128\)/);
      expectClean(verdict);
    }
  });

  test('a few damaged values are reported, without failing the right key', () => {
    const verdict = decide(collect(right, { corrupt: 2 }));
    expect(verdict.status).toBe('PASS');
    expect(verdict.counts.valuesFailed).toBe(2);
    expect(verdict.findings).toHaveLength(2);
    expect(verdict.findings[0]).toMatch(/^VariableSet 'variableset-Projects-0' \$\.Variables\[0\]\.Value: /);
    expect(verdict.summary).toMatch(/may be damaged/);
    expectClean(verdict);
  });

  test('many failing values under a key that decrypts the certificate: FAIL, mixed results', () => {
    const verdict = decide(collect(right, { corrupt: 10 }));
    expect(verdict.status).toBe('FAIL');
    expect(verdict.reason).toBe('mixed-results');
  });

  test('no encrypted values: INCONCLUSIVE, never a wrong key', () => {
    const collector = new EvidenceCollector(right);
    collector.addDocument({ table: 'VariableSet', documentId: 'variableset-1' }, '{"Variables":[{"Name":"A","Value":"plain"}]}', 'sample');
    const verdict = decide(collector.evidence());
    expect(verdict.status).toBe('INCONCLUSIVE');
    expect(verdict.reason).toBe('no-encrypted-values');
    expect(verdict.summary).toMatch(/neither proven right nor wrong/);
  });

  test('without the certificate, 3 verified values are needed', () => {
    expect(decide(collect(right, { certificate: false, samples: 3 })).status).toBe('PASS');
    expect(decide(collect(right, { certificate: false, samples: 2 })).reason).toBe('insufficient-evidence');
    expect(decide(collect(parseMasterKey(randomBytes(16).toString('base64')), { certificate: false, samples: 5 })).reason).toBe('wrong-key');
  });

  test('a certificate that is text but not PKCS#12 is not proof on its own', () => {
    const collector = new EvidenceCollector(right);
    collector.addDocument({ table: 'Configuration', documentId: 'certificate-global' }, JSON.stringify({ CertificateData: encryptOctopusValue(rightRaw, 'not a certificate') }), 'certificate');
    expect(decide(collector.evidence()).status).toBe('INCONCLUSIVE');
  });

  test('unreadable documents are reported as findings', () => {
    const collector = new EvidenceCollector(right);
    collector.addDocument({ table: 'VariableSet', documentId: 'variableset-9' }, '{"Variables": [', 'sample');
    const verdict = decide(collector.evidence());
    expect(verdict.status).toBe('INCONCLUSIVE');
    expect(verdict.findings).toEqual(["VariableSet 'variableset-9': the document is not readable JSON (damaged?)"]);
  });

  test('10,000 random wrong keys (16 and 32 bytes) never PASS', () => {
    // Evidence as the step gathers it: the certificate plus 5 sampled values, tried per key.
    const documents = [
      { ref: { table: 'Configuration', documentId: 'certificate-global' }, json: JSON.stringify({ CertificateData: encryptOctopusValue(rightRaw, pfxBase64) }), role: 'certificate' as const },
      ...secrets.slice(0, 5).map((s, i) => ({ ref: { table: 'VariableSet', documentId: `vs-${i}` }, json: JSON.stringify({ V: encryptOctopusValue(rightRaw, s) }), role: 'sample' as const })),
    ];
    const statuses: Record<string, number> = {};
    let paddingPassed = 0;
    for (let i = 0; i < 10_000; i++) {
      const wrong = parseMasterKey(randomBytes(i % 2 === 0 ? 16 : 32).toString('base64'));
      const collector = new EvidenceCollector(wrong);
      for (const d of documents) collector.addDocument(d.ref, d.json, d.role);
      const evidence = collector.evidence();
      paddingPassed += evidence.values.filter((v: TestedValue) => v.outcome !== 'bad-padding').length;
      const verdict = decide(evidence);
      statuses[verdict.status] = (statuses[verdict.status] ?? 0) + 1;
    }
    expect(statuses.PASS).toBeUndefined();
    expect(statuses.FAIL).toBe(10_000);
    // Sanity: padding alone lets roughly 1 in 256 values through (60,000 values tried).
    expect(paddingPassed).toBeGreaterThan(100);
    expect(paddingPassed).toBeLessThan(450);
  });
});
