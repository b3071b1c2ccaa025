// Test-side encryption the way Octopus does it (AES-CBC, PKCS7, random IV, the master key bytes as
// the AES key), stored as `base64(ciphertext)|base64(iv)`. Written independently of the library.
import { createCipheriv, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function encryptOctopusValue(key: Buffer, plaintext: string | Buffer, iv: Buffer = randomBytes(16)): string {
  const cipher = createCipheriv(`aes-${key.length * 8}-cbc`, key, iv);
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return `${ciphertext.toString('base64')}|${iv.toString('base64')}`;
}

let cachedPfx: Buffer | undefined;

/** A throwaway self-signed certificate as PKCS#12 (made by openssl), like Octopus's server certificate. */
export function makePfx(): Buffer {
  if (cachedPfx) return cachedPfx;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-pfx-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    const pfxFile = path.join(dir, 'cert.pfx');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=Octopus Portal', '-days', '2', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    execFileSync('openssl', ['pkcs12', '-export', '-inkey', keyFile, '-in', certFile, '-out', pfxFile, '-passout', 'pass:'], { stdio: 'ignore' });
    cachedPfx = readFileSync(pfxFile);
    return cachedPfx;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every form in which a key or plaintext could leak into output. */
export function leakForms(secret: Buffer | string): string[] {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  const forms = [bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('hex'), bytes.toString('hex').toUpperCase(), bytes.toString('base64url')];
  if (typeof secret === 'string') forms.push(secret);
  return forms.filter((f) => f.length >= 6);
}

/** Fails the test if any secret form appears in the text. */
export function expectNoLeak(text: string, secrets: readonly (Buffer | string)[]): void {
  for (const secret of secrets) {
    for (const form of leakForms(secret)) {
      if (text.includes(form)) throw new Error(`A secret leaked into the output (form of length ${form.length}).`);
    }
  }
}
