// The statement registry: every file in this folder (except this one) exports `handlers` (and may
// register scalar functions or virtual tables). Add a file to teach the simulator new statements;
// the core needs no change. Handlers are tried in file-name order, first match wins.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { registerHandlers, type StatementHandler } from '../engine/executor';

let loaded = false;

export function loadStatements(): void {
  if (loaded) return;
  loaded = true;
  const files = readdirSync(__dirname)
    .filter((f) => /\.(ts|js)$/.test(f) && !/^index\./.test(f) && !f.endsWith('.d.ts'))
    .sort();
  for (const file of files) {
    const mod = require(path.join(__dirname, file)) as { handlers?: StatementHandler[] };
    if (mod.handlers) registerHandlers(mod.handlers);
  }
}
