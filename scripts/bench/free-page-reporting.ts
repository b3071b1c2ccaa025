// Free page reporting: a VM's balloon driver tells the host which guest pages are free, and the
// host takes them back. The next time the guest uses such a page, the host must fault it in
// again. On the development VM (Firecracker, 2 vCPUs) that is most of what writing costs:
// writing 2,000 MiB into a new file took 5.4 s (4.9 s of it system time) when the guest's free
// pages had been reported, and 0.8 s (0.4 s system) into pages freed a moment before and not yet
// reported (wtest, 1 MiB writes, then fdatasync; 2026-12-03). Which state a timed operation
// met depended on how long ago the previous tool's files were deleted, so the same tool's backup
// took 3.7 s in one round and 6.9 s in the next. Before every timed operation the bench waits
// until the guest has reported its free memory (the count below stops moving), so every tool
// starts from the same state.
import { readFileSync } from 'node:fs';

const PARAMETERS = '/sys/module/page_reporting/parameters';
/** Reporting passes run about 2 s apart while freed memory waits: quiet for longer means done. */
export const QUIET_MS = 3000;
/** A machine that keeps freeing memory never goes quiet: the bench waits no longer than this. */
export const MAX_WAIT_MS = 30000;
const POLL_MS = 250;
/** Free pages come in blocks of order 0-10 (MAX_PAGE_ORDER): a reporting order above that reports nothing. */
const MAX_PAGE_ORDER = 10;

export type Reporting = { kind: 'absent' } | { kind: 'paused'; order: number } | { kind: 'active'; order: number };

function readNumber(file: string): number | undefined {
  try {
    const value = Number(readFileSync(`${PARAMETERS}/${file}`, 'utf8').trim());
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function freePageReporting(read: (file: string) => number | undefined = readNumber): Reporting {
  const order = read('page_reporting_order');
  if (order === undefined || read('reported_kib') === undefined) return { kind: 'absent' };
  return order > MAX_PAGE_ORDER ? { kind: 'paused', order } : { kind: 'active', order };
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleepCell, 0, 0, ms);

/**
 * Waits (synchronously: the bench times with spawnSync) until the reported count has not moved
 * for `quietMs`, at most `maxMs`. Returns the milliseconds waited, and whether it went quiet.
 */
export function settle(
  reportedKib: () => number | undefined = () => readNumber('reported_kib'),
  { quietMs = QUIET_MS, maxMs = MAX_WAIT_MS, pollMs = POLL_MS, now = Date.now, wait = sleep }: { quietMs?: number; maxMs?: number; pollMs?: number; now?: () => number; wait?: (ms: number) => void } = {},
): { waitedMs: number; quiet: boolean } {
  const started = now();
  let last = reportedKib();
  let lastChange = started;
  for (;;) {
    const at = now();
    if (at - lastChange >= quietMs) return { waitedMs: at - started, quiet: true };
    if (at - started >= maxMs) return { waitedMs: at - started, quiet: false };
    wait(pollMs);
    const current = reportedKib();
    if (current !== last) {
      last = current;
      lastChange = now();
    }
  }
}

/** What the bench's report says about it. */
export function describeReporting(reporting: Reporting, waits: readonly number[], notQuiet: number): string {
  if (reporting.kind === 'absent') return 'no free page reporting here (the guest keeps its free pages)';
  if (reporting.kind === 'paused') return `free page reporting paused (page_reporting_order ${reporting.order}): freed pages are reused without a host fault, as on a machine without a balloon`;
  const sorted = [...waits].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  const middle = sorted.length === 0 ? 0 : (sorted.length % 2 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2) / 1000;
  return (
    `free page reporting active (page_reporting_order ${reporting.order}): before every timed operation the bench waited until the guest had reported its free memory ` +
    `(median ${middle.toFixed(1)} s${notQuiet ? `; ${notQuiet} wait(s) gave up after ${MAX_WAIT_MS / 1000} s` : ''}), so every tool wrote into pages the host faults in again, ` +
    'which costs far more than on a machine without a balloon (docs/benchmarks.md)'
  );
}
