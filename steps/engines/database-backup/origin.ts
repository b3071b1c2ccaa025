// Whose a backup set is: the server that took it and the database's family GUID (RESTORE
// HEADERONLY's ServerName and FamilyGUID, which every manifest records in its header). Two servers
// (production and staging, both with a database named Octopus) may back up to one share; their
// sets share a name but not a chain, and LSNs of one mean nothing to the other. Retention, "the
// newest verified" and the chain a new backup needs consider only sets of the new backup's origin;
// a set whose origin cannot be told is kept, never deleted on another's behalf.
//
// One database on several servers is an Always On availability group: its replicas take turns as
// primary (a failover, a patch night), and every replica's backups are one chain (SQL Server keeps
// the differential base and the log chain across them). So sets that both record the same
// availability-group database ID (sys.databases.group_database_id, the same on every replica and
// on no copy restored outside the group) are one origin whichever replica took them.
import * as path from 'node:path';
import { kindOf, type BackupSet } from './backup-set';
import { ChainError, earlierSetsNeeded, selectChain } from './chain';
import type { ManifestSet } from './discovery';

export interface SetOrigin {
  /** The server that took the backup (HEADERONLY ServerName, else the manifest's server name); null when not recorded. */
  server: string | null;
  /** The database's family GUID (the same across restores of it); null when not recorded. */
  familyGuid: string | null;
  /** Its availability-group database ID when it was in one (the same on every replica); null when not, or not recorded. */
  groupDatabaseId?: string | null;
}

const present = (value: unknown): string | null => (typeof value === 'string' && value.trim() !== '' ? value.trim() : null);

export function originOf(set: Pick<ManifestSet, 'manifest'>): SetOrigin {
  const { manifest } = set;
  return {
    server: present(manifest.header?.serverName) ?? present(manifest.server?.name),
    familyGuid: present(manifest.header?.familyGuid),
    groupDatabaseId: present(manifest.groupDatabaseId),
  };
}

/**
 * 'same' when both record the same family GUID and either the same availability-group database
 * (replicas of one database, whichever server) or, when not both do, the same server (in any case:
 * host names ignore it); 'other' when a compared value differs; 'unknown' when one is missing on
 * either side. Pure.
 */
export function compareOrigins(a: SetOrigin, b: SetOrigin): 'same' | 'other' | 'unknown' {
  const bothInGroups = Boolean(a.groupDatabaseId && b.groupDatabaseId);
  const fields: (keyof SetOrigin)[] = bothInGroups ? ['groupDatabaseId', 'familyGuid'] : ['server', 'familyGuid'];
  let unknown = false;
  for (const field of fields) {
    const [x, y] = [a[field] ?? null, b[field] ?? null];
    if (x === null || y === null) unknown = true;
    else if (x.toLowerCase() !== y.toLowerCase()) return 'other';
  }
  return unknown ? 'unknown' : 'same';
}

/**
 * Sets grouped by origin, as a restore from a folder groups them (refuseMixedOrigins): sets whose
 * origins compare 'same' are one origin, and so is a set the same as any of them (an availability
 * group's replicas, and the sets one of those servers took before the group). Sets that do not record
 * both a server and a family GUID are returned apart (`unknown`). Pure.
 */
export function groupByOrigin<S>(sets: readonly S[], originOfSet: (set: S) => SetOrigin): { groups: { origin: SetOrigin; members: SetOrigin[]; sets: S[] }[]; unknown: S[] } {
  const groups: { origin: SetOrigin; members: SetOrigin[]; sets: S[] }[] = [];
  const unknown: S[] = [];
  for (const set of sets) {
    const origin = originOfSet(set);
    if (origin.server === null || origin.familyGuid === null) {
      unknown.push(set);
      continue;
    }
    const joined = groups.filter((g) => g.members.some((m) => compareOrigins(m, origin) === 'same'));
    const group = joined[0] ?? { origin, members: [], sets: [] };
    if (joined.length === 0) groups.push(group);
    for (const other of joined.slice(1)) {
      group.members.push(...other.members);
      group.sets.push(...other.sets);
      groups.splice(groups.indexOf(other), 1);
    }
    group.members.push(origin);
    group.sets.push(set);
  }
  return { groups, unknown };
}

export function describeOrigin(origin: SetOrigin): string {
  return (
    `${origin.server ?? 'an unrecorded server'}${origin.familyGuid ? `, family GUID ${origin.familyGuid}` : ''}` +
    (origin.groupDatabaseId ? `, availability-group database ${origin.groupDatabaseId}` : '')
  );
}

/** The sets of `database` (by header name) of `origin`, and those of the database whose origin is another or unknown. Pure. */
export function splitByOrigin(sets: readonly ManifestSet[], database: string, origin: SetOrigin): { ours: ManifestSet[]; other: ManifestSet[]; unknown: ManifestSet[] } {
  const result = { ours: [] as ManifestSet[], other: [] as ManifestSet[], unknown: [] as ManifestSet[] };
  for (const s of sets) {
    if (s.set.header.databaseName !== database) continue;
    const comparison = compareOrigins(originOf(s), origin);
    (comparison === 'same' ? result.ours : comparison === 'other' ? result.other : result.unknown).push(s);
  }
  return result;
}

