// Chain selection and retention planning on a long backup history: 100 days of one full backup a
// day and a log backup every 15 minutes (9,700 sets), LSNs above 2^53. Prints milliseconds.
import type { BackupHeader, BackupSet } from '../../steps/engines/database-backup/backup-set';
import { selectChain } from '../../steps/engines/database-backup/chain';
import { planRetention } from '../../steps/engines/database-backup/retention';

const BASE = 37_000_000_012_300_001n;

function header(type: number, first: bigint, last: bigint, checkpoint: bigint, finish: Date): BackupHeader {
  return {
    position: 1, backupType: type, backupTypeDescription: '', databaseName: 'Octopus', serverName: 'SQL01',
    firstLsn: first.toString(), lastLsn: last.toString(), checkpointLsn: checkpoint.toString(), databaseBackupLsn: '0',
    differentialBaseLsn: null, recoveryForkId: 'F', firstRecoveryForkId: 'F', familyGuid: null,
    backupStartDate: finish.toISOString().slice(0, 23), backupFinishDate: finish.toISOString().slice(0, 23),
    isCopyOnly: false, hasBackupChecksums: true, compressed: false, isDamaged: false, backupSize: '1', compressedBackupSize: '1',
    recoveryModel: 'FULL', softwareVersionMajor: 16, softwareVersionMinor: 0, softwareVersionBuild: 1,
  };
}

function history(days: number): { set: BackupSet; takenAt: Date }[] {
  const out: { set: BackupSet; takenAt: Date }[] = [];
  const start = Date.UTC(2026, 0, 1);
  let lsn = BASE;
  let lastLog = BASE;
  for (let q = 0; q < days * 96; q++) {
    const at = new Date(start + q * 15 * 60 * 1000);
    if (q % 96 === 0) {
      const first = lsn;
      lsn += 1000n;
      out.push({ set: { label: `F${q}`, files: [], missingFiles: [], header: header(1, first, lsn, first, at), verified: true }, takenAt: at });
    }
    lsn += 1000n;
    out.push({ set: { label: `L${q}`, files: [], missingFiles: [], header: header(2, lastLog, lsn, lastLog, at), verified: true }, takenAt: at });
    lastLog = lsn;
  }
  return out;
}

function time<T>(label: string, fn: () => T): T {
  const started = process.hrtime.bigint();
  const result = fn();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(`  ${label.padEnd(58)} ${ms.toFixed(1).padStart(9)} ms\n`);
  return result;
}

export async function run(): Promise<void> {
  const sets = history(100);
  process.stdout.write(`  ${sets.length} backup sets (100 fulls, ${sets.length - 100} logs)\n`);
  const all = sets.map((s) => s.set);
  const chain = time('newest chain (folder restore)', () => selectChain(all));
  process.stdout.write(`    -> full + ${chain.logs.length} logs\n`);
  time('point in time in the middle of the history', () => selectChain(all, { stopAt: '2026-02-15T12:07:00.000' }));
  time('chain ending at the newest log', () => selectChain(all, { endAt: all[all.length - 1] }));
  const plan = time('retention plan, 14 days kept', () => planRetention(sets, { now: new Date(Date.UTC(2026, 3, 11)), retentionDays: 14 }));
  process.stdout.write(`    -> ${plan.remove.length} to delete, ${plan.keep.length} kept\n`);
}
