// Injected into every bundle: ES modules bundled into CommonJS (e.g. @azure/storage-common's
// crc64) read import.meta.url, which CommonJS lacks; this gives it the bundle's own file URL.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;
