// The bundles leave iconv-lite's double-byte code page tables out (see scripts/build/code-page-tables.ts):
// single-byte code pages still decode, and a double-byte one fails with what to do, not with wrong text.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bundleEntry } from '../../scripts/build/bundle';
import { DOUBLE_BYTE_TABLE_MESSAGE } from '../../scripts/build/code-page-tables';

test('bundles decode single-byte code pages and refuse double-byte ones with a clear message', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'octopus-dr-cpt-'));
  try {
    const bundle = await bundleEntry(path.join(__dirname, 'fixtures/code-page-probe.ts'), 'code-page-probe', 'test');
    expect(bundle.code.length).toBeLessThan(250_000);
    const program = path.join(dir, 'probe.js');
    writeFileSync(program, bundle.code);
    const out = JSON.parse(execFileSync(process.execPath, [program], { encoding: 'utf8' }));
    expect(out.cp1252).toBe('€é');
    expect(out.cp932).toBe(`error: ${DOUBLE_BYTE_TABLE_MESSAGE}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
