// Red-team cases for the large-file thread: a read error in the middle of a file names the file
// (on the thread and on the main thread);
// a file shorter than its size (it shrank after the stat) is stored as read, with a matching CRC
// and SHA-256; a full disk while the thread reads fails the backup, names the disk, leaves nothing
// and does not hang.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, promises as fs, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { largeFileThreadCanRun, SLOT_BYTES, SLOTS } from '../../steps/engines/file-store/large-file-thread';
import { StreamingZipWriter } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { THREAD_STOP_SOURCE } from '../../steps/runtime/threads';
import { makeStore, oneSlotThen, pseudoRandomBytes, silentLog, tempDir, write, writeOneStored, zipEntries } from './helpers';

const work = tempDir('rt-large-thread');
const t = new Date('2026-11-20T08:00:00.000Z');
const big = path.join(work, 'big.nupkg');
const BIG = 3 * SLOT_BYTES + 777;
const onThread = largeFileThreadCanRun() ? test : test.skip;

beforeAll(() => write(big, pseudoRandomBytes(BIG, 71), undefined, t));
afterAll(() => rmSync(work, { recursive: true, force: true }));

onThread('a read error in the middle of a file names the file and what to do (not the backup directory)', async () => {
  const archive = path.join(work, 'eio.zip');
  // One good slot, then the read fails as a failing disk would.
  const failing = oneSlotThen("setTimeout(() => parentPort.postMessage({ kind: 'failed', id: m.id, code: 'EIO', message: 'EIO: i/o error, read' }), 20);");
  const failure = writeOneStored(archive, big, BIG, failing);
  await expect(failure).rejects.toHaveProperty('name', 'FileStoreError');
  await expect(failure).rejects.toThrow(/Packages\/one\.nupkg could not be read to its end \(EIO: i\/o error, read\): the disk or share of the file store that holds it reported an error\. Nothing was kept: check that disk or share/);
  expect(existsSync(archive)).toBe(false);
});

onThread('a file shorter than its size (shrunk after the stat) is stored as read: CRC and SHA-256 of those bytes', async () => {
  const archive = path.join(work, 'shrunk.zip');
  const result = await writeOneStored(archive, big, BIG + 2 * SLOT_BYTES + 5);
  expect(result).toEqual({ sha256: createHash('sha256').update(readFileSync(big)).digest('hex'), size: BIG });
  expect(zipEntries(archive)['Packages/one.nupkg']).toEqual(expect.arrayContaining([0, BIG, BIG]));
});

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const canMount = process.getuid?.() === 0;
(canMount && largeFileThreadCanRun() ? test : test.skip)('a full disk while the thread reads: FileStoreError naming the disk, nothing left, no hang', async () => {
  const home = path.join(work, 'home');
  makeStore(home);
  // 3 x 9 MiB stored files for a 20 MiB disk: it fills in the middle of a file the thread reads.
  for (let i = 0; i < 3; i++) write(path.join(home, 'Packages', 'feeds-builtin', `Acme.${i}.1.0.0.nupkg`), pseudoRandomBytes(SLOTS * SLOT_BYTES + SLOT_BYTES + i, 80 + i), undefined, t);
  const disk = path.join(work, 'disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', disk]);
  try {
    const folders: ResolvedFolder[] = FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));
    const run = backupFileStore({ folders, backupDirectory: disk, mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers: 2 }, quietEngineContext({ log: silentLog }));
    await expect(run).rejects.toHaveProperty('name', 'FileStoreError');
    await expect(run).rejects.toThrow(/is full \(ENOSPC\)/);
    expect(readdirSync(disk)).toEqual([]);
  } finally {
    execFileSync('umount', [disk]);
  }
}, 30_000);

