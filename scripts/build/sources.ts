// What a bundle was built from, written beside it (build/steps/<id>.js.sources.json), so the
// tests can refuse a bundle older than its sources instead of silently testing old code.
// The sources: our files esbuild read for the bundle, the files the build reads itself (the
// SqlClient helper), the build scripts (they shape the bundle and its templates) and package.json
// (the version the bundle reports).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface SourceRecord {
  /** Repository-relative path (forward slashes) -> SHA-256 of the file's bytes. */
  sources: Record<string, string>;
}

export function sourceRecordPath(bundle: string): string {
  return `${bundle}.sources.json`;
}

function sha256Of(relative: string): string | undefined {
  const file = path.join(ROOT, relative);
  return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : undefined;
}

function buildInputs(): string[] {
  const folder = path.join(ROOT, 'scripts', 'build');
  return ['package.json', ...readdirSync(folder).filter((name) => /\.(ts|js)$/.test(name)).map((name) => `scripts/build/${name}`)];
}

/** The record for a bundle whose own inputs are `inputs` (repository-relative; packages are left out). */
export function sourceRecordOf(inputs: readonly string[]): SourceRecord {
  const ours = inputs.map((input) => input.split(path.sep).join('/')).filter((input) => !input.includes('node_modules/') && !input.startsWith('../'));
  const sources: Record<string, string> = {};
  for (const relative of [...new Set([...ours, ...buildInputs()])].sort()) {
    const hash = sha256Of(relative);
    if (hash) sources[relative] = hash;
  }
  return { sources };
}

/** The sources in `record` that changed or disappeared since, plus build scripts added since. */
export function changedSources(record: SourceRecord): string[] {
  const changed = Object.entries(record.sources).filter(([relative, hash]) => sha256Of(relative) !== hash).map(([relative]) => relative);
  const added = buildInputs().filter((relative) => !(relative in record.sources));
  return [...changed, ...added].sort();
}
