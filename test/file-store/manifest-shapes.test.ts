// A file of 2 GiB or more must not make V8 rebuild every manifest record made before it (manifest.ts):
// each list's records keep the one shape (V8's "map") they were made with. A record whose field
// changed representation after it was made would have an older map than the last record.
import * as v8 from 'node:v8';
import { MANIFEST_FORMAT, manifestDirectoryRecord, manifestFileRecord, parseManifest, type FileStoreManifest } from '../../steps/engines/file-store/manifest';

v8.setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set: V8's own test functions, not reachable otherwise.
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

const ARCHIVE = 'octopus-file-store-20260301T100000Z-abcdef-full.zip';
const FIVE_GIB = 5 * 1024 ** 3;

/** Small sizes and whole-millisecond times first (small integers), then one 5 GiB package dated in 1970. */
function records(): { size: number; mtimeMs: number }[] {
  return [...Array.from({ length: 200 }, (_, i) => ({ size: 1000 + i, mtimeMs: 1_700_000_000_000 + i })), { size: FIVE_GIB, mtimeMs: 1000 }];
}

test('the records of a parsed manifest all keep one shape when a late file is 5 GiB', () => {
  // Written as text: records made here with the same keys would share their shape with the parsed
  // ones (V8 starts both from one map per number of keys) and change it before the parse.
  const fileRecords = records().map(
    (s, i) => `{"folder":"Packages","path":"p${i}.nupkg","size":${s.size},"mtimeMs":${s.mtimeMs},"mode":420,"sha256":"${'a'.repeat(64)}","archive":"${ARCHIVE}"}`,
  );
  const directoryRecords = ['{"folder":"Packages","path":"a","mtimeMs":1700000000000,"mode":493}', '{"folder":"Packages","path":"b","mtimeMs":1000,"mode":493}'];
  const text =
    `{"format":"${MANIFEST_FORMAT}","formatVersion":1,"archive":"${ARCHIVE}","mode":"Full","createdAt":"2026-03-01T10:00:00.000Z",` +
    `"toolVersion":"test","host":"host","platform":"linux","chain":["${ARCHIVE}"],` +
    `"folders":[{"name":"Packages","source":"/store/Packages","files":201,"bytes":0}],` +
    `"totals":{"files":201,"bytes":0,"directories":2,"storedFiles":201,"storedBytes":0},"warnings":[],"skipped":[],` +
    `"files":[${fileRecords.join(',')}],"directories":[${directoryRecords.join(',')}]}`;
  // JSON.parse itself first: parseManifest reads every record, and reading one rebuilds it.
  const parsed = JSON.parse(text) as FileStoreManifest;
  expect(parsed.files.at(-1)!.size).toBe(FIVE_GIB);
  expect(parsed.files.every((f) => haveSameMap(f, parsed.files[0]))).toBe(true);
  expect(haveSameMap(parsed.directories[0], parsed.directories[1])).toBe(true);
  // The text is a manifest as the backup writes it: the same keys, in the same order.
  const written = parseManifest(text, 'test.manifest.json');
  expect(written.files.map((f) => Object.keys(f))).toEqual(written.files.map(() => Object.keys(manifestFileRecord('Packages', '', 0, 0, 0, '', ''))));
  expect(Object.keys(written.directories[0])).toEqual(Object.keys(manifestDirectoryRecord('Packages', '', 0, 0)));
});
