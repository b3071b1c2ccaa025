// An incremental builds on the newest set it can use. A newer set it cannot use (a damaged
// manifest, an archive of its chain missing) is passed over with a warning that names it, says
// what the incremental builds on instead and what to do; the new set is complete and verifies.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backupFileStore, verifyFileStoreBackup } from '../../steps/engines/file-store';
import type { ResolvedFolder } from '../../steps/engines/file-store/folders';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { removeArchiveComment, silentLog, tempDir, write } from './helpers';

const work = tempDir('passes-over');
afterAll(() => rmSync(work, { recursive: true, force: true }));

let round = 0;
function backup(home: string, out: string, mode: 'Full' | 'Incremental') {
  const folders: ResolvedFolder[] = [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }];
  // Seconds apart: each set its own time in its name.
  const at = Date.now() + 2000 * round++;
  return backupFileStore({ folders, backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(at) }, quietEngineContext({ log: silentLog }));
}

function damageManifest(manifestPath: string): void {
  const text = readFileSync(manifestPath, 'utf8');
  truncateSync(manifestPath, Buffer.byteLength(text.slice(0, text.indexOf('\n "files": [') + 40)));
}

test('a newer set with a damaged manifest: the incremental builds on the set before it, says so, and verifies', async () => {
  const home = path.join(work, 'damaged', 'home');
  const out = path.join(work, 'damaged', 'out');
  for (let i = 0; i < 20; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`);
  write(path.join(out, '.keep'), '');
  const full = await backup(home, out, 'Full');
  write(path.join(home, 'TaskLogs', 'servertasks-20.log.txt'), 'new in the second set\n');
  const second = await backup(home, out, 'Incremental');
  damageManifest(second.manifestPath);
  write(path.join(home, 'TaskLogs', 'servertasks-21.log.txt'), 'new in the third set\n');

  const third = await backup(home, out, 'Incremental');
  const secondName = path.basename(second.archivePath);
  const fullName = path.basename(full.archivePath);
  expect(third.manifest.chain).toEqual([fullName, path.basename(third.archivePath)]);
  // Everything since the full is stored, the second set's file too.
  expect(third.manifest.totals.storedFiles).toBe(2);
  expect(third.warnings).toHaveLength(1);
  expect(third.warnings[0]).toMatch(new RegExp(`^The backup set ${secondName.replace(/\./g, '\\.')} cannot be built on \\(.*not valid JSON.*\\); this incremental builds on ${fullName.replace(/\./g, '\\.')}, the newest usable set, and stores every change since it\\. Repair ${secondName.replace(/\./g, '\\.')} \\(copy back its archives and manifest\\) or move it away`));
  expect(third.manifest.warnings).toEqual(third.warnings);

  const verified = await verifyFileStoreBackup(third.archivePath, {}, quietEngineContext({ log: silentLog }));
  expect(verified.problems).toEqual([]);
  expect(verified.files).toBe(22);
});

test('a newer set whose chain lost an archive: passed over with its reason; every set unusable: a full, with the same warning', async () => {
  const home = path.join(work, 'chain', 'home');
  const out = path.join(work, 'chain', 'out');
  write(path.join(home, 'TaskLogs', 'servertasks-1.log.txt'), 'one\n');
  write(path.join(out, '.keep'), '');
  const full = await backup(home, out, 'Full');
  write(path.join(home, 'TaskLogs', 'servertasks-2.log.txt'), 'two\n');
  const second = await backup(home, out, 'Incremental');
  write(path.join(home, 'TaskLogs', 'servertasks-3.log.txt'), 'three\n');
  const third = await backup(home, out, 'Incremental');
  // The second set goes (its archive and manifest), so the third's chain is incomplete.
  rmSync(second.archivePath);
  rmSync(second.manifestPath);

  const fourth = await backup(home, out, 'Incremental');
  expect(fourth.manifest.chain[0]).toBe(path.basename(full.archivePath));
  expect(fourth.warnings).toEqual([expect.stringMatching(new RegExp(`^The backup set ${path.basename(third.archivePath).replace(/\./g, '\\.')} cannot be built on \\(its chain needs ${path.basename(second.archivePath).replace(/\./g, '\\.')}, which is missing\\); this incremental builds on ${path.basename(full.archivePath).replace(/\./g, '\\.')}`))]);

  // No usable set at all: a full backup, and the warnings still name each set passed over.
  damageManifest(fourth.manifestPath);
  rmSync(full.archivePath);
  const fifth = await backup(home, out, 'Incremental');
  expect(fifth.manifest.mode).toBe('Full');
  const passedOver = fifth.warnings.filter((w) => /cannot be built on/.test(w));
  expect(passedOver).toHaveLength(3);
  expect(passedOver[0]).toMatch(/^The backup set \S+-incremental\.zip cannot be built on \(.*not valid JSON[^)]*\)\)\. Repair \S+ \(copy back its archives and manifest\) or move it away: as it is, it cannot be restored\.$/);
  expect(passedOver[2]).toContain(`${path.basename(full.archivePath)} cannot be built on (its chain needs ${path.basename(full.archivePath)}, which is missing). Repair`);
  expect(fifth.warnings.at(-1)).toMatch(/^No earlier backup set in .* to build on: taking a full backup\./);
});

/** Zeroes one file's SHA-256 in a manifest beside its archive: still valid, and wrong. */
function zeroOneHash(manifestPath: string): void {
  const text = readFileSync(manifestPath, 'utf8');
  const edited = text.replace(/"sha256": "[0-9a-f]{64}"/, `"sha256": "${'0'.repeat(64)}"`);
  expect(edited).not.toBe(text);
  writeFileSync(manifestPath, edited);
}

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a manifest beside its archive that is not the copy inside it (edited or damaged)', () => {
  // Found by a field check: the next incremental carried the edited record forward and exited 0,
  // and that set then failed to verify and to restore.
  test('the only set: passed over with what to do; the incremental takes a full, which verifies', async () => {
    const home = path.join(work, 'edited-only', 'home');
    const out = path.join(work, 'edited-only', 'out');
    for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`);
    const full = await backup(home, out, 'Full');
    zeroOneHash(full.manifestPath);

    const next = await backup(home, out, 'Incremental');
    expect(next.manifest.mode).toBe('Full');
    expect(next.manifest.chain).toEqual([path.basename(next.archivePath)]);
    const name = path.basename(full.archivePath);
    expect(next.warnings[0]).toBe(
      `The backup set ${name} cannot be built on (the manifest beside its archive is not the copy inside it, edited or damaged since the backup: ` +
        `TaskLogs/servertasks-0.log.txt: sha256 differs). ` +
        `Put back ${path.basename(full.manifestPath)} as it was written, from the copy inside the archive (its entry octopus-dr-manifest.json, whose SHA-256 the archive's comment records; ` +
        `for example: unzip -p ${name} octopus-dr-manifest.json > ${path.basename(full.manifestPath)}). As it is, the set cannot be restored.`,
    );
    expect(next.warnings.at(-1)).toMatch(/^No earlier backup set in .* to build on: taking a full backup\./);
    const verified = await verifyFileStoreBackup(next.archivePath, {}, quietEngineContext({ log: silentLog }));
    expect(verified.problems).toEqual([]);
    expect(verified.files).toBe(5);

    // What the warning says to do, as it says it: the set is then built on again.
    const putBack = spawnSync('sh', ['-c', `unzip -p ${name} octopus-dr-manifest.json > ${path.basename(full.manifestPath)}`], { cwd: out });
    expect(putBack.status).toBe(0);
    write(path.join(home, 'TaskLogs', 'servertasks-9.log.txt'), 'new\n');
    const after = await backup(home, out, 'Incremental');
    expect(after.warnings).toEqual([]);
    expect(after.manifest.basedOn).toBe(path.basename(next.archivePath));
    const putBackSet = await verifyFileStoreBackup(full.archivePath, {}, quietEngineContext({ log: silentLog }));
    expect(putBackSet.problems).toEqual([]);
  });

  test('a newer set edited: the incremental builds on the set before it and stores every change since', async () => {
    const home = path.join(work, 'edited-newer', 'home');
    const out = path.join(work, 'edited-newer', 'out');
    for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`);
    const full = await backup(home, out, 'Full');
    write(path.join(home, 'TaskLogs', 'servertasks-5.log.txt'), 'in the second set\n');
    const second = await backup(home, out, 'Incremental');
    zeroOneHash(second.manifestPath);

    const third = await backup(home, out, 'Incremental');
    expect(third.manifest.basedOn).toBe(path.basename(full.archivePath));
    expect(third.manifest.totals.storedFiles).toBe(1);
    expect(third.warnings).toEqual([expect.stringMatching(new RegExp(`^The backup set ${escaped(path.basename(second.archivePath))} cannot be built on \\(the manifest beside its archive is not the copy inside it, edited or damaged since the backup: TaskLogs/servertasks-0\\.log\\.txt: sha256 differs\\); this incremental builds on ${escaped(path.basename(full.archivePath))}`))]);
    const verified = await verifyFileStoreBackup(third.archivePath, {}, quietEngineContext({ log: silentLog }));
    expect(verified.problems).toEqual([]);
    expect(verified.files).toBe(6);
  });

  test('an archive written before archives recorded their manifest (no comment): checked against the copy inside instead', async () => {
    const home = path.join(work, 'no-comment', 'home');
    const out = path.join(work, 'no-comment', 'out');
    for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`);
    const full = await backup(home, out, 'Full');
    removeArchiveComment(full.archivePath);

    // Unedited: built on, as before.
    const second = await backup(home, out, 'Incremental');
    expect(second.warnings).toEqual([]);
    expect(second.manifest.basedOn).toBe(path.basename(full.archivePath));
    rmSync(second.archivePath);
    rmSync(second.manifestPath);

    // Edited: passed over, for the same reason.
    zeroOneHash(full.manifestPath);
    const third = await backup(home, out, 'Incremental');
    expect(third.manifest.mode).toBe('Full');
    expect(third.warnings[0]).toContain(`${path.basename(full.archivePath)} cannot be built on (the manifest beside its archive is not the copy inside it, edited or damaged since the backup: TaskLogs/servertasks-0.log.txt: sha256 differs)`);
  });

  test('the comment is the SHA-256 of the manifest beside the archive, as unzip and Python read it', async () => {
    const home = path.join(work, 'comment', 'home');
    const out = path.join(work, 'comment', 'out');
    write(path.join(home, 'TaskLogs', 'servertasks-1.log.txt'), 'one\n');
    const full = await backup(home, out, 'Full');
    const sha256 = createHash('sha256').update(readFileSync(full.manifestPath)).digest('hex');
    const unzip = spawnSync('unzip', ['-z', full.archivePath], { encoding: 'utf8' });
    expect(unzip.status).toBe(0);
    expect(unzip.stdout.trim().split('\n').at(-1)).toBe(`octopus-dr manifest sha256:${sha256}`);
    const python = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.comment.decode()); print(z.testzip())', full.archivePath], { encoding: 'utf8' });
    expect(python.stdout).toBe(`octopus-dr manifest sha256:${sha256}\nNone\n`);
  });
});

