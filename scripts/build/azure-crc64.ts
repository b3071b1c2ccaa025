// @azure/storage-common carries a CRC64 calculator compiled to WebAssembly (crc64.js, 83 KB
// minified, most of it an embedded wasm binary), used only when a caller asks the Blob SDK for
// CRC64 content validation (contentChecksumAlgorithm "StorageCrc64" or "Auto"). octopus-dr never
// does: it checks the SHA-256 of every object against its offsite record. So it is left out, and
// anything that still asked for it would fail saying so instead of computing a wrong checksum.
import type { Plugin } from 'esbuild';

export const AZURE_CRC64_MESSAGE =
  'CRC64 content validation of Azure Blob transfers is left out of octopus-dr\'s bundles (its steps check every object\'s SHA-256 ' +
  'instead); tell the octopus-dr maintainers which step asked for it.';

export function withoutAzureCrc64(): Plugin {
  return {
    name: 'without-azure-crc64',
    setup(build) {
      build.onResolve({ filter: /^\.\/crc64\.js$/ }, (args) =>
        /@azure[\\/]storage-common[\\/]/.test(args.importer) ? { path: args.path, namespace: 'azure-crc64' } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'azure-crc64' }, () => ({
        contents: `export default function NativeCRC64() { return Promise.reject(new Error(${JSON.stringify(AZURE_CRC64_MESSAGE)})); }`,
        loader: 'js',
      }));
    },
  };
}
