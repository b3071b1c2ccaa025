// Do the restored database and the file-store backup of the same time agree? The database names
// files the file store must hold: each server task's log, each artifact's file, each package of the
// built-in feed. A standby started on a database whose files are missing shows empty task logs,
// broken artifact links, and (after Octopus re-indexes the built-in feed at start-up) loses the
// packages. This module reads what the database expects (bounded: recent tasks and artifacts only)
// and compares it with the file-store manifest's file list.
//
// Schema (dbo; Octopus databases use a case-insensitive collation), see docs/standby-checks.md,
// "Database and file store agree", for sources:
//   ServerTask   Id, StartTime (datetimeoffset)          all versions with a SQL database (3.0+)
//   Artifact     Id, Filename, Created (datetimeoffset),
//                ServerTaskId (2019.4+, replacing RelatedDocumentIds)
//   NuGetPackage PackageId, Version                      the built-in feed's index
// Columns are discovered first (INFORMATION_SCHEMA.COLUMNS), so a missing table or column makes its
// check "not checked" with the reason, never a failure.
//
// File-store layout (relative to each folder, `/`-separated, as the manifest records it):
//   TaskLogs/servertasks-<n>_<random>.txt               one file per task (before 2025.2)
//   TaskLogs/servertasks-<n>_<random>/<random>.tl.txt   one folder per task (2025.2.10530+, Issues#9413)
//   Artifacts/.../<name>                                the layout below Artifacts is not documented:
//                                                       matched by file name (exact, or after a `-`/`_` prefix)
//   Packages/[Spaces-N/]feeds-builtin/<Id>/<Id>.<Version>.<ext>   matched by file name, any folder
import { missingFilesFailPercent } from '../../../../templates/parameters';
import type { SqlConnection } from '../../sql';
import { param } from '../../sql';

export interface ExpectedTaskLog {
  /** `ServerTasks-370`. */
  id: string;
  startedAt: string | null;
}

export interface ExpectedArtifact {
  id: string;
  fileName: string;
  serverTaskId: string | null;
}

export interface ExpectedPackage {
  packageId: string;
  version: string;
}

export interface ExpectedFiles {
  /** The tasks and artifacts read are those of [since, until). */
  window: { since: string; until: string };
  tasks: ExpectedTaskLog[];
  artifacts: ExpectedArtifact[];
  packages: ExpectedPackage[];
  /** Checks that could not be made, with why (e.g. a table this Octopus version does not have). */
  notChecked: string[];
  /** Lists cut at maxRows (only the newest were read). */
  truncated: string[];
}

export interface ReadExpectedFilesOptions {
  /**
   * The end of the window: the earlier of the database backup's and the file-store backup's times,
   * so a task that started after the file store was backed up is not counted as missing.
   */
  until: Date;
  /** How many days before `until` to look at. */
  days: number;
  /** At most this many rows per list (default 50,000). */
  maxRows?: number;
  signal?: AbortSignal;
}

export const DEFAULT_MAX_ROWS = 50_000;

interface ColumnRow {
  tableName: string;
  columnName: string;
}

/** `tableName -> lower-case column names` for the three tables, in the connection's database. */
async function readColumns(sql: SqlConnection, signal?: AbortSignal): Promise<Map<string, Set<string>>> {
  const { rows } = await sql.query<ColumnRow>(
    `SELECT c.TABLE_NAME AS tableName, c.COLUMN_NAME AS columnName
FROM INFORMATION_SCHEMA.COLUMNS AS c
WHERE c.TABLE_SCHEMA = N'dbo' AND c.TABLE_NAME IN (N'ServerTask', N'Artifact', N'NuGetPackage')`,
    {},
    { signal },
  );
  const tables = new Map<string, Set<string>>();
  for (const row of rows) {
    const key = row.tableName.toLowerCase();
    if (!tables.has(key)) tables.set(key, new Set());
    tables.get(key)!.add(row.columnName.toLowerCase());
  }
  return tables;
}

function missingColumns(tables: Map<string, Set<string>>, table: string, columns: readonly string[]): string | undefined {
  const present = tables.get(table.toLowerCase());
  if (!present) return `table dbo.${table} not found`;
  const missing = columns.filter((c) => !present.has(c.toLowerCase()));
  return missing.length ? `dbo.${table} has no ${missing.join(', ')} column` : undefined;
}

