// The incremental change test on its own: which files an incremental stores, reuses, or must hash.
import { changeSincePreviousSet, RACY_WINDOW_MS } from '../../steps/engines/file-store';

const setTaken = Date.parse('2026-11-30T12:00:00Z');
const longBefore = setTaken - 3_600_000;

test('a file the previous set does not have is new', () => {
  expect(changeSincePreviousSet({ size: 10, mtimeMs: longBefore }, undefined, setTaken)).toBe('new');
});

test('a different size is a change, whatever the mtime says', () => {
  expect(changeSincePreviousSet({ size: 11, mtimeMs: longBefore }, { size: 10, mtimeMs: longBefore }, setTaken)).toBe('changed');
});

test('same size and mtime, modified well before the previous set: unchanged, reused without reading it', () => {
  expect(changeSincePreviousSet({ size: 10, mtimeMs: longBefore }, { size: 10, mtimeMs: longBefore }, setTaken)).toBe('unchanged');
});

test('same size but another mtime (touched, or rewritten with the same length): only the hash can tell', () => {
  expect(changeSincePreviousSet({ size: 10, mtimeMs: longBefore + 1 }, { size: 10, mtimeMs: longBefore }, setTaken)).toBe('hash');
  // An mtime set back (a restore, or a copy keeping times) is no proof either.
  expect(changeSincePreviousSet({ size: 10, mtimeMs: longBefore - 1 }, { size: 10, mtimeMs: longBefore }, setTaken)).toBe('hash');
});

test('same size and mtime, but modified within the racy window of the previous set: hashed', () => {
  // The file may have been written again within the same mtime tick, right after it was read.
  const racy = setTaken - RACY_WINDOW_MS + 1;
  expect(changeSincePreviousSet({ size: 10, mtimeMs: racy }, { size: 10, mtimeMs: racy }, setTaken)).toBe('hash');
  expect(changeSincePreviousSet({ size: 10, mtimeMs: setTaken - RACY_WINDOW_MS }, { size: 10, mtimeMs: setTaken - RACY_WINDOW_MS }, setTaken)).toBe('hash');
  const justOutside = setTaken - RACY_WINDOW_MS - 1;
  expect(changeSincePreviousSet({ size: 10, mtimeMs: justOutside }, { size: 10, mtimeMs: justOutside }, setTaken)).toBe('unchanged');
  // A file modified after the previous set was taken, with an mtime the set somehow has: hashed.
  expect(changeSincePreviousSet({ size: 10, mtimeMs: setTaken + 5000 }, { size: 10, mtimeMs: setTaken + 5000 }, setTaken)).toBe('hash');
});

test('an empty file is compared like any other', () => {
  expect(changeSincePreviousSet({ size: 0, mtimeMs: longBefore }, { size: 0, mtimeMs: longBefore }, setTaken)).toBe('unchanged');
  expect(changeSincePreviousSet({ size: 0, mtimeMs: longBefore }, { size: 1, mtimeMs: longBefore }, setTaken)).toBe('changed');
});
