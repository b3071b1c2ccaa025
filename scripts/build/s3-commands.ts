// The restores load the S3 client lazily (require, so a restore from a folder never loads the SDK
// on Node.js 18), and esbuild keeps every `export *` of a lazily loaded ES module: through
// @aws-sdk/client-s3's index that is the aggregated S3 class with all ~100 commands, the waiters
// and the paginators (39 KB minified, 13 KB of brotli payload in test-restore). Our own files import
// from the package's index by name; here, and only for them, the index is a module that re-exports
// those names from their own files. A name not listed fails the build ("No matching export").
import * as path from 'node:path';
import type { Plugin } from 'esbuild';

/** What steps/ imports from @aws-sdk/client-s3, and the file of the package's ES-module build that defines it. */
const S3_EXPORTS: Record<string, string> = {
  S3Client: 'S3Client.js',
  S3ServiceException: 'models/S3ServiceException.js',
  GetObjectCommand: 'commands/GetObjectCommand.js',
  HeadObjectCommand: 'commands/HeadObjectCommand.js',
  ListObjectsV2Command: 'commands/ListObjectsV2Command.js',
  DeleteObjectCommand: 'commands/DeleteObjectCommand.js',
  PutObjectCommand: 'commands/PutObjectCommand.js',
};

export function onlyTheS3CommandsWeUse(root: string): Plugin {
  const stepsFolder = path.join(root, 'steps') + path.sep;
  return {
    name: 'only-the-s3-commands-we-use',
    setup(build) {
      build.onResolve({ filter: /^@aws-sdk\/client-s3$/ }, (args) => (args.importer.startsWith(stepsFolder) ? { path: 'client-s3', namespace: 's3-commands' } : undefined));
      build.onLoad({ filter: /.*/, namespace: 's3-commands' }, () => ({
        contents: Object.entries(S3_EXPORTS)
          .map(([name, file]) => `export { ${name} } from '@aws-sdk/client-s3/dist-es/${file}';`)
          .join('\n'),
        resolveDir: root,
        loader: 'js',
      }));
    },
  };
}
