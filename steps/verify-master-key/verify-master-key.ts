// Verify Master Key: proves the key decrypts the database's encrypted data, or fails clearly.
// The key is parsed and masked before anything is printed; decryption happens here, in Node;
// only outcomes, counts, document ids and JSON paths are ever reported.
import type { ParameterValues } from '../../templates/model';
import { masterKeyExpectedKeyId, sqlConnectionString } from '../../templates/parameters';
import { INCONCLUSIVE_EXIT_CODE, type verifyMasterKey as template } from '../../templates/verify-master-key';
import { decide, parseMasterKey, type MasterKey, type Verdict } from '../engines/master-key';
import { ParameterError, StepFailure } from '../runtime/errors';
import type { StepContext } from '../runtime/step-context';
import { collectMasterKeyEvidence } from '../engines/octopus-documents';
import { openSqlConnection } from '../engines/sql';

type Params = ParameterValues<typeof template.params>;

function checkExpectedKeyId(params: Params, key: MasterKey, context: StepContext): void {
  const expected = params.expectedKeyId.trim().toLowerCase();
  if (expected === '') return;
  const matches = expected === key.keyId;
  context.setOutput('KeyIdMatches', matches ? 'True' : 'False');
  if (!matches) {
    context.setOutput('Result', 'FAIL');
    context.setOutput('Passed', 'False');
    throw new StepFailure(
      `FAIL: the master key has key ID ${key.keyId}, not the expected ${expected}: it is not the key the backup was taken with. ` +
        'Use the master key that was current when the backup was taken (after a `rotate-master-key`, older backups need the older key).',
    );
  }
  context.log.info(`The key ID matches the expected key ID ${expected}.`);
}

function report(verdict: Verdict, context: StepContext): void {
  const { counts } = verdict;
  context.setOutput('Result', verdict.status);
  context.setOutput('Passed', verdict.status === 'PASS' ? 'True' : 'False');
  context.setOutput('ValuesTested', counts.valuesTested);
  context.setOutput('ValuesVerified', counts.valuesVerified);
  context.setOutput('ValuesFailed', counts.valuesFailed);
  context.setOutput('MalformedValues', counts.malformedValues);
  context.setOutput('UnreadableDocuments', counts.unreadableDocuments);
  context.setOutput('CertificateVerified', counts.certificateVerified ? 'True' : 'False');
  if (verdict.findings.length > 0) {
    context.log.warn(`Values or documents that could not be verified (document ids and JSON paths only):\n${verdict.findings.map((f) => `  - ${f}`).join('\n')}`);
  }
}

/** Reads the database's encrypted values and checks each with the key. */
async function collectEvidence(params: Params, key: MasterKey, context: StepContext) {
  const sql = await openSqlConnection(params.connectionString, context);
  try {
    return await collectMasterKeyEvidence(sql, key, params.sampleSize ?? 25, context);
  } finally {
    await sql.close();
  }
}

export async function verifyMasterKey(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  // First, before any output: parse, and mask every string form of the key that now exists.
  const key = parseMasterKey(params.masterKey);
  for (const form of key.secretForms) context.setSecret(form);

  log.info(`Master key: ${key.bits / 8} bytes, ${key.algorithm}, key ID ${key.keyId}.`);
  for (const warning of key.warnings) log.warn(warning);
  context.setOutput('KeyId', key.keyId);
  context.setOutput('Algorithm', key.algorithm);
  context.setOutput('KeyBits', key.bits);

  checkExpectedKeyId(params, key, context);
  if (params.connectionString.trim() === '') {
    if (params.expectedKeyId.trim() === '') {
      throw new ParameterError([
        `"${sqlConnectionString.label}" (${sqlConnectionString.name}) is required to verify the key against a database; ` +
          'set it in the step, or on the command line the environment variable OCTOPUSDR_SQL_CONNECTIONSTRING or --connection-string-file <file>. ' +
          `To check the key against a backup without a database, set "${masterKeyExpectedKeyId.label}" instead.`,
      ]);
    }
    context.setOutput('Result', 'PASS');
    context.setOutput('Passed', 'True');
    context.setOutput('VerifiedKeyId', key.keyId);
    log.highlight(`PASS: the master key matches the expected key ID ${key.keyId} (no database was checked).`);
    context.result(`Master key matches key ID ${key.keyId}.`);
    return;
  }

  const collected = await collectEvidence(params, key, context);
  context.setOutput('TablesScanned', collected.tablesScanned);
  context.setOutput('DocumentsRead', collected.documentsRead);
  context.setOutput('CertificateTable', collected.certificateTable ?? '');

  const verdict = decide(collected.evidence);
  report(verdict, context);
  const scanned = `${collected.tablesScanned} document tables, ${collected.documentsRead} documents read in database '${collected.database}'`;
  switch (verdict.status) {
    case 'PASS':
      // Set only on PASS, so a backup step that records it never records a key that failed.
      context.setOutput('VerifiedKeyId', key.keyId);
      log.highlight(`${verdict.summary} (${scanned}.)`);
      context.result(verdict.summary);
      return;
    case 'INCONCLUSIVE':
      throw new StepFailure(`${verdict.summary} (${scanned}.)`, { exitCode: INCONCLUSIVE_EXIT_CODE });
    default:
      throw new StepFailure(`${verdict.summary} (${scanned}.)${verdict.hints.length ? `\n${verdict.hints.map((h) => `  - ${h}`).join('\n')}` : ''}`);
  }
}
