// An Octopus-shaped database for the SQL Server simulator: documents as Id + JSON rows (and
// compressed JSONBlob rows, gzip of the UTF-16LE JSON as SQL Server's COMPRESS(N'...') writes
// them), the server certificate `certificate-global`, variable sets with Sensitive variables
// (current and frozen release snapshots), accounts, and tables without secrets.
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { SeedDatabase, SeedTable } from '../sql-simulator/engine/model';
import { encryptOctopusValue, makePfx } from './octopus-crypto';

export interface OctopusDatabaseOptions {
  name?: string;
  /** The master key the values are encrypted with (undefined: no encrypted values at all). */
  key?: Buffer;
  variableSets?: number;
  /** Frozen (release snapshot) variable sets, besides the live ones. */
  frozenVariableSets?: number;
  /** Where `certificate-global` lives; 'none' leaves it out. */
  certificateTable?: 'Configuration' | 'CompressedConfiguration' | 'none';
  /** Damage this many sensitive values (bit flips in the ciphertext) ... */
  corruptValues?: number;
  /** ... and truncate this many so they are no longer whole AES blocks. */
  truncatedValues?: number;
}

export interface OctopusDatabase {
  seed: SeedDatabase;
  /** Every plaintext that was encrypted: tests assert none of them appears in any output. */
  plaintexts: string[];
}

/** SQL Server COMPRESS(N'...'): gzip of the UTF-16LE text. */
export function compress(text: string): Buffer {
  return gzipSync(Buffer.from(text, 'utf16le'));
}

function damage(encrypted: string, how: 'flip' | 'truncate'): string {
  const [cipher, iv] = encrypted.split('|');
  const bytes = Buffer.from(cipher, 'base64');
  if (how === 'truncate') return `${bytes.subarray(0, bytes.length - 5).toString('base64')}|${iv}`;
  bytes[bytes.length - 1] ^= 0x5a;
  bytes[bytes.length - 17 >= 0 ? bytes.length - 17 : 0] ^= 0x33;
  return `${bytes.toString('base64')}|${iv}`;
}