describe('slow archive writes (the output batches chunks through _writev)', () => {
  // Every write of the archive's WriteStream completes late, so chunks pile up in its buffer and
  // go out in writev batches: a slot given back before its own write completed would be read
  // into again and the entry would hold the next chunk's bytes (under the first one's CRC).
  const realFs = require('node:fs') as typeof import('node:fs');
  const write0 = realFs.write;
  const writev0 = realFs.writev;
  let writevCalls = 0;
  beforeAll(() => {
    let n = 0;
    const late = (callback: (...a: unknown[]) => void) => (...a: unknown[]) => setTimeout(() => callback(...a), (n++ % 7) * 2);
    (realFs as { write: unknown }).write = (...a: unknown[]) => {
      const cb = a.pop() as (...x: unknown[]) => void;
      return (write0 as (...x: unknown[]) => void)(...a, late(cb));
    };
    (realFs as { writev: unknown }).writev = (...a: unknown[]) => {
      writevCalls += 1;
      const cb = a.pop() as (...x: unknown[]) => void;
      return (writev0 as (...x: unknown[]) => void)(...a, late(cb));
    };
  });
  afterAll(() => {
    (realFs as { write: unknown }).write = write0;
    (realFs as { writev: unknown }).writev = writev0;
  });

  onThread('many large stored files in a row at the slot edges: every entry holds the file, CRC and SHA-256 right', async () => {
    const home = path.join(work, 'slow-home');
    makeStore(home);
    const sizes = [4 * SLOT_BYTES + 1, SLOTS * SLOT_BYTES, SLOTS * SLOT_BYTES + 1, 4 * SLOT_BYTES + 4097, 2 * SLOTS * SLOT_BYTES - 1, 5 * SLOT_BYTES];
    const files = sizes.map((size, i) => {
      const file = path.join(home, 'Packages', 'feeds-builtin', `Acme.Slow${i}.1.0.0.nupkg`);
      write(file, pseudoRandomBytes(size, 200 + i), undefined, t);
      return file;
    });
    for (let i = 0; i < 40; i++) write(path.join(home, 'TaskLogs', `small-${i}.log.txt`), `log ${i}\n`.repeat(200 + i), undefined, t);
    const folders: ResolvedFolder[] = FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));
    const out = path.join(work, 'slow-out');
    const result = await backupFileStore({ folders, backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers: 2 }, quietEngineContext({ log: silentLog }));
    expect(writevCalls).toBeGreaterThan(0);
    const entries = zipEntries(result.archivePath);
    files.forEach((file, i) => {
      const name = path.basename(file);
      expect(entries[`Packages/feeds-builtin/${name}`]).toEqual(expect.arrayContaining([0, sizes[i], sizes[i]]));
      expect(result.manifest.files.find((f) => f.path === `feeds-builtin/${name}`)?.sha256).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
    });
  }, 60_000);

  onThread('a file truncated by another process while the thread reads it: the entry, its CRC and the recorded SHA-256 agree, with a warning', async () => {
    const home = path.join(work, 'shrink-home');
    makeStore(home);
    const SIZE = 40 * SLOT_BYTES;
    const file = path.join(home, 'Packages', 'feeds-builtin', 'Acme.Shrinks.1.0.0.nupkg');
    write(file, pseudoRandomBytes(SIZE, 300), undefined, t);
    const folders: ResolvedFolder[] = FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));
    // Truncated by another process once the backup has started reading it.
    let exited: Promise<unknown> | undefined;
    const onProgress = (p: { bytesDone: number; bytesTotal: number }) => {
      // Whatever the order of the files, this is 2 MiB into the large one.
      if (p.bytesDone < p.bytesTotal - SIZE + 2 * SLOT_BYTES || exited) return;
      const truncating = spawn('truncate', ['-s', String(5 * SLOT_BYTES + 123), file], { stdio: 'ignore' });
      exited = new Promise((resolve) => truncating.once('exit', resolve));
    };
    const result = await backupFileStore({ folders, backupDirectory: path.join(work, 'shrink-out'), mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers: 2, onProgress }, quietEngineContext({ log: silentLog }));
    await exited;
    const name = 'Packages/feeds-builtin/Acme.Shrinks.1.0.0.nupkg';
    const [crc, , size] = zipEntries(result.archivePath)[name] as number[];
    const recorded = result.manifest.files.find((f) => f.path === 'feeds-builtin/Acme.Shrinks.1.0.0.nupkg');
    const bytes = execFileSync('unzip', ['-p', result.archivePath, name], { maxBuffer: 2 * SIZE });
    expect(bytes.length).toBe(size);
    expect(recorded?.size).toBe(size);
    expect(recorded?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(crc).toBeGreaterThanOrEqual(0);
    // What was read is the file's start, as it was.
    expect(bytes.equals(pseudoRandomBytes(SIZE, 300).subarray(0, size))).toBe(true);
    expect(size).toBeLessThan(SIZE);
    expect(result.warnings.join('\n')).toContain('Acme.Shrinks.1.0.0.nupkg changed while being read');
  }, 60_000);
});