/** Reads, from the restored database the connection is in, the files the file store should hold. */
export async function readExpectedFiles(sql: SqlConnection, options: ReadExpectedFilesOptions): Promise<ExpectedFiles> {
  if (!Number.isInteger(options.days) || options.days < 1) throw new Error(`The window must be at least one whole day, not ${options.days}.`);
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  const until = options.until;
  const since = new Date(until.getTime() - options.days * 86_400_000);
  const window = { since: param.datetime2(since), until: param.datetime2(until), take: param.int(maxRows + 1) };
  const result: ExpectedFiles = { window: { since: since.toISOString(), until: until.toISOString() }, tasks: [], artifacts: [], packages: [], notChecked: [], truncated: [] };
  const tables = await readColumns(sql, options.signal);
  const capped = <T>(rows: T[], what: string): T[] => {
    if (rows.length <= maxRows) return rows;
    result.truncated.push(`${what}: only the newest ${maxRows} were checked`);
    return rows.slice(0, maxRows);
  };

  const taskProblem = missingColumns(tables, 'ServerTask', ['Id', 'StartTime']);
  if (taskProblem) result.notChecked.push(`task logs (${taskProblem})`);
  else {
    const { rows } = await sql.query<{ id: string; startedAt: string | null }>(
      `SELECT TOP (@take) Id AS id, CONVERT(varchar(40), StartTime, 127) AS startedAt
FROM dbo.ServerTask
WHERE StartTime IS NOT NULL AND StartTime >= @since AND StartTime < @until
ORDER BY StartTime DESC`,
      window,
      { signal: options.signal },
    );
    result.tasks = capped(rows, 'server tasks').map((r) => ({ id: String(r.id), startedAt: r.startedAt ?? null }));
  }

  const artifactProblem = missingColumns(tables, 'Artifact', ['Id', 'Filename', 'Created']);
  if (artifactProblem) result.notChecked.push(`artifacts (${artifactProblem})`);
  else {
    const hasTask = tables.get('artifact')!.has('servertaskid');
    const { rows } = await sql.query<{ id: string; fileName: string; serverTaskId: string | null }>(
      `SELECT TOP (@take) Id AS id, Filename AS fileName, ${hasTask ? 'ServerTaskId' : 'CAST(NULL AS nvarchar(50))'} AS serverTaskId
FROM dbo.Artifact
WHERE Created >= @since AND Created < @until
ORDER BY Created DESC`,
      window,
      { signal: options.signal },
    );
    result.artifacts = capped(rows, 'artifacts').map((r) => ({ id: String(r.id), fileName: String(r.fileName), serverTaskId: r.serverTaskId ?? null }));
  }

  const packageProblem = missingColumns(tables, 'NuGetPackage', ['PackageId', 'Version']);
  if (packageProblem) result.notChecked.push(`built-in feed packages (${packageProblem})`);
  else {
    // The index has no upload time we can rely on across versions: every package is checked.
    const { rows } = await sql.query<{ packageId: string; version: string }>(
      `SELECT TOP (@take) PackageId AS packageId, [Version] AS version
FROM dbo.NuGetPackage
ORDER BY PackageId, [Version]`,
      { take: window.take },
      { signal: options.signal },
    );
    result.packages = capped(rows, 'built-in feed packages').map((r) => ({ packageId: String(r.packageId), version: String(r.version) }));
  }
  return result;
}

/** A file of the file-store backup: its folder (`TaskLogs`, `Artifacts`, `Packages`, ...) and path below it. */
export interface StoreFile {
  folder: string;
  /** Relative to the folder, `/`-separated (as in the file-store manifest). */
  path: string;
}

export type AgreementKind = 'taskLogs' | 'artifacts' | 'packages';

export interface KindResult {
  kind: AgreementKind;
  checked: number;
  missing: number;
  /** Up to EXAMPLES of what is missing, for messages. */
  examples: string[];
}

export interface AgreementResult {
  taskLogs: KindResult & { oneFilePerTask: number; oneFolderPerTask: number };
  artifacts: KindResult;
  packages: KindResult;
  window: ExpectedFiles['window'];
  notChecked: string[];
  truncated: string[];
  /** Whether the file store has any file in these folders (an empty folder explains everything missing). */
  foldersPresent: { TaskLogs: boolean; Artifacts: boolean; Packages: boolean };
}

