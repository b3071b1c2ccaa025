// The Octopus master key: parsed from whatever an administrator pastes, and identified by a key
// ID that can be printed and stored (the key itself never is).
import { createHmac } from 'node:crypto';
import { masterKey as masterKeyParameter } from '../../../templates/parameters';
import { ParameterError } from '../../runtime/errors';

export type AesKeyBits = 128 | 192 | 256;

export interface MasterKey {
  /** The raw key bytes: the AES key itself (Octopus uses them without derivation). */
  readonly bytes: Buffer;
  readonly bits: AesKeyBits;
  /** `AES-128-CBC`, `AES-256-CBC`, ... */
  readonly algorithm: string;
  /** First 16 hex characters of HMAC-SHA256(key, "octopus-dr/key-id/v1"): safe to print and store. */
  readonly keyId: string;
  /** Every string form of the key that was formed while parsing: register each with context.setSecret. */
  readonly secretForms: readonly string[];
  /** Things worth telling the user that do not stop the step (e.g. an unusual key length). */
  readonly warnings: readonly string[];
}

export const KEY_ID_MESSAGE = 'octopus-dr/key-id/v1';

/** Key ID of a master key: lets a manifest say which key a backup needs, and cannot be reversed. */
export function keyIdOf(keyBytes: Buffer): string {
  return createHmac('sha256', keyBytes).update(KEY_ID_MESSAGE, 'ascii').digest('hex').slice(0, 16);
}

export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

const label = `"${masterKeyParameter.label}" (${masterKeyParameter.name})`;
const HOW_TO_GET =
  'Paste the base64 text that `Octopus.Server.exe show-master-key` prints (or its whole output, or its `--format=json` output).';

function problem(text: string): ParameterError {
  // Never include the value, or any part of it, in the message.
  return new ParameterError([`${label} ${text} ${HOW_TO_GET}`]);
}

/** Picks the base64 text out of raw base64, show-master-key text output or its JSON output. */
function keyTextOf(input: string): string {
  const text = input.replace(/^\uFEFF/, '').trim();
  if (text === '') throw problem('is empty.');
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw problem('starts with "{" but is not valid JSON.');
    }
    const entry =
      parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? Object.entries(parsed as Record<string, unknown>).find(([name]) => name.toLowerCase() === 'masterkey')
        : undefined;
    if (!entry || typeof entry[1] !== 'string') throw problem('is JSON without a "MasterKey" text property.');
    return entry[1].trim();
  }
  // show-master-key prints a header line ("Octopus Master Key:") and then the key: take the last
  // non-empty line; tolerate "Label: key" on one line (base64 never contains ':').
  const lines = text.split(/\r?\n|\r/).map((line) => line.trim()).filter((line) => line !== '');
  const last = lines[lines.length - 1];
  const colon = last.lastIndexOf(':');
  const keyText = (colon >= 0 ? last.slice(colon + 1) : last).trim();
  // A key copied from a script or a config file may keep its quotes.
  const quoted = /^(["'])(.*)\1$/.exec(keyText);
  return quoted ? quoted[2].trim() : keyText;
}

/** Parses and validates a master key. Throws a ParameterError naming the parameter, never echoing the value. */
export function parseMasterKey(input: string): MasterKey {
  const keyText = keyTextOf(input);
  if (keyText === '') throw problem('has no key text after the header.');
  if (/^[A-Za-z0-9_-]+={0,2}$/.test(keyText) && /[_-]/.test(keyText)) {
    throw problem('uses the URL-safe base64 alphabet ("-" and "_"); Octopus prints standard base64 ("+" and "/").');
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(keyText)) {
    throw problem('is not base64 text: it may only contain A-Z, a-z, 0-9, "+", "/" and trailing "=" (no spaces inside).');
  }
  // Accept a key whose trailing "=" were lost in copying, but nothing else that is not canonical.
  const unpadded = keyText.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) throw problem('is not valid base64 (its length is impossible; a character is missing or extra).');
  const canonical = unpadded + '='.repeat((4 - (unpadded.length % 4)) % 4);
  if (keyText !== unpadded && keyText !== canonical) throw problem('is not valid base64 (wrong number of "=" at the end).');
  const bytes = Buffer.from(canonical, 'base64');
  if (bytes.toString('base64') !== canonical) {
    throw problem('is not valid base64 (the last character before "=" is not a possible ending; a character was changed).');
  }
  const warnings: string[] = [];
  let bits: AesKeyBits;
  switch (bytes.length) {
    case 16:
      bits = 128;
      break;
    case 32:
      bits = 256;
      break;
    case 24:
      bits = 192;
      warnings.push(
        'The master key is 24 bytes (AES-192). Octopus generates 16-byte (AES-128) or 32-byte (AES-256) keys; ' +
          'check that the whole key was copied.',
      );
      break;
    default:
      throw problem(
        `decodes to ${bytes.length} bytes; an Octopus master key is 16 bytes (24 base64 characters, ending "==") ` +
          'or 32 bytes (44 characters, ending "="). Check that the whole key was copied, and nothing else.',
      );
  }
  const secretForms = [...new Set([keyText, canonical, unpadded])];
  return { bytes, bits, algorithm: `AES-${bits}-CBC`, keyId: keyIdOf(bytes), secretForms, warnings };
}
