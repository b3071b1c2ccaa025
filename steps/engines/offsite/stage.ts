// Restoring from offsite: turns an offsite URL into a local folder the restore steps read as
// usual. The set to restore is chosen from the offsite records and manifests (the same chain and
// point-in-time rules as a local restore), and only what that chain needs is downloaded, each
// file to a temporary name, its SHA-256 checked, then renamed. Files already in the staging
// folder with the right size and SHA-256 are not downloaded again.
import { offsiteUrl } from '../../../templates/offsite-parameters';
import { howToSet } from '../../runtime/parameters';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupSet as DatabaseSet } from '../database-backup/backup-set';
import { ChainError, selectChain } from '../database-backup/chain';
import { MANIFEST_FORMAT as DATABASE_MANIFEST_FORMAT, type BackupManifest } from '../database-backup/manifest';
import { normaliseLocalTime } from '../database-backup/backup-set';
import { compareLsn } from '../database-backup/lsn';
import { describeOrigin, groupByOrigin, originOf } from '../database-backup/origin';
import { oldestByName, parseManifest as parseFileStoreManifest, type FileStoreManifest } from '../file-store/manifest';
import { describeStore, groupByStore } from '../file-store/origin';
import type { EngineContext, EngineLog } from '../../runtime/engine-context';
import { ParameterError, StepFailure } from '../../runtime/errors';
import { placeWithoutReplacing } from '../../runtime/files';
import { sha256OfFile } from './copy';
import { OFFSITE_SUFFIX, parseOffsiteRecord, type OffsiteFileRecord, type OffsiteSetRecord } from './offsite-manifest';
import type { Area } from './sets';
import type { OffsiteReader } from './store';

/** Decrypts one stored object, when the set was encrypted. */
export type Decrypt = (stored: Readable, record: OffsiteSetRecord) => Promise<Readable>;

export interface StageRequest {
  store: OffsiteReader;
  area: Area;
  stagingDirectory: string;
  /** A set named in the URL (`.../database/<name>.manifest.json`), else the newest usable one. */
  setName?: string;
  /** Database: restore to this server-local time. */
  pointInTime?: string;
  decrypt?: Decrypt;
  onProgress?: (done: number, total: number) => void;
}

/** The request with the context's log and signal, as the staging helpers use them. */
type StageRun = StageRequest & { log: EngineLog; signal: AbortSignal };

export interface StageResult {
  /** What to hand the restore as its source: a manifest in the staging folder, or the folder itself (point in time). */
  localSource: string;
  sets: string[];
  downloadedBytes: number;
  reusedFiles: number;
}