export const EXAMPLES = 5;

const PACKAGE_EXTENSIONS = ['.tar.gz', '.tar.bz2', '.nupkg', '.zip', '.tgz', '.tbz2', '.tbz', '.tar', '.jar', '.war', '.ear', '.rar'];

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `servertasks-370` from `servertasks-370_AbC.txt` (one file) or `servertasks-370_AbC/x.tl.txt` (one folder). */
function taskLogKey(path: string): { key: string; layout: 'file' | 'folder' } | undefined {
  const segments = path.split('/');
  const m = /^(servertasks-\d+)_/i.exec(segments[0]);
  if (!m || !/\.txt$/i.test(segments[segments.length - 1])) return undefined;
  return { key: m[1].toLowerCase(), layout: segments.length === 1 ? 'file' : 'folder' };
}

function packageStem(fileName: string): string | undefined {
  const lowered = fileName.toLowerCase();
  const extension = PACKAGE_EXTENSIONS.find((e) => lowered.endsWith(e));
  return extension ? lowered.slice(0, -extension.length) : undefined;
}

function addExample(result: KindResult, text: string): void {
  result.missing += 1;
  if (result.examples.length < EXAMPLES) result.examples.push(text);
}

/** Compares what the database expects with the file-store manifest's files. Pure: no I/O. */
export function compareWithFileStore(expected: ExpectedFiles, files: readonly StoreFile[]): AgreementResult {
  const taskLogs = new Map<string, 'file' | 'folder'>();
  const artifactNames = new Set<string>();
  const packageStems = new Set<string>();
  const foldersPresent = { TaskLogs: false, Artifacts: false, Packages: false };
  for (const file of files) {
    const folder = file.folder.toLowerCase();
    if (folder === 'tasklogs') {
      foldersPresent.TaskLogs = true;
      const log = taskLogKey(file.path);
      if (log && !taskLogs.has(log.key)) taskLogs.set(log.key, log.layout);
    } else if (folder === 'artifacts') {
      foldersPresent.Artifacts = true;
      const name = lastSegment(file.path).toLowerCase();
      artifactNames.add(name);
      // `<prefix>-<name>` / `<prefix>_<name>`: every suffix after a separator is a candidate name.
      for (let i = 0; i < name.length; i++) if (name[i] === '-' || name[i] === '_') artifactNames.add(name.slice(i + 1));
    } else if (folder === 'packages') {
      foldersPresent.Packages = true;
      const stem = packageStem(lastSegment(file.path));
      if (stem) packageStems.add(stem);
    }
  }

  const tasks = { kind: 'taskLogs' as const, checked: expected.tasks.length, missing: 0, examples: [] as string[], oneFilePerTask: 0, oneFolderPerTask: 0 };
  for (const task of expected.tasks) {
    const layout = taskLogs.get(task.id.toLowerCase());
    if (layout === 'file') tasks.oneFilePerTask += 1;
    else if (layout === 'folder') tasks.oneFolderPerTask += 1;
    else addExample(tasks, `${task.id}${task.startedAt ? ` (started ${task.startedAt})` : ''}`);
  }
  const artifacts: KindResult = { kind: 'artifacts', checked: expected.artifacts.length, missing: 0, examples: [] };
  for (const artifact of expected.artifacts) {
    if (!artifactNames.has(artifact.fileName.toLowerCase())) addExample(artifacts, `${artifact.id} "${artifact.fileName}"${artifact.serverTaskId ? ` of ${artifact.serverTaskId}` : ''}`);
  }
  const packages: KindResult = { kind: 'packages', checked: expected.packages.length, missing: 0, examples: [] };
  for (const p of expected.packages) {
    if (!packageStems.has(`${p.packageId}.${p.version}`.toLowerCase())) addExample(packages, `${p.packageId} ${p.version}`);
  }
  return { taskLogs: tasks, artifacts, packages, window: expected.window, notChecked: expected.notChecked, truncated: expected.truncated, foldersPresent };
}

export type AgreementOutcome = 'ok' | 'warn' | 'fail';

