// The file-store bench's look at DAMON's proactive reclaim (scripts/bench/proactive-reclaim.ts),
// through a fake sysfs laid out as the development VM's is.
import { describeProactiveReclaim, proactiveReclaim, type SysfsReader } from '../../scripts/bench/proactive-reclaim';

const ROOT = '/sys/kernel/mm/damon/admin/kdamonds';

function fakeSysfs(files: Record<string, string>): SysfsReader {
  return {
    text: (file) => files[file],
    list: (folder) => {
      const names = new Set<string>();
      for (const file of Object.keys(files)) {
        if (!file.startsWith(`${folder}/`)) continue;
        const name = file.slice(folder.length + 1).split('/')[0];
        if (/^\d+$/.test(name)) names.add(name);
      }
      return [...names].sort();
    },
  };
}

/** One kdamond with one context and one scheme, as on the development VM (aggregation every 5 s, pageout after 12 of them). */
function vm(state: string, action = 'pageout'): Record<string, string> {
  const context = `${ROOT}/0/contexts/0`;
  return {
    [`${ROOT}/0/state`]: state,
    [`${context}/monitoring_attrs/intervals/aggr_us`]: '5000000',
    [`${context}/schemes/0/action`]: action,
    [`${context}/schemes/0/access_pattern/age/min`]: '12',
  };
}

describe('proactive reclaim in the file-store bench', () => {
  it('finds a running pageout scheme and how long a page must stay idle before it goes', () => {
    const reclaim = proactiveReclaim(fakeSysfs(vm('on')));
    expect(reclaim).toEqual({ kind: 'on', kdamonds: ['0'], idleSeconds: 60 });
    const said = describeProactiveReclaim(reclaim);
    expect(said).toContain('pages idle for 60 s were paged out');
    expect(said).toContain(`echo off > ${ROOT}/0/state`);
  });

  it('tells a kdamond turned off, one that only monitors, and none at all apart', () => {
    expect(proactiveReclaim(fakeSysfs(vm('off')))).toEqual({ kind: 'off' });
    // Monitoring alone (no pageout) keeps the page cache.
    expect(proactiveReclaim(fakeSysfs(vm('on', 'stat')))).toEqual({ kind: 'off' });
    expect(proactiveReclaim(fakeSysfs({}))).toEqual({ kind: 'absent' });
    expect(describeProactiveReclaim({ kind: 'off' })).toBe('DAMON proactive reclaim off: the page cache stayed warm');
    expect(describeProactiveReclaim({ kind: 'absent' })).toBe('no proactive reclaim (DAMON) here');
  });
});
