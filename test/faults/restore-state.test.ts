// Faults during restores (and a backup): a failed or cancelled restore says exactly what state it
// left and how to get back, rolls back by itself on a failure unless told not to, and loses
// nothing. The built steps run as an operator runs them (plain command line, no service
// messages) against the SQL Server simulator and real folders.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { resolveBackupSource, restoreFileStore } from '../../steps/engines/file-store/restore';
import { CancelledError, StepFailure } from '../../steps/runtime/errors';
import { backup, Lab, octopusTables, PASSWORD, ROOT } from '../database/harness';
import { makeStore, runInProcess, runCommand, snapshot, tempDir as makeTempDir, write } from '../file-store/helpers';
import { builtStep } from '../helpers/bundle';
import { asNobodyArgs, canRunAsNobody, NOBODY_UID } from '../helpers/unprivileged';
import { contentOf } from '../sql-simulator/engine/model';
import { restoreFileStore as restoreFileStoreTemplate } from '../../templates/restore-file-store';
import { restoreFileStoreStep } from '../../steps/restore-file-store/restore-file-store';
import { runStep } from '../../steps/runtime/run-step';
import { resultMessageIn } from '../../steps/runtime/service-messages';
import { quietEngineContext } from '../../steps/runtime/engine-context';

interface PlainRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1) ?? '';

/** Runs a built step on the plain command line (what an operator sees in a disaster). */
function runPlain(lab: Lab, step: string, args: string[], options: { killWhen?: (stdout: string) => boolean; database?: string } = {}): Promise<PlainRun> {
  return lab.run(step, options.database ?? 'master', args, { killAfter: options.killWhen, plain: true });
}

