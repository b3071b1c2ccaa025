// Pure logic of the database backup/restore steps: names, LSNs, chain selection, point in time,
// retention, manifest, T-SQL text and parameters.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { normaliseLocalTime } from '../../steps/engines/database-backup/backup-set';
import { ChainError, selectChain } from '../../steps/engines/database-backup/chain';
import { compareLsn, lsnValue } from '../../steps/engines/database-backup/lsn';
import { MANIFEST_FORMAT, readManifest, writeManifestAtomically, type BackupManifest } from '../../steps/engines/database-backup/manifest';
import { backupSetNames, backupTimestamp, fileNamePart, isManifestName, joinServerPath, parseBackupFileName, relocatedFileName } from '../../steps/engines/database-backup/naming';
import { planRetention } from '../../steps/engines/database-backup/retention';
import { isManifestOf } from '../../steps/engines/database-backup/discovery';
import * as tsql from '../../steps/engines/database-backup/tsql';
import { backupStatement, formatStatement, headerLayoutsFor, headerOnlyStatement, restoreStatement, verifyStatement } from '../../steps/engines/database-backup/tsql';
import { diff, full, labels, log, lsn } from './fixtures';

describe('file names', () => {
  const when = new Date(Date.UTC(2026, 10, 27, 3, 4, 5, 678));
  test('follow <Database>_<TYPE>_<UTC stamp>_<6 hex>[_<n>of<N>].bak|.trn', () => {
    expect(backupTimestamp(when)).toBe('20261127T030405Z');
    expect(backupSetNames('Octopus', 'Full', when, 1, 'a1b2c3')).toEqual({
      stem: 'Octopus_FULL_20261127T030405Z_a1b2c3',
      files: ['Octopus_FULL_20261127T030405Z_a1b2c3.bak'],
      manifest: 'Octopus_FULL_20261127T030405Z_a1b2c3.manifest.json',
    });
    expect(backupSetNames('Octopus', 'Differential', when, 3, '00ff00').files).toEqual([
      'Octopus_DIFF_20261127T030405Z_00ff00_1of3.bak',
      'Octopus_DIFF_20261127T030405Z_00ff00_2of3.bak',
      'Octopus_DIFF_20261127T030405Z_00ff00_3of3.bak',
    ]);
    expect(backupSetNames('Octopus', 'Log', when, 1, 'abcdef').files).toEqual(['Octopus_LOG_20261127T030405Z_abcdef.trn']);
    expect(() => backupSetNames('Octopus', 'Full', when, 65)).toThrow(/1 to 64/);
    expect(() => backupSetNames('Octopus', 'Full', when, 1, '../x')).toThrow(/6 hex/);
  });

  test("a manifest's database part is matched whole, not as a prefix of another database's", () => {
    expect(isManifestOf('Oct_FULL_20261101T000000Z_abcdef.manifest.json', 'Oct')).toBe(true);
    expect(isManifestOf('Oct_Test_FULL_20261101T000000Z_abcdef.manifest.json', 'Oct')).toBe(false);
    expect(isManifestOf('Oct_Test_FULL_20261101T000000Z_abcdef.manifest.json', 'Oct_Test')).toBe(true);
    expect(isManifestOf('Oct_FULL_20261101T000000Z.manifest.json', 'Oct')).toBe(true);
    expect(isManifestOf(`${fileNamePart('a/b')}_LOG_20261101T000000Z_abcdef.manifest.json`, 'a/b')).toBe(true);
    expect(isManifestOf('notes.manifest.json', 'Oct')).toBe(false);
    // SQL Server's default collations compare names without case: `oct` may be the same database.
    expect(isManifestOf('oct_FULL_20261101T000000Z_abcdef.manifest.json', 'Oct')).toBe(true);
    expect(isManifestOf('OCT_TEST_FULL_20261101T000000Z_abcdef.manifest.json', 'Oct')).toBe(false);
    // ...nor accents, and some fold letters as JavaScript's lower case does not.
    for (const [named, database] of [['izmir', 'İzmir'], ['STRASSE', 'Straße'], ['Octopus', 'Octopüs'], ['ızmir', 'IZMIR']]) {
      expect(isManifestOf(`${named}_LOG_20261101T000000Z_abcdef.manifest.json`, database)).toBe(true);
    }
    // A long name ends in a hash of its exact spelling: another spelling still matches, a short name does not.
    const long = 'Octopus' + 'X'.repeat(75);
    const otherSpelling = backupSetNames(long.toLowerCase(), 'Log', new Date(Date.UTC(2026, 10, 1)), 1, 'abcdef').manifest;
    expect(fileNamePart(long)).not.toBe(fileNamePart(long.toLowerCase()));
    expect(isManifestOf(otherSpelling, long)).toBe(true);
    expect(isManifestOf(backupSetNames('Octopus', 'Log', new Date(Date.UTC(2026, 10, 1)), 1, 'abcdef').manifest, long)).toBe(false);
    expect(isManifestOf(otherSpelling, 'Octopus')).toBe(false);
    // fileNamePart keeps U+2028 and U+2029; the name's patterns must match them too.
    const odd = 'Line\u2028Sep\u2029';
    const names = backupSetNames(odd, 'Full', new Date(Date.UTC(2026, 10, 1)), 3, 'abcdef');
    expect(isManifestOf(names.manifest, odd)).toBe(true);
    expect(names.files.map((f) => parseBackupFileName(f)?.stem)).toEqual([names.stem, names.stem, names.stem]);
  });

  test('two runs in the same second get different names (the random part)', () => {
    const stems = new Set(Array.from({ length: 50 }, () => backupSetNames('Octopus', 'Full', when, 1).stem));
    expect(stems.size).toBe(50);
    for (const stem of stems) expect(stem).toMatch(/^Octopus_FULL_20261127T030405Z_[0-9a-f]{6}$/);
  });

  test('parse back, including database names with underscores, with and without the random part', () => {
    const parsed = parseBackupFileName('My_Octopus_DB_DIFF_20261127T030405Z_2of3.bak');
    expect(parsed).toMatchObject({ databasePart: 'My_Octopus_DB', kind: 'Differential', stripe: 2, stripes: 3, stem: 'My_Octopus_DB_DIFF_20261127T030405Z' });
    expect(parsed?.when.toISOString()).toBe('2026-11-27T03:04:05.000Z');
    expect(parseBackupFileName('My_Octopus_DB_DIFF_20261127T030405Z_a1b2c3_2of3.bak')).toMatchObject({
      databasePart: 'My_Octopus_DB', kind: 'Differential', stripe: 2, stripes: 3, stem: 'My_Octopus_DB_DIFF_20261127T030405Z_a1b2c3',
    });
    expect(parseBackupFileName('Octopus_LOG_20261127T030405Z_a1b2c3.trn')).toMatchObject({ databasePart: 'Octopus', kind: 'Log', stripes: 1, stem: 'Octopus_LOG_20261127T030405Z_a1b2c3' });
    expect(isManifestName('Octopus_FULL_20261127T030405Z.manifest.json')).toBe(true);
    expect(isManifestName('Octopus_FULL_20261127T030405Z_a1b2c3.manifest.json')).toBe(true);
    expect(isManifestName('Octopus_FULL_20261127T030405Z_xyz.manifest.json')).toBe(false);
    expect(parseBackupFileName('Octopus_LOG_20261127T030405Z.bak')).toBeUndefined(); // a log is .trn
    expect(parseBackupFileName('Octopus_FULL_20261127T030405Z_1of1.bak')).toBeUndefined();
    expect(parseBackupFileName('Octopus_FULL_20261127T030405Z_4of3.bak')).toBeUndefined();
    expect(parseBackupFileName('someone-elses.bak')).toBeUndefined();
  });

  test('hostile database names become safe file names, and long ones stay distinct', () => {
    expect(fileNamePart("Oct]o'pus; --DROP")).toBe("Oct]o'pus; --DROP"); // legal in file names; SQL never sees them as text
    expect(fileNamePart('a/b\\c:d*e?f"g<h>i|j\u0001')).toBe('a_b_c_d_e_f_g_h_i_j_');
    expect(fileNamePart('..')).toBe('__');
    expect(fileNamePart('Octopüs-数据')).toBe('Octopüs-数据');
    const a = fileNamePart('x'.repeat(120) + 'a');
    const b = fileNamePart('x'.repeat(120) + 'b');
    expect(a.length).toBeLessThanOrEqual(80);
    expect(a).not.toBe(b);
    const names = backupSetNames('x'.repeat(128), 'Full', when, 64);
    expect(Math.max(...names.files.map((f) => f.length))).toBeLessThan(120);
  });

  test('server paths use the server directory\'s separator; relocated files carry the target name', () => {
    expect(joinServerPath('D:\\Backups', 'a.bak')).toBe('D:\\Backups\\a.bak');
    expect(joinServerPath('/var/opt/mssql/backup/', 'a.bak')).toBe('/var/opt/mssql/backup/a.bak');
    expect(joinServerPath('/x', 'a.bak', '\\')).toBe('/x\\a.bak');
    expect(relocatedFileName('Octopus-Copy', 'D', 1)).toBe('Octopus-Copy.mdf');
    expect(relocatedFileName('Octopus-Copy', 'D', 2)).toBe('Octopus-Copy_2.ndf');
    expect(relocatedFileName('Octopus-Copy', 'L', 1)).toBe('Octopus-Copy_log.ldf');
  });
});

