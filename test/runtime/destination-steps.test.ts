// The location and lock rules in each step, run in-process through runStep (the bundles are
// driven in test/faults/destinations.test.ts): the same words in every step, exit 2 before any
// connection, and a held lock named with its holder.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { backupDatabase } from '../../steps/backup-database/backup-database';
import { backupFileStoreStep } from '../../steps/backup-file-store/backup-file-store';
import { restoreDatabaseStep } from '../../steps/restore-database/restore-database';
import { restoreFileStoreStep } from '../../steps/restore-file-store/restore-file-store';
import { MemorySink } from '../../steps/runtime/console-output';
import { archiveNameFor, isOwnArchiveName } from '../../steps/engines/file-store/manifest';
import { acquireLock } from '../../steps/runtime/lock';
import { runStep } from '../../steps/runtime/run-step';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { testLatestBackup } from '../../steps/test-restore/test-restore';
import { backupDatabase as backupDatabaseTemplate } from '../../templates/backup-database';
import { backupFileStore as backupFileStoreTemplate } from '../../templates/backup-file-store';
import type { ParameterDefinition, StepTemplate } from '../../templates/model';
import { restoreDatabase as restoreDatabaseTemplate } from '../../templates/restore-database';
import { restoreFileStore as restoreFileStoreTemplate } from '../../templates/restore-file-store';
import { testRestore as testRestoreTemplate } from '../../templates/test-restore';

const work = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-destination-steps-'));
const home = path.join(work, 'home');
let connections = 0;
let server: net.Server;
let sqlEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  mkdirSync(path.join(home, 'TaskLogs'), { recursive: true });
  // A backup of 0 files fails (issue 11, invariant 1): the store holds one task log.
  writeFileSync(path.join(home, 'TaskLogs', 'servertasks-1.log.txt'), 'Task 1\n');
  // Counts connection attempts: a parameter error must come before any.
  server = net.createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  sqlEnv = { OCTOPUSDR_SQL_CONNECTIONSTRING: `Server=127.0.0.1,${port};Database=Octopus;User ID=sa;Password=x;Encrypt=False`, OCTOPUSDR_MASTERKEY: 'AAAAAAAAAAAAAAAAAAAAAA==' };
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

async function run<Ps extends Record<string, ParameterDefinition>>(template: StepTemplate<Ps>, step: Parameters<typeof runStep<Ps>>[1], argv: string[], env: NodeJS.ProcessEnv = {}) {
  const sink = new MemorySink();
  const code = await runStep(template, step, { argv: ['--service-messages', ...argv], env: { ...env }, sink, handleSignals: false });
  return { code, result: resultMessageIn(sink.out) ?? '', out: sink.out };
}

const HOW = (label: string, name: string, flag: string) => `set "${label}" (${name}) in the step, or --${flag} on the command line`;

test('every step words a relative path the same way, names it by its label, and exits 2 before connecting', async () => {
  const cases = [
    { run: () => run(backupFileStoreTemplate, backupFileStoreStep, ['--home-directory', home, '--file-store-backup-directory', 'fs']), label: 'File store backup directory', value: 'fs' },
    { run: () => run(backupDatabaseTemplate, backupDatabase, ['--backup-directory-on-worker', 'sql'], sqlEnv), label: 'Backup directory on this worker', value: 'sql' },
    { run: () => run(restoreDatabaseTemplate, restoreDatabaseStep, ['--source', 'sql'], sqlEnv), label: 'Backup to restore', value: 'sql' },
    { run: () => run(restoreFileStoreTemplate, restoreFileStoreStep, ['--source', 'fs', '--verify-only']), label: 'Backup to restore', value: 'fs' },
    { run: () => run(testRestoreTemplate, (p, c) => testLatestBackup(p, c), ['--source', 'sql'], sqlEnv), label: 'Backup to restore', value: 'sql' },
  ];
  for (const c of cases) {
    const { code, result } = await c.run();
    expect(code).toBe(2);
    expect(result).toMatch(
      new RegExp(`^"${c.label}" must be an absolute path as this worker \\(Linux\\) sees it \\(e\\.g\\. /var/backups/octopus\\), not "${c.value}": a relative path would depend on the folder the step starts in: set "${c.label}"`),
    );
  }
  expect(connections).toBe(0);
});