export interface AgreementSummary {
  outcome: AgreementOutcome;
  /** One paragraph: the result message / report line. */
  message: string;
  /** One line per kind, with its examples, for the log and the report. */
  lines: string[];
}

export const THRESHOLD_LABEL = missingFilesFailPercent.label;

const NOUNS: Record<AgreementKind, { what: string; lacking: string; folder: keyof AgreementResult['foldersPresent'] }> = {
  taskLogs: { what: 'recent server tasks', lacking: 'have no task log', folder: 'TaskLogs' },
  artifacts: { what: 'recent artifacts', lacking: 'have no file', folder: 'Artifacts' },
  packages: { what: 'built-in feed packages', lacking: 'have no package file', folder: 'Packages' },
};

const percentOf = (r: KindResult) => (r.checked === 0 ? 0 : (r.missing * 100) / r.checked);

/**
 * Counts, examples and the verdict: any missing file is a warning; more than `failAbovePercent` % of
 * one kind missing is a failure (100 never fails).
 */
export function summariseAgreement(result: AgreementResult, options: { failAbovePercent: number }): AgreementSummary {
  const kinds = [result.taskLogs, result.artifacts, result.packages];
  const lines: string[] = [];
  let failing = false;
  for (const r of kinds) {
    const noun = NOUNS[r.kind];
    if (r.missing === 0) {
      lines.push(`${r.checked} ${noun.what}: all present${r.kind === 'taskLogs' && r.checked > 0 ? ` (${result.taskLogs.oneFilePerTask} as one file, ${result.taskLogs.oneFolderPerTask} as one folder per task)` : ''}.`);
      continue;
    }
    const percent = percentOf(r);
    if (percent > options.failAbovePercent) failing = true;
    const why =
      r.missing === r.checked && !result.foldersPresent[noun.folder]
        ? ` The backup holds no ${noun.folder} folder at all: was it left out of the file-store backup's folders?`
        : r.kind === 'artifacts' && r.missing === r.checked
          ? ' None matched: if the Artifacts folder is not empty, check one by hand (octopus-dr matches artifacts by file name).'
          : r.kind === 'packages'
            ? ' A package pushed after the file-store backup also shows here; Octopus drops missing packages from the feed when it re-indexes.'
            : '';
    lines.push(`${r.missing} of ${r.checked} ${noun.what} ${noun.lacking} (${percent.toFixed(1)}%), e.g. ${r.examples.join(', ')}${r.missing > r.examples.length ? ', ...' : ''}.${why}`);
  }
  for (const reason of result.notChecked) lines.push(`Not checked: ${reason}.`);
  for (const note of result.truncated) lines.push(`Limited: ${note}.`);
  const missingTotal = kinds.reduce((n, r) => n + r.missing, 0);
  const window = `tasks and artifacts from ${result.window.since} to ${result.window.until}`;
  if (missingTotal === 0) {
    return { outcome: 'ok', message: `Database and file store agree (${window}): ${lines.join(' ')}`, lines };
  }
  const outcome: AgreementOutcome = failing ? 'fail' : 'warn';
  const tail = failing
    ? ` More than ${options.failAbovePercent}% of one kind is missing ("${THRESHOLD_LABEL}"): this file-store backup does not belong with this database, or misses a folder. Check the file-store backup's folders and times.`
    : ` Below the ${options.failAbovePercent}% that fails the check ("${THRESHOLD_LABEL}").`;
  return { outcome, message: `Database and file store disagree (${window}): ${lines.filter((l) => !/: all present/.test(l)).join(' ')}${tail}`, lines };
}

export interface FileStoreAgreementOptions extends ReadExpectedFilesOptions {
  /** The file-store manifest's files (FileStoreManifest.files fits). */
  files: readonly StoreFile[];
  failAbovePercent: number;
}

/** What Test Latest Backup calls, with a connection in the restored database. */
export async function checkFileStoreAgreement(sql: SqlConnection, options: FileStoreAgreementOptions): Promise<AgreementSummary & { result: AgreementResult }> {
  const expected = await readExpectedFiles(sql, options);
  const result = compareWithFileStore(expected, options.files);
  return { ...summariseAgreement(result, { failAbovePercent: options.failAbovePercent }), result };
}
