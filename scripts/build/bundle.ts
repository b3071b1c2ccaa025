// One esbuild bundle per step, for Node 18, minified, reproducible; the licence texts of every
// third-party package that ends up in it are collected into a file beside it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';
import { withoutAzureCrc64 } from './azure-crc64';
import { withoutDoubleByteCodePageTables } from './code-page-tables';
import { node18Shims } from './node18-shims';
import { onlyTheS3CommandsWeUse } from './s3-commands';
import { withoutUnusedModules } from './unused-modules';

export interface BundleResult {
  code: Buffer;
  licenses: string;
  packages: string[];
  /** Our files the bundle was built from (repository-relative): esbuild's inputs and the SqlClient helper. */
  inputs: string[];
}

const ROOT = path.resolve(__dirname, '../..');
const SQLCLIENT_HELPER = 'steps/engines/sql/sqlclient-helper.ps1';

/** `node_modules/a/node_modules/@b/c/lib/x.js` -> the package folder `node_modules/a/node_modules/@b/c`. */
function packageFolderOf(input: string): string | undefined {
  const marker = 'node_modules/';
  const at = input.lastIndexOf(marker);
  if (at < 0) return undefined;
  const rest = input.slice(at + marker.length).split('/');
  const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  return input.slice(0, at + marker.length) + name;
}

function licenseNotice(folder: string): string {
  const absolute = path.join(ROOT, folder);
  const pkg = JSON.parse(readFileSync(path.join(absolute, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
  const file = readdirSync(absolute).find((f) => /^(licen[cs]e|copying|notice)(\.|$)/i.test(f));
  const text = file ? readFileSync(path.join(absolute, file), 'utf8').trim() : `License: ${pkg.license ?? 'unknown'} (no licence file in the package)`;
  return `${pkg.name}@${pkg.version} (${pkg.license ?? 'unknown'})\n${'-'.repeat(72)}\n${text}\n`;
}

/** The helper script without its comment lines (they only cost template bytes). */
function sqlClientHelperForBundle(): string {
  const source = readFileSync(path.join(ROOT, SQLCLIENT_HELPER), 'utf8');
  return source.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
}

/**
 * The Azure SDK packages ship an ES-module and a CommonJS build. tedious `require`s @azure/identity
 * (and through it @azure/core-*, @typespec/ts-http-runtime, MSAL) while @azure/storage-blob
 * `import`s the same packages, so esbuild bundled both builds of each. Every reference resolves to
 * the ES-module build here: one copy, tree-shaken. Measured with `npm run build` (PowerShell
 * templates): backup-database 492.1 -> 458.6 KB, verify-master-key 475.3 -> 441.8 KB; restore-database
 * with @azure/storage-blob would have been about 798 KB without this, 667 KB with it (607 KB with azure-crc64.ts too).
 */
export function oneBuildOfAzurePackages(): Plugin {
  return {
    name: 'one-build-of-azure-packages',
    setup(build) {
      build.onResolve({ filter: /^@(azure|typespec)\// }, async (args) => {
        if (args.kind !== 'require-call' || args.pluginData?.asImport) return undefined;
        const resolved = await build.resolve(args.path, { kind: 'import-statement', resolveDir: args.resolveDir, importer: args.importer, pluginData: { asImport: true } });
        return resolved.errors.length > 0 ? undefined : { path: resolved.path, external: resolved.external, sideEffects: resolved.sideEffects };
      });
    },
  };
}

export async function bundleStep(stepId: string, toolVersion: string): Promise<BundleResult> {
  const entry = path.join(ROOT, 'steps', stepId, 'main.ts');
  if (!existsSync(entry)) throw new Error(`Step ${stepId} has no entry file steps/${stepId}/main.ts`);
  return bundleEntry(entry, stepId, toolVersion);
}

/** Bundles any entry file (tests bundle fixture steps the same way as real ones). */
export async function bundleEntry(entry: string, stepId: string, toolVersion: string): Promise<BundleResult> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [path.relative(ROOT, entry)],
    bundle: true,
    platform: 'node',
    // The ES-module builds first: esbuild drops what a step never imports from them (the AWS and
    // Azure SDKs' CommonJS builds keep everything): copy-offsite 713 -> ~656 KB.
    mainFields: ['module', 'main'],
    target: 'node18',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    metafile: true,
    write: false,
    outfile: `build/steps/${stepId}.js`,
    define: {
      OCTOPUS_DR_VERSION: JSON.stringify(toolVersion),
      'import.meta.url': 'importMetaUrl',
      // The SqlClient helper travels inside the bundle and is unpacked beside it when used.
      OCTOPUS_DR_SQLCLIENT_HELPER: JSON.stringify(sqlClientHelperForBundle()),
    },
    inject: [path.join(__dirname, 'import-meta-url.js')],
    // Optional native or cloud add-ons the steps never load; keeping them out keeps templates small.
    external: ['msnodesqlv8', 'pg-native'],
    plugins: [oneBuildOfAzurePackages(), withoutAzureCrc64(), withoutDoubleByteCodePageTables(), onlyTheS3CommandsWeUse(ROOT), node18Shims(), withoutUnusedModules(ROOT)],
    logLevel: 'silent',
  });
  const output = result.outputFiles.find((f) => f.path.endsWith('.js'));
  if (!output) throw new Error(`esbuild produced no JS for ${stepId}`);
  const folders = new Set<string>();
  for (const input of Object.keys((result.metafile as Metafile).inputs)) {
    const folder = packageFolderOf(input);
    if (folder) folders.add(folder);
  }
  const packages = [...folders].sort();
  const licenses = packages.length
    ? `Third-party software bundled into ${stepId}.js:\n\n` + packages.map(licenseNotice).join('\n')
    : `${stepId}.js bundles no third-party software.\n`;
  const inputs = [...Object.keys((result.metafile as Metafile).inputs), SQLCLIENT_HELPER];
  return { code: Buffer.from(output.contents), licenses, packages, inputs };
}
