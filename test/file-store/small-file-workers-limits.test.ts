// Red-team checks of the worker-thread backup's limits: tiny and empty files (whose bytes never
// fill the byte budgets) must not queue unbounded work, neither batches sent to the workers nor
// entries queued in yazl's list, and the archive must stay the one the main thread writes.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { ResolvedFolder } from '../../steps/engines/file-store/folders';
import { SmallFileWorkers } from '../../steps/engines/file-store/small-file-workers';
import { PREPARED_ENTRIES_AHEAD, StreamingZipWriter } from '../../steps/engines/file-store/zip-writer';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir, write } from './helpers';

const work = tempDir('worker-limits');
const home = path.join(work, 'home');
const folders: ResolvedFolder[] = [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }];
const EMPTY_FILES = 3000;

beforeAll(() => {
  for (let i = 0; i < EMPTY_FILES; i++) write(path.join(home, 'TaskLogs', `d${i % 10}`, `empty-${i}.log.txt`), i % 7 === 0 ? `line ${i}\n` : '');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const backup = (out: string, smallFileWorkers: number) =>
  backupFileStore({ folders, backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test', allowEmpty: true, smallFileWorkers }, quietEngineContext({ log: silentLog }));

test('thousands of empty files: a few batches in flight at a time (each comes back in a 4 MiB buffer), and the archive holds every file', async () => {
  const prepare = SmallFileWorkers.prototype.prepare;
  let inFlight = 0;
  let mostInFlight = 0;
  const spy = jest.spyOn(SmallFileWorkers.prototype, 'prepare').mockImplementation(function (this: SmallFileWorkers, jobs) {
    mostInFlight = Math.max(mostInFlight, ++inFlight);
    const prepared = prepare.call(this, jobs);
    prepared.then(
      () => (inFlight -= 1),
      () => (inFlight -= 1),
    );
    return prepared;
  });
  try {
    const result = await backup(path.join(work, 'batches'), 2);
    expect(result.manifest.totals.storedFiles).toBe(EMPTY_FILES);
    expect(mostInFlight).toBeLessThanOrEqual(8);
    const listed = spawnSync('unzip', ['-t', result.archivePath], { encoding: 'utf8' });
    expect(listed.stdout).toContain('No errors detected');
  } finally {
    spy.mockRestore();
  }
});

test("thousands of empty files: yazl's list of entries stays short (it scans it from the start for every entry)", async () => {
  const addPrepared = StreamingZipWriter.prototype.addPrepared;
  let longest = 0;
  const spy = jest.spyOn(StreamingZipWriter.prototype, 'addPrepared').mockImplementation(function (this: StreamingZipWriter, ...args) {
    addPrepared.apply(this, args);
    longest = Math.max(longest, (this as unknown as { zip: { entries: unknown[] } }).zip.entries.length);
  });
  try {
    const result = await backup(path.join(work, 'entries'), 2);
    expect(result.manifest.totals.storedFiles).toBe(EMPTY_FILES);
    expect(longest).toBeGreaterThan(0);
    expect(longest).toBeLessThanOrEqual(2 * PREPARED_ENTRIES_AHEAD + 16);
  } finally {
    spy.mockRestore();
  }
});
