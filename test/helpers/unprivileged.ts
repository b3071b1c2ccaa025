// Running a built step as an unprivileged user (root reads and writes everything, so permission
// tests need another account). The checkout may sit in a folder only root can enter (a CI clone
// in a private temp folder), so the bundle is copied somewhere that account can read.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const NOBODY_UID = 65534;

/** True when this process can start others as `nobody` (root, with util-linux's setpriv). */
export function canRunAsNobody(): boolean {
  return process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
}

/** A world-readable copy of a built bundle, for running it as `nobody`. */
export function bundleReadableByAll(bundle: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-bundle-'));
  chmodSync(dir, 0o755);
  const copy = path.join(dir, path.basename(bundle));
  copyFileSync(bundle, copy);
  chmodSync(copy, 0o644);
  return copy;
}

/** setpriv arguments that run `node <bundle>` as nobody. */
export function asNobodyArgs(bundle: string, args: readonly string[]): string[] {
  return [`--reuid=${NOBODY_UID}`, `--regid=${NOBODY_UID}`, '--clear-groups', process.execPath, bundleReadableByAll(bundle), ...args];
}