describe('LSNs', () => {
  test('compare exactly above 2^53', () => {
    const a = '37000000012300001';
    const b = '37000000012300002';
    expect(Number(a)).toBe(Number(b)); // what a JS number would do
    expect(compareLsn(a, b)).toBe(-1);
    expect(lsnValue('9999999999999999999999999')).toBe(9999999999999999999999999n);
    expect(() => lsnValue('1e5')).toThrow(/not a log sequence number/);
  });

  test('server local times normalise to a fixed-width text that sorts', () => {
    expect(normaliseLocalTime('2026-11-27T03:04:05')).toBe('2026-11-27T03:04:05.000');
    expect(normaliseLocalTime('2026-11-27 03:04:05.5')).toBe('2026-11-27T03:04:05.500');
    expect(normaliseLocalTime('2026-11-27T03:04')).toBe('2026-11-27T03:04:00.000');
    expect(normaliseLocalTime('2026-02-30T03:04:05')).toBeUndefined();
    expect(normaliseLocalTime('2026-11-27T03:04:05Z')).toBeUndefined();
  });
});

describe('restore chain', () => {
  const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
  const d1 = diff('D1', f1, 400, 500, '2026-11-01T06:00:00.000');
  const l1 = log('L1', 150, 300, '2026-11-01T03:00:00.000');
  const l2 = log('L2', 300, 450, '2026-11-01T05:00:00.000');
  const l3 = log('L3', 450, 600, '2026-11-01T07:00:00.000');
  const l4 = log('L4', 600, 700, '2026-11-01T09:00:00.000');
  const all = [l3, f1, l1, d1, l4, l2];

  test('newest chain: full, its differential, then the logs after the differential', () => {
    const chain = selectChain(all);
    expect(labels([chain.full, chain.differential, ...chain.logs])).toEqual(['F1', 'D1', 'L3', 'L4']);
    expect(chain.pointInTime).toBe('2026-11-01T09:00:00.000');
    expect(chain.stopAt).toBeUndefined();
  });

  test('full only, and full + logs when there is no differential', () => {
    expect(labels([selectChain([f1]).full])).toEqual(['F1']);
    const chain = selectChain([f1, l1, l2]);
    expect(labels([chain.full, chain.differential, ...chain.logs])).toEqual(['F1', 'L1', 'L2']);
  });

  test('point in time: the latest full before it, the differential before it, logs up to the first that reaches it', () => {
    const early = selectChain(all, { stopAt: '2026-11-01T04:00:00.000' });
    expect(labels([early.full, early.differential, ...early.logs])).toEqual(['F1', 'L1', 'L2']);
    expect(early.stopAt).toBe('2026-11-01T04:00:00.000');
    const late = selectChain(all, { stopAt: '2026-11-01T08:00:00.000' });
    expect(labels([late.full, late.differential, ...late.logs])).toEqual(['F1', 'D1', 'L3', 'L4']);
    const exact = selectChain(all, { stopAt: '2026-11-01T06:00:00.000' });
    expect(labels([exact.full, exact.differential, ...exact.logs])).toEqual(['F1', 'D1']);
    expect(exact.stopAt).toBeUndefined();
  });

  test('refuses a time the chain cannot reach, saying how far it goes', () => {
    expect(() => selectChain(all, { stopAt: '2026-11-02T00:00:00.000' })).toThrow(/reach only 2026-11-01T09:00:00.000 \(L4\)/);
    expect(() => selectChain(all, { stopAt: '2026-10-01T00:00:00.000' })).toThrow(/No full backup finished at or before/);
    const simple = full('S1', 100, 200, '2026-11-01T00:10:00.000', { recoveryModel: 'SIMPLE' });
    expect(() => selectChain([simple], { stopAt: '2026-11-01T01:00:00.000' })).toThrow(/SIMPLE recovery model/);
  });

  test('names the LSN gap', () => {
    expect(() => selectChain([f1, l1, l3])).toThrow(ChainError);
    expect(() => selectChain([f1, l1, l3])).toThrow(`LSN gap after L1: the chain ends at LSN ${lsn(300)}, but the next log backup L3 starts at LSN ${lsn(450)}`);
  });

  test('a gap one LSN wide is found (JS numbers could not see it)', () => {
    const a = log('A', 150, 300, '2026-11-01T03:00:00.000');
    const b = log('B', 301, 400, '2026-11-01T04:00:00.000');
    expect(() => selectChain([f1, a, b])).toThrow(/LSN gap after A/);
  });

  test('logs of another recovery fork are not used', () => {
    const other = log('X', 300, 450, '2026-11-01T05:00:00.000', { firstRecoveryForkId: 'B0000000-0000-0000-0000-000000000002', recoveryForkId: 'B0000000-0000-0000-0000-000000000002' });
    expect(() => selectChain([f1, l1, other])).toThrow(/another recovery fork/);
  });

  test('a differential is used only on the full it is based on (a copy-only full is no base)', () => {
    const copyOnly = full('C2', 520, 530, '2026-11-01T06:30:00.000', { isCopyOnly: true });
    const chain = selectChain([f1, d1, copyOnly, l3, l4]);
    expect(chain.full.label).toBe('C2');
    expect(chain.differential).toBeUndefined();
    expect(labels(chain.logs)).toEqual(['L3', 'L4']);
  });

  test('a missing stripe fails naming the file', () => {
    const striped = { ...full('F9', 800, 900, '2026-11-02T00:00:00.000'), missingFiles: ['Octopus_FULL_20261102T000000Z_2of2.bak'] };
    expect(() => selectChain([f1, striped])).toThrow(/Octopus_FULL_20261102T000000Z_2of2.bak is missing/);
  });

  test('a missing single file fails naming it and the manifest that lists it', () => {
    const gone = { ...full('F9.manifest.json', 800, 900, '2026-11-02T00:00:00.000'), files: [], missingFiles: ['Octopus_FULL_20261102T000000Z.bak'] };
    expect(() => selectChain([f1, gone])).toThrow('Octopus_FULL_20261102T000000Z.bak is missing (F9.manifest.json lists it).');
  });

  test('ending at a named set: a differential brings its full, a log brings the chain before it', () => {
    const toDiff = selectChain(all, { endAt: d1 });
    expect(labels([toDiff.full, toDiff.differential, ...toDiff.logs])).toEqual(['F1', 'D1']);
    const toLog = selectChain(all, { endAt: l2 });
    expect(labels([toLog.full, toLog.differential, ...toLog.logs])).toEqual(['F1', 'L1', 'L2']);
    const toLastLog = selectChain(all, { endAt: l4 });
    expect(labels([toLastLog.full, toLastLog.differential, ...toLastLog.logs])).toEqual(['F1', 'D1', 'L3', 'L4']);
    expect(() => selectChain([d1], { endAt: d1 })).toThrow(/was not found beside it/);
  });

  test('backups of several databases are refused unless one is named', () => {
    const other = full('Other', 100, 200, '2026-11-01T00:10:00.000', { databaseName: 'Other' });
    expect(() => selectChain([f1, other])).toThrow(/2 databases \(Octopus, Other\)/);
  });
});