/**
 * Warnings about a folder holding sets of more than one origin: other servers' sets (of any
 * database), another database of the same name on this server (another family), and sets of this
 * database whose origin is not recorded. Each says retention keeps them. Pure.
 */
export function originWarnings(sets: readonly ManifestSet[], database: string, origin: SetOrigin, directory: string): string[] {
  const warnings: string[] = [];
  const byServer = new Map<string, { server: string; count: number }>();
  for (const s of sets) {
    const server = originOf(s).server;
    if (server === null || (origin.server !== null && server.toLowerCase() === origin.server.toLowerCase())) continue;
    // Another replica of this availability-group database: the same chain, nothing to warn about.
    if (compareOrigins(originOf(s), origin) === 'same') continue;
    const entry = byServer.get(server.toLowerCase()) ?? { server, count: 0 };
    entry.count += 1;
    byServer.set(server.toLowerCase(), entry);
  }
  if (byServer.size > 0) {
    const list = [...byServer.values()].map((e) => `${e.server}: ${e.count} set${e.count === 1 ? '' : 's'}`).join(', ');
    warnings.push(
      `${directory} holds backups taken on other servers than ${origin.server ?? 'this one'} (${list}). Retention here deletes only ${origin.server ?? 'this server'}'s own sets of '${database}', ` +
        "and compares nothing across servers; each server's own backups apply its retention. A restore from a shared folder can take another server's backups for these: give each server its own backup folder.",
    );
  }
  const { other, unknown } = splitByOrigin(sets, database, origin);
  const sameServerOtherFamily = other.filter((s) => origin.server !== null && originOf(s).server?.toLowerCase() === origin.server.toLowerCase());
  if (sameServerOtherFamily.length > 0) {
    warnings.push(
      `${names(sameServerOtherFamily)} ${sameServerOtherFamily.length === 1 ? 'is a backup' : 'are backups'} of another database named '${database}' on ${origin.server} ` +
        `(family GUID ${originOf(sameServerOtherFamily[0]).familyGuid}, not ${origin.familyGuid}: it was dropped and created again, or restored from another database's backup). ` +
        'Retention keeps them and no chain mixes them with this one; move them out of the folder once no restore needs them.',
    );
  }
  if (unknown.length > 0) {
    warnings.push(
      `${names(unknown)} ${unknown.length === 1 ? 'records' : 'record'} no server or no database family GUID, so whose ${unknown.length === 1 ? 'it is' : 'they are'} cannot be told: ` +
        'retention keeps them, and they count for nothing here. Move them out of the folder once no restore needs them.',
    );
  }
  return warnings;
}

function names(sets: readonly ManifestSet[]): string {
  const shown = sets.slice(0, 5).map((s) => path.basename(s.manifestPath));
  return shown.join(', ') + (sets.length > shown.length ? ` and ${sets.length - shown.length} more` : '');
}

/**
 * Whether a new differential or log backup restores from the folder's sets of its origin alone: the
 * chain selection a restore of it makes. The problem (the missing full, the LSN gap) when not;
 * undefined when it does (or is a full backup). Pure.
 */
export function missingBaseOf(newSet: ManifestSet, ours: readonly ManifestSet[]): string | undefined {
  const kind = kindOf(newSet.set.header);
  if (kind === undefined || kind === 'Full') return undefined;
  const sets = ours.map((s) => s.set);
  if (!sets.includes(newSet.set)) sets.push(newSet.set);
  try {
    selectChain(sets, { endAt: newSet.set });
    return undefined;
  } catch (error) {
    if (error instanceof ChainError) return error.message;
    throw error;
  }
}

/**
 * The sets among `all` (one database's, of every origin) that restoring one of `kept` needs, each with
 * the kept set that needs it: the chain a restore up to it would take (selectChain, by LSN), or, when
 * that chain cannot be made, at least the full its header names as its base. Retention chooses per
 * origin, but a chain does not stop at one: a database restored onto another server (a staging server
 * refreshed from production's full, a DR restore from an earlier full) continues its chain there, and
 * a differential taken there is based on the full restored from the first server's backup. Before
 * (red team 40), the first server's retention found that full old and not needed by its own sets, and
 * deleted it; the other server's newest set no longer restored. The sets this returns are kept. Pure.
 */
export function neededAcrossOrigins<S extends BackupSet>(all: readonly S[], kept: readonly S[]): Map<S, S> {
  const needed = new Map<S, S>();
  let wanting: readonly S[] = kept;
  const seen = new Set<S>(kept);
  while (wanting.length > 0) {
    const next: S[] = [];
    for (const set of wanting) {
      for (const member of earlierSetsNeeded(set, all)) {
        if (needed.has(member)) continue;
        needed.set(member, set);
        if (!seen.has(member)) {
          seen.add(member);
          next.push(member);
        }
      }
    }
    wanting = next;
  }
  return needed;
}
