import { bundleStep } from '../../scripts/build/bundle';
import { reproducibleGzip } from '../../scripts/build/index';
import { bashRunner, powerShellRunner } from '../../scripts/build/runners';
import { checkWorker } from '../../templates/check-worker';

test('the same sources give byte-identical bundles, gzip and runners', async () => {
  const first = await bundleStep(checkWorker.stepId, '1.2.3');
  const second = await bundleStep(checkWorker.stepId, '1.2.3');
  expect(second.code.equals(first.code)).toBe(true);
  expect(second.licenses).toBe(first.licenses);
  const gz1 = reproducibleGzip(first.code);
  const gz2 = reproducibleGzip(second.code);
  expect(gz1.equals(gz2)).toBe(true);
  // No timestamp and an "unknown" OS byte in the gzip header.
  expect(gz1.readUInt32LE(4)).toBe(0);
  expect(gz1[9]).toBe(0xff);
  expect(bashRunner(checkWorker, gz1, '1.2.3')).toBe(bashRunner(checkWorker, gz2, '1.2.3'));
  expect(powerShellRunner(checkWorker, gz1, '1.2.3')).toBe(powerShellRunner(checkWorker, gz2, '1.2.3'));
});
