// A small file replaced by a named pipe between the scan and the read: opening a pipe waits for
// a writer that never comes, which hung the backup for good (a worker thread that cannot be
// stopped, or the main thread itself). It must be a clear "cannot be read" instead.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import { BUFFERED_FILE_LIMIT, SmallFileWorkers } from '../../steps/engines/file-store/small-file-workers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { backUpWithSwap as swapOnce, logText, pseudoRandomBytes, silentLog, tempDir, write } from './helpers';

const work = tempDir('swapped');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Lets a reader that is still waiting on the pipe go (it gets end of file), so nothing stays blocked after the test. */
function releasePipe(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // No reader waits.
  }
}

const within = <T>(ms: number, promise: Promise<T>) =>
  Promise.race([promise, new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), ms).unref())]);

test('a worker thread reports a named pipe as unreadable instead of waiting on it forever', async () => {
  const fifo = path.join(work, 'pipe.log.txt');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const pool = new SmallFileWorkers(1);
  try {
    expect(await within(5000, pool.prepare([{ localPath: fifo, size: 10, level: 1 }]))).toEqual([{ kind: 'unreadable', message: expect.stringContaining('not a regular file') }]);
  } finally {
    releasePipe(fifo);
    await pool.close();
  }
});

test.each([0, 2])('a small file replaced by a named pipe after the scan is skipped as unreadable, not stored empty after a wait (%i worker threads)', async (smallFileWorkers) => {
  const home = path.join(work, `home-${smallFileWorkers}`);
  for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `t-${i}.log.txt`), logText(30, i));
  const swapped = path.join(home, 'TaskLogs', 't-2.log.txt');
  let writer: ChildProcess | undefined;
  try {
    const result = await backupFileStore(
      {
        folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }],
        backupDirectory: path.join(work, `out-${smallFileWorkers}`),
        mode: 'Full',
        skipUnreadable: true,
        toolVersion: 'test',
        smallFileWorkers,
        onProgress: () => {
          if (writer) return;
          rmSync(swapped);
          expect(spawnSync('mkfifo', [swapped]).status).toBe(0);
          // A writer that comes after 2 s and goes at once: a reader blocked in open() (the main
          // thread included, which no timer can then interrupt) is let go with an empty file.
          writer = spawn('timeout', ['10', 'sh', '-c', 'sleep 2; : > "$0"', swapped], { stdio: 'ignore' });
        },
      },
      quietEngineContext({ log: silentLog }),
    );
    expect(result.manifest.skipped).toEqual([{ folder: 'TaskLogs', path: 't-2.log.txt', reason: expect.stringContaining('not a regular file') }]);
    expect(result.manifest.files.map((f) => f.path)).not.toContain('t-2.log.txt');
  } finally {
    writer?.kill('SIGKILL');
  }
});

