// Red team (stop 25): the manifest entry is deflated in pieces (zip-writer.ts,
// deflateRawInPieces). yazl ignores a deflate error and stores whatever buffer it is given, so a
// piece that fails must fail the archive: nothing kept, and never an archive whose manifest entry
// is empty while its central directory gives the full size.
import { deflateFault, originalDeflateRaw } from './rt-ret-deflate-fault';
import { readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import zlib = require('node:zlib');
import { backupFileStore } from '../../steps/engines/file-store';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir, write } from './helpers';

const work = tempDir('rt-ret-deflate');
const home = path.join(work, 'home');
beforeAll(() => {
  // ~9,000 files: a manifest of ~2.6 MB, deflated in two pieces.
  for (let i = 0; i < 9000; i++) write(path.join(home, 'TaskLogs', `dir-${i % 30}`, `servertasks-${i}.log.txt`), `log ${i}\n`);
});
afterEach(() => (deflateFault.mode = 'none'));
afterAll(() => {
  (zlib as unknown as { deflateRaw: unknown }).deflateRaw = originalDeflateRaw;
  rmSync(work, { recursive: true, force: true });
});

test.each(['async', 'sync'] as const)('Red team (stop 25): a piece of the manifest that fails to deflate (%s) fails the backup and keeps nothing', async (mode) => {
  const out = path.join(work, `out-${mode}`);
  deflateFault.mode = mode;
  await expect(
    backupFileStore(
      { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' },
      quietEngineContext({ log: silentLog }),
    ),
  ).rejects.toThrow(/insufficient memory/);
  expect(readdirSync(out)).toEqual([]);
}, 60_000);
