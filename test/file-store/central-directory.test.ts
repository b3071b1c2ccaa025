// Written entries' central-directory records are kept as bytes (central-directory.ts) instead of
// yazl's entries: the archive must come out byte for byte as it did when yazl kept every entry,
// also when some entry cannot give its record and the rest are kept whole, and past 65,535
// entries (ZIP64 end records); and a written entry must not live to the end of the archive.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import v8 = require('node:v8');
import { CentralDirectoryRecords } from '../../steps/engines/file-store/central-directory';
import { StreamingZipWriter } from '../../steps/engines/file-store/zip-writer';
import { tempDir } from './helpers';

const work = tempDir('central-directory');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const LONG_NAME = `Artifacts/${'long-name-'.repeat(100)}.txt`;
const MTIMES = [Date.UTC(2026, 10, 20, 8, 30, 17), Date.UTC(1970, 0, 2), Date.UTC(2100, 5, 1), Date.UTC(1999, 11, 31, 23, 59, 59)];

function nameOf(i: number): string {
  if (i === 7) return LONG_NAME;
  if (i % 11 === 0) return `TaskLogs/täsk-${i}-😀.log.txt`;
  return `TaskLogs/servertasks-${i}.log.txt`;
}

interface Shape {
  /** Every how many entries one is streamed: a checkpoint, where written entries leave yazl's list. */
  streamEvery: number;
  /** Every how many entries one is a directory. */
  directoryEvery: number;
}
const MIXED: Shape = { streamEvery: 16, directoryEvery: 37 };
/** Mostly directories (no data to write), so that 70,000 entries take seconds. */
const MOSTLY_DIRECTORIES: Shape = { streamEvery: 500, directoryEvery: 1 };

/**
 * `count` entries: buffers (deflated and stored), directories and streamed entries, in `shape`.
 * `onEntry` sees the writer after each entry is added.
 */
async function writeArchive(file: string, count: number, shape = MIXED, onEntry?: (writer: StreamingZipWriter, i: number) => void): Promise<Buffer> {
  const writer = new StreamingZipWriter(file, { threads: false });
  try {
    for (let i = 0; i < count; i++) {
      const meta = { mtimeMs: MTIMES[i % MTIMES.length], mode: i % 5 === 0 ? 0o600 : 0o644 };
      const content = Buffer.from(`entry ${i} `.repeat(i % 23));
      if (i % shape.streamEvery === shape.streamEvery - 1) {
        const { done } = await writer.addStream(nameOf(i), meta, () => Readable.from([content]), undefined, i % 3 === 0 ? 0 : 1);
        void done.catch(() => undefined);
      } else if (i % shape.directoryEvery === shape.directoryEvery - 1) writer.addDirectory(`TaskLogs/d${i}/`, meta);
      else writer.addBuffer(nameOf(i), content, meta, i % 2);
      onEntry?.(writer, i);
    }
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return readFileSync(file);
}

/** As yazl wrote archives before: every written entry kept whole (after the first `taken`, if given). */
async function withEntriesKeptWhole<T>(run: () => Promise<T>, taken = 0): Promise<T> {
  const take = CentralDirectoryRecords.prototype.take;
  let calls = 0;
  const spy = jest.spyOn(CentralDirectoryRecords.prototype, 'take').mockImplementation(function (this: CentralDirectoryRecords, entry) {
    return calls++ < taken ? take.call(this, entry) : false;
  });
  try {
    return await run();
  } finally {
    spy.mockRestore();
  }
}

test('3,000 entries: the archive is byte for byte the one yazl writes keeping every entry, also when the records stop part-way', async () => {
  const asBytes = await writeArchive(path.join(work, 'bytes.zip'), 3000);
  const kept = await withEntriesKeptWhole(() => writeArchive(path.join(work, 'kept.zip'), 3000));
  const mixed = await withEntriesKeptWhole(() => writeArchive(path.join(work, 'mixed.zip'), 3000), 1234);
  expect(asBytes.length).toBeGreaterThan(100_000);
  expect(asBytes.equals(kept)).toBe(true);
  expect(mixed.equals(kept)).toBe(true);

  const unzip = spawnSync('unzip', ['-t', path.join(work, 'bytes.zip')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  expect(unzip.stdout).toContain('No errors detected');
}, 120_000);

test('70,000 entries (ZIP64 end records): the same bytes either way, and unzip and Python read every entry', async () => {
  const file = path.join(work, 'many.zip');
  const asBytes = await writeArchive(file, 70_000, MOSTLY_DIRECTORIES);
  const kept = await withEntriesKeptWhole(() => writeArchive(path.join(work, 'many-kept.zip'), 70_000, MOSTLY_DIRECTORIES));
  expect(asBytes.equals(kept)).toBe(true);

  const python = spawnSync(
    'python3',
    ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = z.namelist(); print(len(n), n[-1], z.read(n[-2]), z.read(n[-1]).decode()[:11], z.testzip())', file],
    { encoding: 'utf8' },
  );
  expect(python.stderr).toBe('');
  expect(python.stdout.trim()).toBe(`70000 ${nameOf(69_999)} b'' entry 69999 None`);
  const unzip = spawnSync('unzip', ['-t', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  expect(unzip.stdout).toContain('No errors detected');
}, 300_000);

describe('a written entry does not live until the archive ends', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  async function firstEntryAliveBeforeTheEnd(): Promise<boolean> {
    let first: WeakRef<object> | undefined;
    let aliveBeforeEnd: boolean | undefined;
    await writeArchive(path.join(work, `weak-${Date.now()}.zip`), 600, MIXED, (writer, i) => {
      const entries = (writer as unknown as { zip: { entries: object[] } }).zip.entries;
      if (i === 0) first = new WeakRef(entries[0]);
      if (i === 599) {
        gc();
        aliveBeforeEnd = first?.deref() !== undefined;
      }
    });
    expect(first).toBeDefined();
    return aliveBeforeEnd as boolean;
  }

  test('its record is kept as bytes and the entry collected', async () => {
    expect(await firstEntryAliveBeforeTheEnd()).toBe(false);
  });

  test('(the check sees it when entries are kept whole)', async () => {
    expect(await withEntriesKeptWhole(() => firstEntryAliveBeforeTheEnd())).toBe(true);
  });
});