async function readText(store: OffsiteReader, key: string, signal?: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await store.download(key, signal)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Offsite {
  record: OffsiteSetRecord;
  manifestText: string;
}

/** A set that cannot be used: this key cannot open it (another passphrase or recipient, or none given), or its manifest is damaged. Set aside with why. */
interface SetAside {
  record: OffsiteSetRecord;
  error: StepFailure;
}

/**
 * The area's sets, their manifests read (decrypted when encrypted). A set this key cannot decrypt, or
 * whose manifest is damaged, is set aside, not fatal: after a passphrase change the older sets need the
 * old one, and they must not stop a restore of the newer ones (stageFromOffsite decides whether a set
 * aside matters). A record that cannot be read at all is skipped with a warning.
 */
async function loadArea(request: StageRun): Promise<{ usable: Offsite[]; setAside: SetAside[] }> {
  const { store, area, signal } = request;
  const keys = (await store.list(`${area}/`)).map((o) => o.key).filter((k) => k.endsWith(OFFSITE_SUFFIX)).sort();
  const result: Offsite[] = [];
  const setAside: SetAside[] = [];
  for (const key of keys) {
    let record: OffsiteSetRecord | undefined;
    try {
      record = parseOffsiteRecord(await readText(store, key, signal), `${store.display}/${key}`);
      if (record.area !== area) throw new StepFailure(`${store.display}/${key} describes a ${record.area} set`);
      let manifestText: string;
      if (record.encryption) {
        // The manifest is encrypted like the data: decrypt it to choose the chain. A wrong or missing key fails here, before anything is written.
        if (!request.decrypt) {
          throw new DecryptionNeeded(
            `${record.id} is encrypted offsite (${record.encryption.format}, ${record.encryption.method}), and this caller gave no way to decrypt it: ` +
              'set "Encryption passphrase" or "Decryption identity" in a step that takes them (the restores and Fetch Backups from Offsite do).',
          );
        }
        manifestText = await streamToText(await request.decrypt(await store.download(`${area}/${record.manifest.name}`, signal), record));
      } else manifestText = await readText(store, `${area}/${record.manifest.name}`, signal);
      if (createHash('sha256').update(manifestText).digest('hex') !== record.manifest.sha256) {
        throw new StepFailure(`${store.display}/${area}/${record.manifest.name} does not match its offsite record (SHA-256 differs)`);
      }
      // Only what the record lists is downloaded and checked: a file the manifest names and the record
      // does not (an edited record) would be missing from the download folder, under a green "every SHA-256 matches".
      const listed = new Set(record.files.map((f) => f.name));
      const unlisted = filesNamedBy(area, manifestText, `${store.display}/${area}/${record.manifest.name}`).filter((name) => !listed.has(name));
      if (unlisted.length > 0) {
        throw new StepFailure(`its offsite record ${store.display}/${key} does not list ${unlisted.join(', ')}, which its manifest names, so that file would not be downloaded`);
      }
      result.push({ record, manifestText });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const keyDoesNotFit = error instanceof DecryptionNeeded || (error instanceof StepFailure && /decrypt|encrypted offsite/i.test(error.message));
      if (record && keyDoesNotFit) {
        setAside.push({ record, error: error as StepFailure });
        continue;
      }
      if (record) {
        const why = (error as Error).message;
        setAside.push({
          record,
          error: new StepFailure(
            `${record.id} cannot be restored from ${store.display}: ${why}${why.endsWith('.') ? '' : '.'} Copy it offsite again, or end the URL with an older set's .manifest.json (or give a point in time before it) to restore that one.`,
            { cause: error },
          ),
        });
        continue;
      }
      request.log.warn(`Skipping ${store.display}/${key}: ${(error as Error).message}`);
    }
  }
  return { usable: result, setAside };
}

/**
 * The set aside that stops this restore, if any: one taken from the chain's first member on (up to
 * its last when a set or a point in time bounds it) might be in the chain, or newer than it, so
 * restoring without it could restore less than was asked. Sets older than the chain are skipped.
 */
function setAsideThatMatters(request: StageRun, setAside: SetAside[], members: Offsite[]): SetAside | undefined {
  const times = members.map((m) => Date.parse(m.record.takenAt));
  const first = Math.min(...times);
  const last = request.setName || request.pointInTime ? Math.max(...times) : Infinity;
  const inRange = setAside.filter((l) => Date.parse(l.record.takenAt) >= first && Date.parse(l.record.takenAt) <= last);
  return newestOf(inRange);
}

function newestOf(sets: SetAside[]): SetAside | undefined {
  return [...sets].sort((a, b) => Date.parse(b.record.takenAt) - Date.parse(a.record.takenAt))[0];
}

class DecryptionNeeded extends StepFailure {}

/** The files a set's manifest says the set is made of (its backup files, or its archive). */
function filesNamedBy(area: Area, manifestText: string, where: string): string[] {
  if (area === 'file-store') return [parseFileStoreManifest(manifestText, where).archive];
  let manifest: Partial<BackupManifest>;
  try {
    manifest = JSON.parse(manifestText) as Partial<BackupManifest>;
  } catch (error) {
    throw new StepFailure(`${where} is not valid JSON (${(error as Error).message})`);
  }
  // Not a database manifest: chooseDatabaseChain passes it over.
  if (manifest.format !== DATABASE_MANIFEST_FORMAT || !Array.isArray(manifest.files)) return [];
  return manifest.files.map((f) => f.name);
}

async function streamToText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function chooseDatabaseChain(request: StageRun, offsite: Offsite[]): { members: Offsite[]; endAtManifest?: string } {
  const bySet = new Map<DatabaseSet, Offsite>();
  const manifests = new Map<DatabaseSet, BackupManifest>();
  const sets: DatabaseSet[] = [];
  for (const o of offsite) {
    const manifest = JSON.parse(o.manifestText) as BackupManifest;
    if (manifest.format !== DATABASE_MANIFEST_FORMAT || !manifest.header) continue;
    const set: DatabaseSet = {
      label: o.record.manifest.name,
      files: manifest.files.map((f) => ({ name: f.name, workerPath: f.name, serverPath: f.name })),
      missingFiles: [],
      header: manifest.header,
      manifestPath: o.record.manifest.name,
      verified: manifest.verification.passed,
      masterKeyId: manifest.masterKeyId ?? null,
    };
    bySet.set(set, o);
    manifests.set(set, manifest);
    sets.push(set);
  }
  if (sets.length === 0) throw new StepFailure(`No database backup set is offsite in ${request.store.display}/database/ (a set is offsite once its .offsite.json record is there).`);
  let endAt: DatabaseSet | undefined;
  if (request.setName) {
    endAt = sets.find((s) => s.label === request.setName);
    if (!endAt) throw new StepFailure(`${request.setName} is not offsite in ${request.store.display}/database/ (no .offsite.json record for it).`);
  }
  if (!endAt) refuseMixedOrigins(request, sets, manifests);
  let stopAt: string | undefined;
  if (request.pointInTime) {
    stopAt = normaliseLocalTime(request.pointInTime);
    if (!stopAt) throw new StepFailure(`"Point in time" must be an ISO-8601 date and time without offset (e.g. 2026-11-27T14:30:00), not "${request.pointInTime}".`, { exitCode: 2 });
  }
  try {
    const chain = selectChain(sets, { endAt, stopAt });
    const members = [chain.full, chain.differential, ...chain.logs].filter((s): s is DatabaseSet => s !== undefined);
    return { members: members.map((m) => bySet.get(m)!), endAtManifest: stopAt ? undefined : members[members.length - 1].label };
  } catch (error) {
    if (error instanceof ChainError) throw new StepFailure(`Offsite in ${request.store.display}/database/: ${error.message}`);
    throw error;
  }
}

/**
 * One database's sets offsite from more than one server or database family (Copy Offsite of a
 * shared folder): which to restore is not guessed, as a restore from the folder does not guess it
 * (refuseMixedOrigins in restore.ts). Before, "the newest" chain was chosen across every server's
 * sets by LSN, which means nothing across servers: another server's database was restored, exit 0.
 */
function refuseMixedOrigins(request: StageRun, sets: readonly DatabaseSet[], manifests: ReadonlyMap<DatabaseSet, BackupManifest>): void {
  const databases = new Set(sets.map((s) => s.header.databaseName));
  if (databases.size !== 1) return;
  const { groups } = groupByOrigin(sets, (s) => originOf({ manifest: manifests.get(s)! }));
  if (groups.length <= 1) return;
  const [database] = databases;
  const list = groups
    .map((g) => {
      const newest = [...g.sets].sort((a, b) => compareLsn(b.header.lastLsn, a.header.lastLsn))[0];
      return `${describeOrigin(g.origin)}: ${g.sets.length} set${g.sets.length === 1 ? '' : 's'}, the newest ${newest.label} (finished ${newest.header.backupFinishDate})`;
    })
    .join('; ');
  throw new StepFailure(
    `Offsite in ${request.store.display}/database/ holds backups of '${database}' from more than one server or database (${list}). ` +
      'Which of them to restore is not guessed: the newest may be another server\'s, and a chain could join a full of one with a differential of another. Nothing was downloaded. ' +
      `Name the set to restore up to at the end of the offsite URL (.../database/<name>.manifest.json), or copy each server's backups to a target (prefix) of its own.`,
  );
}

/**
 * File-store sets offsite of more than one store (Copy Offsite of a folder two Octopus Servers back
 * up into): which server's newest set is meant is not guessed, as a restore from the folder does not
 * guess it (refuseMixedStores in file-store/restore.ts). Before, the newest set of any server was
 * downloaded and restored, exit 0.
 */
function refuseMixedStores(request: StageRun, sets: readonly { o: Offsite; manifest: FileStoreManifest }[]): void {
  const { groups } = groupByStore(sets);
  if (groups.length < 2) return;
  const list = groups
    .map((g) => [...g].sort(oldestByName))
    .sort((a, b) => oldestByName(b.at(-1)!, a.at(-1)!))
    .map((g) => `${describeStore(g.at(-1)!.manifest)}: ${g.length} set${g.length === 1 ? '' : 's'}, the newest ${g.at(-1)!.o.record.manifest.name}`)
    .join('; ');
  throw new StepFailure(
    `Offsite in ${request.store.display}/file-store/ holds the backup sets of more than one file store (more than one Octopus Server, or folders read from other places): ${list}. ` +
      'Which one to restore is not guessed: the newest may be another server\'s. Nothing was downloaded. ' +
      "Name the set to restore at the end of the offsite URL (.../file-store/<name>.manifest.json), or copy each server's backups to a target (prefix) of its own.",
  );
}

function chooseFileStoreChain(request: StageRun, offsite: Offsite[]): { members: Offsite[]; endAtManifest: string } {
  const byArchive = new Map<string, { o: Offsite; manifest: FileStoreManifest }>();
  for (const o of offsite) {
    const manifest = parseFileStoreManifest(o.manifestText, `${request.store.display}/file-store/${o.record.manifest.name}`);
    byArchive.set(manifest.archive, { o, manifest });
  }
  // By the time in their names, as a local restore orders them (oldestByName).
  const candidates = [...byArchive.values()].sort(oldestByName);
  if (!request.setName) refuseMixedStores(request, candidates);
  const named = request.setName ? candidates.filter((c) => c.o.record.manifest.name === request.setName) : candidates.reverse();
  if (request.setName && named.length === 0) throw new StepFailure(`${request.setName} is not offsite in ${request.store.display}/file-store/ (no .offsite.json record for it).`);
  // Only the newest (or the named) set: a newer set whose chain is not whole offsite is refused, as a
  // restore from the folder refuses it. Before, it was passed over in silence and an older set
  // restored in its place, exit 0, without what only the newer sets held.
  for (const c of named.slice(0, 1)) {
    const chain = c.manifest.chain.map((archive) => byArchive.get(archive));
    if (chain.every((m) => m !== undefined)) return { members: chain.map((m) => m!.o), endAtManifest: c.o.record.manifest.name };
    const missing = c.manifest.chain.filter((a) => !byArchive.has(a));
    const needs = `needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not offsite`;
    if (request.setName) throw new StepFailure(`${request.setName} ${needs}.`);
    throw new StepFailure(
      `The newest file-store set offsite in ${request.store.display}/file-store/, ${c.o.record.manifest.name}, ${needs} (deleted there, or never copied); an older set is not restored in its place. Nothing was downloaded. ` +
        'Copy the missing sets offsite again from the backup directory (Copy Backups Offsite sends what is not there), or name an older set to restore at the end of the offsite URL (.../file-store/<name>.manifest.json).',
    );
  }
  throw new StepFailure(`No complete file-store backup set is offsite in ${request.store.display}/file-store/ (every archive of a chain must be there, with its .offsite.json record).`);
}

/**
 * This process's downloads. A process id alone does not tell a leftover from a download in
 * progress: in a container every run may be pid 7 on the same host name.
 */
const RUN_TOKEN = randomBytes(4).toString('hex');

/** A download's temporary name: hidden, with the process, run and machine that write it, so a leftover can be told from a download in progress. */
function temporaryNameOf(name: string): string {
  return `.${name}.${process.pid}-${RUN_TOKEN}@${hostname()}.download`;
}

/** `.<name>.<pid>[-<run>]@<host>.download` (names without the run part are from earlier versions). */
const TEMPORARY = /^\.(.+)\.(\d+)(?:-([0-9a-f]{8}))?@(.+)\.download$/;

/** A temporary download of this machine whose writer is gone: another process no longer running, or an earlier run that had this pid. */
function isLeftover(match: RegExpExecArray): boolean {
  const [, , pid, run, host] = match;
  if (host !== hostname()) return false;
  if (Number(pid) === process.pid) return run !== RUN_TOKEN;
  return !isRunning(Number(pid));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes half-downloaded files a killed run left in the download folder (never read: a download is
 * renamed only when complete). Only this machine's, and only of processes no longer running: a
 * concurrent restore into the same folder keeps its own.
 */
async function removeLeftovers(request: StageRun): Promise<void> {
  const names = await fs.readdir(request.stagingDirectory).catch(() => [] as string[]);
  for (const name of names) {
    const m = TEMPORARY.exec(name);
    if (!m || !isLeftover(m)) continue;
    await fs.rm(path.join(request.stagingDirectory, name), { force: true }).then(
      () => request.log.info(`Removed ${name} from the download folder: a download a stopped run left unfinished.`),
      (error: NodeJS.ErrnoException) => request.log.warn(`Could not remove ${name}, a download a stopped run left unfinished (${error.code ?? error.message}); delete it.`),
    );
  }
}

/** A file of the set's name that is not the offsite copy is never replaced: it may be the only copy of something. */
function notOverwritten(target: string): StepFailure {
  return new StepFailure(
    `${target} already exists and is not the offsite copy (another size or SHA-256); nothing was overwritten. Move it out of the download folder, or fetch into an empty folder, then run this again.`,
  );
}

/** Downloads one object to `target` through a temporary name, checking its SHA-256 (of the local, decrypted file). */
async function fetchFile(request: StageRun, record: OffsiteSetRecord, file: OffsiteFileRecord, target: string, onBytes: (n: number) => void): Promise<boolean> {
  const existing = await fs.stat(target).catch(() => undefined);
  if (existing?.isFile() && existing.size === file.size && (await sha256OfFile(target, request.signal)).sha256 === file.sha256) {
    request.log.verbose(`Already staged: ${target}`);
    return false;
  }
  if (existing) throw notOverwritten(target);
  const temporary = path.join(path.dirname(target), temporaryNameOf(path.basename(target)));
  const hash = createHash('sha256');
  let bytes = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _e, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes(bytes);
      callback(null, chunk);
    },
  });
  try {
    const stored = await request.store.download(`${record.area}/${file.name}`, request.signal);
    const plain = record.encryption ? await request.decrypt!(stored, record) : stored;
    await pipeline(plain, measure, createWriteStream(temporary, { flags: 'wx', mode: 0o600 }), { signal: request.signal });
    const digest = hash.digest('hex');
    if (bytes !== file.size || digest !== file.sha256) {
      throw new StepFailure(
        `${request.store.display}/${record.area}/${file.name} does not match its offsite record: downloaded ${bytes} bytes with SHA-256 ${digest}, expected ${file.size} bytes with ${file.sha256} (changed or damaged offsite). Nothing was restored; use another set.`,
      );
    }
    const handle = await fs.open(temporary, 'r');
    await handle.sync().finally(() => handle.close());
    await placeWithoutReplacing(temporary, target, () => notOverwritten(target));
    return true;
  } catch (error) {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    if (request.signal?.aborted) throw request.signal.reason;
    if (record.encryption && !(error instanceof StepFailure)) {
      // The key opened the set's manifest and this file's header, so a failure inside the encrypted
      // stream (age's "invalid tag") means the stored object was truncated or changed.
      throw new StepFailure(
        `${request.store.display}/${record.area}/${file.name} cannot be decrypted to the end (${(error as Error).message}): it was truncated or changed offsite. ` +
          'Nothing was restored; use another set, or delete the damaged object and its .offsite.json record offsite and copy the set again.',
        { cause: error },
      );
    }
    throw error;
  }
}