test('backup-file-store: a missing directory exits 2 and is not created; the same wording as the database backup', async () => {
  const missing = path.join(work, 'unmounted', 'fs');
  const fileStore = await run(backupFileStoreTemplate, backupFileStoreStep, ['--home-directory', home, '--file-store-backup-directory', missing]);
  expect(fileStore.code).toBe(2);
  expect(fileStore.result).toBe(
    `"File store backup directory" ${missing} does not exist on this worker. Create it (or mount the share) first: octopus-dr never creates it, so that an unmounted share cannot silently become a local folder: ` +
      `${HOW('File store backup directory', 'OctopusDr.FileStore.BackupDirectory', 'file-store-backup-directory')}.`,
  );
  const database = await run(backupDatabaseTemplate, backupDatabase, ['--backup-directory-on-worker', missing], sqlEnv);
  expect(database.code).toBe(2);
  expect(database.result).toBe(
    `"Backup directory on this worker" ${missing} does not exist on this worker. Create it (or mount the share) first: octopus-dr never creates it, so that an unmounted share cannot silently become a local folder: ` +
      `${HOW('Backup directory on this worker', 'OctopusDr.Sql.BackupDirectoryOnWorker', 'backup-directory-on-worker')}.`,
  );
  expect(existsSync(path.join(work, 'unmounted'))).toBe(false);
  expect(connections).toBe(0);
});

test('backup-file-store: a held lock is named, nothing is written, and the lock is released after a successful run', async () => {
  const out = path.join(work, 'held');
  mkdirSync(out);
  const held = await acquireLock({ directory: out, key: 'file-store', resource: 'file-store backups', step: 'backup-file-store', waitMs: 0, log: { info: () => undefined, warn: () => undefined } });
  const refused = await run(backupFileStoreTemplate, backupFileStoreStep, ['--home-directory', home, '--file-store-backup-directory', out, '--lock-wait-minutes', '0']);
  expect(refused.code).toBe(1);
  expect(refused.result).toMatch(new RegExp(`^Another run is writing file-store backups in ${out}: backup-file-store \\(process ${process.pid} on ${os.hostname()}, since [^)]+\\)\\. Nothing was changed\\.`));
  expect(readdirSync(out)).toEqual(['.octopus-dr-file-store.lock']);
  await held.release();
  const ok = await run(backupFileStoreTemplate, backupFileStoreStep, ['--home-directory', home, '--include', 'TaskLogs', '--file-store-backup-directory', out]);
  expect({ code: ok.code, result: ok.result }).toEqual({ code: 0, result: expect.stringMatching(/^Full backup of/) });
  expect(readdirSync(out).filter((f) => f.endsWith('.lock'))).toEqual([]);
});

describe('file-store set names', () => {
  const when = new Date(Date.UTC(2026, 10, 27, 3, 4, 5));
  test('a random part beside the time, so two runs in the same second differ; older names still parse', () => {
    const names = new Set(Array.from({ length: 50 }, () => archiveNameFor(when, 'Full')));
    expect(names.size).toBe(50);
    for (const name of names) expect(name).toMatch(/^octopus-file-store-20261127T030405Z-[0-9a-f]{6}-full\.zip$/);
    expect(archiveNameFor(when, 'Incremental', 'a1b2c3')).toBe('octopus-file-store-20261127T030405Z-a1b2c3-incremental.zip');
    expect(() => archiveNameFor(when, 'Full', '../x')).toThrow(/6 hex/);
    for (const old of ['octopus-file-store-20261127T030405Z-full.zip', 'octopus-file-store-20261127T030405Z-2-incremental.zip']) expect(isOwnArchiveName(old)).toBe(true);
    expect(isOwnArchiveName('octopus-file-store-20261127T030405Z-a1b2c3-full.zip')).toBe(true);
    expect(isOwnArchiveName('octopus-file-store-20261127T030405Z-xyz-full.zip')).toBe(false);
  });
});