test.each([0, 2])('a large file replaced by a named pipe after the scan is skipped as unreadable without waiting, or fails without the opt-in (%i worker threads)', async (smallFileWorkers) => {
  const home = path.join(work, `large-${smallFileWorkers}`);
  write(path.join(home, 'Packages', 'Acme.A.1.0.0.nupkg'), pseudoRandomBytes(BUFFERED_FILE_LIMIT + 10, 1));
  write(path.join(home, 'Packages', 'Acme.B.1.0.0.nupkg'), pseudoRandomBytes(BUFFERED_FILE_LIMIT + 20, 2));
  const swapped = path.join(home, 'Packages', 'Acme.B.1.0.0.nupkg');
  const attempt = (skipUnreadable: boolean, out: string) =>
    swapOnce({
      home: path.join(home, 'Packages'),
      folder: 'Packages',
      backupDirectory: path.join(work, out),
      skipUnreadable,
      smallFileWorkers,
      // No writer ever comes to this pipe.
      swap: () => {
        rmSync(swapped, { force: true });
        expect(spawnSync('mkfifo', [swapped]).status).toBe(0);
      },
    });
  try {
    // No writer ever comes: opening the pipe for reading must not wait for one.
    const result = await within(5000, attempt(true, `large-out-${smallFileWorkers}`));
    expect(result).not.toBe('still waiting');
    if (result === 'still waiting') return;
    expect(result.manifest.skipped).toEqual([{ folder: 'Packages', path: 'Acme.B.1.0.0.nupkg', reason: expect.stringContaining('not a regular file') }]);
    expect(result.manifest.files.map((f) => f.path)).toEqual(['Acme.A.1.0.0.nupkg']);
    rmSync(swapped);
    write(swapped, pseudoRandomBytes(BUFFERED_FILE_LIMIT + 20, 2));
    await expect(within(5000, attempt(false, `large-strict-${smallFileWorkers}`))).rejects.toThrow(/Packages\/Acme\.B\.1\.0\.0\.nupkg cannot be read \(not a regular file.*Make it a regular file again, or set "Skip unreadable files"/);
  } finally {
    releasePipe(swapped);
  }
});

// A file replaced by a symbolic link after the scan: following it would put whatever the link
// points at (outside the store, anything the worker's account can read) into the archive under
// the file's name. The scan never follows links, so the read must not either.
describe('a file replaced by a symbolic link after the scan is not followed', () => {
  const secret = path.join(work, 'outside-the-store', 'secret.txt');
  const SECRET_TEXT = 'not-for-the-archive-4b1d';
  beforeAll(() => write(secret, SECRET_TEXT.repeat(64)));

  const backUpWithSwap = (home: string, out: string, swapped: string, skipUnreadable: boolean, smallFileWorkers: number) =>
    swapOnce({
      home,
      backupDirectory: path.join(work, out),
      skipUnreadable,
      smallFileWorkers,
      swap: () => {
        rmSync(swapped);
        symlinkSync(secret, swapped);
      },
    });

  test.each([
    ['small', 0],
    ['small', 2],
    ['large', 0],
    ['large', 2],
  ] as const)('a %s file (%i worker threads): skipped with the opt-in, the link target nowhere in the archive; a failure naming it without', async (size, smallFileWorkers) => {
    const home = path.join(work, `link-${size}-${smallFileWorkers}`);
    // Stored, not deflated (.zip): the target's bytes would show as they are in the archive.
    const make = () => {
      for (let i = 0; i < 40; i++) write(path.join(home, `f-${i}.log.txt`), logText(20, i));
      write(path.join(home, 'swapped.zip'), pseudoRandomBytes(size === 'large' ? BUFFERED_FILE_LIMIT + 10 : 5000, 3));
    };
    const swapped = path.join(home, 'swapped.zip');
    make();
    const result = await backUpWithSwap(home, `link-out-${size}-${smallFileWorkers}`, swapped, true, smallFileWorkers);
    expect(result.manifest.skipped).toEqual([{ folder: 'Artifacts', path: 'swapped.zip', reason: 'a symbolic link now (replaced since the scan); links are not followed' }]);
    expect(result.manifest.files.map((f) => f.path)).not.toContain('swapped.zip');
    expect(result.manifest.files).toHaveLength(40);
    expect(readFileSync(result.archivePath).includes(SECRET_TEXT)).toBe(false);

    rmSync(home, { recursive: true });
    make();
    await expect(backUpWithSwap(home, `link-strict-${size}-${smallFileWorkers}`, swapped, false, smallFileWorkers)).rejects.toThrow(
      /Artifacts\/swapped\.zip cannot be read \(a symbolic link now \(replaced since the scan\); links are not followed\)\. Make it a regular file again, or set "Skip unreadable files"/,
    );
    expect(readdirSync(path.join(work, `link-strict-${size}-${smallFileWorkers}`))).toEqual([]);
  });
});

test.each([0, 2])('a small file replaced by a socket after the scan is "not a regular file", not a matter of read access (%i worker threads)', async (smallFileWorkers) => {
  const home = path.join(work, `socket-${smallFileWorkers}`);
  for (let i = 0; i < 40; i++) write(path.join(home, `f-${i}.log.txt`), logText(20, i));
  const swapped = path.join(home, 'f-7.log.txt');
  let server: Server | undefined;
  try {
    await expect(
      backupFileStore(
        {
          folders: [{ name: 'Artifacts', path: home, origin: 'home' }],
          backupDirectory: path.join(work, `socket-out-${smallFileWorkers}`),
          mode: 'Full',
          skipUnreadable: false,
          toolVersion: 'test',
          smallFileWorkers,
          onProgress: () => {
            if (server) return;
            rmSync(swapped);
            server = createServer().listen(swapped);
          },
        },
        quietEngineContext({ log: silentLog }),
      ),
    ).rejects.toThrow(/Artifacts\/f-7\.log\.txt cannot be read \(not a regular file any more \(replaced since the scan\)\)\. Make it a regular file again, or set "Skip unreadable files"/);
  } finally {
    server?.close();
  }
});
