import { brotliDecompressSync } from 'node:zlib';
import { bundleStep } from '../../scripts/build/bundle';
import { packBundle } from '../../scripts/build/index';
import { bashRunner, powerShellRunner } from '../../scripts/build/runners';
import { checkWorker } from '../../templates/check-worker';

test('the same sources give byte-identical bundles, packed payloads and runners', async () => {
  const first = await bundleStep(checkWorker.stepId, '1.2.3');
  const second = await bundleStep(checkWorker.stepId, '1.2.3');
  expect(second.code.equals(first.code)).toBe(true);
  expect(second.licenses).toBe(first.licenses);
  const gz1 = packBundle(first.code);
  const gz2 = packBundle(second.code);
  expect(gz1.equals(gz2)).toBe(true);
  // It unpacks to the bundle, as the runners' node does.
  expect(brotliDecompressSync(gz1).equals(first.code)).toBe(true);
  expect(bashRunner(checkWorker, gz1, '1.2.3')).toBe(bashRunner(checkWorker, gz2, '1.2.3'));
  expect(powerShellRunner(checkWorker, gz1, '1.2.3')).toBe(powerShellRunner(checkWorker, gz2, '1.2.3'));
});
