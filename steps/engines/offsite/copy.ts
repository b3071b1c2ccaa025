// Copies complete, verified backup sets offsite. Per set: the data files first, then the set's
// manifest, then the offsite record that makes the set visible. A file already offsite with the
// same name, size and SHA-256 (kept as object metadata) is not sent again, so a rerun after a
// failure continues where it stopped; an encrypted one only once the current key has decrypted it
// to those (provenStored). After upload every object's size and checksum are checked against the
// record; a mismatch fails the copy.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EngineContext, EngineLog } from '../../runtime/engine-context';
import { StepFailure } from '../../runtime/errors';
import { formatBytes, printable } from '../../runtime/format';
import { offsiteRecordKey, OFFSITE_FORMAT, parseOffsiteRecord, type OffsiteEncryption, type OffsiteFileRecord, type OffsiteSetRecord } from './offsite-manifest';
import { deletedOnArrival, type ArrivingSet, type OffsiteRetentionOptions } from './retention';
import type { LocalFile, LocalSet } from './sets';
import { META_ENCRYPTION, META_NAME, META_SHA256, META_SIZE, OffsiteError, type Immutability, META_LOCKED_UNTIL, type OffsiteStore } from './store';

export interface Encryption {
  record: OffsiteEncryption;
  /** The parameter that holds the key, for messages: `"Encryption passphrase" (OctopusDr.Offsite.EncryptionPassphrase)`. */
  keyLabel: string;
  /** A fresh encrypting stream for one file, and the size it will have. */
  encrypt(plain: Readable, plainSize: number): Promise<{ stream: Readable; size: number }>;
  /**
   * Decrypts an object with the current key (rejects when the key does not open it). Absent when the
   * key cannot decrypt: a recipient's public key (its identity is kept offline).
   */
  decrypt?: (stored: Readable) => Promise<Readable>;
}

export interface CopyOptions {
  store: OffsiteStore;
  sets: LocalSet[];
  toolVersion: string;
  /** Read every uploaded object back and hash it (catches what a store's metadata cannot). */
  verifyByDownload?: boolean;
  encryption?: Encryption;
  /** Lock every uploaded object (data, manifest, record) for this many days; 0 or absent = no lock. */
  immutability?: { days: number; mode: Immutability['mode'] };
  onProgress?: (done: number, total: number) => void;
  now?: () => Date;
  /**
   * The offsite retention that runs after this copy (same days, Keep at least, time and key): a set it
   * would delete as soon as it arrived is not sent, but listed as not copied (deletedOnArrival).
   */
  retention?: Omit<OffsiteRetentionOptions, 'store'>;
  /** Called before every upload: throws when this run may no longer write (it lost the offsite lock, target-lock.ts). */
  beforeWrite?: () => Promise<void>;
}

/** The options with the context's log and signal, as the copy's helpers use them. */
type CopyRun = CopyOptions & { log: EngineLog; signal: AbortSignal };

export interface CopyResult {
  copied: string[];
  alreadyOffsite: string[];
  skipped: string[];
  uploadedBytes: number;
  resumedFiles: number;
  verifiedObjects: number;
}

export async function sha256OfFile(file: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024, signal })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Hashes and counts what passes through. */
export class Measure extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: () => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    this.push(chunk);
    callback();
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

export async function sha256OfObject(store: OffsiteStore, key: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const measure = new Measure();
  const body = await store.download(key, signal);
  await pipeline(body, measure, async function* (source) {
    for await (const _ of source) void _;
  }, { signal });
  return { sha256: measure.digest(), size: measure.bytes };
}

function describeFile(store: OffsiteStore, key: string): string {
  return `${store.display}/${key}`;
}