describe('retention', () => {
  const now = new Date('2026-11-20T00:00:00Z');
  const at = (iso: string) => new Date(iso);
  const f1 = full('F1', 100, 200, '2026-11-01T00:10:00.000');
  const l1 = log('L1', 150, 300, '2026-11-02T00:00:00.000');
  const l2 = log('L2', 300, 400, '2026-11-16T00:00:00.000');
  const f2 = full('F2', 500, 600, '2026-11-10T00:00:00.000');
  const d2 = diff('D2', f2, 700, 800, '2026-11-11T00:00:00.000');
  const l3 = log('L3', 400, 900, '2026-11-18T00:00:00.000');

  test('a set whose manifest cannot be read keeps every backup taken up to it, and none after', () => {
    const candidates = [
      { set: f1, takenAt: at('2026-11-01T00:00:00Z') },
      { set: l1, takenAt: at('2026-11-02T00:00:00.500Z') },
      { set: f2, takenAt: at('2026-11-02T00:00:01Z') },
      { set: d2, takenAt: at('2026-11-15T00:00:00Z') },
    ];
    // Named 20261102T000000Z: the end of that second is its time.
    const plan = planRetention(candidates, { now, retentionDays: 7, unreadable: [{ label: 'Octopus_LOG_20261102T000000Z_abcdef.manifest.json', takenAt: at('2026-11-02T00:00:00.999Z') }] });
    expect(labels(plan.keep.filter((k) => k.reason.startsWith('may be needed by')).map((k) => k.candidate.set))).toEqual(['F1', 'L1']);
    expect(plan.keep.find((k) => k.candidate.set === f1)?.reason).toBe('may be needed by Octopus_LOG_20261102T000000Z_abcdef.manifest.json, whose manifest cannot be read');
    expect(plan.remove).toEqual([]);
    expect(plan.warnings).toEqual([
      'Cannot tell which backups Octopus_LOG_20261102T000000Z_abcdef.manifest.json needs (its manifest cannot be read); keeping every backup of this database taken no later. ' +
        'If the set is needed, put its manifest back (from a copy offsite, say); if not, move the manifest and its backup files out of the backup folder.',
    ]);
    // Without a time in its name, everything is kept.
    const unknown = planRetention(candidates, { now, retentionDays: 7, unreadable: [{ label: 'x', takenAt: undefined }] });
    expect(unknown.remove).toEqual([]);
    // Nothing unreadable: F1 and L1 go (the same candidates).
    expect(labels(planRetention(candidates, { now, retentionDays: 7 }).remove.map((d) => d.candidate.set))).toEqual(['F1', 'L1']);
  });

  test('keeps what kept backups need, deletes the rest', () => {
    const plan = planRetention(
      [
        { set: f1, takenAt: at('2026-11-01T00:00:00Z') },
        { set: l1, takenAt: at('2026-11-02T00:00:00Z') },
        { set: f2, takenAt: at('2026-11-10T00:00:00Z') },
        { set: d2, takenAt: at('2026-11-15T00:00:00Z') },
      ],
      { now, retentionDays: 7 },
    );
    expect(labels(plan.remove.map((d) => d.candidate.set))).toEqual(['F1', 'L1']);
    expect(plan.keep.find((k) => k.candidate.set === f2)?.reason).toBe('the newest verified full backup');
  });

  test('a kept log keeps its full, differential and earlier logs even when they are old', () => {
    const plan = planRetention(
      [
        { set: f1, takenAt: at('2026-11-01T00:00:00Z') },
        { set: l1, takenAt: at('2026-11-02T00:00:00Z') },
        { set: l2, takenAt: at('2026-11-16T00:00:00Z') },
      ],
      { now, retentionDays: 7 },
    );
    expect(plan.remove).toEqual([]);
    expect(plan.keep.find((k) => k.candidate.set === l1)?.reason).toBe('needed to restore L2');
  });

  test('a set whose time is unknown (unreadable takenAt) is kept, never deleted as old', () => {
    const plan = planRetention(
      [
        { set: f1, takenAt: new Date('not a time') },
        { set: l1, takenAt: new Date(Number.NaN) },
        { set: f2, takenAt: at('2026-11-19T00:00:00Z') },
      ],
      { now, retentionDays: 7 },
    );
    expect(plan.remove).toEqual([]);
    expect(plan.keep.find((k) => k.candidate.set === f1)?.reason).toMatch(/time is unknown/);
  });

  test('never deletes the newest verified full, however old', () => {
    const plan = planRetention([{ set: f1, takenAt: at('2026-01-01T00:00:00Z') }], { now, retentionDays: 1 });
    expect(plan.remove).toEqual([]);
  });

  test('an unverified newest full does not protect itself', () => {
    const unverified = { ...f2, verified: false };
    const plan = planRetention(
      [
        { set: f1, takenAt: at('2026-11-01T00:00:00Z') },
        { set: unverified, takenAt: at('2026-11-10T00:00:00Z') },
      ],
      { now, retentionDays: 1 },
    );
    expect(labels(plan.remove.map((d) => d.candidate.set))).toEqual(['F2']);
  });

  test('keeps every older backup when a kept one has a broken chain', () => {
    const plan = planRetention(
      [
        { set: f1, takenAt: at('2026-11-01T00:00:00Z') },
        { set: l3, takenAt: at('2026-11-18T00:00:00Z') },
      ],
      { now, retentionDays: 7 },
    );
    expect(plan.remove).toEqual([]);
    expect(plan.warnings[0]).toMatch(/Cannot tell which backups L3 needs/);
  });

  test('a kept set of unknown time with a broken chain keeps every other set', () => {
    const unverifiedF1 = { ...f1, verified: false };
    const plan = planRetention(
      [
        { set: unverifiedF1, takenAt: at('2026-11-01T00:00:00Z') },
        { set: l3, takenAt: new Date(Number.NaN) },
      ],
      { now, retentionDays: 7 },
    );
    expect(plan.remove).toEqual([]);
  });
});

