// Jest transformer: TypeScript to CommonJS with esbuild (type checking is `npm run typecheck`).
'use strict';
const crypto = require('node:crypto');
const { transformSync } = require('esbuild');

module.exports = {
  process(source, filename) {
    const { code, map } = transformSync(source, {
      loader: filename.endsWith('.tsx') ? 'tsx' : 'ts',
      format: 'cjs',
      target: 'node18',
      sourcemap: 'external',
      sourcefile: filename,
    });
    return { code, map };
  },
  getCacheKey(source, filename) {
    return crypto.createHash('sha256').update(source).update(filename).update('esbuild-ts-1').digest('hex');
  },
};
