// Packages that exist for browsers or old Node.js versions, replaced in the bundles by what Node.js
// 18+ (every bundle's floor) has. Measured with esbuild's metafile (docs/design.md, "Template size"):
// - readable-stream 4 is a copy of Node's own `stream` module; only tedious's `bl` uses it (for
//   `Duplex`): 78 KB minified of every SQL template (30 KB of brotli payload in test-restore).
// - jsonwebtoken (through @azure/identity and MSAL, in the SQL templates) loads semver only to test
//   process.version against ">=15.7.0", "^6.12.0 || >=8.0.0" and ">=16.9.0", all true on 18+:
//   29 KB minified (10 KB of brotli payload). Any other use of semver there fails at load, loudly.
import type { Plugin } from 'esbuild';

const SEMVER_ON_NODE_18 = `module.exports = { satisfies: function () { return true; } };`;

export function node18Shims(): Plugin {
  return {
    name: 'node18-shims',
    setup(build) {
      build.onResolve({ filter: /^readable-stream$/ }, () => ({ path: 'node:stream', external: true }));
      build.onResolve({ filter: /^semver$/ }, (args) => (/[\\/]jsonwebtoken[\\/]/.test(args.importer) ? { path: 'semver', namespace: 'node18-shims' } : undefined));
      build.onLoad({ filter: /.*/, namespace: 'node18-shims' }, () => ({ contents: SEMVER_ON_NODE_18, loader: 'js' }));
    },
  };
}
