// Proactive reclaim: on the development VM a DAMON kernel thread (kdamond) pages out physical
// memory that has not been touched for a while (a `pageout` scheme: regions idle for 12
// aggregation intervals of 5 s, up to 128 MiB a second). Clean page-cache pages go first, so a
// store the bench read a minute ago may come from the disk again, and "warm page cache" no longer
// holds: on 2026-12-04 it had paged out 22 GB and the guest had refaulted 11 GB of files since
// boot, and an unchanged incremental took 0.20-0.33 s in a bench run against 0.09-0.12 s with the
// kdamond off. The bench says which state it ran in, and how to turn it off.
import { readdirSync, readFileSync } from 'node:fs';

const KDAMONDS = '/sys/kernel/mm/damon/admin/kdamonds';

export type ProactiveReclaim =
  | { kind: 'absent' }
  | { kind: 'off' }
  /** `idleSeconds`: how long a region must go untouched before it is paged out (the shortest of the schemes). */
  | { kind: 'on'; kdamonds: string[]; idleSeconds: number | undefined };

export interface SysfsReader {
  text(file: string): string | undefined;
  list(folder: string): string[];
}

const sysfs: SysfsReader = {
  text(file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  list(folder) {
    try {
      return readdirSync(folder).filter((name) => /^\d+$/.test(name));
    } catch {
      return [];
    }
  },
};

export function proactiveReclaim(read: SysfsReader = sysfs): ProactiveReclaim {
  const kdamonds = read.list(KDAMONDS);
  if (kdamonds.length === 0) return { kind: 'absent' };
  const running: string[] = [];
  const idle: number[] = [];
  for (const kdamond of kdamonds) {
    if (read.text(`${KDAMONDS}/${kdamond}/state`) !== 'on') continue;
    for (const context of read.list(`${KDAMONDS}/${kdamond}/contexts`)) {
      const at = `${KDAMONDS}/${kdamond}/contexts/${context}`;
      const aggregationUs = Number(read.text(`${at}/monitoring_attrs/intervals/aggr_us`));
      for (const scheme of read.list(`${at}/schemes`)) {
        if (read.text(`${at}/schemes/${scheme}/action`) !== 'pageout') continue;
        if (!running.includes(kdamond)) running.push(kdamond);
        const minAge = Number(read.text(`${at}/schemes/${scheme}/access_pattern/age/min`));
        if (Number.isFinite(aggregationUs) && Number.isFinite(minAge)) idle.push((aggregationUs * minAge) / 1e6);
      }
    }
  }
  if (running.length === 0) return { kind: 'off' };
  return { kind: 'on', kdamonds: running, idleSeconds: idle.length > 0 ? Math.min(...idle) : undefined };
}

/** How to turn it off, as root (the bench does not: the machine is not its to change). */
export function turnOffCommand(reclaim: Extract<ProactiveReclaim, { kind: 'on' }>): string {
  return reclaim.kdamonds.map((k) => `echo off > ${KDAMONDS}/${k}/state`).join(' && ');
}

/** What the bench's report says about it. */
export function describeProactiveReclaim(reclaim: ProactiveReclaim): string {
  if (reclaim.kind === 'absent') return 'no proactive reclaim (DAMON) here';
  if (reclaim.kind === 'off') return 'DAMON proactive reclaim off: the page cache stayed warm';
  const after = reclaim.idleSeconds === undefined ? 'idle for a while' : `idle for ${reclaim.idleSeconds} s`;
  return (
    `DAMON proactive reclaim ON: pages ${after} were paged out, so a tool may have read its input from the disk ` +
    `(not a warm page cache; as root, \`${turnOffCommand(reclaim)}\` for a run that compares tools)`
  );
}