describe('a manifest beside its archive that says the same in other bytes, and archives that cannot be read', () => {
  async function fullSet(label: string) {
    const home = path.join(work, label, 'home');
    const out = path.join(work, label, 'out');
    for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`);
    return { home, out, full: await backup(home, out, 'Full') };
  }

  test.each([
    ['line endings changed by a copy tool (CRLF)', (m: string) => writeFileSync(m, readFileSync(m, 'utf8').replace(/\n/g, '\r\n'))],
    ['rewritten with another indentation', (m: string) => writeFileSync(m, JSON.stringify(JSON.parse(readFileSync(m, 'utf8')), null, 2))],
    ['the archive\'s comment damaged (one digit of its SHA-256)', (_m: string, archive: string) => {
      const bytes = readFileSync(archive);
      bytes[bytes.length - 1] = bytes[bytes.length - 1] === 0x30 ? 0x31 : 0x30;
      writeFileSync(archive, bytes);
    }],
  ])('%s: the records decide, and the incremental builds on the set', async (label, change) => {
    const { home, out, full } = await fullSet(`same-${label.replace(/\W+/g, '-')}`);
    change(full.manifestPath, full.archivePath);
    write(path.join(home, 'TaskLogs', 'servertasks-9.log.txt'), 'new\n');
    const next = await backup(home, out, 'Incremental');
    expect(next.warnings).toEqual([]);
    expect(next.manifest.basedOn).toBe(path.basename(full.archivePath));
    expect(next.manifest.totals.storedFiles).toBe(1);
    const verified = await verifyFileStoreBackup(next.archivePath, {}, quietEngineContext({ log: silentLog }));
    expect(verified.problems).toEqual([]);
    expect(verified.files).toBe(6);
  });

  test.each([
    ['a pipe (FIFO) in its place: refused at once, not waited on', (archive: string) => {
      rmSync(archive);
      expect(spawnSync('mkfifo', [archive]).status).toBe(0);
    }, /its archive cannot be read: \S+ is not a regular file \(a pipe with an archive's name\)/],
    ['cut short', (archive: string) => truncateSync(archive, 100), /its archive cannot be read: End of central directory record signature not found/],
  ])('its archive %s: passed over, and the warning says to repair or move the set', async (_label, damage, reason) => {
    const { home, out, full } = await fullSet(`unreadable-${++round}`);
    damage(full.archivePath);
    const next = await backup(home, out, 'Incremental');
    expect(next.manifest.mode).toBe('Full');
    const name = escaped(path.basename(full.archivePath));
    expect(next.warnings[0]).toMatch(new RegExp(`^The backup set ${name} cannot be built on \\(${reason.source}\\)\\. Repair ${name} \\(copy back its archives and manifest\\) or move it away: as it is, it cannot be restored\\.$`));
  });

  test('a newer set whose creation time was edited to look older: checked, and said, not passed over in silence', async () => {
    const { home, out, full } = await fullSet('created-at');
    write(path.join(home, 'TaskLogs', 'servertasks-5.log.txt'), 'in the second set\n');
    const second = await backup(home, out, 'Incremental');
    const text = readFileSync(second.manifestPath, 'utf8');
    writeFileSync(second.manifestPath, text.replace(/"createdAt": "\d{4}/, '"createdAt": "2001'));

    const third = await backup(home, out, 'Incremental');
    expect(third.manifest.basedOn).toBe(path.basename(full.archivePath));
    expect(third.manifest.totals.storedFiles).toBe(1);
    expect(third.warnings).toEqual([expect.stringMatching(new RegExp(`^The backup set ${escaped(path.basename(second.archivePath))} cannot be built on \\(the manifest beside its archive is not the copy inside it, edited or damaged since the backup: createdAt differs\\)`))]);
  });
});

describe('checking the set to build on: what is not the set\'s fault fails the backup', () => {
  afterEach(() => jest.restoreAllMocks());

  test.each([
    ['out of open files (EMFILE)', Object.assign(new Error("EMFILE: too many open files, open 'x.zip'"), { code: 'EMFILE' }), /^This worker ran out of open files or memory \(EMFILE: too many open files, open 'x\.zip'\) while an earlier backup set in .* was read; the set itself is fine\. Nothing was kept/],
    ['the backup directory\'s share gone (ENOTCONN)', Object.assign(new Error('ENOTCONN: socket is not connected, open \'x.zip\''), { code: 'ENOTCONN' }), /^The share or disk that holds the backup directory .* stopped answering \(ENOTCONN/],
    ['an internal error (TypeError)', new TypeError('x is not a function'), /^x is not a function$/],
  ])('%s: the incremental fails, and the sound set is not passed over', async (_label, error, message) => {
    const home = path.join(work, `fault-${++round}`, 'home');
    const out = path.join(work, `fault-${round}`, 'out');
    write(path.join(home, 'TaskLogs', 'servertasks-1.log.txt'), 'one\n');
    await backup(home, out, 'Full');
    // The archive's open fails (the check opens it with fs.open, as every archive read does).
    const fsModule = require('node:fs') as typeof import('node:fs');
    const realOpen = fsModule.open;
    jest.spyOn(fsModule, 'open').mockImplementation(((file: import('node:fs').PathLike, ...rest: unknown[]) => {
      const callback = rest.at(-1) as (e: Error | null, fd?: number) => void;
      if (String(file).endsWith('-full.zip')) {
        if (error instanceof TypeError) throw error;
        return void process.nextTick(() => callback(error));
      }
      return (realOpen as unknown as (...a: unknown[]) => void)(file, ...rest);
    }) as typeof fsModule.open);
    await expect(backup(home, out, 'Incremental')).rejects.toThrow(message);
    expect(readdirSync(out).filter((n) => n.endsWith('.zip'))).toHaveLength(1);
  });
});

test('two sets of the same second, the newer one\'s creation time edited to look older: the incremental says so', async () => {
  const home = path.join(work, 'same-second', 'home');
  const out = path.join(work, 'same-second', 'out');
  for (let i = 0; i < 5; i++) write(path.join(home, 'TaskLogs', `servertasks-${i}.log.txt`), `log ${i}\n`);
  const second = Math.floor(Date.now() / 1000) * 1000 + 60_000;
  const run = (mode: 'Full' | 'Incremental', ms: number) =>
    backupFileStore(
      { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode, skipUnreadable: false, toolVersion: 'test', now: () => new Date(second + ms) },
      quietEngineContext({ log: silentLog }),
    );
  const full = await run('Full', 100);
  write(path.join(home, 'TaskLogs', 'servertasks-5.log.txt'), 'in the incremental\n');
  const incremental = await run('Incremental', 500);
  expect(incremental.manifest.basedOn).toBe(path.basename(full.archivePath));
  const sidecar = readFileSync(incremental.manifestPath, 'utf8');
  writeFileSync(incremental.manifestPath, sidecar.replace(`"createdAt": "${new Date(second + 500).toISOString()}"`, `"createdAt": "${new Date(second + 50).toISOString()}"`));

  const next = await backupFileStore(
    { folders: [{ name: 'TaskLogs', path: path.join(home, 'TaskLogs'), origin: 'home' }], backupDirectory: out, mode: 'Incremental', skipUnreadable: false, toolVersion: 'test', now: () => new Date(second + 3000) },
    quietEngineContext({ log: silentLog }),
  );
  expect(next.manifest.basedOn).toBe(path.basename(full.archivePath));
  expect(next.warnings).toEqual([expect.stringMatching(new RegExp(`^The backup set ${escaped(path.basename(incremental.archivePath))} cannot be built on \\(the manifest beside its archive is not the copy inside it, edited or damaged since the backup: createdAt differs\\)`))]);
});
