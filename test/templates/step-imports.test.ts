// Steps are thin adapters over the domain engines: a step imports an engine through its face (the
// folder's index.ts), never one of its files, so an engine can be reorganised without touching a step.
// The runtime (steps/runtime) is not an engine: each of its files is its API (`../runtime/errors`).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const STEPS = path.join(__dirname, '../../steps');
const ENGINES = path.join(STEPS, 'engines');
/** The folders under steps/ that are not steps. */
const NOT_STEPS = ['engines', 'runtime'];

function stepFiles(): string[] {
  return readdirSync(STEPS)
    .filter((name) => !NOT_STEPS.includes(name) && statSync(path.join(STEPS, name)).isDirectory())
    .flatMap((step) =>
      readdirSync(path.join(STEPS, step))
        .filter((file) => file.endsWith('.ts'))
        .map((file) => path.join(STEPS, step, file)),
    );
}

/** Every module specifier of a file's import and export ... from statements, and of import() calls. */
export function importsOf(source: string): string[] {
  const specifiers = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g), ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)];
  return specifiers.map((match) => match[1]);
}

/** Why an import of a step reaches into an engine, or undefined when it goes through a face. */
export function deepImportProblem(specifier: string, fromDirectory: string): string | undefined {
  const target = path.resolve(fromDirectory, specifier);
  const relative = path.relative(ENGINES, target);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  const [engine, ...rest] = relative.split(path.sep);
  if (rest.length === 0) return undefined;
  // A sub-folder with its own face (standby/agreement) is a face too.
  if (existsSync(path.join(target, 'index.ts'))) return undefined;
  return `imports ${specifier}: import '../engines/${engine}' (the engine's index.ts) instead`;
}

test('the import parser finds static, re-exported and dynamic imports', () => {
  const source = [
    "import { a } from '../engines/sql';",
    "import type { B } from '../engines/file-store/restore';",
    'import {\n  c,\n  d,\n} from "../engines/master-key";',
    "export { e } from '../engines/octopus/server-url';",
    "const f = await import('../engines/standby/step-gate');",
  ].join('\n');
  expect(importsOf(source)).toEqual(['../engines/sql', '../engines/file-store/restore', '../engines/master-key', '../engines/octopus/server-url', '../engines/standby/step-gate']);
});

test('a deep import into an engine is refused, a face, a sub-face and the runtime are not', () => {
  const from = path.join(STEPS, 'test-restore');
  expect(deepImportProblem('../engines/standby/step-gate', from)).toMatch(/import '\.\.\/engines\/standby'/);
  expect(deepImportProblem('../engines/file-store/restore', from)).toMatch(/import '\.\.\/engines\/file-store'/);
  expect(deepImportProblem('../engines/standby', from)).toBeUndefined();
  expect(deepImportProblem('../engines/standby/agreement', from)).toBeUndefined();
  expect(deepImportProblem('../runtime/errors', from)).toBeUndefined();
  expect(deepImportProblem('../../templates/test-restore', from)).toBeUndefined();
});

test('no step imports an engine file rather than its face', () => {
  const files = stepFiles();
  expect(files.length).toBeGreaterThan(10);
  const problems = files.flatMap((file) =>
    importsOf(readFileSync(file, 'utf8'))
      .map((specifier) => deepImportProblem(specifier, path.dirname(file)))
      .filter((problem): problem is string => problem !== undefined)
      .map((problem) => `${path.relative(STEPS, file)} ${problem}`),
  );
  expect(problems).toEqual([]);
});
