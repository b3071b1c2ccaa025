// Sizes in the file-store steps' log lines: one formatter, so a plan line and the summary below it
// use the same unit, and a small store does not show as "0.0 MB" or "0 KB".
import { counted, formatBytes } from '../../steps/runtime/format';

test('sizes read naturally from bytes to gigabytes', () => {
  expect(formatBytes(0)).toBe('0 bytes');
  expect(formatBytes(37)).toBe('37 bytes');
  expect(formatBytes(1_000)).toBe('1 KB');
  expect(formatBytes(201_234)).toBe('201 KB');
  expect(formatBytes(7_900_000)).toBe('7.9 MB');
  expect(formatBytes(3_100_000_000)).toBe('3.10 GB');
});

test('counts take their noun in the right number (before: "Retention (1 days, at least 1 sets kept)")', () => {
  expect(`Retention (${counted(1, 'day')}, at least ${counted(1, 'set')} kept)`).toBe('Retention (1 day, at least 1 set kept)');
  expect(counted(14, 'day')).toBe('14 days');
  expect(counted(0, 'backup set')).toBe('0 backup sets');
  expect(counted(2, 'copy', 'copies')).toBe('2 copies');
});