onThread('twenty stored large files through one writer: no slot is lost (one lost per file would hang the ninth), every entry right', async () => {
  const archive = path.join(work, 'twenty.zip');
  const file = path.join(work, 'twenty.nupkg');
  const size = 4 * SLOT_BYTES + 1;
  write(file, pseudoRandomBytes(size, 90), undefined, t);
  const writer = new StreamingZipWriter(archive);
  const results = [];
  try {
    for (let i = 0; i < 20; i++) {
      const handle = await fs.open(file, 'r');
      const { done } = await writer.addStream(`Packages/f${i}.nupkg`, { mtimeMs: t.getTime(), mode: 0o644 }, () => writer.fileReader(handle, size, 0));
      results.push(done);
    }
    for (const result of await Promise.all(results)) expect(result.size).toBe(size);
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  const entries = zipEntries(archive);
  for (let i = 0; i < 20; i++) expect(entries[`Packages/f${i}.nupkg`]).toEqual(expect.arrayContaining([0, size, size]));
}, 30_000);

onThread('an abort before the thread has handed over a chunk does not start reading the file on the main thread', async () => {
  // Answers nothing, but stops when asked (as the real thread does).
  const silent = `${THREAD_STOP_SOURCE}\nonJobs(() => undefined);`;
  const writer = new StreamingZipWriter(path.join(work, 'aborted.zip'), { largeFileThreadSource: silent });
  const handle = await fs.open(big, 'r');
  let mainThreadReads = 0;
  const read = handle.read.bind(handle) as (...a: unknown[]) => unknown;
  (handle as unknown as { read: unknown }).read = (...a: unknown[]) => ((mainThreadReads += 1), read(...a));
  try {
    const { done } = await writer.addStream('Packages/one.nupkg', { mtimeMs: t.getTime(), mode: 0o644 }, () => writer.fileReader(handle, BIG, 0));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await writer.abort();
    await expect(done).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(mainThreadReads).toBe(0);
    expect(existsSync(path.join(work, 'aborted.zip'))).toBe(false);
  } finally {
    await handle.close();
  }
});

// The same read error on the main thread's path (no threads, Node 18, or a deflated large file):
// it too must name the file, not the backup directory's disk.
test.each([
  ['a stored package', 'Packages', 'Acme.Big.1.0.0.nupkg'],
  ['a deflated log', 'TaskLogs', 'ServerTasks-1.log.txt'],
])('a read error in the middle of %s read on the main thread names the file and what to do', async (_what, folder, name) => {
  const home = path.join(work, `main-eio-${folder}`);
  const file = path.join(home, folder, name);
  write(file, folder === 'Packages' ? pseudoRandomBytes(5 * SLOT_BYTES + 5, 72) : Buffer.from('x'.repeat(5 * SLOT_BYTES)), undefined, t);
  const out = path.join(work, `main-eio-out-${folder}`);
  const open = fs.open;
  // The second read of that file fails as a failing disk would.
  const spy = jest.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    const handle = await open(...args);
    if (args[0] === file) {
      const read = handle.read.bind(handle);
      let reads = 0;
      handle.read = ((...readArgs: unknown[]) =>
        ++reads === 2 ? Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' })) : (read as (...a: unknown[]) => unknown)(...readArgs)) as typeof handle.read;
    }
    return handle;
  });
  try {
    const run = backupFileStore(
      { folders: [{ name: folder as FileStoreFolderName, path: path.join(home, folder), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', smallFileWorkers: 0 },
      quietEngineContext({ log: silentLog }),
    );
    await expect(run).rejects.toHaveProperty('name', 'FileStoreError');
    await expect(run).rejects.toThrow(new RegExp(`${folder}/${name.replace(/\./g, '\\.')} could not be read to its end \\(EIO: i/o error, read\\): the disk or share of the file store that holds it reported an error\\. Nothing was kept: check that disk or share`));
    expect(readdirSync(out)).toEqual([]);
  } finally {
    spy.mockRestore();
  }
});
