// The verdict on a master key, from the outcomes of the values it was tried on. Pure: no SQL,
// no I/O, so the verify and test-restore steps share it and tests can drive it directly.
//
// Rule (docs/steps/verify-master-key.md documents it for users):
// - INCONCLUSIVE when no value of the known encrypted form was found at all: the database is not
//   an Octopus database, or the storage format changed. Never reported as a wrong key. Also when
//   the server certificate cannot serve as proof and fewer than 3 other values decrypt.
// - PASS when the server certificate (`certificate-global`) decrypts to a PKCS#12 blob and the
//   sampled values decrypt to text, with at most max(1, 10%) of them failing (reported as possible
//   damage). Without a usable certificate, at least 3 sampled values must decrypt under the same
//   failure allowance.
// - FAIL otherwise: the certificate does not decrypt (wrong key), nothing decrypts (wrong key),
//   or too many values fail for a key that decrypts some (values under another key, or damage).
import type { ValueOutcome } from './decrypt';

export const CERTIFICATE_DOCUMENT_ID = 'certificate-global';
/** Values that must decrypt when there is no certificate to prove the key. */
export const MINIMUM_VALUES_WITHOUT_CERTIFICATE = 3;
/** At most this many findings are listed; the counts cover all of them. */
const MAX_LISTED_FINDINGS = 20;

export interface DocumentRef {
  readonly table: string;
  readonly documentId: string;
}

export interface TestedValue extends DocumentRef {
  readonly path: string;
  readonly role: 'certificate' | 'sample';
  readonly outcome: ValueOutcome;
}

export interface MalformedFinding extends DocumentRef {
  readonly path: string;
  readonly problem: string;
}

export interface Evidence {
  readonly key: { readonly bits: number; readonly algorithm: string; readonly keyId: string };
  /** Where `certificate-global` was found; undefined when no table holds it. */
  readonly certificate?: DocumentRef;
  readonly values: readonly TestedValue[];
  readonly malformed: readonly MalformedFinding[];
  /** Documents that could not be read as JSON (or decompressed): damaged rows. */
  readonly unreadableDocuments: readonly DocumentRef[];
}

export type VerdictStatus = 'PASS' | 'FAIL' | 'INCONCLUSIVE';

export type VerdictReason =
  | 'verified'
  | 'wrong-key'
  | 'certificate-unreadable'
  | 'mixed-results'
  | 'no-encrypted-values'
  | 'insufficient-evidence';

export interface VerdictCounts {
  valuesTested: number;
  valuesVerified: number;
  valuesFailed: number;
  certificateValuesTested: number;
  certificateVerified: boolean;
  malformedValues: number;
  unreadableDocuments: number;
}

export interface Verdict {
  readonly status: VerdictStatus;
  readonly reason: VerdictReason;
  /** One paragraph for the result message. */
  readonly summary: string;
  /** What to do next (wrong key: rotation and AES-size hints). */
  readonly hints: readonly string[];
  /** Damaged or failing values by table, document id and JSON path: never values. */
  readonly findings: readonly string[];
  readonly counts: VerdictCounts;
}

const TEXT_FAILURES: readonly ValueOutcome[] = ['bad-padding', 'not-utf8', 'control-characters'];

const OUTCOME_TEXT: Record<ValueOutcome, string> = {
  verified: 'decrypts',
  'bad-padding': 'does not decrypt (invalid padding)',
  'not-utf8': 'decrypts to bytes that are not UTF-8 text',
  'control-characters': 'decrypts to text with control characters',
  'not-pkcs12': 'decrypts to text that is not a PKCS#12 certificate',
};

/** Failures a key that is right may still show (damaged rows), out of `tested` values. */
export function allowedFailures(tested: number): number {
  return Math.max(1, Math.floor(tested / 10));
}

function plural(n: number, word: string, pluralWord = `${word}s`): string {
  return `${n} ${n === 1 ? word : pluralWord}`;
}

function where(ref: DocumentRef & { path: string }): string {
  return `${ref.table} '${ref.documentId}' ${ref.path}`;
}