/** Checks one object against its record; returns a problem or undefined. */
export async function checkObject(store: OffsiteStore, key: string, record: OffsiteFileRecord, byDownload: boolean, signal?: AbortSignal): Promise<string | undefined> {
  const head = await store.head(key);
  if (!head) return `${describeFile(store, key)} is missing`;
  if (head.size !== record.storedSize) return `${describeFile(store, key)} is ${head.size} bytes, but its record says ${record.storedSize} (truncated or replaced)`;
  if (head.metadata[META_SHA256] !== undefined && head.metadata[META_SHA256] !== record.sha256) {
    return `${describeFile(store, key)} carries SHA-256 ${head.metadata[META_SHA256]}, but its record says ${record.sha256}`;
  }
  if (byDownload) {
    const read = await sha256OfObject(store, key, signal);
    if (read.sha256 !== record.storedSha256 || read.size !== record.storedSize) {
      return `${describeFile(store, key)} does not match its record: read back ${read.size} bytes with SHA-256 ${read.sha256}, expected ${record.storedSize} bytes with ${record.storedSha256} (changed or damaged offsite)`;
    }
  }
  return undefined;
}

async function readRecord(store: OffsiteStore, key: string, signal?: AbortSignal): Promise<OffsiteSetRecord> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.download(key, signal)) chunks.push(chunk as Buffer);
  return parseOffsiteRecord(Buffer.concat(chunks).toString('utf8'), describeFile(store, key));
}

