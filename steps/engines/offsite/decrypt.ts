// Decrypting an offsite set encrypted by Copy Backups Offsite (age format): the manifest first, to
// choose the chain, then each file as it downloads. A missing or wrong key fails on the first
// manifest, before anything is written locally, naming the parameter to set.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { offsiteDecryptionIdentity, offsiteEncryptionPassphrase } from '../../../templates/offsite-parameters';
import { StepFailure } from '../../runtime/errors';
import { howToSet } from '../../runtime/parameters';
import type { OffsiteSetRecord } from './offsite-manifest';
import type { Decrypt } from './stage';

const PASSPHRASE = `"${offsiteEncryptionPassphrase.label}" (${offsiteEncryptionPassphrase.name})`;
const IDENTITY = `"${offsiteDecryptionIdentity.label}" (${offsiteDecryptionIdentity.name})`;

export interface DecryptionSettings {
  encryptionPassphrase: string;
  decryptionIdentity: string;
}

export function decrypterFrom(settings: DecryptionSettings): Decrypt {
  return async (stored: Readable, record: OffsiteSetRecord) => {
    const method = record.encryption?.method;
    const recipients = record.encryption?.recipients.join(', ') || 'a recipient';
    if (method === 'passphrase' && !settings.encryptionPassphrase) {
      stored.destroy();
      throw new StepFailure(`${record.id} was encrypted offsite with a passphrase: ${howToSet(offsiteEncryptionPassphrase)}, to the passphrase Copy Backups Offsite encrypted it with.`, { exitCode: 2 });
    }
    if (method !== 'passphrase') {
      if (!settings.decryptionIdentity) {
        stored.destroy();
        throw new StepFailure(`${record.id} was encrypted offsite for ${recipients}: ${howToSet(offsiteDecryptionIdentity)}, to its AGE-SECRET-KEY-1... identity.`, { exitCode: 2 });
      }
      if (!/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(settings.decryptionIdentity.trim())) {
        stored.destroy();
        throw new StepFailure(`${IDENTITY} must be an age identity (AGE-SECRET-KEY-1..., as age-keygen writes it): ${howToSet(offsiteDecryptionIdentity)}.`, { exitCode: 2 });
      }
    }
    // Loaded here, for an encrypted set only: age-encryption is an ES module (jest's in-process runs cannot load it; the bundles can).
    const decrypter = (require('./age-decrypter') as typeof import('./age-decrypter')).newDecrypter();
    if (method === 'passphrase') decrypter.addPassphrase(settings.encryptionPassphrase);
    else decrypter.addIdentity(settings.decryptionIdentity.trim());
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
