// Where backups go and restores read from: absolute paths of the platform that opens them, and
// folders that already exist (never created). The same words in every step.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  pathSyntaxProblem,
  serverFlavour,
  serverPathSyntaxProblem,
  sqlSourceProblemsBeforeConnecting,
  sqlSourceProblemsForServer,
  workerPathProblem,
} from '../../steps/runtime/locations';
import { fileStoreBackupDirectory, restoreSource, restoreSourceOnServer } from '../../templates/parameters';

const work = mkdtempSync(path.join(os.tmpdir(), 'octopus-dr-locations-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('path syntax', () => {
  const p = fileStoreBackupDirectory;
  test('absolute paths of the platform pass', () => {
    expect(pathSyntaxProblem('/var/backups/octopus', 'posix', p, 'worker')).toBeUndefined();
    expect(pathSyntaxProblem('D:\\Backups\\Octopus', 'windows', p, 'worker')).toBeUndefined();
    expect(pathSyntaxProblem('\\\\backup01\\octopus\\file-store', 'windows', p, 'worker')).toBeUndefined();
    expect(pathSyntaxProblem('C:/Backups', 'windows', p, 'worker')).toBeUndefined();
  });

  test('a UNC or drive path on a Linux worker is refused, naming the parameter, the platform and the fix', () => {
    const problem = pathSyntaxProblem('\\\\backup01\\octopus\\file-store', 'posix', p, 'worker');
    expect(problem).toBe(
      '"File store backup directory" is a Windows path ("\\\\backup01\\octopus\\file-store"), but this worker runs Linux, where it would be a folder of that literal name: ' +
        'mount the folder on this worker and give its path here (e.g. /var/backups/octopus), or run the step on a Windows worker: ' +
        'set "File store backup directory" (OctopusDr.FileStore.BackupDirectory) in the step, or --file-store-backup-directory on the command line.',
    );
    expect(pathSyntaxProblem('D:\\Backups', 'posix', p, 'worker')).toMatch(/is a Windows path/);
  });

  test('a POSIX path on a Windows worker is refused', () => {
    expect(pathSyntaxProblem('/mnt/backups', 'windows', p, 'worker')).toMatch(/is a Linux path \("\/mnt\/backups"\), but this worker runs Windows: mount the folder/);
  });

  test('relative paths are refused on both platforms', () => {
    for (const value of ['backups', './backups', '..\\backups', 'C:backups', '\\backups']) {
      const flavour = value.includes('\\') ? 'windows' : 'posix';
      expect(pathSyntaxProblem(value, flavour, p, 'worker')).toMatch(/^"File store backup directory" must be an absolute path as this worker .* not ".*": a relative path would depend on the folder the step starts in/);
    }
  });

  test('mixed separators are refused with the separator to use', () => {
    expect(pathSyntaxProblem('/mnt/backups\\octopus', 'posix', p, 'worker')).toMatch(/^"File store backup directory" mixes \/ and \\ in "\/mnt\/backups\\octopus"; write it with \/ only/);
    expect(pathSyntaxProblem('D:\\Backups/Octopus', 'windows', p, 'worker')).toMatch(/mixes \/ and \\ .*write it with \\ only/);
  });

  test('SQL Server paths: either syntax before connecting, the server\'s own after', () => {
    const s = restoreSourceOnServer;
    expect(serverPathSyntaxProblem('D:\\Restore', s)).toBeUndefined();
    expect(serverPathSyntaxProblem('/var/opt/mssql/backup', s)).toBeUndefined();
    expect(serverPathSyntaxProblem('Restore', s)).toMatch(/must be an absolute path as the SQL Server service sees it \(e\.g\. .* on Windows, \/var\/backups\/octopus on Linux\), not "Restore"/);
    expect(serverPathSyntaxProblem('D:\\Restore/x', s)).toMatch(/mixes \/ and \\/);
    expect(pathSyntaxProblem('D:\\Restore', serverFlavour('/'), s, 'server')).toMatch(/is a Windows path \("D:\\Restore"\), but the SQL Server runs on Linux/);
    expect(pathSyntaxProblem('/var/opt/mssql/backup', serverFlavour('\\'), s, 'server')).toMatch(/is a Linux path .* but the SQL Server runs on Windows/);
  });
});

describe('worker folders must exist', () => {
  test('an existing folder passes; a missing one is refused and not created', async () => {
    expect(await workerPathProblem(work, fileStoreBackupDirectory)).toBeUndefined();
    const missing = path.join(work, 'not-mounted', 'share');
    expect(await workerPathProblem(missing, fileStoreBackupDirectory)).toMatch(
      new RegExp(`^"File store backup directory" ${missing} does not exist on this worker\\. Create it \\(or mount the share\\) first: octopus-dr never creates it`),
    );
    expect(await workerPathProblem(missing, fileStoreBackupDirectory)).toBeDefined();
    expect(() => require('node:fs').statSync(path.join(work, 'not-mounted'))).toThrow(/ENOENT/);
  });

  test('a file where a folder is expected is refused; a restore source may be a file', async () => {
    const file = path.join(work, 'a.manifest.json');
    writeFileSync(file, '{}');
    expect(await workerPathProblem(file, fileStoreBackupDirectory)).toMatch(/is a file, not a folder/);
    expect(await workerPathProblem(file, restoreSource, 'file or directory')).toBeUndefined();
    expect(await workerPathProblem(path.join(work, 'gone.bak'), restoreSource, 'file or directory')).toMatch(/^"Backup to restore" .* does not exist on this worker\. Give an existing backup directory/);
  });
});

describe('restore sources for SQL Server', () => {
  const folder = path.join(work, 'sql');
  beforeAll(() => mkdirSync(folder));
  const locations = (source: string, sourceOnServer = '') => ({
    source: { value: source, parameter: restoreSource },
    sourceOnServer: { value: sourceOnServer, parameter: restoreSourceOnServer },
  });

  test('before connecting: a relative source and a relative server path are both listed', async () => {
    const problems = await sqlSourceProblemsBeforeConnecting(locations('backups', 'Restore'));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^"Backup to restore" must be an absolute path/);
    expect(problems[1]).toMatch(/^"Backup folder as SQL Server sees it" must be an absolute path/);
    expect(await sqlSourceProblemsBeforeConnecting(locations(folder, 'D:\\Restore'))).toEqual([]);
  });

  test('after connecting: a Windows SQL Server cannot open the Linux worker\'s path, so its own path is needed', () => {
    expect(sqlSourceProblemsForServer(locations(folder), '\\', 'posix')).toEqual([
      `The SQL Server runs on Windows and cannot open ${folder} as this Linux worker names it: set "Backup folder as SQL Server sees it" to the folder as the SQL Server service sees it ` +
        '(e.g. D:\\Backups\\Octopus or \\\\backup01\\octopus): set "Backup folder as SQL Server sees it" (OctopusDr.Restore.SourceOnServer) in the step, or --source-on-server on the command line.',
    ]);
    expect(sqlSourceProblemsForServer(locations(folder), '/', 'posix')).toEqual([]);
    expect(sqlSourceProblemsForServer(locations(folder, 'D:\\Restore'), '\\', 'posix')).toEqual([]);
    expect(sqlSourceProblemsForServer(locations(folder, '/var/opt/mssql/restore'), '\\', 'posix')[0]).toMatch(/is a Linux path .* but the SQL Server runs on Windows/);
  });
});
