// Guards the measured bundle decision (README "SQL Server access"): a database step's bundle
// carries the Entra token stand-in, not @azure/identity + MSAL, and stays far below the budget.
import { gzipSync } from 'node:zlib';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { bundleStep } from '../../scripts/build/bundle';

const STEP = 'backup-database';
const describeIfStep = existsSync(path.join(__dirname, '../../steps', STEP, 'main.ts')) ? describe : describe.skip;

describeIfStep('bundle of a step that uses the SQL access layer', () => {
  test('no @azure/identity or MSAL; base64(gzip) well under the 700 KB template budget', async () => {
    const bundle = await bundleStep(STEP, '0.0.0-test');
    expect(bundle.packages).toContain('node_modules/mssql');
    expect(bundle.packages.filter((p) => /@azure\/(identity|msal)/.test(p))).toEqual([]);
    expect(bundle.code.toString('utf8')).toContain('Microsoft Entra ID did not issue a token');
    const embedded = Math.ceil(gzipSync(bundle.code, { level: 9 }).length / 3) * 4;
    expect(embedded).toBeLessThan(560_000); // measured ~450 KB; with @azure/identity it was ~650 KB
  });
});
