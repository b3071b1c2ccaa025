// Decrypting an offsite set encrypted by Copy Backups Offsite (age format): the manifest first, to
// choose the chain, then each file as it downloads. A missing or wrong key fails on the first
// manifest, before anything is written locally, naming the parameter to set.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { offsiteDecryptionIdentity, offsiteEncryptionPassphrase } from '../../../templates/offsite-parameters';
import { ParameterError, StepFailure } from '../../runtime/errors';
import { howToSet } from '../../runtime/parameters';
import type { OffsiteSetRecord } from './offsite-manifest';
import type { Decrypt } from './stage';

const PASSPHRASE = `"${offsiteEncryptionPassphrase.label}" (${offsiteEncryptionPassphrase.name})`;
const IDENTITY = `"${offsiteDecryptionIdentity.label}" (${offsiteDecryptionIdentity.name})`;

export interface DecryptionSettings {
  encryptionPassphrase: string;
  decryptionIdentity: string;
}

/**
 * The identities in *Decryption identity*: one AGE-SECRET-KEY-1... per line, as age-keygen writes its
 * key file (its "#" comment lines and blank lines ignored), each checked by age itself (a mistyped
 * key fails its checksum) before anything connects. Never quoted: age's own error would quote it.
 */
function identitiesIn(value: string, secrets?: { setSecret(value: string): void }): string[] {
  const identities = value.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  for (const identity of identities) secrets?.setSecret(identity);
  const problem = new ParameterError([
    `${IDENTITY} must be an age identity (AGE-SECRET-KEY-1..., or the key file age-keygen writes), and this one is not one (mistyped or cut short?): ${howToSet(offsiteDecryptionIdentity)}.`,
  ]);
  if (identities.length === 0 || identities.some((identity) => !/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(identity))) throw problem;
  const decrypter = (require('./age-decrypter') as typeof import('./age-decrypter')).newDecrypter();
  for (const identity of identities) {
    try {
      decrypter.addIdentity(identity);
    } catch {
      throw problem;
    }
  }
  return identities;
}

/** Checks *Decryption identity* at once (exit 2 before anything connects); decrypts each object of an encrypted set when called. */
export function decrypterFrom(settings: DecryptionSettings, secrets?: { setSecret(value: string): void }): Decrypt {
  const identities = settings.decryptionIdentity ? identitiesIn(settings.decryptionIdentity, secrets) : [];
  return async (stored: Readable, record: OffsiteSetRecord) => {
    const method = record.encryption?.method;
    const recipients = record.encryption?.recipients.join(', ') || 'a recipient';
    if (method === 'passphrase' && !settings.encryptionPassphrase) {
      stored.destroy();
      throw new StepFailure(`${record.id} was encrypted offsite with a passphrase: ${howToSet(offsiteEncryptionPassphrase)}, to the passphrase Copy Backups Offsite encrypted it with.`, { exitCode: 2 });
    }
    if (method !== 'passphrase' && identities.length === 0) {
      stored.destroy();
      throw new StepFailure(`${record.id} was encrypted offsite for ${recipients}: ${howToSet(offsiteDecryptionIdentity)}, to its AGE-SECRET-KEY-1... identity.`, { exitCode: 2 });
    }
    // Loaded here, for an encrypted set only: age-encryption is an ES module (jest's in-process runs cannot load it; the bundles can).
    const decrypter = (require('./age-decrypter') as typeof import('./age-decrypter')).newDecrypter();
    if (method === 'passphrase') decrypter.addPassphrase(settings.encryptionPassphrase);
    else for (const identity of identities) decrypter.addIdentity(identity);
    try {
      const plain = await decrypter.decrypt(Readable.toWeb(stored) as unknown as ReadableStream<Uint8Array>);
      return Readable.fromWeb(plain as unknown as WebReadableStream);
    } catch (error) {
      stored.destroy();
      const which =
        method === 'passphrase'
          ? `${PASSPHRASE} is not the one it was encrypted with: set it to the passphrase Copy Backups Offsite used`
          : `${IDENTITY} is not the identity of ${recipients}: set it to that recipient's AGE-SECRET-KEY-1... identity`;
      throw new StepFailure(`Cannot decrypt ${record.id}: ${which} (${(error as Error).message}).`, { cause: error });
    }
  };
}
