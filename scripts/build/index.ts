// `npm run build`: bundle every step, wrap each bundle into PowerShell and Bash step templates,
// and refresh the parameter tables of the step pages (docs/steps/<step>.md). The same sources give
// byte-identical output.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { templates } from '../../templates';
import { bundleStep } from './bundle';
import { sourceRecordOf, sourceRecordPath } from './sources';
import { bashRunner, powerShellRunner } from './runners';
import { stepPagePath, withParameterTable } from './step-docs';
import { buildTemplateJson, serializeTemplate, type Syntax } from './template-json';

const ROOT = path.resolve(__dirname, '../..');
const BUILD = path.join(ROOT, 'build');

/** Per-template size budget (bytes of template JSON): every runbook step and snapshot stores a copy. */
export const TEMPLATE_BUDGET_BYTES = 700 * 1024;

function writeAtomically(file: string, content: string | Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, content);
  renameSync(temporary, file);
}

/** gzip with a fixed header (no mtime, "unknown" OS byte) so output does not depend on the build machine. */
export function reproducibleGzip(data: Buffer): Buffer {
  const gz = gzipSync(data, { level: 9 });
  gz.writeUInt32LE(0, 4);
  gz[9] = 0xff;
  return gz;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const toolVersion = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const rows: string[] = [];
  let overBudget = false;
  for (const template of templates) {
    const bundle = await bundleStep(template.stepId, toolVersion);
    const gz = reproducibleGzip(bundle.code);
    writeAtomically(path.join(BUILD, 'steps', `${template.stepId}.js`), bundle.code);
    writeAtomically(path.join(BUILD, 'steps', `${template.stepId}.js.LICENSES.txt`), bundle.licenses);
    const sizes: string[] = [];
    for (const syntax of ['PowerShell', 'Bash'] as Syntax[]) {
      const body = syntax === 'Bash' ? bashRunner(template, gz, toolVersion) : powerShellRunner(template, gz, toolVersion);
      const json = serializeTemplate(buildTemplateJson(template, syntax, body));
      const bytes = Buffer.byteLength(json);
      if (bytes > TEMPLATE_BUDGET_BYTES) overBudget = true;
      writeAtomically(path.join(BUILD, 'templates', syntax.toLowerCase(), `${template.stepId}.json`), json);
      sizes.push(`${syntax} ${kb(bytes)}`);
    }
    // Last: a build that stops half-way leaves the old record, so the tests refuse the new bundle.
    writeAtomically(sourceRecordPath(path.join(BUILD, 'steps', `${template.stepId}.js`)), `${JSON.stringify(sourceRecordOf(bundle.inputs), null, 2)}\n`);
    rows.push(`  ${template.stepId.padEnd(20)} bundle ${kb(bundle.code.length).padStart(9)}, gzipped ${kb(gz.length).padStart(8)}; templates: ${sizes.join(', ')}`);
  }
  // `npm test` builds with --no-readme, so that a step page left stale by a template change fails the tests.
  const refreshDocs = !process.argv.includes('--no-readme');
  const stalePages: string[] = [];
  for (const template of templates) {
    const pagePath = path.join(ROOT, stepPagePath(template.stepId));
    const page = existsSync(pagePath) ? readFileSync(pagePath, 'utf8') : undefined;
    const updated = withParameterTable(page, template);
    if (updated === page) continue;
    stalePages.push(stepPagePath(template.stepId));
    if (refreshDocs) writeAtomically(pagePath, updated);
  }
  const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
  process.stdout.write(`Built ${templates.length} step template(s) in ${ms} ms into build/:\n${rows.join('\n')}\n`);
  if (stalePages.length > 0) {
    const pages = stalePages.join(', ');
    process.stdout.write(refreshDocs ? `Parameter tables updated: ${pages}.\n` : `Parameter tables out of date (run npm run build): ${pages}.\n`);
  }
  if (overBudget) {
    process.stderr.write(`A template is over the ${kb(TEMPLATE_BUDGET_BYTES)} budget.\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`Build failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
