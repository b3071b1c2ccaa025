// Test Latest Backup: do the restored database and the newest file-store set agree? Run in the
// scratch database before it is dropped; the counts go to the report, a failure to its failures.
import { readManifest, type RestorePlan } from '../engines/database-backup';
import { resolveBackupSource } from '../engines/file-store';
import type { StepContext } from '../runtime/step-context';
import { openSqlConnection } from '../engines/sql';
import { checkFileStoreAgreement } from '../engines/standby/agreement';
import type { AgreementReport, TestRestoreReport } from './report';

export interface AgreementRequest {
  connectionString: string;
  scratchDatabase: string;
  fileStoreBackupDirectory: string;
  days: number;
  failAbovePercent: number;
}

export function emptyAgreement(fileStoreGiven: boolean): AgreementReport {
  return {
    status: fileStoreGiven ? 'not run' : 'skipped',
    outcome: null,
    fileStoreSet: null,
    window: null,
    taskLogs: null,
    artifacts: null,
    packages: null,
    notChecked: [],
    message: null,
  };
}

/** When the newest set of the chain was taken (UTC, from its manifest); undefined without one. */
async function databaseBackupTime(plan: RestorePlan): Promise<Date | undefined> {
  const newest = plan.chain.logs.at(-1) ?? plan.chain.differential ?? plan.chain.full;
  if (!newest.manifestPath) return undefined;
  const manifest = await readManifest(newest.manifestPath).catch(() => undefined);
  const at = manifest ? Date.parse(manifest.takenAt) : NaN;
  return Number.isNaN(at) ? undefined : new Date(at);
}

export async function checkAgreement(request: AgreementRequest, plan: RestorePlan, report: TestRestoreReport, context: StepContext): Promise<void> {
  const agreement = report.agreement!;
  const set = await resolveBackupSource(request.fileStoreBackupDirectory).catch((error: unknown) => {
    // The file-store check reports an unusable set (once); here it only means nothing to compare with.
    agreement.message = `Not compared: the file-store set cannot be used (${(error as Error).message})`;
    return undefined;
  });
  if (!set) {
    context.log.warn(`Database and file store: ${agreement.message}`);
    return;
  }
  agreement.fileStoreSet = set.manifest.archive;
  // Until the earlier of the two backups: a task that started after one of them is not counted as missing.
  const fileStoreAt = new Date(set.manifest.createdAt);
  const databaseAt = await databaseBackupTime(plan);
  const until = databaseAt && databaseAt < fileStoreAt ? databaseAt : fileStoreAt;
  const sql = await openSqlConnection(request.connectionString, context, { database: request.scratchDatabase });
  try {
    const summary = await checkFileStoreAgreement(sql, {
      files: set.manifest.files,
      until,
      days: request.days,
      failAbovePercent: request.failAbovePercent,
      signal: context.signal,
    });
    const counts = (r: { checked: number; missing: number }) => ({ checked: r.checked, missing: r.missing });
    agreement.outcome = summary.outcome;
    agreement.window = summary.result.window;
    agreement.taskLogs = counts(summary.result.taskLogs);
    agreement.artifacts = counts(summary.result.artifacts);
    agreement.packages = counts(summary.result.packages);
    agreement.notChecked = summary.result.notChecked;
    agreement.message = summary.message;
    agreement.status = summary.outcome === 'fail' ? 'failed' : 'passed';
    if (summary.outcome === 'fail') report.failures.push(summary.message);
    else if (summary.outcome === 'warn') context.log.warn(summary.message);
    else context.log.info(summary.message);
  } finally {
    await sql.close();
  }
}