/** Downloads the chosen chain into the staging folder, every file checked; logs and stops on cancel through the context. */
export async function stageFromOffsite(stage: StageRequest, context: EngineContext): Promise<StageResult> {
  const request: StageRun = { ...stage, log: context.log, signal: context.signal };
  const { log } = request;
  // Choose (and decrypt the manifests) first: nothing is written locally before the key is proven.
  const { usable, setAside } = await loadArea(request);
  let chosen: { members: Offsite[]; endAtManifest?: string };
  try {
    chosen = request.area === 'database' ? chooseDatabaseChain(request, usable) : chooseFileStoreChain(request, usable);
  } catch (error) {
    // Nothing restorable: say why the named set, or the newest set, could not be used (the key does not fit, or it is damaged).
    const named = setAside.find((l) => l.record.manifest.name === request.setName);
    if (error instanceof StepFailure && error.exitCode !== 2 && setAside.length > 0) throw (named ?? newestOf(setAside)!).error;
    throw error;
  }
  const blocking = setAsideThatMatters(request, setAside, chosen.members);
  if (blocking) throw blocking.error;
  for (const l of setAside) log.warn(`Skipping ${l.record.id} (taken ${l.record.takenAt}, older than the chain restored): ${l.error.message}`);
  await fs.mkdir(request.stagingDirectory, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new StepFailure(`Cannot create the download folder ${request.stagingDirectory} (${error.code ?? error.message}): set "Download folder" (OctopusDr.Offsite.StagingDirectory) to a writable folder.`);
  });
  await removeLeftovers(request);
  const files = chosen.members.flatMap((m) => [...m.record.files, m.record.manifest].map((f) => ({ member: m, file: f })));
  const total = files.reduce((sum, f) => sum + f.file.size, 0);
  log.info(`From ${request.store.display}/${request.area}/: ${chosen.members.map((m) => m.record.id).join(' + ')} (${files.length} files) into ${request.stagingDirectory}`);
  let done = 0;
  let downloadedBytes = 0;
  let reusedFiles = 0;
  request.onProgress?.(0, total);
  // Data files first, manifests last: a manifest in the folder means its files are complete.
  const ordered = [...files.filter((f) => f.file !== f.member.record.manifest), ...files.filter((f) => f.file === f.member.record.manifest)];
  for (const { member, file } of ordered) {
    const before = done;
    const downloaded = await fetchFile(request, member.record, file, path.join(request.stagingDirectory, file.name), (n) => request.onProgress?.(before + n, total));
    done = before + file.size;
    if (downloaded) downloadedBytes += file.size;
    else reusedFiles += 1;
    request.onProgress?.(done, total);
  }
  return {
    localSource: chosen.endAtManifest ? path.join(request.stagingDirectory, chosen.endAtManifest) : request.stagingDirectory,
    sets: chosen.members.map((m) => m.record.id),
    downloadedBytes,
    reusedFiles,
  };
}

/** Splits a restore source URL into the store's root URL and a set named at its end (`.../<area>/<name>.manifest.json`). */
export function splitSourceUrl(url: string, area: Area): { rootUrl: string; setName?: string } {
  const m = /^(.*)\/(database|file-store)\/([^/]+\.manifest\.json)$/.exec(url.trim());
  if (!m) return { rootUrl: url.trim().replace(/\/+$/, '') };
  if (m[2] !== area) {
    throw new ParameterError([
      `"${offsiteUrl.label}" names a ${m[2]} set (${m[3]}), and this step restores ${area === 'database' ? 'a database' : 'the file store'}: give a ${area} set's manifest, or the URL without a set (then the newest ${area} set is used); ${howToSet(offsiteUrl)}.`,
    ]);
  }
  return { rootUrl: m[1], setName: m[3] };
}
