// Lets `node -r ./scripts/register-ts.cjs file.ts` run our TypeScript scripts on Node 18/20,
// which cannot strip types themselves. esbuild is already our bundler, so no extra dependency.
'use strict';
const fs = require('node:fs');
const { transformSync } = require('esbuild');

require.extensions['.ts'] = function compileTypeScript(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const { code } = transformSync(source, {
    loader: 'ts',
    format: 'cjs',
    target: 'node18',
    sourcemap: 'inline',
    sourcefile: filename,
  });
  module._compile(code, filename);
};
