// Test vectors from two independent AES implementations: Node's crypto (OpenSSL) and .NET's
// System.Security.Cryptography.Aes, the platform Octopus Server runs on. Each side decrypts the
// other's output; the library verifies both.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decryptToBuffer } from '../../steps/engines/master-key/decrypt';
import { looksLikePkcs12 } from '../../steps/engines/master-key/pkcs12';
import { checkEncryptedValue, parseEncryptedValue, parseMasterKey, type EncryptedValue } from '../../steps/engines/master-key';
import { encryptOctopusValue, makePfx } from './octopus-crypto';

function findPwsh(): string {
  const candidates = [path.join(os.homedir(), '.dotnet', 'tools', 'pwsh'), ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'pwsh'))];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('pwsh (PowerShell 7) is needed for the .NET cross-check: .ci/run installs it.');
  return found;
}

function asValue(encrypted: string): EncryptedValue {
  const parsed = parseEncryptedValue(encrypted, '$');
  if (!parsed || 'problem' in parsed) throw new Error('not an encrypted value');
  return parsed;
}

describe('AES test vectors: Node crypto and .NET System.Security.Cryptography.Aes agree', () => {
  const keys: Record<string, Buffer> = { aes128: randomBytes(16), aes256: randomBytes(32) };
  const plaintexts: Record<string, Buffer> = {
    empty: Buffer.alloc(0),
    oneByte: Buffer.from('x'),
    blockMinusOne: Buffer.from('a'.repeat(15)),
    exactBlock: Buffer.from('b'.repeat(16)),
    long: Buffer.from(Array.from({ length: 5000 }, (_, i) => `line ${i}\r\n`).join('')),
    nonAscii: Buffer.from('Pässwörd ✓ 日本語 🚀 Ελληνικά\tend', 'utf8'),
    pkcs12: Buffer.from(makePfx().toString('base64'), 'ascii'),
  };
  let dotnet: { decrypted: string[]; encrypted: Array<{ key: string; plaintext: string; keyBits: number; encrypted: string }>; pfx: string };
  const nodeValues: Array<{ key: string; plaintext: string; encrypted: string }> = [];

  beforeAll(() => {
    for (const key of Object.keys(keys)) {
      for (const [name, bytes] of Object.entries(plaintexts)) nodeValues.push({ key, plaintext: name, encrypted: encryptOctopusValue(keys[key], bytes) });
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-aes-'));
    try {
      const input = path.join(dir, 'in.json');
      const output = path.join(dir, 'out.json');
      writeFileSync(input, JSON.stringify({
        keys: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, v.toString('base64')])),
        plaintexts: Object.fromEntries(Object.entries(plaintexts).map(([k, v]) => [k, v.toString('base64')])),
        nodeValues,
      }));
      execFileSync(findPwsh(), ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', path.join(__dirname, 'dotnet-aes.ps1'), input, output], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
      dotnet = JSON.parse(readFileSync(output, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  test('.NET decrypts every value Node encrypted', () => {
    expect(dotnet.decrypted).toHaveLength(nodeValues.length);
    nodeValues.forEach((v, i) => expect([v.key, v.plaintext, dotnet.decrypted[i]]).toEqual([v.key, v.plaintext, plaintexts[v.plaintext].toString('base64')]));
  });

  test('Node decrypts every value .NET encrypted, and the library verifies it', () => {
    expect(dotnet.encrypted).toHaveLength(Object.keys(keys).length * Object.keys(plaintexts).length);
    for (const v of dotnet.encrypted) {
      expect(v.keyBits).toBe(keys[v.key].length * 8);
      expect(v.encrypted).toMatch(/^[A-Za-z0-9+/]+={0,2}\|[A-Za-z0-9+/]{22}==$/);
      const value = asValue(v.encrypted);
      expect(decryptToBuffer(keys[v.key], value)?.equals(plaintexts[v.plaintext])).toBe(true);
      const key = parseMasterKey(keys[v.key].toString('base64'));
      expect(checkEncryptedValue(key, value, v.plaintext === 'pkcs12' ? 'pkcs12' : 'text')).toBe('verified');
      // And the other key (other size) rejects it.
      const other = parseMasterKey(keys[v.key === 'aes128' ? 'aes256' : 'aes128'].toString('base64'));
      expect(checkEncryptedValue(other, value)).not.toBe('verified');
    }
  });

  test('a PKCS#12 blob exported by .NET has the shape the certificate check expects', () => {
    const pfx = Buffer.from(dotnet.pfx, 'base64');
    expect(looksLikePkcs12(pfx)).toBe(true);
    const raw = keys.aes256;
    expect(checkEncryptedValue(parseMasterKey(raw.toString('base64')), asValue(encryptOctopusValue(raw, dotnet.pfx)), 'pkcs12')).toBe('verified');
  });
});
