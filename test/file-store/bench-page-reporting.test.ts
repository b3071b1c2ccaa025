// The file-store bench's wait for a VM's free page reporting (scripts/bench/free-page-reporting.ts),
// with a fake clock and a scripted count: the real one depends on the host.
import { describeReporting, freePageReporting, settle } from '../../scripts/bench/free-page-reporting';

/** A clock that only moves when the settle loop sleeps, and a count that follows a script of (time, KiB). */
function scripted(changes: [number, number][]) {
  let clock = 0;
  const reportedKib = () => {
    let value = 0;
    for (const [at, kib] of changes) if (at <= clock) value = kib;
    return value;
  };
  return { reportedKib, now: () => clock, wait: (ms: number) => void (clock += ms) };
}

describe('free page reporting in the file-store bench', () => {
  it('waits until the reported count has stood still for the quiet time', () => {
    // Two reporting passes 2 s apart (as measured after deleting 2 GB), then nothing.
    const fake = scripted([
      [0, 100],
      [1500, 1_100_000],
      [3500, 2_100_000],
    ]);
    const result = settle(fake.reportedKib, { quietMs: 3000, maxMs: 30000, pollMs: 250, now: fake.now, wait: fake.wait });
    expect(result.quiet).toBe(true);
    // The last change is seen at 3.5 s: quiet from there for 3 s.
    expect(result.waitedMs).toBe(6500);
  });

  it('gives up at the longest wait on a machine that keeps reporting', () => {
    const changes: [number, number][] = [];
    for (let t = 0; t < 60000; t += 1000) changes.push([t, t]);
    const fake = scripted(changes);
    const result = settle(fake.reportedKib, { quietMs: 3000, maxMs: 10000, pollMs: 250, now: fake.now, wait: fake.wait });
    expect(result).toEqual({ waitedMs: 10000, quiet: false });
  });

  it('tells an absent, a paused and an active reporting apart', () => {
    expect(freePageReporting(() => undefined).kind).toBe('absent');
    expect(freePageReporting((file) => (file === 'page_reporting_order' ? 11 : 5))).toEqual({ kind: 'paused', order: 11 });
    expect(freePageReporting((file) => (file === 'page_reporting_order' ? 5 : 123))).toEqual({ kind: 'active', order: 5 });
  });

  it('says in the report what it waited for, and when it gave up', () => {
    const text = describeReporting({ kind: 'active', order: 5 }, [3000, 4000, 9000], 1);
    expect(text).toContain('median 4.0 s');
    expect(text).toContain('1 wait(s) gave up after 30 s');
    expect(describeReporting({ kind: 'active', order: 5 }, [3000, 4000, 5000, 9000], 0)).toContain('median 4.5 s');
    expect(describeReporting({ kind: 'paused', order: 11 }, [], 0)).toContain('paused (page_reporting_order 11)');
  });
});
