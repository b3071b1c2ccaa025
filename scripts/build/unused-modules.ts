// Dependencies of dependencies that no step needs, left out of (or shared in) every bundle. Measured
// with `npm run build` on the test-restore template (docs/design.md, "Template size"):
// - `open` (with default-browser, wsl-utils, is-wsl and the rest) is imported, with import(), only by
//   @azure/identity's interactive browser sign-in. tedious signs in to Microsoft Entra with a password
//   or a client secret (steps/engines/sql/tedious-transport.ts), never through a browser, and a step
//   runs unattended on a worker. Replaced by a module that throws, so a call could never go unseen.
// - `debug` is mssql's logging, printed to stderr when the DEBUG variable names it: it would bypass
//   the redactor that every line of a step goes through. Replaced by loggers that print nothing.
// - @noble/post-quantum pins @noble/curves and @noble/hashes ~2.0 while age-encryption uses 2.4 (one
//   major version, the same API): one copy of each. esbuild refuses the build if a name it imports
//   were missing from the shared copy.
import type { Plugin } from 'esbuild';

export const NO_BROWSER_MESSAGE =
  'octopus-dr cannot open a web browser to sign in (interactive Microsoft Entra sign-in is not supported: a step runs unattended). Use a password or a client secret.';

const OPEN_STUB = `export default function open() { throw new Error(${JSON.stringify(NO_BROWSER_MESSAGE)}); }`;

const SILENT_DEBUG = [
  'function createDebug(namespace) {',
  '  function debug() {}',
  "  debug.namespace = String(namespace); debug.enabled = false; debug.log = function () {}; debug.destroy = function () {};",
  "  debug.extend = function (name, delimiter) { return createDebug(debug.namespace + (delimiter === undefined ? ':' : delimiter) + name); };",
  '  return debug;',
  '}',
  "createDebug.enable = function () {}; createDebug.disable = function () { return ''; }; createDebug.enabled = function () { return false; };",
  'createDebug.debug = createDebug; createDebug.default = createDebug;',
  'module.exports = createDebug;',
].join('\n');

const NOBLE_NESTED = /[\\/]node_modules[\\/]@noble[\\/]post-quantum[\\/]/;

export function withoutUnusedModules(root: string): Plugin {
  return {
    name: 'without-unused-modules',
    setup(build) {
      build.onResolve({ filter: /^open$/ }, () => ({ path: 'open', namespace: 'unused-modules' }));
      build.onResolve({ filter: /^debug$/ }, () => ({ path: 'debug', namespace: 'unused-modules' }));
      build.onLoad({ filter: /^open$/, namespace: 'unused-modules' }, () => ({ contents: OPEN_STUB, loader: 'js' }));
      build.onLoad({ filter: /^debug$/, namespace: 'unused-modules' }, () => ({ contents: SILENT_DEBUG, loader: 'js' }));
      build.onResolve({ filter: /^@noble\/(curves|hashes)\// }, async (args) => {
        if (!NOBLE_NESTED.test(args.importer) || args.pluginData?.shared) return undefined;
        const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: root, pluginData: { shared: true } });
        return resolved.errors.length > 0 ? undefined : { path: resolved.path, sideEffects: resolved.sideEffects };
      });
    },
  };
}

