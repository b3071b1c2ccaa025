// Fidelity: .NET System.Data.SqlClient (through pwsh 7) against the simulator, with no octopus-dr
// code in between. SqlClient reads parts of the protocol tedious ignores (DONE CurCmd, RETURNVALUE,
// datetime2 scale 7, the reset-connection flag, transaction manager requests).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPwsh } from '../helpers/runners';
import { SqlSimulator } from '../sql-simulator/server';

const pwsh = findPwsh();
const describeIfPwsh = pwsh ? describe : describe.skip;

describeIfPwsh('the simulator as .NET SqlClient sees it', () => {
  let sim: SqlSimulator;
  let dir: string;
  let result: Record<string, unknown>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'odr-sqlclient-fidelity-'));
    sim = await SqlSimulator.start({
      seed: {
        server: { defaultBackupPath: dir },
        databases: [{ name: 'Octopus', tables: [{ name: 'Thing', columns: [{ name: 'Id', type: 'nvarchar(50)' }, { name: 'Name', type: 'nvarchar(50)' }], rows: [['Things-1', 'one']] }] }],
        operationMs: 50,
      },
    });
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        pwsh!,
        ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', path.join(__dirname, 'sqlclient-fidelity.ps1')],
        { env: { ...process.env, ODR_FIDELITY_CS: sim.connectionString({ database: 'master' }), ODR_FIDELITY_DIR: dir }, timeout: 120_000 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(String(out))),
      ),
    );
    result = JSON.parse(stdout.trim().split('\n').pop()!);
  }, 180_000);

  afterAll(async () => {
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('INSERT, UPDATE and DELETE report their rows affected (DONE with COUNT and the statement CurCmd)', () => {
    expect([result.insert, result.update, result.delete, result.updateRpc]).toEqual([2, 1, 2, 1]);
  });

  test('datetime2(7) keeps 100 ns precision', () => {
    expect(result.datetime2Ticks).toBe('638699184001234567');
  });

  test('OUTPUT parameters are returned', () => {
    expect(result.output).toBe(42);
    expect(result.outputText).toBe('twice 21');
  });

  test('RAISERROR substitutes its format arguments', () => {
    expect(result.raiserror).toBe('42 percent processed (step,    ab|7   |-005|%).');
  });

  test('BACKUP DATABASE takes a [bracketed] and a bare name', () => {
    expect(result.backups).toEqual(['bare.bak', 'bracketed.bak']);
  });

  test('transactions are refused with an error (API and T-SQL), and the connection stays usable', () => {
    expect(result.beginTransactionApi).toBe(50999);
    expect(result.beginTransactionText).toBe(50999);
    expect(result.usableAfterTransaction).toBe(1);
    expect(sim.events.some((e) => e.kind === 'disconnect' && e.at < 0)).toBe(false);
  });

  test('a pooled connection handed out again is reset (its USE undone)', () => {
    expect(result.beforeReset).toBe('Octopus');
    expect(result.afterReset).toBe('master');
    expect(sim.events.some((e) => e.kind === 'reset-connection')).toBe(true);
  });
});