describe('manifest', () => {
  test('is written atomically and read back; a broken one is refused naming the file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'octopus-dr-manifest-'));
    try {
      const file = path.join(dir, 'Octopus_FULL_20261127T030405Z.manifest.json');
      const manifest = {
        format: MANIFEST_FORMAT,
        database: 'Octopus',
        files: [{ name: 'Octopus_FULL_20261127T030405Z.bak', serverPath: 'D:\\b\\Octopus_FULL_20261127T030405Z.bak', sizeBytes: 10, stripe: 1 }],
        header: full('F', 1, 2, '2026-11-27T03:04:05.000').header,
      } as unknown as BackupManifest;
      await writeManifestAtomically(file, manifest);
      expect(readdirSync(dir)).toEqual([path.basename(file)]);
      expect((await readManifest(file)).header.lastLsn).toBe(lsn(2));
      expect(readFileSync(file, 'utf8')).toContain(`"lastLsn": "${lsn(2)}"`);
      const broken = path.join(dir, 'broken.manifest.json');
      await writeManifestAtomically(broken, { ...manifest, files: [{ name: '../escape.bak' }] } as unknown as BackupManifest);
      await expect(readManifest(broken)).rejects.toThrow(/broken.manifest.json is not a valid octopus-dr backup manifest: no valid file list/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('T-SQL', () => {
  const value = (p: unknown) => (p as { value: unknown }).value;

  test('BACKUP: names and paths are parameters; options as asked', () => {
    const s = backupStatement({
      database: "Oct]o'pus",
      kind: 'Full',
      files: ['D:\\b\\x_1of2.bak', 'D:\\b\\x_2of2.bak'],
      copyOnly: true,
      compression: true,
      statsPercent: 5,
      name: 'n',
      description: 'd',
    });
    expect(s.sql).toBe(
      'BACKUP DATABASE @database TO DISK = @file1, DISK = @file2\n  WITH COPY_ONLY, CHECKSUM, COMPRESSION, FORMAT, INIT, NAME = @backupName, DESCRIPTION = @description, STATS = 5;',
    );
    expect(s.sql).not.toContain('Oct]');
    expect(value(s.params.database)).toBe("Oct]o'pus");
    expect(value(s.params.file2)).toBe('D:\\b\\x_2of2.bak');
    const d = backupStatement({ database: 'x', kind: 'Differential', files: ['a'], copyOnly: true, compression: false, statsPercent: 5, name: 'n', description: 'd' });
    expect(d.sql).toContain('WITH DIFFERENTIAL, CHECKSUM, NO_COMPRESSION, FORMAT, INIT');
    const l = backupStatement({ database: 'x', kind: 'Log', files: ['a'], copyOnly: false, compression: undefined, statsPercent: 5, name: 'n', description: 'd' });
    expect(l.sql).toMatch(/^BACKUP LOG @database TO DISK = @file1\n  WITH CHECKSUM, FORMAT, INIT,/);
  });

  test('VERIFYONLY and HEADERONLY; the header layout follows the server version', () => {
    expect(verifyStatement(['a', 'b'], 1).sql).toBe('RESTORE VERIFYONLY FROM DISK = @file1, DISK = @file2\n  WITH FILE = @position, CHECKSUM;');
    expect(headerLayoutsFor(16)[0]).toHaveLength(59);
    expect(headerLayoutsFor(15)[0]).toHaveLength(56);
    const h = headerOnlyStatement(['a'], headerLayoutsFor(16)[0]);
    expect(h.sql).toContain("INSERT INTO #header EXEC sys.sp_executesql N'RESTORE HEADERONLY FROM DISK = @file1;', N'@file1 nvarchar(4000)', @file1 = @file1;");
    expect(h.sql).toContain('CONVERT(varchar(30), FirstLSN) AS firstLsn');
  });

  test('RESTORE: exclusive access in the same batch, MOVE and STOPAT as parameters', () => {
    const s = restoreStatement({
      database: 'Octopus Copy',
      kind: 'Full',
      files: ['a'],
      position: 1,
      checksum: true,
      recovery: false,
      statsPercent: 5,
      replace: true,
      exclusive: true,
      move: [{ logicalName: 'Octopus', physicalPath: 'D:\\data\\Octopus Copy.mdf' }],
    });
    expect(s.sql).toContain("IF DATABASEPROPERTYEX(@database, 'Status') = N'ONLINE'");
    expect(s.sql).toContain("N'ALTER DATABASE ' + QUOTENAME(@database) + N' SET SINGLE_USER WITH ROLLBACK IMMEDIATE;'");
    expect(s.sql).toContain('RESTORE DATABASE @database FROM DISK = @file1\n  WITH FILE = @position, CHECKSUM, REPLACE, MOVE @logical1 TO @physical1, NORECOVERY, STATS = 5;');
    const last = restoreStatement({ database: 'x', kind: 'Log', files: ['a'], position: 1, checksum: false, recovery: true, statsPercent: 5, stopAt: '2026-11-01T04:00:00.000' });
    expect(last.sql).toBe(
      'DECLARE @stopAtTime datetime = CONVERT(datetime, @stopAt, 126);\nRESTORE LOG @database FROM DISK = @file1\n  WITH FILE = @position, STOPAT = @stopAtTime, RECOVERY, STATS = 5;',
    );
    expect(value(last.params.stopAt)).toBe('2026-11-01T04:00:00.000');
    expect(formatStatement(last)).toContain("--   @stopAt = N'2026-11-01T04:00:00.000'");
  });

  test('no builder puts a name, path or time into the SQL text', () => {
    const name = "x]'; DROP DATABASE master; --";
    const file = "D:\\b\\it's ]here.bak";
    const statements = [
      tsql.backupPreflightStatement(name),
      tsql.octopusVersionStatement(name),
      tsql.backupStatement({ database: name, kind: 'Log', files: [file], copyOnly: true, compression: undefined, statsPercent: 5, name, description: name }),
      tsql.verifyStatement([file], 1),
      tsql.headerOnlyStatement([file], headerLayoutsFor(16)[0]),
      tsql.fileListStatement([file], 1),
      tsql.databaseExistsStatement(name),
      tsql.restoreStatement({ database: name, kind: 'Full', files: [file], position: 1, checksum: true, recovery: false, statsPercent: 5, replace: true, exclusive: true, move: [{ logicalName: name, physicalPath: file }] }),
      tsql.restoreStatement({ database: name, kind: 'Log', files: [file], position: 1, checksum: true, recovery: true, statsPercent: 5, stopAt: "2026-01-01T00:00:00.000'" }),
      tsql.multiUserStatement(name),
      tsql.octopusTablesStatement(name),
      tsql.checkDbStatement(name),
    ];
    for (const st of statements) {
      expect(st.sql).not.toContain('DROP DATABASE');
      expect(st.sql).not.toContain("it's");
      expect(st.sql).not.toContain("00.000'");
      expect(Object.keys(st.params).every((k) => /^[A-Za-z][A-Za-z0-9]*$/.test(k))).toBe(true);
    }
    expect(() => tsql.backupStatement({ database: 'x', kind: 'Full', files: [], copyOnly: true, compression: undefined, statsPercent: 5, name: 'n', description: 'd' })).toThrow(/1 to 64 files/);
    expect(() => tsql.backupStatement({ database: 'x', kind: 'Full', files: ['a'], copyOnly: true, compression: undefined, statsPercent: 0, name: 'n', description: 'd' })).toThrow(/STATS/);
  });
});
