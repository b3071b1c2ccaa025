// The benchmark's false-pass model must describe the real text rule: compare its V(m) with an
// exhaustive count over every 1- and 2-byte string.
import { textProbabilities, valueFalsePassProbability } from '../../scripts/bench/master-key';
import { classifyText } from '../../steps/engines/master-key/decrypt';

test('V(1) and V(2) equal exhaustive enumeration of the text rule', () => {
  const v = textProbabilities(32);
  let ok1 = 0;
  for (let a = 0; a < 256; a++) if (classifyText(Buffer.from([a])) === 'ok') ok1++;
  let ok2 = 0;
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (classifyText(Buffer.from([a, b])) === 'ok') ok2++;
  expect(v[1]).toBeCloseTo(ok1 / 256, 15);
  expect(v[2]).toBeCloseTo(ok2 / 65536, 15);
  // A one-block value under a wrong key passes padding + text far less often than padding alone (1/255).
  expect(valueFalsePassProbability(1, v)).toBeLessThan(1e-7);
});
