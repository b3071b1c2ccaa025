// What a drill killed while it wrote (SIGKILL, a lost worker, power loss) leaves beside the backups
// or in the report directory: the temporary file of its JSON report, HTML page or DR record
// (writeFileAtomically's `.<name>.<hex>.partial`), or the report directory's write probe. Nothing
// else removes them, so each drill names the ones it finds and deletes those nothing has written to
// for 6 hours (cleanLeftovers); none is ever read. Files of other names are not touched.
import * as path from 'node:path';
import { cleanLeftovers } from '../runtime/leftovers';
import { HISTORY_FILE_NAME } from './history';

/** `.octopus-dr-test-restore-<stamp>[-n].json|html.<hex>.partial` */
const REPORT_PARTIAL = /^\.octopus-dr-test-restore-\d{8}T\d{6}Z(?:-\d+)?\.(?:json|html)\.[0-9a-f]{8}\.partial$/;
const HISTORY_PARTIAL = new RegExp(`^\\.${HISTORY_FILE_NAME.replace(/\./g, '\\.')}\\.[0-9a-f]{8}\\.partial$`);
/** checkReportDirectory's probe. */
const WRITE_PROBE = /^\.octopus-dr-write-probe-[0-9a-f]{8}$/;

export function isDrillLeftover(name: string): boolean {
  return REPORT_PARTIAL.test(name) || HISTORY_PARTIAL.test(name) || WRITE_PROBE.test(name);
}

/** Names, and after 6 hours deletes, a killed drill's temporary files in each folder (once per folder). */
export async function cleanDrillLeftovers(directories: readonly string[], now: Date, log: { warn(message: string): void }): Promise<void> {
  for (const directory of new Set(directories.map((d) => path.resolve(d)))) {
    await cleanLeftovers(directory, isDrillLeftover, 'a test restore (Test Latest Backup)', now, log);
  }
}
