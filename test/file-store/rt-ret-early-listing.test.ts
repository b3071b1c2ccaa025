// Red team (stop 25): each folder's listing starts before the previous set is read (scan.ts,
// listFolderEarly). A folder that the early listing did not find but the scan does (created
// meanwhile) must not be recorded as present and empty with its files left out while the backup
// succeeds: before stop 25 the scan listed it when it found it.
import { promises as fsPromises, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir, write } from './helpers';

const work = tempDir('rt-ret-early');
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('Red team (stop 25): a folder created while the previous set is read is backed up whole, or the backup fails', async () => {
  const home = path.join(work, 'home');
  const out = path.join(work, 'out');
  write(path.join(home, 'TaskLogs', 'task-1.log.txt'), 'log\n');
  const artifacts = path.join(home, 'Artifacts');
  const realReaddir = fsPromises.readdir.bind(fsPromises) as (p: string) => Promise<string[]>;
  let earlyListing: Promise<unknown> | undefined;
  const readdir = jest.spyOn(fsPromises, 'readdir').mockImplementation((async (where: string) => {
    const listing = realReaddir(where);
    if (path.resolve(where) === artifacts) earlyListing = listing.catch(() => undefined);
    // The incremental looks for a previous set after the early listings started: the folder
    // appears then, once the early listing has found it missing.
    if (path.resolve(where) === out && earlyListing) {
      await earlyListing;
      write(path.join(artifacts, 'Spaces-1', 'report.html'), '<p>artifact</p>\n');
    }
    return listing;
  }) as unknown as typeof fsPromises.readdir);
  let outcome: string;
  try {
    const result = await backupFileStore(
      {
        folders: [
          { name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' },
          { name: 'Artifacts', path: artifacts, origin: 'home' },
        ],
        backupDirectory: out,
        mode: 'Incremental',
        skipUnreadable: false,
        toolVersion: 'test',
      },
      quietEngineContext({ log: silentLog }),
    );
    const manifest = JSON.parse(readFileSync(result.manifestPath, 'utf8')) as { files: { folder: string; path: string }[] };
    outcome = manifest.files.map((f) => `${f.folder}/${f.path}`).sort().join(', ');
  } catch (error) {
    outcome = `failed: ${(error as Error).message}`;
  } finally {
    readdir.mockRestore();
  }
  expect(earlyListing).toBeDefined();
  expect(outcome).toMatch(/^(Artifacts\/Spaces-1\/report\.html, TaskLogs\/task-1\.log\.txt|failed: Artifacts folder .* does not exist.*)$/);
});

// The previous sets are looked for while the store is scanned (stop 33): whichever fails, the
// other's rejection must not go unhandled.
test.each([
  ['the scan (a folder missing) while the previous sets cannot be listed', ['TaskLogs', 'Artifacts'] as const, { message: expect.stringMatching(/^Artifacts folder .* does not exist/) }],
  ['only the previous sets cannot be listed', ['TaskLogs'] as const, { code: 'ENOTDIR' }],
])('Red team (stop 25): a backup that fails in %s leaves no unhandled rejection from the early listings nor from the previous sets', async (_, names, expected) => {
  const home = path.join(work, `before-scan-home-${names.length}`);
  write(path.join(home, 'TaskLogs', 'task-1.log.txt'), 'log\n');
  // Not a folder: listing it for a previous set fails (ENOTDIR); Artifacts does not exist, so its early listing fails too.
  const out = path.join(work, `before-scan-out-${names.length}`);
  write(out, 'a file, not a folder');
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await expect(
      backupFileStore(
        {
          folders: names.map((name) => ({ name, path: path.join(home, name), origin: 'home' as const })),
          backupDirectory: out,
          mode: 'Incremental',
          skipUnreadable: false,
          toolVersion: 'test',
        },
        quietEngineContext({ log: silentLog }),
      ),
    ).rejects.toMatchObject(expected);
    // Long enough for a rejection without a handler to be reported.
    await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  expect(unhandled).toEqual([]);
});

// Red team (stop 33): the previous sets are read while the store is scanned; when the scan fails
// first, what the search found (sets passed over, "taking a full backup") must not be logged after
// the failure, whose message must stay the last line.
test('Red team (stop 33): a scan that fails while damaged sets are still being read ends with its own error; nothing about the sets is said after it', async () => {
  const home = path.join(work, 'failing-scan-home');
  const out = path.join(work, 'failing-scan-out');
  for (let day = 1; day <= 28; day++) write(path.join(out, `octopus-file-store-202611${String(day).padStart(2, '0')}T000000Z-${String(day).padStart(6, '0')}-full.zip`), 'not a zip');
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(`info: ${m}`), verbose: () => undefined, warn: (m: string) => lines.push(`warn: ${m}`) };
  await expect(
    backupFileStore(
      { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Incremental', skipUnreadable: false, toolVersion: 'test' },
      quietEngineContext({ log }),
    ),
  ).rejects.toThrow(/^TaskLogs folder .* does not exist/);
  const atFailure = lines.length;
  // Long enough for the search of the 28 sets to end.
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(lines.slice(atFailure)).toEqual([]);
  expect(lines.filter((l) => l.startsWith('warn:'))).toEqual([]);
});
