// iconv-lite's double-byte code page tables (Japanese, Simplified and Traditional Chinese, Korean)
// are about 170 KB of every gzipped database template. tedious needs them only to decode varchar,
// char or text values whose collation uses one of those code pages; octopus-dr reads catalog views,
// backup headers and Octopus documents, which are nvarchar. So the tables are left out, and reading
// such a value fails with what to do instead of a wrong decoding.
import type { Plugin } from 'esbuild';

export const DOUBLE_BYTE_TABLE_MESSAGE =
  'This SQL Server returned a varchar value in a Japanese, Chinese or Korean collation (code page 932, 936, 949 or 950), ' +
  'and octopus-dr leaves those code page tables out of its bundles to keep the templates small. ' +
  'Run the step with the .NET SqlClient transport instead (set the environment variable OCTOPUSDR_SQL_TRANSPORT=sqlclient), ' +
  'which decodes every code page, and tell the octopus-dr maintainers which statement needed it.';

export function withoutDoubleByteCodePageTables(): Plugin {
  return {
    name: 'without-double-byte-code-page-tables',
    setup(build) {
      build.onResolve({ filter: /^\.\/tables\/.+\.json$/ }, (args) =>
        /iconv-lite[\\/]encodings$/.test(args.resolveDir) ? { path: args.path, namespace: 'code-page-table' } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'code-page-table' }, () => ({
        contents: `throw new Error(${JSON.stringify(DOUBLE_BYTE_TABLE_MESSAGE)});`,
        loader: 'js',
      }));
    },
  };
}
