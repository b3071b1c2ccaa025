// The one way a test reaches a built step (build/steps/<id>.js) or template: it refuses a bundle
// older than its sources, so `npx jest` after an edit fails instead of testing yesterday's code.
// The build writes what each bundle was built from beside it (scripts/build/sources.ts).
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { changedSources, sourceRecordPath, type SourceRecord } from '../../scripts/build/sources';

export const ROOT = path.resolve(__dirname, '../..');
const BUILD = path.join(ROOT, 'build');

const fresh = new Set<string>();

/** Throws unless `bundle` exists and every source it was built from is unchanged since. */
export function assertFresh(bundle: string): void {
  if (fresh.has(bundle)) return;
  const shown = path.relative(ROOT, bundle);
  if (!existsSync(bundle)) throw new Error(`${shown} is missing: run npm run build (npm test does).`);
  const recordFile = sourceRecordPath(bundle);
  if (!existsSync(recordFile)) throw new Error(`${shown} has no record of its sources (${path.basename(recordFile)}), so it may be older than them: run npm run build.`);
  const changed = changedSources(JSON.parse(readFileSync(recordFile, 'utf8')) as SourceRecord);
  if (changed.length > 0) {
    const named = changed.slice(0, 3).join(', ') + (changed.length > 3 ? ` and ${changed.length - 3} more` : '');
    throw new Error(`${shown} is older than its sources (${named} changed since it was built): run npm run build.`);
  }
  fresh.add(bundle);
}

/** The path of a step's bundle, checked fresh: `builtStep('backup-database')`. */
export function builtStep(stepId: string, build = BUILD): string {
  const bundle = path.join(build, 'steps', `${stepId}.js`);
  assertFresh(bundle);
  return bundle;
}

/** The path of a step's template JSON (built with its bundle, from the same sources), checked fresh. */
export function builtTemplate(syntax: 'powershell' | 'bash', stepId: string, build = BUILD): string {
  builtStep(stepId, build);
  const template = path.join(build, 'templates', syntax, `${stepId}.json`);
  if (!existsSync(template)) throw new Error(`${path.relative(ROOT, template)} is missing: run npm run build.`);
  return template;
}
