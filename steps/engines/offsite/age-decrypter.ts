// The one part of age-encryption a restore needs: the Decrypter, imported by name so the bundle
// leaves out the Encrypter, armor and WebAuthn code. An ES module: loaded only for an encrypted
// set (decrypt.ts), so a restore of a plain set runs without it.
import { Decrypter } from 'age-encryption';

export function newDecrypter(): Decrypter {
  return new Decrypter();
}