export function octopusDatabase(options: OctopusDatabaseOptions = {}): OctopusDatabase {
  const key = options.key;
  const plaintexts: string[] = [];
  let toCorrupt = options.corruptValues ?? 0;
  let toTruncate = options.truncatedValues ?? 0;
  const secret = (plaintext: string): string => {
    if (!key) return plaintext;
    plaintexts.push(plaintext);
    const encrypted = encryptOctopusValue(key, plaintext);
    if (toCorrupt > 0) {
      toCorrupt -= 1;
      return damage(encrypted, 'flip');
    }
    if (toTruncate > 0) {
      toTruncate -= 1;
      return damage(encrypted, 'truncate');
    }
    return encrypted;
  };

  const variableSetJson = (id: string, owner: string, n: number) =>
    JSON.stringify({
      Id: id,
      OwnerId: owner,
      Version: 3 + (n % 5),
      Variables: [
        { Id: randomUUID(), Name: 'Database.Password', Value: key ? secret(`S3cret-${n}-${'p'.repeat(n % 20)}`) : null, Type: key ? 'Sensitive' : 'String', Scope: { Environment: ['Environments-1'] }, IsEditable: true, Prompt: null },
        { Id: randomUUID(), Name: 'Api.Token', Value: key ? secret(`tok_${n}_äöü_✓`) : 'not secret', Type: key ? 'Sensitive' : 'String', Scope: {}, IsEditable: true, Prompt: null },
        { Id: randomUUID(), Name: 'Website.Url', Value: `https://app-${n}.example.com/a|b`, Type: 'String', Scope: {}, IsEditable: true, Prompt: null },
      ],
      ScopeValues: { Environments: [{ Id: 'Environments-1', Name: 'Production' }] },
    });

  const variableSetRows: unknown[][] = [];
  for (let i = 1; i <= (options.variableSets ?? 20); i++) {
    variableSetRows.push([`variableset-Projects-${i}`, `Projects-${i}`, false, variableSetJson(`variableset-Projects-${i}`, `Projects-${i}`, i)]);
  }
  for (let i = 1; i <= (options.frozenVariableSets ?? 10); i++) {
    const id = `variableset-Projects-${i}-s-${i}-ABCDE`;
    variableSetRows.push([id, `Projects-${i}`, true, variableSetJson(id, `Projects-${i}`, 1000 + i)]);
  }

  const certificateJson = JSON.stringify({
    Id: 'certificate-global',
    Thumbprint: '6F1B4C5E1F0F8A9E2B7C3D4E5F60718293A4B5C6',
    SignatureAlgorithm: 'sha256RSA',
    // Octopus keeps the server certificate as an encrypted base64 PFX.
    CertificateData: key ? secret(makePfx().toString('base64')) : makePfx().toString('base64'),
  });
  const configurationRows: unknown[][] = [
    ['upgrade-availability', JSON.stringify({ Id: 'upgrade-availability', LastChecked: '2026-11-01T00:00:00Z' })],
    ['smtp', JSON.stringify({ Id: 'smtp', SmtpHost: 'smtp.example.com', SmtpPort: 587, SmtpPassword: key ? secret('smtp-Passw0rd!') : null })],
  ];
  const compressedConfigurationRows: unknown[][] = [];
  if (options.certificateTable === 'CompressedConfiguration') compressedConfigurationRows.push(['certificate-global', compress(certificateJson)]);
  else if (options.certificateTable !== 'none') configurationRows.push(['certificate-global', certificateJson]);

  const tables: SeedTable[] = [
    {
      name: 'Configuration',
      columns: [{ name: 'Id', type: 'nvarchar(50)', nullable: false }, { name: 'JSON', type: 'nvarchar(max)' }],
      rows: configurationRows,
    },
    {
      name: 'CompressedConfiguration',
      columns: [{ name: 'Id', type: 'nvarchar(50)', nullable: false }, { name: 'JSONBlob', type: 'varbinary(max)' }],
      rows: compressedConfigurationRows,
    },
    {
      name: 'VariableSet',
      columns: [
        { name: 'Id', type: 'nvarchar(150)', nullable: false },
        { name: 'OwnerId', type: 'nvarchar(150)' },
        { name: 'IsFrozen', type: 'bit' },
        { name: 'JSON', type: 'nvarchar(max)' },
      ],
      rows: variableSetRows,
    },
    {
      name: 'Account',
      columns: [{ name: 'Id', type: 'nvarchar(210)', nullable: false }, { name: 'Name', type: 'nvarchar(200)' }, { name: 'JSON', type: 'nvarchar(max)' }],
      rows: [
        ['Accounts-1', 'Deploy user', JSON.stringify({ AccountType: 'UsernamePassword', Username: 'deploy', Password: key ? secret('deploy-Pa55') : null })],
        ['Accounts-2', 'AWS', JSON.stringify({ AccountType: 'AmazonWebServicesAccount', AccessKey: 'AKIAEXAMPLE', SecretKey: key ? secret('aws/secret+key==') : null })],
      ],
    },
    {
      // Compressed documents (Nevermore's JSONBlob): a feed with an encrypted password.
      name: 'Feed',
      columns: [{ name: 'Id', type: 'nvarchar(210)', nullable: false }, { name: 'JSON', type: 'nvarchar(max)' }, { name: 'JSONBlob', type: 'varbinary(max)' }],
      rows: [['Feeds-1', null, compress(JSON.stringify({ Name: 'Private NuGet', FeedUri: 'https://nuget.example.com/v3/index.json', Password: key ? secret('feed-Passw0rd') : null }))]],
    },
    {
      name: 'Event',
      columns: [{ name: 'Id', type: 'nvarchar(50)', nullable: false }, { name: 'Category', type: 'nvarchar(50)' }, { name: 'JSON', type: 'nvarchar(max)' }],
      rows: Array.from({ length: 30 }, (_, i) => [`Events-${i + 1}`, 'Created', JSON.stringify({ Message: `Created project ${i}`, Occurred: '2026-11-01T00:00:00Z' })]),
    },
    {
      // A table without JSON: not a document table.
      name: 'Schema_Migrations',
      columns: [{ name: 'Id', type: 'int', nullable: false }, { name: 'ScriptName', type: 'nvarchar(255)' }],
      rows: [[1, 'Script0001 - Initial.sql']],
    },
  ];
  return { seed: { name: options.name ?? 'Octopus', recoveryModel: 'SIMPLE', tables }, plaintexts };
}
