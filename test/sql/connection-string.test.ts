// ADO.NET connection strings as Octopus stores them -> driver settings, and clear refusals.
import { buildIdentifierStatement, parseSqlConnectionString, SqlConnectionStringError, SqlError, openSqlConnection } from '../../steps/engines/sql';
import { quietEngineContext } from '../../steps/runtime/engine-context';
import { normalise } from '../../steps/engines/sql/params';
import { secretsOf, sensitiveValuesOf } from '../../steps/engines/sql/connection-string';

function refusal(connectionString: string): string {
  try {
    parseSqlConnectionString(connectionString);
  } catch (e) {
    expect(e).toBeInstanceOf(SqlConnectionStringError);
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('parseSqlConnectionString', () => {
  test('the usual Octopus form, keywords in any case', () => {
    const s = parseSqlConnectionString('server=SQL01,1444;DATABASE=Octopus;user id=octo;PASSWORD=p@ss;TrustServerCertificate=true;Connect Timeout=30;Application Name=DR;MultiSubnetFailover=True');
    expect(s).toMatchObject({
      host: 'SQL01', port: 1444, database: 'Octopus', encrypt: true, trustServerCertificate: true,
      connectTimeoutMs: 30_000, applicationName: 'DR', multiSubnetFailover: true,
      authentication: { kind: 'sql-login', userName: 'octo', password: 'p@ss' },
    });
  });

  test('Data Source / Initial Catalog aliases, tcp: prefix, named instance, (local) and defaults', () => {
    expect(parseSqlConnectionString('Data Source=tcp:db.example.com\\OCTO;Initial Catalog=O;User ID=u;Password=p')).toMatchObject({
      host: 'db.example.com', instanceName: 'OCTO', port: undefined, database: 'O',
    });
    const local = parseSqlConnectionString('Server=(local);User ID=u;Password=p');
    expect(local).toMatchObject({ host: 'localhost', database: 'master', encrypt: true, trustServerCertificate: false, connectTimeoutMs: 15_000, applicationName: 'octopus-dr' });
    expect(parseSqlConnectionString('Server=.\\MSSQLSERVER,1433;User ID=u;Password=p')).toMatchObject({ host: 'localhost', instanceName: undefined, port: 1433 });
    expect(parseSqlConnectionString('Server=[fd00::5],1433;User ID=u;Password=p').host).toBe('fd00::5');
  });

  test('quoted values keep ; = and quotes; doubled quotes and braces', () => {
    expect(parseSqlConnectionString('Server=s;User ID=u;Password="a;b=c""d"').authentication).toMatchObject({ password: 'a;b=c"d' });
    expect(parseSqlConnectionString("Server=s;User ID=u;Password='it''s'").authentication).toMatchObject({ password: "it's" });
    expect(parseSqlConnectionString('Server=s;User ID=u;Password={x;y}}z}').authentication).toMatchObject({ password: 'x;y}z' });
    expect(parseSqlConnectionString('Server=s;Database="Octo;pus";User ID=u;Password=p').database).toBe('Octo;pus');
  });

  test('Encrypt forms', () => {
    const base = 'Server=s;User ID=u;Password=p;';
    expect(parseSqlConnectionString(`${base}Encrypt=False`).encrypt).toBe(false);
    expect(parseSqlConnectionString(`${base}Encrypt=Optional`).encrypt).toBe(false);
    expect(parseSqlConnectionString(`${base}Encrypt=Mandatory`).encrypt).toBe(true);
    expect(parseSqlConnectionString(`${base}Encrypt=Strict`).encrypt).toBe('strict');
    expect(refusal(`${base}Encrypt=maybe`)).toMatch(/Encrypt value is not understood; use True, False or Strict/);
    expect(refusal(`${base}Encrypt=maybe`)).not.toContain('maybe');
  });

  test('Windows account with password -> NTLM', () => {
    expect(parseSqlConnectionString('Server=s;Integrated Security=False;User ID=CORP\\svc-octo;Password=p').authentication).toEqual({
      kind: 'windows-ntlm', domain: 'CORP', userName: 'svc-octo', password: 'p',
    });
    expect(refusal('Server=s;User ID=CORP\\svc-octo')).toMatch(/needs its Password/);
  });

  test('Integrated Security / Trusted_Connection without credentials -> the process identity (SqlClient transport)', () => {
    for (const cs of ['Server=s;Integrated Security=SSPI', 'Server=s;Trusted_Connection=True;Database=Octopus', 'Server=s;Integrated Security=true']) {
      const settings = parseSqlConnectionString(cs);
      expect(settings.authentication).toEqual({ kind: 'integrated' });
      expect(secretsOf(settings)).toEqual([]);
    }
  });

  test('Microsoft Entra forms the driver supports', () => {
    expect(parseSqlConnectionString('Server=x.database.windows.net;Authentication=Active Directory Password;User ID=a@b.com;Password=p;Client Id=cid').authentication).toEqual({
      kind: 'entra-password', userName: 'a@b.com', password: 'p', clientId: 'cid', tenantId: undefined,
    });
    expect(parseSqlConnectionString('Server=x;Authentication=ActiveDirectoryServicePrincipal;User ID=app;Password=secret;Tenant Id=t1').authentication).toEqual({
      kind: 'entra-service-principal', clientId: 'app', clientSecret: 'secret', tenantId: 't1',
    });
    expect(refusal('Server=x;Authentication=Active Directory Integrated')).toMatch(/not supported by this driver/);
    expect(refusal('Server=x;Authentication=Active Directory Service Principal;User ID=app;Password=s')).toMatch(/Tenant Id/);
    expect(refusal('Server=x;Authentication=Active Directory Password;User ID=a;Password=p')).toMatch(/Client Id/);
  });

  test('refusals name the problem and never echo the password', () => {
    expect(refusal('')).toMatch(/empty/);
    expect(refusal('Database=x;User ID=u;Password=Hunter2-secret')).toMatch(/no Server/);
    expect(refusal('Server=s;Password=Hunter2-secret')).toMatch(/no User ID/);
    expect(refusal('Server=s,99999;User ID=u;Password=p')).toMatch(/port .* is not a TCP port number/);
    expect(refusal('Server=s,99999;User ID=u;Password=p')).not.toContain('99999');
    expect(refusal('Server=np:s;User ID=u;Password=p')).toMatch(/only TCP/);
    const unknown = refusal('Server=s;User ID=u;Password=Hunter2-secret;Pasword=Hunter2-secret');
    // Keywords are never quoted either (one can be the rest of a password): its position says which.
    expect(unknown).toMatch(/4th keyword \(after Password\) is not recognised/);
    expect(unknown.toLowerCase()).not.toContain('pasword');
    // A password with an unquoted ';' splits into a 'keyword' that is part of the password: never echo it.
    for (const [cs, fragment] of [
      ['Server=s;User ID=u;Password=abc;Def9xyzQ;Encrypt=False', 'def9xyzq'],
      ['Server=s;User ID=u;Password=abc;x!Y=z', 'x!y'],
    ]) {
      const message = refusal(cs);
      expect(message.toLowerCase()).not.toContain(fragment);
      expect(message).toMatch(/not recognised.*quote/);
    }
    for (const cs of ['Server=s;User ID=u;Password="Hunter2-secret', 'Server=s;Password=Hunter2-secret;Encrypt=x']) {
      let message = '';
      try {
        parseSqlConnectionString(cs);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('Hunter2-secret');
    }
  });

  test('harmless ADO.NET keywords are accepted and reported', () => {
    expect(parseSqlConnectionString('Server=s;User ID=u;Password=p;Pooling=false;Max Pool Size=5;MultipleActiveResultSets=True').ignoredKeywords).toEqual([
      'pooling', 'max pool size', 'multipleactiveresultsets',
    ]);
  });
});

describe('openSqlConnection before connecting', () => {
  test('a bad string is a configuration SqlError, secrets registered first and never in the message', async () => {
    const secrets: string[] = [];
    const cs = 'Server=s;User ID=u;Password=Hunter2-secret;Integrated Security=SSPI;Bogus=1';
    await expect(openSqlConnection(cs, quietEngineContext({ setSecret: (s) => void secrets.push(s) }))).rejects.toMatchObject({ kind: 'configuration' });
    const error = (await openSqlConnection(cs, quietEngineContext()).catch((e: SqlError) => e)) as SqlError;
    expect(error.message).not.toContain('Hunter2-secret');
    expect(secrets).toContain(cs);
  });
});

describe('identifier statements', () => {
  test('{{name}} becomes QUOTENAME of a typed parameter inside nested sp_executesql', () => {
    const params = new Map([['when', normalise(new Date(0))]]);
    const built = buildIdentifierStatement("ALTER DATABASE {{db}} SET OFFLINE; SELECT N'it''s', @when", { db: "x]'; --" }, params);
    expect(built.sql).not.toContain("x]'; --");
    expect(built.sql).toContain("N'ALTER DATABASE ' + QUOTENAME(@id_db) + N' SET OFFLINE; SELECT N''it''''s'', @when'");
    expect(built.sql).toContain("EXEC sys.sp_executesql @statement, N'@when datetime2(7)', @when = @when;");
    expect([...built.params]).toEqual([['id_db', expect.objectContaining({ value: "x]'; --", sqlType: { type: 'nvarchar', length: 128 } })]]);
    expect(() => buildIdentifierStatement('DROP DATABASE {{other}}', { db: 'x' }, new Map())).toThrow(/{{other}}/);
  });
});

describe('connection-string values that would be ignored, and the secrets inside', () => {
  const base = 'Server=s;User ID=u;Password=p;';
  test.each([
    ['Connect Timeout=abc', 'Connect Timeout'],
    ['Connection Timeout=-5', 'Connection Timeout'],
    ['Packet Size=4k', 'Packet Size'],
    ['Max Pool Size=ten', 'Max Pool Size'],
    ['Command Timeout=1.5', 'Command Timeout'],
  ])('%s is refused by name, its value not shown', (keyword, name) => {
    const message = refusal(base + keyword);
    expect(message).toContain(`${name} must be a whole number`);
    expect(message).not.toContain(keyword.split('=')[1]);
  });

  test.each(['TrustServerCertificate=sure', 'MultiSubnetFailover=2', 'Pooling=maybe', 'Integrated Security=perhaps'])('%s is refused', (keyword) => {
    expect(refusal(base + keyword)).toMatch(/value is not understood; use True or False/);
  });

  test('good numbers still work; 0 means the default connect timeout', () => {
    expect(parseSqlConnectionString(`${base}Connect Timeout=30`).connectTimeoutMs).toBe(30_000);
    expect(parseSqlConnectionString(`${base}Connect Timeout=0`).connectTimeoutMs).toBe(15_000);
  });

  test('a parse failure says where, without quoting anything, and how to quote a password', () => {
    const message = refusal('Server=s;User ID=u;Password="Hunter2;secretZZ');
    expect(message).toMatch(/could not be parsed after its 2nd keyword \(User ID\), in the 3rd/);
    expect(message).toContain('Password="a;b"');
    expect(message).not.toMatch(/hunter|secretzz/i);
  });

  test('every secret-bearing value is its own secret, also the rest of a password cut by an unquoted ;', () => {
    expect(sensitiveValuesOf('Server=s;User ID=u;Password=Hunter2;Tail=ZZsecretZZ')).toEqual(expect.arrayContaining(['Hunter2', 'ZZsecretZZ', 'tail=ZZsecretZZ']));
    expect(sensitiveValuesOf('Server=s;Authentication=Active Directory Service Principal;User ID=app;PWD=cl13nt-s3cret;Tenant Id=t')).toContain('cl13nt-s3cret');
    expect(sensitiveValuesOf('Server=s;User ID=u;Password=p1234;Client Secret=cs-98765;AccessToken=tok-4567')).toEqual(
      expect.arrayContaining(['p1234', 'cs-98765', 'tok-4567']),
    );
    expect(sensitiveValuesOf('Server=s;Database=Octopus;User ID=u;Password=p1234')).not.toContain('Octopus');
  });
});