/** Copies every complete set not yet offsite; logs and stops on cancel through the context. */
export async function copyOffsite(request: CopyOptions, context: EngineContext): Promise<CopyResult> {
  const options: CopyRun = { ...request, log: context.log, signal: context.signal };
  const { store, log, signal } = options;
  const now = options.now ?? (() => new Date());
  // One date for the whole run, so every object of a set is locked as long as its record says.
  const lock: Immutability | undefined = options.immutability?.days
    ? { mode: options.immutability.mode, until: new Date(now().getTime() + options.immutability.days * 24 * 3600 * 1000) }
    : undefined;
  const result: CopyResult = { copied: [], alreadyOffsite: [], skipped: [], uploadedBytes: 0, resumedFiles: 0, verifiedObjects: 0 };
  const sets = [...options.sets].sort((a, b) => a.takenAt.localeCompare(b.takenAt) || a.id.localeCompare(b.id));

  const ready: LocalSet[] = [];
  for (const set of sets) {
    if (set.notReady) {
      result.skipped.push(`${set.id}: ${set.notReady}`);
      log.warn(`Not copied: ${set.id} (${set.notReady}).`);
    } else ready.push(set);
  }

  // Sets whose record is already offsite are checked, not sent again.
  const recordsOffsite = new Set<string>();
  for (const area of ['database', 'file-store'] as const) {
    if (!ready.some((s) => s.area === area)) continue;
    for (const o of await store.list(`${area}/`)) recordsOffsite.add(o.key);
  }
  const notOffsite = ready.filter((s) => !recordsOffsite.has(offsiteRecordKey(s.area, s.id)));
  const deletedAtOnce = options.retention ? await retentionWouldDelete(notOffsite, options.retention, options) : new Set<LocalSet>();
  const toSend = notOffsite.filter((s) => !deletedAtOnce.has(s));
  let total = 0;
  for (const set of toSend) for (const f of [...set.files, set.manifest]) total += (await fs.stat(f.path)).size;
  let done = 0;
  options.onProgress?.(0, total);

  const problems: string[] = [];
  const localDifferences: string[] = [];
  const damagedRecords: string[] = [];
  const otherKey: { set: string; local: LocalSet; reasons: string[] }[] = [];
  const otherKeyMethods = new Set<string>();
  // Each record offsite read once: a set's own, and those of the earlier sets its chain needs.
  const records = new Map<string, Promise<OffsiteSetRecord | { damaged: string }>>();
  const recordOf = (area: LocalSet['area'], id: string) => {
    const key = offsiteRecordKey(area, id);
    let read = records.get(key);
    if (!read) {
      read = readRecord(store, key, signal).catch((error: unknown) => {
        // A record that does not parse is this set's problem, not the run's; a store error still stops the run.
        if (!(error instanceof StepFailure)) throw error;
        return { damaged: printable(error.message) };
      });
      records.set(key, read);
    }
    return read;
  };
  const keyChecks = new Map<string, Promise<{ problem: string; method: string } | undefined>>();
  for (const set of ready) {
    signal?.throwIfAborted();
    const recordKey = offsiteRecordKey(set.area, set.id);
    if (recordsOffsite.has(recordKey)) {
      const record = await recordOf(set.area, set.id);
      if ('damaged' in record) {
        damagedRecords.push(record.damaged);
        continue;
      }
      const difference = await localDifference(set, record, signal);
      if (difference) {
        localDifferences.push(`${set.id}: ${difference}`);
        continue;
      }
      const setProblems: string[] = [];
      for (const f of [...record.files, record.manifest]) {
        const problem = await checkObject(store, `${set.area}/${f.name}`, f, false, signal);
        if (problem) setProblems.push(problem);
        else result.verifiedObjects += 1;
      }
      if (setProblems.length) problems.push(...setProblems);
      else {
        result.alreadyOffsite.push(set.id);
        log.verbose(`Already offsite and intact: ${set.id}.`);
      }
      continue;
    }

    if (deletedAtOnce.has(set)) {
      const why = `offsite retention (${options.retention!.retentionDays} days) would delete it as soon as it was copied: it is older than that, and no newer set needs it`;
      result.skipped.push(`${set.id}: ${why}`);
      log.warn(`Not copied: ${set.id}: ${why}.`);
      continue;
    }

    // The earlier sets its restore needs that are offsite already must open with the current key:
    // otherwise no single key restores this set (Fetch and the restores take one).
    const reasons: string[] = [];
    for (const member of set.chain ?? []) {
      if (!recordsOffsite.has(offsiteRecordKey(set.area, member))) continue;
      let check = keyChecks.get(member);
      if (!check) {
        check = recordOf(set.area, member).then(async (record) => {
          if ('damaged' in record) return undefined; // named with the damaged records; once deleted, that set is sent again under the current key
          const problem = await chainKeyProblem(record, options);
          return problem ? { problem, method: record.encryption!.method } : undefined;
        });
        keyChecks.set(member, check);
      }
      const mismatch = await check;
      if (mismatch) {
        reasons.push(`${set.area}/${member} ${mismatch.problem}`);
        otherKeyMethods.add(mismatch.method);
      }
    }
    if (reasons.length) {
      otherKey.push({ set: `${set.area}/${set.id}`, local: set, reasons });
      continue;
    }

    log.info(`Copying ${set.id} (${set.files.map((f) => f.name).join(', ')}) to ${store.display}/${set.area}/`);
    const fileRecords: OffsiteFileRecord[] = [];
    let setLockedUntil = lock?.until;
    for (const file of [...set.files, set.manifest]) {
      const before = done;
      const { record, uploaded, lockedUntil } = await sendFile(store, set, file, options, lock, (bytes) => {
        done = before + bytes;
        options.onProgress?.(done, total);
      });
      // A file kept from an earlier run may be locked a little shorter: the record says the earliest.
      if (setLockedUntil && lockedUntil && lockedUntil < setLockedUntil) setLockedUntil = lockedUntil;
      if (uploaded) result.uploadedBytes += record.storedSize;
      else result.resumedFiles += 1;
      done = before + record.size;
      options.onProgress?.(done, total);
      fileRecords.push(record);
    }
    // Verify before the record makes the set visible.
    const setProblems: string[] = [];
    for (const record of fileRecords) {
      const problem = await checkObject(store, `${set.area}/${record.name}`, record, options.verifyByDownload ?? false, signal);
      if (problem) setProblems.push(problem);
      else result.verifiedObjects += 1;
    }
    if (setProblems.length) {
      problems.push(...setProblems);
      continue;
    }
    const manifestRecord = fileRecords.pop()!;
    const offsiteRecord: OffsiteSetRecord = {
      format: OFFSITE_FORMAT,
      formatVersion: 1,
      area: set.area,
      id: set.id,
      takenAt: set.takenAt,
      copiedAt: now().toISOString(),
      toolVersion: options.toolVersion,
      manifest: manifestRecord,
      files: fileRecords,
      encryption: options.encryption?.record ?? null,
      immutability: lock && setLockedUntil ? { mode: lock.mode, until: setLockedUntil.toISOString() } : null,
    };
    const text = Buffer.from(JSON.stringify(offsiteRecord, null, 2) + '\n');
    await options.beforeWrite?.();
    await store.upload(recordKey, Readable.from([text]), { size: text.length, metadata: { [META_NAME]: recordKey.split('/').pop()! }, immutability: lock, signal });
    result.copied.push(set.id);
  }
  if (deletedAtOnce.size) log.warn(shorterRetentionWarning([...deletedAtOnce], options.retention!));
  const failures: string[] = [];
  if (problems.length) {
    failures.push(
      `Offsite verification failed (${problems.length} object(s)):\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        'Nothing was deleted. Delete the damaged object(s) and the set\'s .offsite.json record offsite, then run the copy again to upload them afresh.',
    );
  }
  if (localDifferences.length) {
    failures.push(
      `${localDifferences.length} local set(s) differ from their offsite copy (changed here after they were copied, or replaced by another set of the same name):\n` +
        `${localDifferences.map((d) => `  - ${d}`).join('\n')}\n` +
        'Nothing offsite was changed. Find out which copy is right: if the offsite one, move the local set out of the backup folder (Fetch Backups from Offsite brings it back); ' +
        'if the local one, delete the set offsite (its .offsite.json record first) and run the copy again.',
    );
  }
  if (damagedRecords.length) {
    failures.push(
      `${damagedRecords.length} offsite record(s) cannot be read, so their set(s) were not checked (the other sets were not held up):\n${damagedRecords.map((d) => `  - ${d}`).join('\n')}\n` +
        'Delete each record named (the .offsite.json object) offsite and run the copy again: its set is then sent again, and the objects already there are reused if intact.',
    );
  }
  // A set whose chain is under another key, but after which a newer full of the same database (or
  // file store) is offsite now: the newest point restores with one key; this older point is left out
  // like an unverified set (NotCopied), said in a warning with how to have it offsite too.
  const offsiteNow = new Set([...result.copied, ...result.alreadyOffsite]);
  const superseded = (o: (typeof otherKey)[number]) =>
    ready.find((s) => s.area === o.local.area && s.full?.is && s.full.of === o.local.full?.of && s.takenAt > o.local.takenAt && offsiteNow.has(s.id));
  for (const o of [...otherKey]) {
    const newer = superseded(o);
    if (!newer) continue;
    otherKey.splice(otherKey.indexOf(o), 1);
    const why = `its chain is offsite under another key (${o.reasons.join('; ')}); the newer full ${newer.id} is offsite, so the newest point does not need it; run the copy with the previous key to have this one offsite too`;
    result.skipped.push(`${o.local.id}: ${why}`);
    log.warn(`Not copied: ${o.local.id}: ${why}.`);
  }
  if (otherKey.length) {
    for (const o of otherKey) log.warn(`Not copied: ${o.local.id}: the earlier set(s) its restore needs are offsite under another key (${o.reasons.join('; ')}).`);
    const first = otherKey[0];
    const previous = otherKeyMethods.has('passphrase') ? 'passphrase' : 'recipient';
    failures.push(
      `${otherKey.length} set(s) not copied: the earlier set(s) their restore needs are offsite under another key, and no single key would restore them (Fetch and the restores take one):\n` +
        `${otherKey.map((o) => `  - ${o.set}: ${o.reasons.join('; ')}`).join('\n')}\n` +
        `Not copied: ${first.set}, whose base ${first.reasons.map((r) => r.split(' ')[0]).join(', ')} is offsite under another key${otherKey.length > 1 ? ` (and ${otherKey.length - 1} more set(s) above)` : ''}. ` +
        `Take a new full backup (Backup type Full) so the chain starts again under the current key, then run the copy again; or run it with the previous ${previous}.`,
    );
  }
  if (failures.length) throw new StepFailure(failures.join('\n'));
  return result;
}

/**
 * The sets of `notOffsite` that the offsite retention after this copy would delete at once, by its own
 * rule (deletedOnArrival). When it cannot tell (a record or manifest offsite that does not read), every
 * set is sent as before: retention then fails after the copy, naming what is wrong.
 */
async function retentionWouldDelete(notOffsite: LocalSet[], retention: NonNullable<CopyOptions['retention']>, options: CopyRun): Promise<Set<LocalSet>> {
  const arriving = new Map<ArrivingSet, LocalSet>();
  for (const set of notOffsite) {
    const manifestText = await fs.readFile(set.manifest.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (options.signal.aborted) throw options.signal.reason;
      throw new StepFailure(`Cannot read ${set.manifest.path} (${error.code ?? error.message}). Check the backup folder is mounted and readable, then run the copy again.`);
    });
    arriving.set({ area: set.area, id: set.id, takenAt: set.takenAt, manifestName: set.manifest.name, manifestText }, set);
  }
  let deleted: Set<ArrivingSet>;
  try {
    deleted = await deletedOnArrival({ ...retention, store: options.store }, [...arriving.keys()], options.signal);
  } catch (error) {
    if (options.signal.aborted || !(error instanceof StepFailure)) throw error;
    options.log.verbose(`Could not tell which sets offsite retention would delete at once (${printable(error.message)}); every set is copied.`);
    return new Set();
  }
  return new Set([...deleted].map((a) => arriving.get(a)!));
}

/** Why sets were left out for retention, and what to change. */
function shorterRetentionWarning(sets: LocalSet[], retention: NonNullable<CopyOptions['retention']>): string {
  const oldest = Math.min(...sets.map((s) => Date.parse(s.takenAt)));
  const days = Math.ceil((retention.now.getTime() - oldest) / (24 * 3600 * 1000));
  return (
    `Offsite retention is shorter than what the local backup folders keep: ${sets.length} local set(s) older than ${retention.retentionDays} days that no newer set needs ` +
    `were not copied, because offsite retention would delete them at once (and the next run would copy them again). They stay in the local folder until its own retention removes them. ` +
    `To have them offsite too, set "Offsite retention (days)" (OctopusDr.Offsite.RetentionDays) to at least ${days}; ` +
    `or keep fewer days locally ("Retention (days)" of the backup steps) so the local folder keeps no more than offsite does.`
  );
}

/**
 * Why the current key does not open an earlier set of a chain that is offsite already, or undefined
 * when it does. A plain set opens with any key (it needs none); an encrypted one does not open when
 * encryption is off now. A passphrase: its manifest offsite (a few KB) is decrypted with it and must
 * decrypt to the SHA-256 its record says. A recipient: the record's recipients must name it (a
 * public key cannot decrypt, so that is all there is to go by); a record naming none is unknown.
 */
async function chainKeyProblem(record: OffsiteSetRecord, options: CopyRun): Promise<string | undefined> {
  const { encryption, store, signal } = options;
  const base = record.encryption;
  if (!base) return undefined;
  const was = base.method === 'passphrase' ? 'a passphrase' : `recipient ${base.recipients.join(', ') || '(none recorded)'}`;
  if (!encryption) return `is encrypted offsite (age, ${was}), and encryption is off now`;
  if (encryption.record.method !== base.method) return `is encrypted offsite with ${was}, and ${encryption.keyLabel} is set now`;
  if (base.method === 'recipient') {
    if (base.recipients.length === 0) return 'is encrypted offsite for a recipient its record does not name, so it cannot be shown to be the current one';
    return encryption.record.recipients.every((r) => base.recipients.includes(r)) ? undefined : `is encrypted offsite for ${base.recipients.join(', ')}, not for the current recipient`;
  }
  if (!encryption.decrypt) return `cannot be checked against ${encryption.keyLabel}`;
  const key = `${record.area}/${record.manifest.name}`;
  const body = await store.download(key, signal);
  let readError: unknown;
  body.on('error', (e) => (readError = e));
  const plain = new Measure();
  try {
    await pipeline(await encryption.decrypt(body), plain, async function* (source) {
      for await (const _ of source) void _;
    }, { signal });
  } catch (error) {
    body.destroy();
    if (signal.aborted) throw signal.reason;
    // The store failed to send it: not the key's fault.
    if (readError) throw readError;
    return `was encrypted offsite with another passphrase: ${encryption.keyLabel} does not open its manifest ${key} (${String((error as Error)?.message ?? error).replace(/\.$/, '')})`;
  }
  if (plain.digest() !== record.manifest.sha256) return `has a manifest offsite (${key}) that decrypts with ${encryption.keyLabel} but not to the SHA-256 its record says (changed offsite)`;
  return undefined;
}

/**
 * How a set already offsite differs here from its offsite record, or undefined: its file names, every
 * file's size, and its manifest's SHA-256. A data file is not hashed again (a day's folder can hold
 * hundreds of GB, read on every run): a database manifest records each file's size and the backup's
 * LSNs, a file-store manifest every stored file's SHA-256 (and the archive's comment the manifest's),
 * so a set replaced by another, or cut short, or grown, shows; a data file changed in place at the
 * same size (damage) is for Test Latest Backup and the restores, which check every byte. design.md
 * "A local set changed after its copy".
 */
async function localDifference(set: LocalSet, record: OffsiteSetRecord, signal: AbortSignal): Promise<string | undefined> {
  const names = (files: { name: string }[]) => files.map((f) => f.name).sort().join(', ');
  if (names(set.files) !== names(record.files)) return `its manifest here lists ${names(set.files)}, but its offsite copy has ${names(record.files)}`;
  const unreadable = (file: string) => (error: NodeJS.ErrnoException) => {
    if (signal.aborted) throw signal.reason;
    throw new StepFailure(`Cannot read ${file} (${error.code ?? error.message}); it was listed by ${set.manifest.name}. Check the backup folder is mounted and readable, then run the copy again.`);
  };
  for (const file of set.files) {
    const size = (await fs.stat(file.path).catch(unreadable(file.path))).size;
    const offsite = record.files.find((f) => f.name === file.name)!;
    if (size !== offsite.size) return `${file.path} is ${size} bytes here, but ${offsite.size} in its offsite copy`;
  }
  const manifest = await sha256OfFile(set.manifest.path, signal).catch(unreadable(set.manifest.path));
  if (manifest.sha256 !== record.manifest.sha256 || manifest.size !== record.manifest.size) {
    return `${set.manifest.path} is not the manifest copied offsite (SHA-256 ${manifest.sha256} here, ${record.manifest.sha256} offsite)`;
  }
  return undefined;
}

async function sendFile(
  store: OffsiteStore,
  set: LocalSet,
  file: LocalFile,
  options: CopyRun,
  lock: Immutability | undefined,
  onBytes: (bytes: number) => void,
): Promise<{ record: OffsiteFileRecord; uploaded: boolean; lockedUntil?: Date }> {
  const { signal, log } = options;
  const key = `${set.area}/${file.name}`;
  const local = await sha256OfFile(file.path, signal).catch((error: NodeJS.ErrnoException) => {
    if (signal?.aborted) throw signal.reason;
    throw new StepFailure(`Cannot read ${file.path} (${error.code ?? error.message}); it was listed by ${set.manifest.name}.`);
  });
  const existing = await store.head(key);
  const encrypted = options.encryption !== undefined;
  if (
    existing &&
    existing.metadata[META_SHA256] === local.sha256 &&
    existing.metadata[META_SIZE] === String(local.size) &&
    (existing.metadata[META_ENCRYPTION] ?? 'none') === (encrypted ? 'age' : 'none') &&
    (encrypted || existing.size === local.size) &&
    // A file sent without a lock (or with a shorter one) is sent again, locked: on a locked store that adds a locked version.
    (!lock || Date.parse(existing.metadata[META_LOCKED_UNTIL] ?? '') >= lock.until.getTime() - 24 * 3600 * 1000)
  ) {
    // Sent by an earlier, interrupted run, perhaps with another key: reused only when proven to be this file under this key.
    const stored = await provenStored(store, key, local, options);
    if (stored) {
      log.verbose(encrypted ? `Already offsite (decrypts with the current key to the same size and SHA-256): ${key}` : `Already offsite (same size and SHA-256): ${key}`);
      onBytes(local.size);
      const lockedUntil = lock ? new Date(existing.metadata[META_LOCKED_UNTIL]!) : undefined;
      return { record: { name: file.name, size: local.size, sha256: local.sha256, storedSize: stored.size, storedSha256: stored.sha256 }, uploaded: false, lockedUntil };
    }
  } else if (existing) log.warn(`${describeFile(store, key)} exists but differs from ${file.path}; uploading it again.`);
  await options.beforeWrite?.();
  const plain = createReadStream(file.path, { highWaterMark: 1024 * 1024 });
  const readPlain = new Measure(onBytes);
  const stored = new Measure();
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  plain.on('error', (e) => body.destroy(e));
  plain.pipe(readPlain);
  let source: Readable = readPlain;
  let storedSize = local.size;
  if (options.encryption) ({ stream: source, size: storedSize } = await options.encryption.encrypt(readPlain, local.size));
  source.on('error', (e) => body.destroy(e));
  source.pipe(stored).pipe(body);
  await store.upload(key, body, {
    size: storedSize,
    metadata: { [META_NAME]: file.name, [META_SIZE]: String(local.size), [META_SHA256]: local.sha256, [META_ENCRYPTION]: encrypted ? 'age' : 'none', ...(lock ? { [META_LOCKED_UNTIL]: lock.until.toISOString() } : {}) },
    immutability: lock,
    signal,
  });
  if (readPlain.digest() !== local.sha256) {
    throw new StepFailure(`${file.path} changed while it was uploaded (its SHA-256 differs from a moment before); nothing was recorded offsite for ${set.id}. Run the copy again.`);
  }
  options.log.verbose(`Uploaded ${key} (${formatBytes(stored.bytes)}).`);
  return { record: { name: file.name, size: local.size, sha256: local.sha256, storedSize: stored.bytes, storedSha256: stored.digest() }, uploaded: true, lockedUntil: lock?.until };
}

/**
 * The stored size and SHA-256 of an object an earlier run left, once it is proven to be `local`
 * under the current key; undefined, said why, when it must be uploaded again. Plain: the metadata
 * and size already matched. Encrypted: its metadata says only what the plain file was, not which
 * key encrypted it, so it is read back (its stored hash is needed anyway), decrypted with the
 * current key, and the plaintext's size and SHA-256 compared with the local file's. A recipient's
 * public key cannot decrypt, so with a recipient nothing encrypted by an earlier run is reused.
 */
async function provenStored(store: OffsiteStore, key: string, local: { sha256: string; size: number }, options: CopyRun): Promise<{ sha256: string; size: number } | undefined> {
  const { encryption, log, signal } = options;
  if (!encryption) return local;
  const earlier = `${describeFile(store, key)} is offsite from an earlier run`;
  if (!encryption.decrypt) {
    log.verbose(`${earlier}, encrypted; a recipient's public key cannot decrypt it to prove it was encrypted for ${encryption.record.recipients.join(', ')}, so it is uploaded again.`);
    return undefined;
  }
  const stored = new Measure();
  const plain = new Measure();
  const body = await store.download(key, signal);
  let readError: unknown;
  body.on('error', (e) => {
    readError = e;
    stored.destroy(e);
  });
  body.pipe(stored);
  const giveUp = (error: unknown, why: (reason: string) => string): undefined => {
    body.destroy();
    stored.destroy();
    if (signal.aborted) throw signal.reason;
    // The store failed to send it: that is not the key's fault, and uploading would not help.
    if (readError) throw readError;
    log.warn(`${earlier}${why(String((error as Error)?.message ?? error).replace(/\.$/, ''))}; uploading it again.`);
    return undefined;
  };
  let decrypted: Readable;
  try {
    decrypted = await encryption.decrypt(stored);
  } catch (error) {
    return giveUp(error, (reason) => `, but ${encryption.keyLabel} does not open it (${reason}): it was encrypted with another key`);
  }
  try {
    await pipeline(decrypted, plain, async function* (source) {
      for await (const _ of source) void _;
    }, { signal });
  } catch (error) {
    return giveUp(error, (reason) => ` and ${encryption.keyLabel} opens it, but it cannot be decrypted to the end (${reason}): it was truncated or changed offsite`);
  }
  const plainSha256 = plain.digest();
  if (plain.bytes !== local.size || plainSha256 !== local.sha256) {
    log.warn(
      `${earlier}, but with ${encryption.keyLabel} it decrypts to ${plain.bytes} bytes with SHA-256 ${plainSha256}, not the ${local.size} bytes with ${local.sha256} ` +
        `its metadata and the local file say (changed offsite); uploading it again.`,
    );
    return undefined;
  }
  return { sha256: stored.digest(), size: stored.bytes };
}

export { OffsiteError };
