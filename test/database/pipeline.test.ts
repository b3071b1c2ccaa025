// The pure stages of the database engine's pipelines, through its face: choosing a restore chain
// from a folder's sets (selectRestoreChain and its helpers), what retention may consider, and the
// backup's checks of the database state and compression. Plus the one failure rule: the engine's
// errors are StepFailures that runStep reports as they are.
import {
  ChainError,
  checkBackupKindAllowed,
  compressionFor,
  RestorePlanError,
  retentionCandidatesOf,
  selectRestoreChain,
  setsOfTargetDatabase,
  withoutSafetyBackups,
  type BackupManifest,
  type BackupSet,
  type FoundBackupSets,
  type ManifestSet,
  type SourceDatabaseState,
} from '../../steps/engines/database-backup';
import { StepFailure } from '../../steps/runtime/errors';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { openSqlConnection, SqlError } from '../../steps/engines/sql';
import { diff, full, labels, log, set, header, lsn } from './fixtures';

const location = { workerDirectory: '/b', serverDirectory: 'D:\\b', serverSeparator: '\\' as const };
const found = (sets: BackupSet[], extra: Partial<FoundBackupSets> = {}): FoundBackupSets => ({ location, sets, ...extra });

describe('selectRestoreChain (Select-DbaBackupInformation)', () => {
  const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
  const d1 = diff('D1', f1, 400, 500, '2026-11-01T06:00:00.000');
  const l1 = log('L1', 150, 300, '2026-11-01T03:00:00.000');
  const l2 = log('L2', 300, 450, '2026-11-01T05:00:00.000');
  const l3 = log('L3', 450, 600, '2026-11-01T07:00:00.000');
  const all = [l3, f1, l1, d1, l2];

  test('the newest chain, in restore order, restored under the source name by default', () => {
    const selected = selectRestoreChain(found(all), {});
    expect(labels(selected.members)).toEqual(['F1', 'D1', 'L3']);
    expect(selected).toMatchObject({ sourceDatabase: 'Octopus', targetDatabase: 'Octopus', location });
  });

  test('a point in time picks the chain that reaches it; a named set ends the chain there', () => {
    const early = selectRestoreChain(found(all, { stopAt: '2026-11-01T04:00:00.000' }), { targetDatabase: 'Octopus-restored' });
    expect(labels(early.members)).toEqual(['F1', 'L1', 'L2']);
    expect(early.chain.stopAt).toBe('2026-11-01T04:00:00.000');
    expect(early.targetDatabase).toBe('Octopus-restored');
    expect(labels(selectRestoreChain(found(all, { endAt: l1 }), {}).members)).toEqual(['F1', 'L1']);
  });

  test('a named set and a point in time together are refused, naming both parameters by label', () => {
    const error = (() => {
      try {
        selectRestoreChain(found(all, { endAt: l1, stopAt: '2026-11-01T04:00:00.000' }), {});
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(RestorePlanError);
    expect((error as Error).message).toBe(
      'Nothing was changed. Give either a specific backup (a manifest or backup file as "Backup to restore") or a "Point in time" with a folder, not both.',
    );
  });

  test('an LSN gap is a RestorePlanError (a StepFailure) that says nothing was changed and names the gap', () => {
    const withGap = [f1, l1, log('L9', 900, 950, '2026-11-01T09:00:00.000')];
    let error: unknown;
    try {
      selectRestoreChain(found(withGap), {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StepFailure);
    expect((error as RestorePlanError).exitCode).toBe(1);
    expect((error as Error).message).toMatch(/^Nothing was changed\. .*L9/);
    expect((error as RestorePlanError).reason).not.toMatch(/^Nothing was changed/);
  });

  test('a target name SQL Server cannot take is refused by its label', () => {
    expect(() => selectRestoreChain(found([f1]), { targetDatabase: 'x'.repeat(129) })).toThrow(/"Target database" must be 1 to 128 characters/);
    expect(() => selectRestoreChain(found([f1]), { targetDatabase: 'a\u0001b' })).toThrow(RestorePlanError);
  });

  test('a shared folder: the target name picks its own database, whatever its letter case', () => {
    const other = full('OtherF', 100, 200, '2026-11-02T00:00:00.000', { databaseName: 'Other' });
    expect(labels(setsOfTargetDatabase([f1, other], 'OTHER'))).toEqual(['OtherF']);
    expect(labels(setsOfTargetDatabase([f1, other], 'Unrelated'))).toEqual(['F1', 'OtherF']);
    expect(labels(setsOfTargetDatabase([f1, other], undefined))).toEqual(['F1', 'OtherF']);
    expect(labels(selectRestoreChain(found([f1, other]), { targetDatabase: 'Octopus' }).members)).toEqual(['F1']);
    expect(() => selectRestoreChain(found([f1, other]), {})).toThrow(RestorePlanError);
  });

  test("a case-sensitive server's two databases that differ only in case: the exact name picks; before, the first in any case did", () => {
    const upper = full('Upper', 100, 200, '2026-11-02T00:00:00.000', { databaseName: 'Case' });
    const lower = full('Lower', 300, 400, '2026-11-03T00:00:00.000', { databaseName: 'case' });
    expect(labels(setsOfTargetDatabase([upper, lower], 'case'))).toEqual(['Lower']);
    expect(labels(setsOfTargetDatabase([upper, lower], 'Case'))).toEqual(['Upper']);
    // Neither exactly: both, and the chain's selection names them rather than guessing.
    expect(labels(setsOfTargetDatabase([upper, lower], 'CASE'))).toEqual(['Upper', 'Lower']);
    expect(() => selectRestoreChain(found([upper, lower]), { targetDatabase: 'CASE' })).toThrow(/2 databases \(Case, case\)/);
  });
});

describe('withoutSafetyBackups (Get-DbaBackupInformation)', () => {
  const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
  const safety = set('Octopus_SAFETY', header({ backupType: 1, firstLsn: lsn(300), lastLsn: lsn(400) }), {
    files: [{ name: 'Octopus_SAFETY_20261102T000000Z.bak', workerPath: '/b/x.bak', serverPath: 'D:\\b\\x.bak' }],
  });

  test('safety backups of earlier restores are set aside, never taken as the newest backup', () => {
    expect(withoutSafetyBackups([f1, safety])).toEqual({ kept: [f1], safety: [safety] });
  });

  test('with the random part two restores in one second give their safety backups, and they are set aside too', () => {
    const named = set('Octopus_SAFETY_2', header({ backupType: 1, firstLsn: lsn(500), lastLsn: lsn(600) }), {
      files: [{ name: 'Octopus_SAFETY_20261102T000000Z_0a1b2c.bak', workerPath: '/b/y.bak', serverPath: 'D:\\b\\y.bak' }],
    });
    expect(withoutSafetyBackups([f1, safety, named])).toEqual({ kept: [f1], safety: [safety, named] });
  });

  test('unless the user named one', () => {
    expect(withoutSafetyBackups([f1, safety], safety)).toEqual({ kept: [f1, safety], safety: [] });
  });
});

describe('retentionCandidatesOf', () => {
  const manifestSet = (s: BackupSet, database: string, takenAt: string): ManifestSet => ({
    set: s,
    manifestPath: `/b/${s.label}.manifest.json`,
    manifest: { database, takenAt } as BackupManifest,
  });

  test("only this database's sets of a known kind, each with the time its manifest records", () => {
    const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
    const other = full('OtherF', 100, 200, '2026-11-01T00:10:00.000', { databaseName: 'Other' });
    const fileOnly = set('FileOnly', header({ backupType: 7, firstLsn: lsn(1), lastLsn: lsn(2) }));
    const candidates = retentionCandidatesOf(
      [manifestSet(f1, 'Octopus', '2026-11-01T00:00:00Z'), manifestSet(other, 'Other', '2026-11-01T00:00:00Z'), manifestSet(fileOnly, 'Octopus', '2026-11-02T00:00:00Z')],
      'Octopus',
    );
    expect(candidates).toEqual([{ set: f1, takenAt: new Date('2026-11-01T00:00:00Z') }]);
  });

  test('by the name the backup header records, not the spelling the manifest kept from the connection string', () => {
    const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
    const spelledLower = full('F2', 200, 300, '2026-11-02T00:10:00.000');
    const renamedCopy = full('F3', 100, 200, '2026-11-01T00:10:00.000', { databaseName: 'octopus' });
    const candidates = retentionCandidatesOf(
      [manifestSet(f1, 'Octopus', '2026-11-01T00:00:00Z'), manifestSet(spelledLower, 'octopus', '2026-11-02T00:00:00Z'), manifestSet(renamedCopy, 'Octopus', '2026-11-01T00:00:00Z')],
      'Octopus',
    );
    // F3's header says another database (a case-sensitive server may hold both): never this one's to delete.
    expect(candidates.map((c) => c.set.label)).toEqual(['F1', 'F2']);
  });

  test('an unreadable time stays unreadable (planRetention then keeps the set)', () => {
    const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
    expect(Number.isNaN(retentionCandidatesOf([manifestSet(f1, 'Octopus', 'not a time')], 'Octopus')[0].takenAt.getTime())).toBe(true);
  });
});

describe('checkBackupKindAllowed and compressionFor (the backup pipeline\'s check stage)', () => {
  const db = (extra: Partial<SourceDatabaseState> = {}): SourceDatabaseState => ({
    name: 'Octopus',
    recoveryModel: 'FULL',
    state: 'ONLINE',
    differentialBaseLsn: lsn(100),
    lastLogBackupLsn: lsn(200),
    groupDatabaseId: null,
    ...extra,
  });

  test('every kind of an ONLINE FULL-recovery database with a full base is allowed', () => {
    for (const kind of ['Full', 'Differential', 'Log'] as const) expect(() => checkBackupKindAllowed(kind, db())).not.toThrow();
  });

  test('refusals say what to do and quote parameters by their labels', () => {
    expect(() => checkBackupKindAllowed('Full', db({ state: 'RESTORING' }))).toThrow("Database 'Octopus' is RESTORING, not ONLINE");
    expect(() => checkBackupKindAllowed('Log', db({ recoveryModel: 'SIMPLE' }))).toThrow(/SIMPLE recovery model.*Nothing was changed.*Or set "Backup type" to Full or Differential\./s);
    expect(() => checkBackupKindAllowed('Log', db({ lastLogBackupLsn: null }))).toThrow(/no full backup that started its log chain .*"Copy-only" unchecked/);
    expect(() => checkBackupKindAllowed('Differential', db({ differentialBaseLsn: '0' }))).toThrow(/no full backup a differential could be based on/);
    expect(() => checkBackupKindAllowed('Full', db({ recoveryModel: 'SIMPLE', lastLogBackupLsn: null, differentialBaseLsn: null }))).not.toThrow();
  });

  test('compression: Auto follows the edition; On where the edition cannot is bad input (exit 2)', () => {
    const standard = { edition: 'Standard Edition (64-bit)', supportsBackupCompression: true };
    const express = { edition: 'Express Edition (64-bit)', supportsBackupCompression: false };
    expect(compressionFor('Auto', standard)).toBe(true);
    expect(compressionFor('Auto', express)).toBeUndefined();
    expect(compressionFor('Off', standard)).toBe(false);
    expect(compressionFor('On', standard)).toBe(true);
    let error: unknown;
    try {
      compressionFor('On', express);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StepFailure);
    expect(error).toMatchObject({ exitCode: 2, message: 'Express Edition (64-bit) cannot compress backups. Set "Compression" to Auto or Off.' });
  });
});

describe('one failure rule', () => {
  test('ChainError and SqlError are StepFailures; a configuration SqlError is bad input (exit 2)', () => {
    expect(new ChainError('x')).toBeInstanceOf(StepFailure);
    expect(new SqlError('configuration', 'x').exitCode).toBe(2);
    expect(new SqlError('login', 'x').exitCode).toBe(1);
  });

  test('openSqlConnection registers the secrets with the context first, and a failed open says so first', async () => {
    const secrets: string[] = [];
    const cs = 'Server=s;User ID=u;Password=Hunter2-secret;Bogus=1';
    const error = await openSqlConnection(cs, quietEngineContext({ setSecret: (s) => void secrets.push(s) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqlError);
    expect(error).toMatchObject({ kind: 'configuration', exitCode: 2 });
    expect((error as Error).message).toMatch(/^Cannot connect to SQL Server: /);
    expect((error as Error).message).not.toContain('Hunter2-secret');
    expect(secrets).toContain(cs);
  });
});
