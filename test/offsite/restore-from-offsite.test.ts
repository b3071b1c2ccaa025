// Restores that start offsite: back up, copy offsite, delete the local backups, then restore the
// database (Fetch Backups from Offsite + Restore SQL Database) and the file store (Restore File
// Store straight from the URL), against s3rver and Azurite.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { restoreFileStoreStep } from '../../steps/restore-file-store/restore-file-store';
import { fetchOffsiteStep } from '../../steps/fetch-offsite/fetch-offsite';
import { MemorySink } from '../../steps/runtime/console-output';
import { runStep } from '../../steps/runtime/run-step';
import { outputVariablesIn, resultMessageIn } from '../../steps/runtime/service-messages';
import { fetchOffsite } from '../../templates/fetch-offsite';
import { restoreFileStore } from '../../templates/restore-file-store';
import type { ParameterDefinition, StepTemplate } from '../../templates/model';
import { restore } from '../database/harness';
import { snapshot } from '../file-store/helpers';
import { dropBackups, makeBackups, runCopy, type Backups } from './fixtures';
import { azureProvider, s3Provider, type Provider } from './providers';

async function run<Ps extends Record<string, ParameterDefinition>>(template: StepTemplate<Ps>, step: Parameters<typeof runStep<Ps>>[1], argv: string[], env: NodeJS.ProcessEnv) {
  const sink = new MemorySink();
  const code = await runStep(template, step, { argv: ['--service-messages', ...argv], env: { ...env }, sink, handleSignals: false });
  return { code, out: sink.out, err: sink.err, outputs: outputVariablesIn(sink.out), result: resultMessageIn(sink.out) };
}

function tableRows(b: Backups, database: string): string {
  const db = b.lab.sim.model.database(database)!;
  return JSON.stringify([...db.tables.entries()].map(([name, t]) => [name, t.rows]));
}

describe.each([['s3', s3Provider()], ['azure', azureProvider()]] as const)('%s', (_name, provider: Provider) => {
  let backups: Backups;
  let url: string;
  beforeAll(async () => {
    await provider.start();
    backups = await makeBackups();
    url = await provider.newTarget('site-a');
    const copied = await runCopy(['--offsite-url', url, ...provider.args(), '--backup-directory', backups.database, '--file-store-backup-directory', backups.fileStore], provider.env());
    if (copied.code !== 0) throw new Error(`copy failed: ${copied.result}`);
    // The site is gone: only the offsite copy is left.
    rmSync(backups.database, { recursive: true });
    rmSync(backups.fileStore, { recursive: true });
  }, 180_000);
  afterAll(async () => {
    await dropBackups(backups);
    await provider.stop();
  });

  test('database: fetched from offsite and restored, rows identical to the source', async () => {
    const staging = path.join(backups.lab.root, 'staging-db');
    const fetched = await run(fetchOffsite, fetchOffsiteStep, ['--offsite-url', url, ...provider.args(), '--fetch', 'Database', '--download-directory', staging], provider.env());
    expect(fetched.err).toBe('');
    expect(fetched.code).toBe(0);
    // Full, differential and both logs: the newest chain, each with its manifest.
    expect(readdirSync(staging).filter((f) => f.endsWith('.manifest.json'))).toHaveLength(4);
    const restored = await restore(backups.lab, '--source', fetched.outputs.DatabaseSource, '--target-database', 'Octo-offsite');
    expect(restored.result).toMatch(/^Restored 'Octo-offsite'/);
    expect(restored.code).toBe(0);
    expect(tableRows(backups, 'Octo-offsite')).toBe(tableRows(backups, 'Octo'));
  }, 120_000);

  test('database: a named set downloads only what its chain needs', async () => {
    const staging = path.join(backups.lab.root, 'staging-full');
    const store = provider.store(url);
    const full = (await store.list('database/')).map((o) => o.key).find((k) => /_FULL_.*\.manifest\.json$/.test(k))!;
    store.close();
    const fetched = await run(fetchOffsite, fetchOffsiteStep, ['--offsite-url', `${url}/${full}`, ...provider.args(), '--fetch', 'Database', '--download-directory', staging], provider.env());
    expect(fetched.code).toBe(0);
    expect(readdirSync(staging).sort()).toEqual([path.basename(full).replace('.manifest.json', '.bak'), path.basename(full)].sort());
  }, 60_000);

  test('file store: restored straight from the URL, identical to what was backed up', async () => {
    const target = path.join(backups.lab.root, 'restored-home');
    const staging = path.join(backups.lab.root, 'staging-fs');
    const restored = await run(restoreFileStore, restoreFileStoreStep, ['--source', url, ...provider.args(), '--download-directory', staging, '--home-directory', target], provider.env());
    expect(restored.err).toBe('');
    expect(restored.code).toBe(0);
    const strip = (s: ReturnType<typeof snapshot>) => Object.fromEntries(Object.entries(s).filter(([k]) => k.split('/').length > 1 || !['Imports', 'Telemetry', 'Logs'].includes(k)));
    const restoredFiles = Object.entries(snapshot(target)).filter(([, v]) => v.type === 'file');
    const sourceFiles = Object.entries(strip(snapshot(backups.home))).filter(([, v]) => v.type === 'file');
    expect(restoredFiles.map(([k, v]) => [k, (v as { sha256: string }).sha256])).toEqual(sourceFiles.map(([k, v]) => [k, (v as { sha256: string }).sha256]));
    // Both archives of the incremental chain were needed and fetched.
    expect(readdirSync(staging).filter((f) => f.endsWith('.zip'))).toHaveLength(2);
  }, 120_000);

  test('a changed object offsite fails the download, names it, and leaves no partial file', async () => {
    const store = provider.store(url);
    const archive = (await store.list('file-store/')).map((o) => o.key).find((k) => k.endsWith('-incremental.zip'))!;
    const head = (await store.head(archive))!;
    const chunks: Buffer[] = [];
    for await (const c of await store.download(archive)) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    bytes[bytes.length >> 1] ^= 0x55;
    await store.upload(archive, Readable.from([bytes]), { size: bytes.length, metadata: head.metadata });
    store.close();
    const staging = path.join(backups.lab.root, 'staging-tampered');
    const target = path.join(backups.lab.root, 'restored-tampered');
    const restored = await run(restoreFileStore, restoreFileStoreStep, ['--source', url, ...provider.args(), '--download-directory', staging, '--home-directory', target], provider.env());
    expect(restored.code).toBe(1);
    expect(restored.result).toContain(`${archive.split('/').pop()} does not match its offsite record`);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(staging).filter((f) => f.includes('.download') || f.endsWith('-incremental.zip'))).toEqual([]);
  }, 120_000);
});
