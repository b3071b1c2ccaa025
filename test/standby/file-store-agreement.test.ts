// Database and file store agree: the expected files read from an Octopus-shaped database in the SQL
// Server simulator (over TDS, through the real access layer), compared with file-store manifest
// file lists that match, and that miss files, in both task-log layouts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backupFileStore } from '../../steps/engines/file-store/backup';
import { readManifestFile, type ManifestFile } from '../../steps/engines/file-store/manifest';
import { openSqlConnection, type SqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { checkFileStoreAgreement, compareWithFileStore, readExpectedFiles, summariseAgreement, type ExpectedFiles, type StoreFile } from '../../steps/engines/standby/agreement';
import type { SeedTable } from '../sql-simulator/engine/model';
import { SqlSimulator } from '../sql-simulator/server';

const UNTIL = new Date('2026-12-01T01:30:00.000Z');
const day = (n: number, hour = 12) => new Date(UNTIL.getTime() - n * 86_400_000 + (hour - 1.5) * 3_600_000).toISOString();

/** ServerTask, Artifact and NuGetPackage as Octopus has them (datetimeoffset columns are datetime2 here: the simulator has no datetimeoffset). */
function octopusFileTables(options: { artifactTaskColumn?: boolean; packages?: boolean } = {}): SeedTable[] {
  const tables: SeedTable[] = [
    {
      name: 'ServerTask',
      columns: [
        { name: 'Id', type: 'nvarchar(50)', nullable: false },
        { name: 'Name', type: 'nvarchar(50)' },
        { name: 'QueueTime', type: 'datetime2(7)' },
        { name: 'StartTime', type: 'datetime2(7)' },
        { name: 'State', type: 'nvarchar(50)' },
      ],
      rows: [
        ['ServerTasks-37', 'Deploy', day(3), day(3), 'Success'], // old layout, file present
        ['ServerTasks-370', 'Deploy', day(2), day(2), 'Success'], // new layout, folder present
        ['ServerTasks-371', 'RunbookRun', day(1), day(1), 'Failed'], // new layout, folder present
        ['ServerTasks-372', 'Backup', day(1, 20), day(1, 20), 'Success'], // log missing
        ['ServerTasks-373', 'Deploy', day(0, 0), null, 'Queued'], // never started: no log expected
        ['ServerTasks-12', 'Deploy', day(30), day(30), 'Success'], // before the window
        ['ServerTasks-380', 'Deploy', day(-1), day(-1), 'Executing'], // after the file store was backed up
      ],
    },
    {
      name: 'Artifact',
      columns: [
        { name: 'Id', type: 'nvarchar(50)', nullable: false },
        { name: 'Filename', type: 'nvarchar(200)' },
        { name: 'RelatedDocumentIds', type: 'nvarchar(max)' },
        { name: 'Created', type: 'datetime2(7)' },
        ...(options.artifactTaskColumn === false ? [] : [{ name: 'ServerTaskId', type: 'nvarchar(50)' }]),
      ],
      rows: [
        ['Artifacts-1', 'TestResults.trx', 'ServerTasks-370', day(2), ...(options.artifactTaskColumn === false ? [] : ['ServerTasks-370'])],
        ['Artifacts-2', 'Rapport d\'exécution – ü.html', 'ServerTasks-371', day(1), ...(options.artifactTaskColumn === false ? [] : ['ServerTasks-371'])],
        ['Artifacts-3', 'missing.zip', 'ServerTasks-371', day(1), ...(options.artifactTaskColumn === false ? [] : ['ServerTasks-371'])],
        ['Artifacts-0', 'ancient.txt', 'ServerTasks-12', day(30), ...(options.artifactTaskColumn === false ? [] : ['ServerTasks-12'])],
      ],
    },
  ];
  if (options.packages !== false) {
    tables.push({
      name: 'NuGetPackage',
      columns: [
        { name: 'Id', type: 'nvarchar(150)', nullable: false },
        { name: 'PackageId', type: 'nvarchar(100)' },
        { name: 'Version', type: 'nvarchar(250)' },
        { name: 'JSON', type: 'nvarchar(max)' },
      ],
      rows: [
        ['packages-Web.1.0.0', 'Web', '1.0.0', '{}'],
        ['packages-Web.1.0.1', 'Web', '1.0.1', '{}'],
        ['packages-Db.2.3.4-beta.1', 'Db', '2.3.4-beta.1', '{}'],
        ['packages-Tools.5.0.0', 'Tools', '5.0.0', '{}'],
      ],
    });
  }
  return tables;
}

/** A file-store manifest's files (ManifestFile, as the backup writes them) holding what `octopusFileTables` expects, minus what is named. */
function storeFiles(options: { without?: string[] } = {}): ManifestFile[] {
  const paths: [ManifestFile['folder'], string][] = [
    ['TaskLogs', 'servertasks-37_AbCdEf1234.txt'],
    ['TaskLogs', 'servertasks-370_Zy98xw/3b1f0c2a.tl.txt'],
    ['TaskLogs', 'servertasks-370_Zy98xw/7c9e11d0.tl.txt'],
    ['TaskLogs', 'servertasks-371_Qq11/0a0a0a0a.tl.txt'],
    ['TaskLogs', 'servertasks-3720_Other.txt'], // a different task whose number starts the same
    ['Artifacts', 'Spaces-1/servertasks-370/Artifacts-1-TestResults.trx'],
    ['Artifacts', "2026-11/Rapport d'exécution – ü.html"],
    ['Packages', 'Spaces-1/feeds-builtin/Web/Web.1.0.0.zip'],
    ['Packages', 'Spaces-1/feeds-builtin/Web/Web.1.0.1.nupkg'],
    ['Packages', 'Spaces-1/feeds-builtin/Db/Db.2.3.4-beta.1.tar.gz'],
    ['Packages', 'Tools/Tools.5.0.0.nupkg'], // the layout before spaces
  ];
  return paths
    .filter(([folder, p]) => !(options.without ?? []).includes(`${folder}/${p}`))
    .map(([folder, p]) => ({ folder, path: p, size: 1, mtimeMs: 0, mode: 0o644, sha256: '0'.repeat(64), archive: 'octopus-file-store-20261201T010000Z-full.zip' }));
}

describe('against the SQL Server simulator', () => {
  let sim: SqlSimulator;
  let sql: SqlConnection;
  beforeAll(async () => {
    sim = await SqlSimulator.start({
      seed: {
        databases: [
          { name: 'Octopus_scratch', tables: octopusFileTables() },
          { name: 'Octopus_2019', tables: octopusFileTables({ artifactTaskColumn: false, packages: false }) },
        ],
      },
    });
  });
  afterAll(() => sim.stop());
  afterEach(() => sql?.close());

  const open = async (database: string) => (sql = await openSqlConnection(sim.connectionString({ database }), quietEngineContext()));

  test('reads recent started tasks, recent artifacts and every built-in feed package, bounded by the window; the statements are ones the simulator knows', async () => {
    await open('Octopus_scratch');
    const expected = await readExpectedFiles(sql, { until: UNTIL, days: 7 });
    expect(expected.window).toEqual({ since: '2026-11-24T01:30:00.000Z', until: '2026-12-01T01:30:00.000Z' });
    expect(expected.tasks.map((t) => t.id)).toEqual(['ServerTasks-372', 'ServerTasks-371', 'ServerTasks-370', 'ServerTasks-37']);
    expect(expected.tasks[0].startedAt).toBe('2026-11-30T20:00:00.000Z');
    expect(expected.artifacts).toEqual([
      { id: 'Artifacts-2', fileName: "Rapport d'exécution – ü.html", serverTaskId: 'ServerTasks-371' },
      { id: 'Artifacts-3', fileName: 'missing.zip', serverTaskId: 'ServerTasks-371' },
      { id: 'Artifacts-1', fileName: 'TestResults.trx', serverTaskId: 'ServerTasks-370' },
    ]);
    expect(expected.packages).toEqual([
      { packageId: 'Db', version: '2.3.4-beta.1' },
      { packageId: 'Tools', version: '5.0.0' },
      { packageId: 'Web', version: '1.0.0' },
      { packageId: 'Web', version: '1.0.1' },
    ]);
    expect(expected).toMatchObject({ notChecked: [], truncated: [] });
    // Every value travelled as a typed parameter; no 50999 (unknown statement) came back.
    const taskRead = sim.events.find((e) => e.kind === 'request' && e.detail?.includes('FROM dbo.ServerTask'));
    expect(taskRead).toBeDefined();
    expect(taskRead!.detail).not.toContain('2026-11-24');
    expect(JSON.stringify(taskRead!.params)).toContain('2026-11-24T01:30:00');
  });

  test('a list longer than the limit is cut to the newest, and says so', async () => {
    await open('Octopus_scratch');
    const expected = await readExpectedFiles(sql, { until: UNTIL, days: 7, maxRows: 2 });
    expect(expected.tasks.map((t) => t.id)).toEqual(['ServerTasks-372', 'ServerTasks-371']);
    expect(expected.truncated).toEqual([
      'server tasks: only the newest 2 were checked',
      'artifacts: only the newest 2 were checked',
      'built-in feed packages: only the newest 2 were checked',
    ]);
  });

  test('an older schema: artifacts without ServerTaskId still checked, a missing package table reported as not checked (never a failure)', async () => {
    await open('Octopus_2019');
    const expected = await readExpectedFiles(sql, { until: UNTIL, days: 7 });
    expect(expected.artifacts.map((a) => a.serverTaskId)).toEqual([null, null, null]);
    expect(expected.notChecked).toEqual(['built-in feed packages (table dbo.NuGetPackage not found)']);
    const summary = summariseAgreement(compareWithFileStore(expected, storeFiles()), { failAbovePercent: 10 });
    expect(summary.lines).toContain('Not checked: built-in feed packages (table dbo.NuGetPackage not found).');
  });

  test('end to end with a matching file list: agree, both task-log layouts counted', async () => {
    await open('Octopus_scratch');
    const files = storeFiles().concat(
      { ...storeFiles()[0], folder: 'TaskLogs', path: 'servertasks-372_Late/a.tl.txt' },
      { ...storeFiles()[0], folder: 'Artifacts', path: 'x/missing.zip' },
    );
    const agreement = await checkFileStoreAgreement(sql, { files, until: UNTIL, days: 7, failAbovePercent: 10 });
    expect(agreement.outcome).toBe('ok');
    expect(agreement.message).toBe(
      'Database and file store agree (tasks and artifacts from 2026-11-24T01:30:00.000Z to 2026-12-01T01:30:00.000Z): ' +
        '4 recent server tasks: all present (1 as one file, 3 as one folder per task). 3 recent artifacts: all present. 4 built-in feed packages: all present.',
    );
  });

  test('end to end with missing files: counts, examples, a warning below the threshold and a failure above it', async () => {
    await open('Octopus_scratch');
    const files = storeFiles({ without: ['Packages/Tools/Tools.5.0.0.nupkg'] });
    const warned = await checkFileStoreAgreement(sql, { files, until: UNTIL, days: 7, failAbovePercent: 50 });
    expect(warned.outcome).toBe('warn');
    expect(warned.message).toBe(
      'Database and file store disagree (tasks and artifacts from 2026-11-24T01:30:00.000Z to 2026-12-01T01:30:00.000Z): ' +
        '1 of 4 recent server tasks have no task log (25.0%), e.g. ServerTasks-372 (started 2026-11-30T20:00:00.000Z). ' +
        '1 of 3 recent artifacts have no file (33.3%), e.g. Artifacts-3 "missing.zip" of ServerTasks-371. ' +
        '1 of 4 built-in feed packages have no package file (25.0%), e.g. Tools 5.0.0. A package pushed after the file-store backup also shows here; Octopus drops missing packages from the feed when it re-indexes. ' +
        'Below the 50% that fails the check ("Missing files: fail above (%)").',
    );
    const failed = await checkFileStoreAgreement(sql, { files, until: UNTIL, days: 7, failAbovePercent: 30 });
    expect(failed.outcome).toBe('fail');
    expect(failed.message).toMatch(/More than 30% of one kind is missing \("Missing files: fail above \(%\)"\): this file-store backup does not belong with this database/);
    // 100 never fails.
    expect((await checkFileStoreAgreement(sql, { files: [], until: UNTIL, days: 7, failAbovePercent: 100 })).outcome).toBe('warn');
  });
});

describe('the comparison (pure)', () => {
  const expected = (partial: Partial<ExpectedFiles>): ExpectedFiles => ({
    window: { since: '2026-11-24T01:30:00.000Z', until: '2026-12-01T01:30:00.000Z' },
    tasks: [],
    artifacts: [],
    packages: [],
    notChecked: [],
    truncated: [],
    ...partial,
  });
  const file = (folder: string, p: string): StoreFile => ({ folder, path: p });

  test('task logs: one file per task and one folder per task both count; a task id is never matched by a longer one; letter case does not matter', () => {
    const result = compareWithFileStore(
      expected({ tasks: ['ServerTasks-1', 'ServerTasks-2', 'ServerTasks-3', 'ServerTasks-10'].map((id) => ({ id, startedAt: null })) }),
      [
        file('TaskLogs', 'ServerTasks-1_x.txt'),
        file('tasklogs', 'servertasks-2_y/a.tl.txt'),
        file('TaskLogs', 'servertasks-30_z.txt'), // not ServerTasks-3
        file('TaskLogs', 'servertasks-10_w/'.concat('notes.json')), // a folder without a .txt log
      ],
    );
    expect(result.taskLogs).toMatchObject({ checked: 4, missing: 2, oneFilePerTask: 1, oneFolderPerTask: 1, examples: ['ServerTasks-3', 'ServerTasks-10'] });
  });

  test('at most five examples, with the count of the rest; an empty folder is named as the likely cause', () => {
    const tasks = Array.from({ length: 12 }, (_, i) => ({ id: `ServerTasks-${i + 1}`, startedAt: null }));
    const result = compareWithFileStore(expected({ tasks }), [file('Artifacts', 'a.txt')]);
    expect(result.taskLogs.examples).toEqual(['ServerTasks-1', 'ServerTasks-2', 'ServerTasks-3', 'ServerTasks-4', 'ServerTasks-5']);
    const summary = summariseAgreement(result, { failAbovePercent: 10 });
    expect(summary.outcome).toBe('fail');
    expect(summary.lines[0]).toBe(
      '12 of 12 recent server tasks have no task log (100.0%), e.g. ServerTasks-1, ServerTasks-2, ServerTasks-3, ServerTasks-4, ServerTasks-5, .... ' +
        'The backup holds no TaskLogs folder at all: was it left out of the file-store backup\'s folders?',
    );
  });

  test('artifacts match by file name, exactly or after a prefix; packages by <Id>.<Version> with a package extension', () => {
    const result = compareWithFileStore(
      expected({
        artifacts: [
          { id: 'Artifacts-1', fileName: 'out.log', serverTaskId: null },
          { id: 'Artifacts-2', fileName: 'Report.HTML', serverTaskId: null },
          { id: 'Artifacts-3', fileName: 'gone.txt', serverTaskId: null },
        ],
        packages: [
          { packageId: 'App', version: '1.0.0' },
          { packageId: 'App', version: '1.0' }, // App.1.0.0.zip is not App 1.0
          { packageId: 'Lib', version: '2.0.0' },
        ],
      }),
      [
        file('Artifacts', 'tasks/servertasks-5/out.log'),
        file('Artifacts', 'x/Artifacts-2_report.html'),
        file('Packages', 'feeds-builtin/App/App.1.0.0.zip'),
        file('Packages', 'feeds-builtin/Lib/Lib.2.0.0.txt'), // not a package file
      ],
    );
    expect(result.artifacts).toMatchObject({ checked: 3, missing: 1, examples: ['Artifacts-3 "gone.txt"'] });
    expect(result.packages).toMatchObject({ checked: 3, missing: 2, examples: ['App 1.0', 'Lib 2.0.0'] });
  });

  test('nothing expected and nothing missing is agreement; the threshold compares each kind\'s share', () => {
    expect(summariseAgreement(compareWithFileStore(expected({}), []), { failAbovePercent: 0 }).outcome).toBe('ok');
    const oneOfTen = compareWithFileStore(expected({ tasks: Array.from({ length: 10 }, (_, i) => ({ id: `ServerTasks-${i}`, startedAt: null })) }), [
      ...Array.from({ length: 9 }, (_, i) => file('TaskLogs', `servertasks-${i}_a.txt`)),
    ]);
    expect(summariseAgreement(oneOfTen, { failAbovePercent: 10 }).outcome).toBe('warn'); // 10% is not above 10%
    expect(summariseAgreement(oneOfTen, { failAbovePercent: 9 }).outcome).toBe('fail');
  });
});

test('with the manifest of a real file-store backup (the engine, run on a store with both task-log layouts): the paths are what the comparison expects', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'octopus-dr-agree-'));
  try {
    const home = path.join(root, 'home');
    const files: Record<string, string> = {
      'TaskLogs/servertasks-37_AbCdEf1234.txt': 'old layout',
      'TaskLogs/servertasks-370_Zy98xw/3b1f0c2a.tl.txt': 'new layout, part 1',
      'TaskLogs/servertasks-370_Zy98xw/7c9e11d0.tl.txt': 'new layout, part 2',
      'Artifacts/Spaces-1/TestResults.trx': '<trx/>',
      'Packages/Spaces-1/feeds-builtin/Web/Web.1.0.0.zip': 'PK',
    };
    for (const [relative, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(home, relative)), { recursive: true });
      writeFileSync(path.join(home, relative), content);
    }
    const out = path.join(root, 'backups');
    mkdirSync(out);
    const backup = await backupFileStore({
      folders: (['TaskLogs', 'Artifacts', 'Packages'] as const).map((name) => ({ name, path: path.join(home, name), origin: 'home' as const })),
      backupDirectory: out,
      mode: 'Full',
      skipUnreadable: false,
      toolVersion: 'test',
    }, quietEngineContext({ log: { info: () => undefined, verbose: () => undefined, warn: () => undefined } }));
    const manifest = await readManifestFile(backup.manifestPath);
    const result = compareWithFileStore(
      {
        window: { since: '2026-11-24T01:30:00.000Z', until: '2026-12-01T01:30:00.000Z' },
        tasks: [{ id: 'ServerTasks-37', startedAt: null }, { id: 'ServerTasks-370', startedAt: null }, { id: 'ServerTasks-371', startedAt: null }],
        artifacts: [{ id: 'Artifacts-1', fileName: 'TestResults.trx', serverTaskId: 'ServerTasks-370' }],
        packages: [{ packageId: 'Web', version: '1.0.0' }],
        notChecked: [],
        truncated: [],
      },
      manifest.files,
    );
    expect(result.taskLogs).toMatchObject({ checked: 3, missing: 1, oneFilePerTask: 1, oneFolderPerTask: 1, examples: ['ServerTasks-371'] });
    expect(result.artifacts.missing).toBe(0);
    expect(result.packages.missing).toBe(0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
