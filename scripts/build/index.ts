// `npm run build`: bundle every step, wrap each bundle into PowerShell and Bash step templates,
// and refresh the parameter tables of the step pages (docs/steps/<step>.md). The same sources give
// byte-identical output.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, brotliDecompressSync, constants, type BrotliOptions } from 'node:zlib';
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

/**
 * The bundle as the runners embed it: brotli at its highest quality and a 16 MiB window. Brotli
 * output carries no time or machine, so the same bundle gives the same bytes. Node unpacks it
 * (zlib has brotli since Node 10.16; .NET Framework, under Windows PowerShell 5.1, has none).
 * Measured with `npm run build` against gzip -9: every template about 19 % smaller
 * (test-restore 648 -> 534 KB, restore-database 610 -> 502 KB).
 */
export function packBundle(code: Buffer): Buffer {
  return brotliCompressSync(code, packOptions(code));
}

function packOptions(code: Buffer): BrotliOptions {
  return {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: code.length,
    },
  };
}

/**
 * packBundle off the main thread, so the bundles pack on both cores, and remembered by the bundle's
 * hash: brotli's top quality takes ~5 s per large bundle, and most rebuilds change few bundles.
 * The key covers the packing options too (a changed quality or window must not be served the old
 * bytes: the same sources would then give different templates on different machines), and every
 * payload, cached or fresh, is unpacked and compared with the bundle before a template embeds it: a
 * truncated or damaged cache file (a crash, a full disk, a concurrent build) is packed again.
 */
const PACK_CACHE = path.join(BUILD, 'pack-cache');
const packCacheInUse = new Set<string>();

function packsTo(packed: Buffer, code: Buffer): boolean {
  try {
    return brotliDecompressSync(packed).equals(code);
  } catch {
    return false;
  }
}

export async function packBundleCached(code: Buffer, cacheDir = PACK_CACHE): Promise<Buffer> {
  const options = packOptions(code);
  const key = createHash('sha256')
    .update(JSON.stringify({ brotli: process.versions.brotli ?? '', params: options.params }))
    .update('\0')
    .update(code)
    .digest('hex');
  const cached = path.join(cacheDir, `${key}.br`);
  packCacheInUse.add(path.basename(cached));
  let fromCache: Buffer | undefined;
  try {
    fromCache = readFileSync(cached);
  } catch {
    fromCache = undefined;
  }
  if (fromCache && packsTo(fromCache, code)) return fromCache;
  const packed = await promisify(brotliCompress)(code, options);
  if (!packsTo(packed, code)) throw new Error('The packed bundle does not unpack to the bundle.');
  writeAtomically(cached, packed);
  return packed;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const toolVersion = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const rows: string[] = [];
  let overBudget = false;
  const bundles = [];
  for (const template of templates) bundles.push({ template, bundle: await bundleStep(template.stepId, toolVersion) });
  const packedBundles = await Promise.all(bundles.map(({ bundle }) => packBundleCached(bundle.code)));
  // Only finished entries: a `.tmp-<pid>` is another build's entry on its way in (its rename would fail).
  for (const name of readdirSync(PACK_CACHE)) if (name.endsWith('.br') && !packCacheInUse.has(name)) rmSync(path.join(PACK_CACHE, name), { force: true });
  for (const [index, { template, bundle }] of bundles.entries()) {
    const packed = packedBundles[index];
    writeAtomically(path.join(BUILD, 'steps', `${template.stepId}.js`), bundle.code);
    writeAtomically(path.join(BUILD, 'steps', `${template.stepId}.js.LICENSES.txt`), bundle.licenses);
    const sizes: string[] = [];
    for (const syntax of ['PowerShell', 'Bash'] as Syntax[]) {
      const body = syntax === 'Bash' ? bashRunner(template, packed, toolVersion) : powerShellRunner(template, packed, toolVersion);
      const json = serializeTemplate(buildTemplateJson(template, syntax, body));
      const bytes = Buffer.byteLength(json);
      if (bytes > TEMPLATE_BUDGET_BYTES) overBudget = true;
      writeAtomically(path.join(BUILD, 'templates', syntax.toLowerCase(), `${template.stepId}.json`), json);
      sizes.push(`${syntax} ${kb(bytes)}`);
    }
    // Last: a build that stops half-way leaves the old record, so the tests refuse the new bundle.
    writeAtomically(sourceRecordPath(path.join(BUILD, 'steps', `${template.stepId}.js`)), `${JSON.stringify(sourceRecordOf(bundle.inputs), null, 2)}\n`);
    rows.push(`  ${template.stepId.padEnd(20)} bundle ${kb(bundle.code.length).padStart(9)}, packed ${kb(packed.length).padStart(8)}; templates: ${sizes.join(', ')}`);
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
