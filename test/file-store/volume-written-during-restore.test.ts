// A restore onto a mount point (the Linux container's volumes) moves its staged entries into the
// volume one by one, since a mount point cannot be renamed. A volume that was empty when the
// restore planned, and into which something wrote while the restore extracted (an Octopus Server
// left running, a second restore), is not restored over: a rename would replace a file of the same
// name without a word. Before: the file written meanwhile was replaced by the backup's, and the
// restore exited 0, having overwritten what was there without Replace existing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore, resolveBackupSource, restoreFileStore } from '../../steps/engines/file-store';
import type { ResolvedFolder } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { silentLog, tempDir, write } from './helpers';

const work = tempDir('volume-written');
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('a volume written to while the restore extracted is not restored over; what was written is kept', async () => {
  const home = path.join(work, 'home');
  for (let i = 0; i < 20; i++) write(path.join(home, 'Packages', `Acme.${i}.nupkg`), `package ${i} from the backup\n`);
  const out = path.join(work, 'out');
  await backupFileStore({ folders: [{ name: 'Packages', path: path.join(home, 'Packages'), origin: 'home' }], backupDirectory: out, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  const volume = path.join(work, 'repository');
  mkdirSync(volume);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', volume]).status !== 0) {
    console.warn('mount is not available here; the mount-point restore was not exercised');
    return;
  }
  try {
    const destinations: ResolvedFolder[] = [{ name: 'Packages', path: volume, origin: 'override' }];
    let written = false;
    const onProgress = () => {
      if (written) return;
      written = true;
      write(path.join(volume, 'Acme.3.nupkg'), 'pushed to the running server meanwhile\n');
    };
    const restore = restoreFileStore({ set: await resolveBackupSource(out), destinations, replaceExisting: false, dryRun: false, onProgress }, quietEngineContext({ log: silentLog }));
    await expect(restore).rejects.toThrow(/Acme\.3\.nupkg/);
    expect(written).toBe(true);
    expect(readFileSync(path.join(volume, 'Acme.3.nupkg'), 'utf8')).toBe('pushed to the running server meanwhile\n');
    // Nothing of the restore is left in the volume: only what was written there.
    expect(readdirSync(volume).filter((n) => n !== 'lost+found')).toEqual(['Acme.3.nupkg']);
    expect(existsSync(path.join(volume, 'Acme.4.nupkg'))).toBe(false);
  } finally {
    spawnSync('umount', [volume]);
  }
});
