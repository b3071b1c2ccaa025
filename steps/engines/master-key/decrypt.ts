// Decrypts one value and judges whether the plaintext is plausible. Valid PKCS7 padding alone is
// not proof (about 1 wrong key in 256 passes it), so the plaintext must also be strict UTF-8 text
// without control characters, and the server certificate must be a PKCS#12 blob. Plaintext never
// leaves this module: callers get an outcome, not the text, nor its length.
import { createDecipheriv } from 'node:crypto';
import type { EncryptedValue } from './extract';
import type { MasterKey } from './key';
import { isBase64Pkcs12 } from './pkcs12';

export type ValueOutcome =
  /** Decrypts to plausible plaintext. */
  | 'verified'
  /** The last block does not end in valid PKCS7 padding: the usual sign of a wrong key. */
  | 'bad-padding'
  /** The plaintext is not valid UTF-8. */
  | 'not-utf8'
  /** The plaintext contains control characters other than tab, CR and LF. */
  | 'control-characters'
  /** Decrypts to text, but not to a base64 PKCS#12 blob where a certificate was expected. */
  | 'not-pkcs12';

export type ExpectedPlaintext = 'text' | 'pkcs12';

const BLOCK = 16;

/** Raw AES-CBC decryption with PKCS7 removed by hand; undefined when the padding is invalid.
 * Not exported from the library's index: only tests use it directly. The caller must zero the result. */
export function decryptToBuffer(key: Buffer, value: EncryptedValue): Buffer | undefined {
  const decipher = createDecipheriv(`aes-${key.length * 8}-cbc`, key, value.iv);
  decipher.setAutoPadding(false);
  const padded = Buffer.concat([decipher.update(value.ciphertext), decipher.final()]);
  const n = padded[padded.length - 1];
  let valid = padded.length >= BLOCK && n >= 1 && n <= BLOCK;
  for (let i = 1; valid && i <= n; i++) valid = padded[padded.length - i] === n;
  if (!valid) {
    padded.fill(0);
    return undefined;
  }
  padded.fill(0, padded.length - n);
  return padded.subarray(0, padded.length - n);
}

/** Checks UTF-8 byte by byte (no string is made): 'ok', or why not. Overlong forms, surrogates and
 * code points above U+10FFFF are invalid; C0 controls (except tab, LF, CR), DEL and C1 controls are refused. */
export function classifyText(bytes: Buffer): 'ok' | 'not-utf8' | 'control-characters' {
  let i = 0;
  let controls = false;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f) controls = true;
      i += 1;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = b & 0x07;
    } else {
      return 'not-utf8';
    }
    if (i + need >= bytes.length) return 'not-utf8';
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if ((c & 0xc0) !== 0x80) return 'not-utf8';
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 'not-utf8';
    if (cp >= 0x80 && cp <= 0x9f) controls = true;
    i += need + 1;
  }
  return controls ? 'control-characters' : 'ok';
}

/** Decrypts a value with the key and judges the plaintext; only the outcome leaves this function. */
export function checkEncryptedValue(key: MasterKey, value: EncryptedValue, expected: ExpectedPlaintext = 'text'): ValueOutcome {
  const plaintext = decryptToBuffer(key.bytes, value);
  if (!plaintext) return 'bad-padding';
  try {
    const text = classifyText(plaintext);
    if (text !== 'ok') return text;
    if (expected === 'pkcs12' && !isBase64Pkcs12(plaintext)) return 'not-pkcs12';
    return 'verified';
  } finally {
    plaintext.fill(0);
  }
}
