// The archive is flushed to disk while it is written (fdatasync in the background, the next as soon
// as one ends), one flush at a time, and never after the final fsync has begun: the descriptor is
// closed after it, and a flush still running could meet a reused descriptor.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { StreamingZipWriter as Writer } from '../../steps/engines/file-store/zip-writer';

// The writer's fdatasync and fsync are these, slowed and recorded (the writer is required after this:
// this repository's TypeScript transform does not hoist jest.mock above the imports).
const mockEvents: { what: 'flush-start' | 'flush-end' | 'fsync-start'; at: number; rightAfterAnEnd?: boolean }[] = [];
/** True from a flush's end until the event loop next turns: a flush started then was started by that end. */
let mockJustEnded = false;
jest.mock('node:fs', () => {
  const actual = jest.requireActual('node:fs');
  return {
    ...actual,
    fdatasync: (fd: number, callback: (error: Error | null) => void) => {
      mockEvents.push({ what: 'flush-start', at: performance.now(), rightAfterAnEnd: mockJustEnded });
      setTimeout(() => actual.fdatasync(fd, (error: Error | null) => {
        mockEvents.push({ what: 'flush-end', at: performance.now() });
        mockJustEnded = true;
        setImmediate(() => (mockJustEnded = false));
        callback(error);
      }), 60);
    },
    fsync: (fd: number, callback: (error: Error | null) => void) => {
      mockEvents.push({ what: 'fsync-start', at: performance.now() });
      actual.fsync(fd, callback);
    },
  };
});

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { StreamingZipWriter } = require('../../steps/engines/file-store/zip-writer') as { StreamingZipWriter: typeof Writer };

const work = mkdtempSync(path.join(os.tmpdir(), 'background-flush-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('flushes one at a time while writing goes on, the next as one ends, each ended before the final fsync begins', async () => {
  const file = path.join(work, 'flushed.zip');
  const writer = new StreamingZipWriter(file, { threads: false, flushBytes: 1024 * 1024 });
  const chunk = Buffer.alloc(1024 * 1024 + 17, 7);
  for (let i = 0; i < 12; i++) {
    const { done } = await writer.addStream(`Packages/p${i}.nupkg`, { mtimeMs: Date.UTC(2026, 10, 1), mode: 0o644 }, () => Readable.from([chunk]), undefined, 0);
    await done;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await writer.finish();

  const flushes = mockEvents.filter((e) => e.what === 'flush-start').length;
  expect(flushes).toBeGreaterThanOrEqual(2);
  expect(mockEvents.filter((e) => e.what === 'flush-end')).toHaveLength(flushes);
  // Never two at once: each start follows the previous end.
  const order = mockEvents.filter((e) => e.what !== 'fsync-start').map((e) => e.what);
  expect(order).toEqual(Array.from({ length: flushes }, () => ['flush-start', 'flush-end']).flat());
  // The next starts as one ends when enough was written meanwhile, not at the next check of a timer (the disk idled in between).
  expect(mockEvents.some((e) => e.rightAfterAnEnd)).toBe(true);
  // The final fsync comes after every flush has ended.
  expect(mockEvents.at(-1)?.what).toBe('fsync-start');
  // The archive is whole.
  expect(spawnSync('unzip', ['-tqq', file]).status).toBe(0);
});
