// Loaded before the file-store engine (rt-ret-deflate-pieces.test.ts): Node's zlib.deflateRaw
// fails on request for the pieces of the manifest entry (those ended with a sync flush), the way
// zlib fails when it runs out of memory, so that zip-writer.ts takes it as its deflateRaw.
import zlib = require('node:zlib');

export const deflateFault: { mode: 'none' | 'async' | 'sync' } = { mode: 'none' };
export const originalDeflateRaw = zlib.deflateRaw;

(zlib as unknown as { deflateRaw: unknown }).deflateRaw = function deflateRawWithFault(this: unknown, ...args: unknown[]): unknown {
  const options = args[1] as zlib.ZlibOptions | undefined;
  const callback = args[2];
  if (deflateFault.mode !== 'none' && options?.finishFlush === zlib.constants.Z_SYNC_FLUSH && typeof callback === 'function') {
    const error = Object.assign(new Error('zlib: insufficient memory'), { code: 'Z_MEM_ERROR', errno: zlib.constants.Z_MEM_ERROR });
    if (deflateFault.mode === 'sync') throw error;
    setImmediate(() => (callback as (e: Error | null, b?: Buffer) => void)(error));
    return undefined;
  }
  return (originalDeflateRaw as unknown as (...a: unknown[]) => unknown).apply(this, args);
};
