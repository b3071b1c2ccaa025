// Whose file store a set is. Two Octopus Servers (production and staging, or an old and a new one
// after a migration) may back up into one backup directory; retention, the set an incremental
// builds on and the set a restore from the directory takes must then be of one store. Every
// manifest has recorded where each folder was read from (`folders[].source`) and the machine that
// read it (`host`), so sets written before this are told apart too: no field was added.
//
// A folder's location: a share (`\\server\share\...`) names its machine, so it is the same store
// whichever worker reads it; a local Windows path (`C:\Octopus\TaskLogs`) is only read on the
// Octopus Server itself, so it is that path on that machine; a POSIX path (a container's volume,
// a share mounted on every worker of a pool) as it is, on any machine, since a pool's workers
// differ from run to run. Windows paths and machine names compare in any case.
//
// Two sets are the same store when they have a folder in common and every folder they have in
// common is in the same location; another when they have none in common, or one in another
// location; unknown when either does not say where a folder was read from.
import type { FileStoreManifest } from './manifest';

export type StoreRelation = 'same' | 'other' | 'unknown';

/** What a manifest says of where its folders were read from. */
export type StoreHeader = Pick<FileStoreManifest, 'host' | 'folders'>;

/** Each folder's location as compared, or undefined when the set does not say where one was read from. */
export function storeLocations(header: StoreHeader): Map<string, string> | undefined {
  const locations = new Map<string, string>();
  if (!Array.isArray(header.folders) || header.folders.length === 0) return undefined;
  for (const folder of header.folders) {
    const location = locationOf(folder?.source, header.host);
    if (location === undefined) return undefined;
    locations.set(folder.name, location);
  }
  return locations;
}

function locationOf(source: unknown, host: unknown): string | undefined {
  if (typeof source !== 'string' || source === '') return undefined;
  // \\?\C:\x is C:\x; \\?\UNC\server\share is \\server\share.
  const plain = source.replace(/^\\\\\?\\UNC\\/i, '\\\\').replace(/^\\\\\?\\/, '');
  const windows = (p: string) => p.replace(/\//g, '\\').replace(/\\+$/, '').toLowerCase();
  if (/^\\\\[^\\]/.test(plain)) return `share:${windows(plain)}`;
  if (/^[A-Za-z]:[\\/]/.test(plain)) return typeof host === 'string' && host !== '' ? `local:${host.toLowerCase()}:${windows(plain)}` : undefined;
  return `path:${plain}`;
}

export function storeRelation(a: StoreHeader, b: StoreHeader): StoreRelation {
  const left = storeLocations(a);
  const right = storeLocations(b);
  if (!left || !right) return 'unknown';
  let shared = 0;
  for (const [name, location] of left) {
    const other = right.get(name);
    if (other === undefined) continue;
    if (other !== location) return 'other';
    shared++;
  }
  return shared > 0 ? 'same' : 'other';
}

/** The store a set is of, for messages: its folders and where each was read from. */
export function describeStore(header: StoreHeader): string {
  if (!Array.isArray(header.folders) || header.folders.length === 0) return 'no folders recorded';
  const local = header.folders.some((f) => typeof f?.source === 'string' && /^(\\\\\?\\)?[A-Za-z]:[\\/]/.test(f.source));
  const folders = header.folders.map((f) => `${f.name}=${typeof f.source === 'string' ? f.source : '(not recorded)'}`).join(', ');
  return local ? `${folders} on ${typeof header.host === 'string' && header.host ? header.host : '(machine not recorded)'}` : folders;
}

/**
 * The sets grouped by store: sets that are the same store, joined through shared members (a
 * TaskLogs-only set and a TaskLogs-and-Packages set of one server are one group). Sets of unknown
 * store are left out (`unknown`).
 */
export function groupByStore<T extends { manifest: StoreHeader }>(sets: readonly T[]): { groups: T[][]; unknown: T[] } {
  const known = sets.filter((s) => storeLocations(s.manifest) !== undefined);
  const parent = known.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < known.length; i++) {
    for (let j = i + 1; j < known.length; j++) {
      if (storeRelation(known[i].manifest, known[j].manifest) === 'same') parent[find(i)] = find(j);
    }
  }
  const groups = new Map<number, T[]>();
  known.forEach((s, i) => {
    const root = find(i);
    const group = groups.get(root);
    if (group) group.push(s);
    else groups.set(root, [s]);
  });
  return { groups: [...groups.values()], unknown: sets.filter((s) => !known.includes(s)) };
}