/** Runs a command line exactly as printed, in a shell, from the checkout (where `npx octopus-dr` resolves). */
function runPrinted(lab: Lab, command: string): Promise<PlainRun> {
  const step = /octopus-dr (\S+)/.exec(command)?.[1];
  if (step) builtStep(step); // `npx octopus-dr <step>` runs build/steps/<step>.js: refuse it when stale
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, OCTOPUSDR_SQL_CONNECTIONSTRING: lab.connectionString('master') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function expectNoSecret(run: PlainRun): void {
  for (const text of [run.stdout, run.stderr]) {
    expect(text).not.toContain(PASSWORD);
    expect(text.toLowerCase()).not.toContain('password=');
  }
}

describe('restore-database: a failed or cancelled replace', () => {
  const lab = new Lab();
  /** Every table and row of a database, comparable. */
  const content = (name: string) =>
    JSON.stringify(contentOf(lab.sim.model.database(name)!), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  const stateOf = (name: string) => {
    const db = lab.sim.model.database(name)!;
    return `${db.state}, ${db.userAccess}`;
  };
  let standbyBefore: string;

  beforeAll(async () => {
    await lab.start({}, [
      { name: 'Octo', recoveryModel: 'FULL', tables: octopusTables([['Projects-2', 'Production']]) },
      { name: 'Standby', recoveryModel: 'FULL', tables: octopusTables([['Projects-Stale', 'Stale']]) },
    ]);
    expect((await backup(lab, 'Octo', '--backup-directory', lab.backups, '--backup-type', 'Full', '--no-copy-only')).code).toBe(0);
    lab.insertProject('Octo', 'Projects-3');
    expect((await backup(lab, 'Octo', '--backup-directory', lab.backups, '--backup-type', 'Log', '--no-copy-only')).code).toBe(0);
    standbyBefore = content('Standby');
    expect(lab.projectIds('Standby')).toContain('Projects-Stale');
  }, 60_000);
  afterAll(() => lab.stop());
  afterEach(() => {
    lab.sim.faults.length = 0;
    lab.sim.model.operationMs = 200;
  });

  /** The failure's last line is the command that restores the safety backup; run as printed, it brings the old 'Standby' back. */
  async function expectPrintedCommandBringsStandbyBack(run: PlainRun): Promise<void> {
    const command = lastLine(run.stderr).trim();
    expect(command).toMatch(/^npx octopus-dr restore-database --source \S+_SAFETY_\S+\.bak --target-database Standby --replace-existing$/);
    const back = await runPrinted(lab, command);
    expect(back.code).toBe(0);
    expect(stateOf('Standby')).toBe('ONLINE, MULTI_USER');
    expect(content('Standby')).toBe(standbyBefore);
  }

  const restoreArgs = ['--source', '', '--target-database', 'Standby', '--replace-existing'];
  const args = (...extra: string[]) => {
    const a = [...restoreArgs, ...extra];
    a[1] = lab.backups;
    return a;
  };

  test('SIGTERM during the replace names the state (RESTORING, SINGLE_USER), the safety backup and the command, which brings the old database back', async () => {
    lab.sim.model.operationMs = 4000;
    const run = await runPlain(lab, 'restore-database', args(), { killWhen: (out) => /restore the full backup.*percent processed/.test(out) });
    expect(run.code).toBe(143);
    expectNoSecret(run);
    // Read from the server: a cancelled replace leaves it RESTORING and SINGLE_USER.
    expect(stateOf('Standby')).toBe('RESTORING, SINGLE_USER');
    expect(run.stderr).toMatch(/Cancelled \(SIGTERM\) while restoring over the existing database 'Standby'/);
    expect(run.stderr).toContain("'Standby' is now RESTORING, SINGLE_USER (as SQL Server reports it)");
    const safety = /safety backup (\S+_SAFETY_\S+\.bak)/.exec(run.stderr)?.[1];
    expect(safety).toBeDefined();
    expect(existsSync(safety!)).toBe(true);
    const command = lastLine(run.stderr).trim();
    expect(command).toBe(`npx octopus-dr restore-database --source ${safety} --target-database Standby --replace-existing`);
    expect(run.stderr).toContain('OCTOPUSDR_SQL_CONNECTIONSTRING');

    lab.sim.model.operationMs = 200;
    const back = await runPrinted(lab, command);
    expect(back.code).toBe(0);
    expectNoSecret(back);
    expect(stateOf('Standby')).toBe('ONLINE, MULTI_USER');
    expect(content('Standby')).toBe(standbyBefore);
  }, 60_000);

  test('a connection dropped mid-RESTORE LOG rolls back from the safety backup: the old content is back, exit 1 says so', async () => {
    lab.sim.faults.push({ match: /^RESTORE LOG @database/m, dropMidStream: true });
    const run = await runPlain(lab, 'restore-database', args());
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toMatch(/Restoring over the existing database 'Standby' failed: the connection to SQL Server was lost during "Restore the log backup WITH RECOVERY"/);
    expect(run.stderr).toMatch(/Rolled back: 'Standby' was restored from the safety backup \S+_SAFETY_\S+\.bak and holds its previous content again; it is ONLINE, MULTI_USER\./);
    expect(lastLine(run.stderr)).toBe('Nothing was lost (the safety backup is kept). Fix the cause above and run the restore again.');
    // The full backup had replaced it (new content) before the drop: the rollback really restored.
    const safety = /safety backup (\S+_SAFETY_\S+\.bak)/.exec(run.stderr)![1];
    expect(lab.sim.events.some((e) => e.kind === 'request' && /^IF DATABASEPROPERTYEX[\s\S]*RESTORE DATABASE/.test(e.detail ?? '') && e.params?.some((p) => p.value === safety))).toBe(true);
    expect(stateOf('Standby')).toBe('ONLINE, MULTI_USER');
    expect(content('Standby')).toBe(standbyBefore);
  }, 60_000);

  test('with "Roll back on failure" off, a dropped connection leaves it RESTORING and prints the command, which brings the old database back', async () => {
    lab.sim.faults.push({ match: /^RESTORE LOG @database/m, dropMidStream: true });
    const run = await runPlain(lab, 'restore-database', args('--no-roll-back-on-failure'));
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toContain('the connection to SQL Server was lost during "Restore the log backup WITH RECOVERY"');
    expect(run.stderr).toContain(`"Roll back on failure" is off, so it was left as it is: 'Standby' is now RESTORING, MULTI_USER (as SQL Server reports it): not usable by Octopus.`);
    expect(stateOf('Standby')).toBe('RESTORING, MULTI_USER');
    await expectPrintedCommandBringsStandbyBack(run);
  }, 60_000);

  test('a rollback that fails too says so, names the state and prints the command, which brings the old database back', async () => {
    lab.sim.faults.push({ match: /^RESTORE LOG @database/m, dropMidStream: true }, { match: /RESTORE DATABASE @database/, skip: 1, dropMidStream: true });
    const run = await runPlain(lab, 'restore-database', args());
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toMatch(
      /Rolling back from the safety backup failed: the connection to SQL Server was lost \(\w+\)\. 'Standby' is now RESTORING, MULTI_USER \(as SQL Server reports it\): not usable by Octopus\./,
    );
    expect(stateOf('Standby')).toBe('RESTORING, MULTI_USER');
    await expectPrintedCommandBringsStandbyBack(run);
  }, 60_000);

  test('a lost restore lock stops the rollback (another restore may have started): the state and the command are printed, which bring the old database back', async () => {
    let killed = false;
    // As RESTORE LOG arrives (after the restore checked its lock), the session holding the lock ends
    // (a DBA kills the sleeping session, one TCP flow drops); then the restore's own connection drops too.
    const killLockSession = () => {
      const holder = [...lab.sim.model.applicationLocks.values()][0];
      lab.sim.model.sessions.get(holder.sessionId)!.kill();
      killed = true;
    };
    lab.sim.faults.push({ match: /^RESTORE LOG @database/m, dropMidStream: true, onTaken: killLockSession });
    const eventsBefore = lab.sim.events.length;
    const run = await runPlain(lab, 'restore-database', args());
    expect(killed).toBe(true);
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toContain(
      "Not rolled back: the connection holding octopus-dr's restore lock on 'Standby' was lost, so another restore of it may have started since. 'Standby' is now RESTORING",
    );
    expect(run.stderr).not.toContain('Rolling back');
    const restoredFromSafety = (e: (typeof lab.sim.events)[number]) =>
      e.kind === 'request' && /^IF DATABASEPROPERTYEX[\s\S]*RESTORE DATABASE/.test(e.detail ?? '') && e.params?.some((p) => /_SAFETY_/.test(String(p.value)));
    expect(lab.sim.events.slice(eventsBefore).some(restoredFromSafety)).toBe(false);
    await expectPrintedCommandBringsStandbyBack(run);
  }, 60_000);

  test('a connection dropped mid safety backup: nothing restored, the database unchanged, the partial safety backup deleted', async () => {
    const before = readdirSync(lab.backups);
    lab.sim.faults.push({ match: /^BACKUP DATABASE/, dropMidStream: true });
    const run = await runPlain(lab, 'restore-database', args());
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toContain(`Restoring over the existing database 'Standby' failed: the connection to SQL Server was lost during "Safety backup (copy-only) of the existing 'Standby'`);
    expect(lastLine(run.stderr)).toMatch(
      /^Nothing was restored: 'Standby' is now ONLINE, MULTI_USER \(as SQL Server reports it\)\. The partial safety backup \S+_SAFETY_\S+\.bak was deleted\. Fix the cause above and run the restore again\.$/,
    );
    expect(readdirSync(lab.backups)).toEqual(before);
    expect(stateOf('Standby')).toBe('ONLINE, MULTI_USER');
    expect(content('Standby')).toBe(standbyBefore);
  }, 60_000);

  test('a connection dropped mid-RESTORE of a new database drops the partial copy before it reports, and says so last', async () => {
    lab.sim.faults.push({ match: /^RESTORE DATABASE @database/m, dropMidStream: true });
    const run = await runPlain(lab, 'restore-database', ['--source', lab.backups, '--target-database', 'Fresh']);
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toContain(`Restoring the new database 'Fresh' failed: the connection to SQL Server was lost during "Restore the full backup WITH NORECOVERY"`);
    expect(lastLine(run.stderr)).toBe('It did not exist before, so the partly restored copy was dropped: nothing else was changed. Fix the cause above and run the restore again.');
    expect(lab.sim.model.database('Fresh')).toBeUndefined();
    expect(content('Standby')).toBe(standbyBefore);
  }, 60_000);

  test('a connection dropped mid-BACKUP says the backup is incomplete, names the partial file, and records nothing', async () => {
    const folder = path.join(lab.root, 'dropped');
    mkdirSync(folder);
    lab.sim.faults.push({ match: /^BACKUP DATABASE/, dropMidStream: true });
    const run = await runPlain(lab, 'backup-database', ['--backup-directory', folder, '--backup-type', 'Full'], { database: 'Octo' });
    expect(run.code).toBe(1);
    expectNoSecret(run);
    expect(run.stderr).toMatch(/Full backup of 'Octo' is incomplete: the connection to SQL Server was lost during BACKUP/);
    // The simulator, like SQL Server, leaves the file the killed session had begun: named, then deleted.
    expect(run.stderr).toMatch(new RegExp(`The partial backup file ${folder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/Octo_\\S+\\.bak was deleted`));
    expect(run.stderr).toContain('nothing was recorded (no manifest was written)');
    expect(lastLine(run.stderr)).toBe('Check the network to SQL Server and its error log (a killed session shows there), then run the backup again.');
    expect(readdirSync(folder)).toEqual([]);
  }, 60_000);
});

describe('restore-file-store: a swap that stops half-way', () => {
  const nobody = canRunAsNobody() ? test : test.skip;
  const created: string[] = [];
  const tempDir = (prefix: string) => {
    const dir = makeTempDir(prefix);
    created.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of created) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * TaskLogs in a home folder the restoring account owns; Packages in a shared sticky folder
   * (like /tmp) but owned by root, so the account can stage beside it but cannot move it aside:
   * the swap fails at Packages, after TaskLogs was swapped in.
   */
  async function stickyLayout() {
    const root = tempDir('swap');
    const source = path.join(root, 'source');
    makeStore(source);
    const backups = path.join(root, 'backups');
    mkdirSync(backups);
    const made = await runInProcess('backup-file-store', ['--home-directory', source, '--file-store-backup-directory', backups, '--include', 'TaskLogs', '--include', 'Packages']);
    expect(made.code).toBe(0);
    chmodSync(backups, 0o755);
    for (const f of readdirSync(backups)) chmodSync(path.join(backups, f), 0o644);

    const home = path.join(root, 'home');
    const taskLogs = path.join(home, 'TaskLogs');
    write(path.join(taskLogs, 'old-task.log.txt'), 'the task log that was there\n');
    write(path.join(taskLogs, 'nested', 'old.txt'), 'nested\n');
    chownRecursive(home, NOBODY_UID);
    const shared = path.join(root, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const packages = path.join(shared, 'Packages');
    write(path.join(packages, 'feeds-builtin', 'Old.Package.1.0.0.nupkg'), 'old package bytes');
    return { root, source, backups, home, taskLogs, shared, packages, before: { taskLogs: snapshot(taskLogs), packages: snapshot(packages) } };
  }

  function chownRecursive(dir: string, uid: number): void {
    chownSync(dir, uid, uid);
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, name.name);
      if (name.isDirectory()) chownRecursive(full, uid);
      else chownSync(full, uid, uid);
    }
  }

  const restoreAsNobody = (l: Awaited<ReturnType<typeof stickyLayout>>, extra: string[] = []) =>
    runCommand('setpriv', asNobodyArgs(builtStep('restore-file-store'), [
      '--source', l.backups, '--home-directory', l.home, '--folders', `Packages=${l.packages}`, '--replace-existing', ...extra,
    ]));

  nobody('a failure half-way puts the swapped folders back (exit 1 says it rolled back; nothing lost, no leftovers)', async () => {
    const l = await stickyLayout();
    const run = await restoreAsNobody(l);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Swapping the restored folders in failed at Packages \(EPERM/);
    expect(run.stderr).toContain('Rolled back: TaskLogs, Packages hold their previous content again, as before the restore (nothing was lost).');
    expect(lastLine(run.stderr)).toMatch(/then run the restore again\.$/);
    expect(snapshot(l.taskLogs)).toEqual(l.before.taskLogs);
    expect(snapshot(l.packages)).toEqual(l.before.packages);
    expect(readdirSync(l.home)).toEqual(['TaskLogs']);
    expect(readdirSync(l.shared)).toEqual(['Packages']);
  }, 60_000);

  nobody('with "Roll back on failure" off, it says which folders are restored, which are old, where the kept ones are; its command puts them back', async () => {
    const l = await stickyLayout();
    const run = await restoreAsNobody(l, ['--no-roll-back-on-failure']);
    expect(run.code).toBe(1);
    const kept = readdirSync(l.home).find((n) => n.startsWith('TaskLogs.before-restore-'))!;
    expect(kept).toBeDefined();
    expect(run.stderr).toContain('"Roll back on failure" is off, so the restore is left half-done:');
    expect(run.stderr).toContain(`  - restored: TaskLogs (${l.taskLogs}); its previous content is kept in ${path.join(l.home, kept)}`);
    expect(run.stderr).toContain(`  - still their previous content: Packages (${l.packages})`);
    // Restored TaskLogs is the backup's; the old one is whole in the kept folder; Packages untouched.
    expect(snapshot(l.taskLogs)).toEqual(snapshot(path.join(l.source, 'TaskLogs')));
    expect(snapshot(path.join(l.home, kept))).toEqual(l.before.taskLogs);
    expect(snapshot(l.packages)).toEqual(l.before.packages);
    expect(readdirSync(l.shared)).toEqual(['Packages']);

    const command = lastLine(run.stderr).trim();
    const stamp = kept.slice('TaskLogs.before-restore-'.length);
    expect(command).toBe(`mv '${l.taskLogs}' '${l.taskLogs}.restored-${stamp}' && mv '${path.join(l.home, kept)}' '${l.taskLogs}'`);
    const putBack = await runCommand('sh', ['-c', command]);
    expect(putBack.code).toBe(0);
    expect(snapshot(l.taskLogs)).toEqual(l.before.taskLogs);
    expect(snapshot(`${l.taskLogs}.restored-${stamp}`)).toEqual(snapshot(path.join(l.source, 'TaskLogs')));
  }, 60_000);

  test('a cancel between folders stops there, does not roll back, and says which folders are restored and how to put them back', async () => {
    const root = tempDir('swap-cancel');
    const source = path.join(root, 'source');
    makeStore(source);
    const backups = path.join(root, 'backups');
    mkdirSync(backups);
    expect((await runInProcess('backup-file-store', ['--home-directory', source, '--file-store-backup-directory', backups, '--include', 'TaskLogs', '--include', 'Packages'])).code).toBe(0);
    const home = path.join(root, 'home');
    write(path.join(home, 'TaskLogs', 'old.txt'), 'old log\n');
    write(path.join(home, 'Packages', 'old.nupkg'), 'old package\n');
    const before = { taskLogs: snapshot(path.join(home, 'TaskLogs')), packages: snapshot(path.join(home, 'Packages')) };
    const set = await resolveBackupSource(backups);
    const controller = new AbortController();
    const log = {
      info: () => undefined,
      warn: () => undefined,
      // Octopus cancels right after the first folder is swapped in.
      verbose: (m: string) => {
        if (/^TaskLogs: restored into/.test(m)) controller.abort(new CancelledError('SIGTERM'));
      },
    };
    const failure = await restoreFileStore({
      set,
      destinations: [
        { name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' },
        { name: 'Packages', path: path.join(home, 'Packages'), origin: 'home' },
      ],
      replaceExisting: true,
      dryRun: false,
    }, quietEngineContext({ log, signal: controller.signal })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(StepFailure);
    const message = (failure as StepFailure).message;
    expect((failure as StepFailure).exitCode).toBe(143);
    const kept = readdirSync(home).find((n) => n.startsWith('TaskLogs.before-restore-'))!;
    expect(message).toContain('Cancelled (SIGTERM) while swapping the restored folders in.\nA cancel does not roll back; the restore is left half-done:');
    expect(message).toContain(`  - restored: TaskLogs (${path.join(home, 'TaskLogs')}); its previous content is kept in ${path.join(home, kept)}`);
    expect(message).toContain(`  - still their previous content: Packages (${path.join(home, 'Packages')})`);
    expect(lastLine(message)).toMatch(/^ {2}mv '.*TaskLogs' '.*TaskLogs\.restored-.*' && mv '.*TaskLogs\.before-restore-.*' '.*TaskLogs'$/);
    expect(snapshot(path.join(home, kept))).toEqual(before.taskLogs);
    expect(snapshot(path.join(home, 'Packages'))).toEqual(before.packages);
    expect(readdirSync(home).sort()).toEqual(['Packages', 'TaskLogs', kept].sort());
  }, 60_000);

  test('a cancel that arrives as the last folder is swapped in says the restore finished, not only "Cancelled"', async () => {
    const root = tempDir('swap-late-cancel');
    const source = path.join(root, 'source');
    makeStore(source);
    const backups = path.join(root, 'backups');
    mkdirSync(backups);
    expect((await runInProcess('backup-file-store', ['--home-directory', source, '--file-store-backup-directory', backups, '--include', 'TaskLogs', '--include', 'Packages'])).code).toBe(0);
    const home = path.join(root, 'home');
    write(path.join(home, 'TaskLogs', 'old.txt'), 'old log\n');
    const oldLogs = snapshot(path.join(home, 'TaskLogs'));
    const controller = new AbortController();
    let out = '';
    const sink = {
      isTTY: false,
      stderr: (t: string) => void (out += t),
      stdout: (t: string) => {
        out += t;
        if (/Packages: restored into/.test(t)) controller.abort(new CancelledError('SIGTERM'));
      },
    };
    const code = await runStep(restoreFileStoreTemplate, restoreFileStoreStep, {
      argv: ['--service-messages', '--source', backups, '--home-directory', home, '--replace-existing'],
      env: {},
      sink,
      handleSignals: false,
      signal: controller.signal,
    });
    expect(code).toBe(143);
    const kept = readdirSync(home).find((n) => n.startsWith('TaskLogs.before-restore-'))!;
    expect(resultMessageIn(out)).toBe(
      `Cancelled (SIGTERM) as the restore finished: every folder was restored (${path.join(home, 'TaskLogs')}, ${path.join(home, 'Packages')}); the previous content is kept in ${path.join(home, kept)}.`,
    );
    expect(snapshot(path.join(home, 'TaskLogs'))).toEqual(snapshot(path.join(source, 'TaskLogs')));
    expect(snapshot(path.join(home, kept))).toEqual(oldLogs);
  }, 60_000);
});
