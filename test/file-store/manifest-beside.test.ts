// The manifest beside the archive is written and flushed under its temporary name while the
// archive is finished, and renamed into place only after the archive (issue 16: the two waits
// for the disk overlap). A sidecar that cannot be written must leave nothing behind, not an
// archive without its manifest.
import { promises as fsPromises, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store';
import type { FileStoreFolderName, ResolvedFolder } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { makeStore, silentLog, tempDir } from './helpers';

const FOLDERS: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'];
const at = (home: string): ResolvedFolder[] => FOLDERS.map((name) => ({ name, path: path.join(home, name), origin: 'home' }));
const work = tempDir('manifest-beside');
const home = path.join(work, 'home');
beforeAll(() => makeStore(home));
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());

function backup(out: string, mode: 'Full' | 'Incremental', now: Date) {
  return backupFileStore({ folders: at(home), backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => now }, quietEngineContext({ log: silentLog }));
}

const isSidecarTemporary = (file: unknown) => typeof file === 'string' && /\.manifest\.json\.[0-9a-f]{8}\.partial$/.test(file);

test('the manifest beside the archive is flushed before the archive gets its name, and renamed after it', async () => {
  const out = path.join(work, 'order');
  const events: string[] = [];
  const open = fsPromises.open.bind(fsPromises);
  jest.spyOn(fsPromises, 'open').mockImplementation(async (file, ...rest) => {
    const handle = await open(file, ...(rest as [string]));
    if (isSidecarTemporary(file)) {
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        await sync();
        events.push('sidecar flushed');
      };
    }
    return handle;
  });
  const rename = fsPromises.rename.bind(fsPromises);
  jest.spyOn(fsPromises, 'rename').mockImplementation(async (from, to) => {
    await rename(from, to);
    events.push(String(to).endsWith('.zip') ? 'archive renamed' : String(to).endsWith('.manifest.json') ? 'sidecar renamed' : `renamed ${String(to)}`);
  });
  const result = await backup(out, 'Full', new Date('2026-03-01T10:00:00Z'));
  expect(events).toEqual(['sidecar flushed', 'archive renamed', 'sidecar renamed']);
  expect(readdirSync(out).sort()).toEqual([path.basename(result.archivePath), path.basename(result.manifestPath)].sort());
});

test('a manifest beside the archive that cannot be written fails the backup and keeps nothing of it', async () => {
  const out = path.join(work, 'sidecar-fails');
  const full = await backup(out, 'Full', new Date('2026-03-01T10:00:00Z'));
  const before = readdirSync(out).sort();
  const open = fsPromises.open.bind(fsPromises);
  jest.spyOn(fsPromises, 'open').mockImplementation(async (file, ...rest) => {
    const handle = await open(file, ...(rest as [string]));
    if (isSidecarTemporary(file)) {
      handle.writeFile = async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      };
    }
    return handle;
  });
  await expect(backup(out, 'Incremental', new Date('2026-03-01T11:00:00Z'))).rejects.toThrow(
    /is full \(ENOSPC\) while writing the manifest beside \S+-incremental\.zip \(the partial archive was deleted\).*: free .* there or choose another directory/,
  );
  // Neither the archive (partial or renamed) nor the manifest's temporary file is left.
  expect(readdirSync(out).sort()).toEqual(before);
  expect(before).toEqual([path.basename(full.archivePath), path.basename(full.manifestPath)].sort());
});
