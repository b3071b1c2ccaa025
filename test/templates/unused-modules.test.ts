// The bundles replace `open` and `debug`, and share one copy of @noble/curves and @noble/hashes (see
// scripts/build/unused-modules.ts): a browser sign-in fails with what to do, mssql's logging prints
// nothing even with DEBUG=*, and age's post-quantum and X25519 keys still encrypt and decrypt.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bundleEntry } from '../../scripts/build/bundle';
import { NO_BROWSER_MESSAGE } from '../../scripts/build/unused-modules';

test('a browser sign-in fails clearly, DEBUG prints nothing, age keys of both kinds round-trip on the shared @noble copies', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'octopus-dr-unused-'));
  try {
    const bundle = await bundleEntry(path.join(__dirname, 'fixtures/unused-modules-probe.ts'), 'unused-modules-probe', 'test');
    expect(bundle.packages.filter((p) => /\/(open|debug|default-browser|supports-color)$/.test(p))).toEqual([]);
    expect(bundle.packages.filter((p) => p.includes('@noble/post-quantum/node_modules/'))).toEqual([]);
    expect(bundle.packages.filter((p) => /@noble\/(curves|hashes)$/.test(p))).toHaveLength(2);
    const program = path.join(dir, 'probe.js');
    writeFileSync(program, bundle.code);
    const child = spawnSync(process.execPath, [program], { encoding: 'utf8', env: { ...process.env, DEBUG: '*' } });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ debugEnabled: false, open: `error: ${NO_BROWSER_MESSAGE}`, hybrid: 'octopus', x25519: 'octopus' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
