// Client-side encryption of what leaves the site, in the age format (age-encryption, the
// reference TypeScript implementation), so the standard `age` tool decrypts it. Streams: memory
// does not grow with the file. Decryption, which the restores need too, is in decrypt.ts.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ParameterError } from '../../runtime/errors';
import type { Encryption } from './copy';

/** scrypt work factor 2^15 (32 MiB per file): keeps the step under 200 MiB (age's default, 2^18, needs 256 MiB; 2^16 measured 215 MiB peak). Use a long random passphrase. */
export const SCRYPT_LOG_N = 15;

type Age = typeof import('age-encryption');
// Loaded when used: age-encryption is an ES module (bundled by esbuild; jest in-process tests never encrypt).
const age = (): Age => require('age-encryption') as Age;

const PASSPHRASE = '"Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase)';
const RECIPIENT = '"Encryption recipient" (OctopusDr.Offsite.EncryptionRecipient)';

export function encryptionFrom(settings: { encryptionPassphrase: string; encryptionRecipient: string }): Encryption | undefined {
  const passphrase = settings.encryptionPassphrase;
  const recipient = settings.encryptionRecipient.trim();
  if (!passphrase && !recipient) return undefined;
  if (passphrase && recipient) throw new ParameterError([`${PASSPHRASE} and ${RECIPIENT} are both set; give one of them.`]);
  // The value is never shown: what is pasted here by mistake is often the secret key or a passphrase.
  if (recipient && /^age-secret-key-1/i.test(recipient)) {
    throw new ParameterError([
      `${RECIPIENT} holds an age identity (AGE-SECRET-KEY-1..., the secret key), not its public key; it is not shown here. ` +
        'Give the public key instead (age-keygen -y <key file> prints it), keep the identity offline, and as it has been exposed to this task\'s settings, consider making a new key pair.',
    ]);
  }
  if (recipient && !/^age1[02-9ac-hj-np-z]{50,}$/.test(recipient)) {
    throw new ParameterError([`${RECIPIENT} must be an age public key (age1..., as age-keygen prints it); the value given is not one (it is not shown, in case it is a secret).`]);
  }
  if (passphrase && passphrase.length < 8) throw new ParameterError([`${PASSPHRASE} is too short: use at least 8 characters (better, a long random one).`]);
  return {
    record: { format: 'age', method: passphrase ? 'passphrase' : 'recipient', recipients: recipient ? [recipient] : [] },
    keyLabel: passphrase ? PASSPHRASE : RECIPIENT,
    // A passphrase opens what it encrypted; a recipient's public key cannot (only its identity, kept offline, can).
    decrypt: passphrase
      ? async (stored: Readable) => {
          const decrypter = new (age().Decrypter)();
          decrypter.addPassphrase(passphrase);
          const plain = await decrypter.decrypt(Readable.toWeb(stored) as unknown as ReadableStream<Uint8Array>);
          return Readable.fromWeb(plain as unknown as WebReadableStream);
        }
      : undefined,
    async encrypt(plain: Readable, plainSize: number) {
      const encrypter = new (age().Encrypter)();
      if (passphrase) {
        encrypter.setPassphrase(passphrase);
        encrypter.setScryptWorkFactor(SCRYPT_LOG_N);
      } else encrypter.addRecipient(recipient);
      const web = Readable.toWeb(plain) as unknown as ReadableStream<Uint8Array>;
      const encrypted = await encrypter.encrypt(web);
      return { stream: Readable.fromWeb(encrypted as unknown as WebReadableStream), size: encrypted.size(plainSize) };
    },
  };
}
