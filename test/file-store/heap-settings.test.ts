// The V8 heap settings a file-store run holds (heap.ts): while held, the main thread's young
// generation stays at its first size however much garbage is made; once every holder lets go,
// V8's default (it doubles when it fills) is back. Run in a fresh Node process, since the jest
// worker's young generation has already grown.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

const PROBE = `
import { getHeapSpaceStatistics } from 'node:v8';
import { keepHeapSmall } from ${JSON.stringify(path.join(__dirname, '../../steps/engines/file-store/heap'))};
const youngMiB = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
let sink = [];
function churn() {
  // ~200 MiB of short-lived objects, some surviving a while (what makes V8 grow the young generation).
  for (let i = 0; i < 2_000_000; i++) {
    sink.push({ i, s: 'x' + i });
    if (sink.length > 50_000) sink = [];
  }
}
const first = youngMiB();
const putBack = keepHeapSmall({ readOnly: true });
const putBackToo = keepHeapSmall({ readOnly: false });
churn();
const held = youngMiB();
putBack();
churn();
const oneHolder = youngMiB();
putBackToo();
churn();
console.log(JSON.stringify({ first, held, oneHolder, released: youngMiB() }));
`;

test('while a run holds the heap settings the young generation does not grow; V8 grows it again once the last run lets go', () => {
  const bundle = buildSync({ stdin: { contents: PROBE, resolveDir: __dirname, loader: 'ts' }, bundle: true, platform: 'node', write: false, format: 'cjs' });
  const output = execFileSync(process.execPath, ['-e', bundle.outputFiles[0].text], { encoding: 'utf8' });
  const sizes = JSON.parse(output) as { first: number; held: number; oneHolder: number; released: number };
  // Its first size is one 1 MiB semi-space (V8 reports 1-2 MiB depending on the moment); left alone it grows to 2 x 16 MiB.
  expect(sizes.first).toBeLessThanOrEqual(2);
  expect(sizes.held).toBeLessThanOrEqual(2);
  expect(sizes.oneHolder).toBeLessThanOrEqual(2);
  expect(sizes.released).toBeGreaterThanOrEqual(8);
});
