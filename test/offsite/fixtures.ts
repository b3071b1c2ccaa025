// Local backup sets for the offsite tests: real database backups (the built backup-database step
// against the SQL Server simulator) and real file-store backups (the file-store engine).
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { resolveFolders, type FileStoreFolderName } from '../../steps/engines/file-store/folders';
import { runStep } from '../../steps/runtime/run-step';
import { MemorySink } from '../../steps/runtime/console-output';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { copyOffsite as template } from '../../templates/copy-offsite';
import { copyOffsiteStep } from '../../steps/copy-offsite/copy-offsite';
import { keyIdOf } from '../../steps/engines/master-key';
import { backup, Lab, octopusTables } from '../database/harness';
import { octopusDatabase } from '../master-key/octopus-database';
import { makeStore, pseudoRandomBytes, silentLog, write } from '../file-store/helpers';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import type { Provider } from './providers';

export interface Backups {
  lab: Lab;
  database: string;
  fileStore: string;
  home: string;
}

/** One full, one differential and two log backups of `Octo`; a full and an incremental file-store set. */
export async function makeBackups(): Promise<Backups> {
  const lab = new Lab();
  await lab.start({}, [{ name: 'Octo', recoveryModel: 'FULL', tables: octopusTables() }]);
  const database = path.join(lab.root, 'sql');
  mkdirSync(database, { recursive: true });
  const take = async (...args: string[]) => {
    const run = await backup(lab, 'Octo', '--backup-directory', database, '--no-copy-only', ...args);
    if (run.code !== 0) throw new Error(`backup failed: ${run.stderr}${run.stdout}`);
  };
  await take();
  lab.insertProject('Octo', 'Projects-2');
  await take('--backup-type', 'Differential');
  lab.insertProject('Octo', 'Projects-3');
  await take('--backup-type', 'Log');
  lab.insertProject('Octo', 'Projects-4');
  await take('--backup-type', 'Log');

  const home = path.join(lab.root, 'home');
  makeStore(home);
  // Larger than one upload part (8 MiB), so uploads go in parts.
  write(path.join(home, 'Packages', 'feeds-builtin', 'Acme.Huge.3.0.0.zip'), pseudoRandomBytes(19 * 1024 * 1024 + 5, 3));
  const fileStore = path.join(lab.root, 'fs');
  mkdirSync(fileStore, { recursive: true });
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs', 'Artifacts', 'Packages', 'EventExports'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  write(path.join(home, 'TaskLogs', 'servertasks-new.log.txt'), 'a new task log\n');
  await new Promise((r) => setTimeout(r, 1100)); // a distinct archive time stamp
  await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Incremental', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  return { lab, database, fileStore, home };
}

/**
 * A lab whose `Octopus` database holds a real master key's encrypted values: a full backup, then a
 * project and a log backup, twice (three projects, a chain of three sets), into `<lab>/sql`.
 */
export async function labWithOctopusChain(key: Buffer): Promise<{ lab: Lab; backups: string }> {
  const lab = new Lab();
  const db = octopusDatabase({ name: 'Octopus', key, variableSets: 4, frozenVariableSets: 1, certificateTable: 'Configuration' });
  const have = new Set((db.seed.tables ?? []).map((t) => t.name.toLowerCase()));
  const tables = [...(db.seed.tables ?? []), ...(octopusTables() ?? []).filter((t) => !have.has(t.name.toLowerCase()))];
  await lab.start({ operationMs: 50 }, [{ ...db.seed, name: 'Octopus', recoveryModel: 'FULL', tables }]);
  const backups = path.join(lab.root, 'sql');
  mkdirSync(backups);
  const take = async (...args: string[]) => {
    const run = await lab.run('backup-database', 'Octopus', ['--backup-directory', backups, '--no-copy-only', '--master-key-id', keyIdOf(key), ...args]);
    if (run.code !== 0) throw new Error(`backup failed: ${run.result}\n${run.stderr}`);
  };
  await take();
  lab.insertProject('Octopus', 'Projects-2');
  await take('--backup-type', 'Log');
  lab.insertProject('Octopus', 'Projects-3');
  await take('--backup-type', 'Log');
  return { lab, backups };
}

export async function dropBackups(b: Backups | undefined): Promise<void> {
  if (!b) return;
  await b.lab.stop();
  rmSync(b.lab.root, { recursive: true, force: true });
}

export interface InProcessRun {
  code: number;
  out: string;
  err: string;
  outputs: Record<string, string>;
  result: string | undefined;
}

/** Runs the copy step in process, as the CLI with service messages. */
export async function runCopy(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<InProcessRun> {
  const sink = new MemorySink();
  const code = await runStep(template, copyOffsiteStep, { argv: ['--service-messages', ...argv], env: { ...env }, sink, handleSignals: false });
  return { code, out: sink.out, err: sink.err, outputs: outputVariablesIn(sink.out), result: resultMessageIn(sink.out) };
}

/** A file-store home under `work` (makeStore) and one full backup of `include` in `<work>/fs`: the archive's path. */
export async function fileStoreFullBackup(work: string, include: FileStoreFolderName[] = ['TaskLogs', 'Artifacts', 'Packages']): Promise<{ home: string; fileStore: string; archive: string }> {
  const home = path.join(work, 'home');
  makeStore(home);
  const fileStore = path.join(work, 'fs');
  mkdirSync(fileStore);
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include, labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  const set = await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test' }, quietEngineContext({ log: silentLog }));
  return { home, fileStore, archive: set.archivePath };
}

/** For a suite: the provider started and makeBackups() taken before its tests; both stopped and removed after them. */
export function suiteWithBackups(provider: Provider): { readonly backups: Backups } {
  const suite = {} as { backups: Backups };
  beforeAll(async () => {
    await provider.start();
    suite.backups = await makeBackups();
  }, 180_000);
  afterAll(async () => {
    await dropBackups(suite.backups);
    await provider.stop();
  });
  return suite;
}

/** A file-store home under `work` and an empty backup folder beside it; `fullAt` takes a full backup of TaskLogs dated `at` and gives its name without ".zip". */
export function datedFileStoreBackups(work: string): { home: string; fileStore: string; fullAt(at: Date): Promise<string> } {
  const home = path.join(work, 'home');
  makeStore(home);
  const fileStore = path.join(work, 'fs');
  mkdirSync(fileStore);
  const folders = resolveFolders({ homeDirectory: home, overrides: [], include: ['TaskLogs'], labels: { homeDirectory: 'h', overrides: 'o', include: 'i' } }).folders;
  return {
    home,
    fileStore,
    async fullAt(at: Date) {
      const set = await backupFileStore({ folders, backupDirectory: fileStore, mode: 'Full', skipUnreadable: false, toolVersion: 'test', now: () => at }, quietEngineContext({ log: silentLog }));
      return path.basename(set.archivePath, '.zip');
    },
  };
}
