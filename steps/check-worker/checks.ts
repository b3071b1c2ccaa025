// The individual worker checks. Each returns a result instead of throwing, so the step can
// report every failure, not just the first.
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { accountName, describeFileError } from '../runtime/failure';
import { cleanLeftovers } from '../runtime/leftovers';
import type { Endpoint } from './endpoint';

export interface DirectoryCheck {
  path: string;
  exists: boolean;
  writable: boolean;
  /** Free bytes available to this user; undefined when the platform cannot tell. */
  freeBytes?: number;
  problems: string[];
}

const GB = 1e9;

export function formatGB(bytes: number): string {
  return (bytes / GB).toFixed(1);
}

/** The probe checkDirectory writes and removes; one a killed check left keeps this name. */
const PROBE_NAME = /^\.octopus-dr-probe-[0-9a-f]{12}$/;

export async function checkDirectory(directory: string, minimumFreeBytes: number, log?: { warn(message: string): void }): Promise<DirectoryCheck> {
  const result: DirectoryCheck = { path: directory, exists: false, writable: false, problems: [] };
  try {
    const stat = await fs.stat(directory);
    if (!stat.isDirectory()) {
      result.problems.push(`${directory} is not a directory.`);
      return result;
    }
    result.exists = true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    result.problems.push(
      code === 'ENOENT'
        ? `${directory} does not exist. Create it, or correct the path.`
        : `${directory} cannot be read (${code}). Check the worker account's permissions.`,
    );
    return result;
  }

  // A real write proves more than an access() check: ACLs, read-only mounts and quotas all show up.
  const probe = path.join(directory, `.octopus-dr-probe-${randomBytes(6).toString('hex')}`);
  try {
    const handle = await fs.open(probe, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600);
    try {
      await handle.writeFile('octopus-dr write probe\n');
    } finally {
      await handle.close();
    }
    result.writable = true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A read-only disk or a full one needs another fix than a permission.
    result.problems.push(
      code === 'EACCES' || code === 'EPERM' || !code
        ? `${directory} is not writable by this worker's account, ${accountName()} (${code}). Grant it modify permission.`
        : describeFileError(error, { path: directory, what: 'writing a probe file' }) ?? `${directory} is not writable (${code}).`,
    );
  } finally {
    await fs.rm(probe, { force: true }).catch(() => undefined);
  }
  // Probes a killed check left (SIGKILL between writing and removing one): named, and deleted after 6 hours.
  if (log && result.writable) await cleanLeftovers(directory, (name) => PROBE_NAME.test(name), 'a worker check (Check Worker)', new Date(), log);

  // fs.statfs arrived in Node 18.15; older 18.x can still run the rest of the checks, but a
  // minimum asked for and not checked is a failed check, never a pass.
  const statfs = (fs as { statfs?: (p: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }> }).statfs;
  if (!statfs && minimumFreeBytes > 0) {
    result.problems.push(
      `Free space of ${directory} cannot be checked: Node.js ${process.version} has no fs.statfs (it came in 18.15). ` +
        `Use Node.js 18.15 or newer on this worker, or set "Minimum free space (GB)" (OctopusDr.Worker.MinimumFreeSpaceGB) to 0 to skip the check.`,
    );
  }
  if (statfs) {
    try {
      const stats = await statfs(directory);
      result.freeBytes = Number(stats.bavail) * Number(stats.bsize);
      if (minimumFreeBytes > 0 && result.freeBytes < minimumFreeBytes) {
        result.problems.push(
          `${directory} has ${formatGB(result.freeBytes)} GB free, less than the ${formatGB(minimumFreeBytes)} GB required.`,
        );
      }
    } catch (error) {
      result.problems.push(`Free space of ${directory} cannot be read (${(error as NodeJS.ErrnoException).code}).`);
    }
  }
  return result;
}

export interface EndpointCheck {
  address: string;
  reachable: boolean;
  milliseconds?: number;
  problem?: string;
}

export function checkEndpoint(
  address: string,
  endpoint: Endpoint,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<EndpointCheck> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    let settled = false;
    const finish = (result: EndpointCheck) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = () => finish({ address, reachable: false, problem: `${address}: cancelled.` });
    const timer = setTimeout(
      () => finish({ address, reachable: false, problem: `${address} did not accept a connection within ${timeoutMs / 1000} s (firewall?).` }),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () =>
      finish({ address, reachable: true, milliseconds: Number((process.hrtime.bigint() - started) / 1_000_000n) }),
    );
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === 'ECONNREFUSED'
          ? 'refused the connection (nothing listening on that port?)'
          : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
            ? 'is not a known host name (DNS)'
            : `could not be reached (${error.code ?? error.message})`;
      finish({ address, reachable: false, problem: `${address} ${reason}.` });
    });
  });
}
