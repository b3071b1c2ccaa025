// Octopus runs on Azure SQL Database and Azure SQL Managed Instance too, which take no backup to a
// folder and restore from none: the backup, restore and drill steps say so, with what to do, and
// exit 2 (the connection string points at a server that cannot do this) before writing anything;
// Test Latest Backup records a failed drill, as for any drill that cannot run.
// Their SQL errors (40510 and the like) said neither.
import { readdirSync } from 'node:fs';
import { noBackupFilesOn } from '../../steps/engines/sql/server-facts';
import { backup, Lab, octopusTables, restore } from '../database/harness';

const KEY_B64 = Buffer.alloc(16, 7).toString('base64');

describe.each([
  [5, 'Azure SQL Database', /it is an Azure SQL Database, which takes its own backups \(point-in-time restore, long-term retention\) and runs no BACKUP or RESTORE statement/],
  [8, 'Azure SQL Managed Instance', /it is an Azure SQL Managed Instance, which backs up and restores only through a URL \(Azure Blob Storage\), never a folder/],
])('engine edition %i (%s)', (engineEdition, _name, why) => {
  const lab = new Lab();
  beforeAll(() => lab.start({ server: { serverName: 'CLOUDSQL', engineEdition } as never }, [{ name: 'Octopus', recoveryModel: 'FULL', tables: octopusTables() }]));
  afterAll(() => lab.stop());

  test('Back Up SQL Database refuses, exit 2, writing nothing', async () => {
    const run = await backup(lab, 'Octopus');
    expect(run.code).toBe(2);
    expect(run.result).toMatch(/^Cannot back up 'Octopus' on CLOUDSQL: /);
    expect(run.result).toMatch(why);
    expect(run.result).toMatch(/Nothing was written\. .*use Verify Master Key and Back Up File Store for the rest of Octopus\.$/);
    expect(readdirSync(lab.backups)).toEqual([]);
    expect(lab.sim.model.backupHistory).toHaveLength(0);
  });

  test('Restore SQL Database refuses, exit 2, changing nothing', async () => {
    const run = await restore(lab, '--source', lab.backups, '--target-database', 'Octopus-restored');
    expect(run.code).toBe(2);
    expect(run.result).toMatch(/^Nothing was changed\. CLOUDSQL cannot restore from backup files: /);
    expect(run.result).toMatch(why);
    expect(run.result).toMatch(/Point "SQL connection string" at a SQL Server that can \(on a virtual machine, or on premises\), or use the service's own point-in-time restore\.$/);
    expect(lab.sim.model.database('Octopus-restored')).toBeUndefined();
  });

  test('Test Latest Backup fails its drill, naming why and what to do, before it looks for leftovers or backups', async () => {
    const run = await lab.run('test-restore', 'master', ['--source', lab.backups, '--report-directory', lab.root], { env: { OCTOPUSDR_MASTERKEY: KEY_B64 } });
    // A drill that cannot run is a failed drill (its report and the DR record say so), like any other.
    expect(run.code).toBe(1);
    expect(run.result).toMatch(/^Test restore FAILED \(1 problem\):\n  - Database backup: Nothing was changed\. CLOUDSQL cannot restore from backup files: /);
    expect(run.result).toMatch(why);
    expect([...lab.sim.model.databases.keys()].filter((n) => !['master', 'tempdb', 'model', 'msdb', 'octopus'].includes(n))).toEqual([]);
  });
});

test('every other engine edition (Standard, Enterprise, Express, Azure SQL Edge) is not refused on its edition', () => {
  for (const engineEdition of [2, 3, 4, 9]) expect(noBackupFilesOn({ engineEdition })).toBeUndefined();
});