export function rotationHint(): string {
  return (
    'A database needs the master key that was current when it (or its backup) was written. If the key was rotated ' +
    '(`Octopus.Server.exe rotate-master-key`, Octopus 2022.4 and later), a backup from before the rotation needs the ' +
    'old key and one from after needs the new key: compare the key ID with the one recorded in the backup manifest.'
  );
}

export function keySizeHint(bits: number): string {
  return bits === 128
    ? 'This is a 16-byte (AES-128) key. Octopus 2024.4 and later generate 32-byte (AES-256) keys for new installations ' +
        'and rotations (44 base64 characters, ending "="): if the database comes from such a server, use that key.'
    : bits === 256
      ? 'This is a 32-byte (AES-256) key. Servers before Octopus 2024.4, upgraded servers that never rotated their key, and ' +
        'servers given an operator-chosen key use 16-byte (AES-128) keys (24 base64 characters, ending "=="): if the ' +
        'database comes from such a server, use that key.'
      : 'This key is neither 16 nor 32 bytes; Octopus master keys are one or the other. Check that the whole key was copied.';
}

export function decide(evidence: Evidence): Verdict {
  const certificateValues = evidence.values.filter((v) => v.role === 'certificate');
  const samples = evidence.values.filter((v) => v.role === 'sample');
  const certificateRejected = certificateValues.some((v) => TEXT_FAILURES.includes(v.outcome));
  // The certificate proves the key only when it decrypts to a PKCS#12 blob (other fields of the
  // document, e.g. a password, need only decrypt to text).
  const certificateVerified = !certificateRejected && certificateValues.some((v) => v.outcome === 'verified');
  const samplesVerified = samples.filter((v) => v.outcome === 'verified').length;
  const samplesFailed = samples.length - samplesVerified;
  const verified = evidence.values.filter((v) => v.outcome === 'verified' || v.outcome === 'not-pkcs12').length;
  const failed = evidence.values.length - verified;

  const counts: VerdictCounts = {
    valuesTested: evidence.values.length,
    valuesVerified: verified,
    valuesFailed: failed,
    certificateValuesTested: certificateValues.length,
    certificateVerified,
    malformedValues: evidence.malformed.length,
    unreadableDocuments: evidence.unreadableDocuments.length,
  };

  const valueFindings = evidence.values.filter((v) => v.outcome !== 'verified').map((v) => `${where(v)}: ${OUTCOME_TEXT[v.outcome]}`);
  const damageFindings = [
    ...evidence.malformed.map((m) => `${where(m)}: ${m.problem} (damaged?)`),
    ...evidence.unreadableDocuments.map((d) => `${d.table} '${d.documentId}': the document is not readable JSON (damaged?)`),
  ];
  const findingLines = [...valueFindings, ...damageFindings];
  const limit = (lines: string[]) =>
    lines.length > MAX_LISTED_FINDINGS ? [...lines.slice(0, MAX_LISTED_FINDINGS), `... and ${lines.length - MAX_LISTED_FINDINGS} more`] : lines;

  const { key } = evidence;
  const keyText = `The master key (${key.algorithm}, key ID ${key.keyId})`;
  const certificateText = evidence.certificate
    ? `the server certificate (${evidence.certificate.table} '${evidence.certificate.documentId}')`
    : `the server certificate ('${CERTIFICATE_DOCUMENT_ID}' was not found in any table with Id and JSON columns)`;
  const damageNote =
    findingLines.length > 0
      ? ` ${plural(findingLines.length, 'value or document', 'values or documents')} could not be verified and may be damaged; see the findings.`
      : '';
  const wrongKeyHints = [rotationHint(), keySizeHint(key.bits)];
  const make = (status: VerdictStatus, reason: VerdictReason, summary: string, hints: string[] = []): Verdict => ({
    status,
    reason,
    summary,
    hints,
    // Under a wrong key every value fails: listing them would bury the damage findings.
    findings: limit(reason === 'wrong-key' ? damageFindings : findingLines),
    counts,
  });

  if (evidence.values.length === 0) {
    const damaged =
      evidence.malformed.length + evidence.unreadableDocuments.length > 0
        ? ` ${plural(evidence.malformed.length, 'value')} shaped almost like encrypted values and ${plural(evidence.unreadableDocuments.length, 'unreadable document')} were found.`
        : '';
    return make(
      'INCONCLUSIVE',
      'no-encrypted-values',
      `INCONCLUSIVE: no encrypted values of the known form (base64(ciphertext)|base64(iv)) were found, so the key was neither ` +
        `proven right nor wrong. ${evidence.certificate ? `The '${CERTIFICATE_DOCUMENT_ID}' document exists but holds no such value.` : `No table holds the '${CERTIFICATE_DOCUMENT_ID}' document.`}` +
        `${damaged} Check that the connection string names the Octopus database; if it does, Octopus may have changed how ` +
        'it stores encrypted values, and octopus-dr needs an update.',
      ['Check the database name in the connection string.', 'Report the Octopus Server version to the octopus-dr maintainers.'],
    );
  }

  if (certificateRejected) {
    if (samplesVerified >= MINIMUM_VALUES_WITHOUT_CERTIFICATE && samplesFailed <= allowedFailures(samples.length)) {
      return make(
        'FAIL',
        'certificate-unreadable',
        `FAIL: ${keyText} decrypts ${samplesVerified} of ${plural(samples.length, 'sampled value')}, but not ${certificateText}. ` +
          'The certificate document may be damaged; Octopus Server will not start with it. Restore the database from another backup, ' +
          'or see Octopus\'s "lost master key" guidance for regenerating the server certificate.',
      );
    }
    return make(
      'FAIL',
      'wrong-key',
      `FAIL: ${keyText} does not decrypt ${certificateText}, and decrypts ${samplesVerified} of ${plural(samples.length, 'other sampled value')}: ` +
        'it is not the key this database was encrypted with.',
      wrongKeyHints,
    );
  }

  if (verified === 0) {
    return make(
      'FAIL',
      'wrong-key',
      `FAIL: ${keyText} decrypts none of the ${plural(evidence.values.length, 'encrypted value')} tested: it is not the key this ` +
        'database was encrypted with.',
      wrongKeyHints,
    );
  }

  const allowance = allowedFailures(samples.length);
  if (certificateVerified) {
    if (samplesFailed <= allowance) {
      return make(
        'PASS',
        'verified',
        `PASS: ${keyText} decrypts ${certificateText} and ` +
          `${samples.length === 0 ? 'the database holds no other encrypted values' : `${samplesVerified} of ${plural(samples.length, 'sampled value')}`}.${damageNote}`,
      );
    }
  } else if (samplesVerified >= MINIMUM_VALUES_WITHOUT_CERTIFICATE && samplesFailed <= allowedFailures(samples.length)) {
    const why = certificateValues.length > 0 ? 'decrypts to text that is not a PKCS#12 certificate (has the format changed?)' : 'could not be used';
    return make(
      'PASS',
      'verified',
      `PASS: ${keyText} decrypts ${samplesVerified} of ${plural(samples.length, 'sampled value')}; ${certificateText} ${why}.${damageNote}`,
    );
  }

  if (samplesFailed > allowance) {
    return make(
      'FAIL',
      'mixed-results',
      `FAIL: ${keyText} decrypts ${plural(verified, 'value')} but not ${failed} of the ${evidence.values.length} tested. ` +
        'The failing values may be encrypted with another key (copied from another server, or an interrupted key rotation) ' +
        'or damaged; see the findings.',
      [rotationHint()],
    );
  }

  return make(
    'INCONCLUSIVE',
    'insufficient-evidence',
    `INCONCLUSIVE: ${keyText} decrypts ${plural(samplesVerified, 'sampled value')}, but ${certificateText} ` +
      `${certificateValues.length > 0 ? 'does not decrypt to a PKCS#12 certificate' : 'could not be used'}, and at least ` +
      `${MINIMUM_VALUES_WITHOUT_CERTIFICATE} values must decrypt to prove a key without it. Raise the sample size, or check the ` +
      'connection string names the Octopus database.',
  );
}
