// The bundle helper refuses a bundle older than its sources, and passes a fresh one.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { sourceRecordPath, type SourceRecord } from '../../scripts/build/sources';
import { builtStep, builtTemplate, ROOT } from './bundle';

const built = path.join(ROOT, 'build', 'steps', 'backup-database.js');
const work = mkdtempSync(path.join(tmpdir(), 'octopus-dr-bundle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the real build of backup-database in its own build folder, with its record edited. */
function copiedBuild(name: string, edit: (record: SourceRecord) => SourceRecord | undefined): string {
  const build = path.join(work, name);
  mkdirSync(path.join(build, 'steps'), { recursive: true });
  const bundle = path.join(build, 'steps', 'backup-database.js');
  copyFileSync(built, bundle);
  const record = edit(JSON.parse(readFileSync(sourceRecordPath(built), 'utf8')) as SourceRecord);
  if (record) writeFileSync(sourceRecordPath(bundle), JSON.stringify(record));
  return build;
}

test('the build records what each bundle was built from: its step, the shared code it imports, the SqlClient helper, the build scripts', () => {
  const record = JSON.parse(readFileSync(sourceRecordPath(built), 'utf8')) as SourceRecord;
  expect(Object.keys(record.sources)).toEqual(expect.arrayContaining([
    'steps/backup-database/main.ts',
    'steps/runtime/run-step.ts',
    'templates/backup-database.ts',
    'steps/engines/sql/sqlclient-helper.ps1',
    'scripts/build/bundle.ts',
    'package.json',
  ]));
  expect(Object.keys(record.sources).filter((source) => source.includes('node_modules'))).toEqual([]);
  expect(Object.keys(record.sources)).not.toContain('steps/restore-file-store/main.ts');
});

test('a bundle built from the current sources is given out', () => {
  expect(builtStep('backup-database')).toBe(built);
  expect(builtTemplate('bash', 'backup-database')).toBe(path.join(ROOT, 'build', 'templates', 'bash', 'backup-database.json'));
});

test('a bundle older than one of its sources is refused, naming the source and the fix', () => {
  const build = copiedBuild('stale', (record) => ({ sources: { ...record.sources, 'steps/backup-database/main.ts': '0'.repeat(64) } }));
  expect(() => builtStep('backup-database', build)).toThrow(
    /backup-database\.js is older than its sources \(steps\/backup-database\/main\.ts changed since it was built\): run npm run build\.$/,
  );
});

test('a bundle whose source was deleted since, or built before the build kept records, is refused', () => {
  const deleted = copiedBuild('deleted', (record) => ({ sources: { ...record.sources, 'steps/backup-database/gone.ts': '0'.repeat(64) } }));
  expect(() => builtStep('backup-database', deleted)).toThrow(/older than its sources \(steps\/backup-database\/gone\.ts changed since it was built\)/);
  const unrecorded = copiedBuild('unrecorded', () => undefined);
  expect(() => builtStep('backup-database', unrecorded)).toThrow(/backup-database\.js has no record of its sources .*: run npm run build\.$/);
  expect(() => builtStep('no-such-step')).toThrow(/build\/steps\/no-such-step\.js is missing: run npm run build/);
});
