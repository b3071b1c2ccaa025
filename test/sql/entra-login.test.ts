// Microsoft Entra sign-in end to end: tedious with the @azure/identity stand-in the bundles use
// (the same substitution as the esbuild alias), a local token endpoint, and the simulator's
// FEDAUTHINFO / FEDAUTH_TOKEN login.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as SqlModule from '../../steps/shared/sql';
import { SqlSimulator } from '../sql-simulator/server';

let sim: SqlSimulator;
let tokenServer: http.Server;
let sql: typeof SqlModule;
const previousHost = process.env.AZURE_AUTHORITY_HOST;

beforeAll(async () => {
  tokenServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      res.setHeader('content-type', 'application/json');
      const ok = (form.grant_type === 'client_credentials' && form.client_id === 'app-1' && form.client_secret === 'Sp-Secret-42' && req.url === '/tenant-1/oauth2/v2.0/token') ||
        (form.grant_type === 'password' && form.username === 'dba@example.com' && form.password === 'User-Secret-42');
      if (!ok || form.scope !== 'https://database.windows.net/.default') {
        res.statusCode = 400;
        res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'AADSTS50126: Error validating credentials due to invalid username or password.\r\nTrace ID: x' }));
        return;
      }
      res.end(JSON.stringify({ access_token: `token-${form.grant_type}`, expires_in: 3600 }));
    });
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
  process.env.AZURE_AUTHORITY_HOST = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}`;
  sim = await SqlSimulator.start({ entraTokens: { 'token-client_credentials': 'app-1', 'token-password': 'dba@example.com' }, seed: { databases: [{ name: 'Octopus' }] } });
  jest.resetModules();
  jest.doMock('@azure/identity', () => jest.requireActual('../../steps/shared/sql/entra-identity'));
  sql = jest.requireActual('../../steps/shared/sql');
});
afterAll(async () => {
  if (previousHost === undefined) delete process.env.AZURE_AUTHORITY_HOST;
  else process.env.AZURE_AUTHORITY_HOST = previousHost;
  await sim?.stop();
  await new Promise((r) => tokenServer.close(r));
});

const server = () => `Server=127.0.0.1,${sim.port};Database=Octopus;Encrypt=False`;

test('service principal: token from the tenant, signed in as the application', async () => {
  const c = await sql.openSqlConnection(`${server()};Authentication=Active Directory Service Principal;User ID=app-1;Password=Sp-Secret-42;Tenant Id=tenant-1`);
  try {
    expect((await c.query<{ who: string; db: string }>('SELECT SUSER_SNAME() AS who, DB_NAME() AS db')).rows).toEqual([{ who: 'app-1', db: 'Octopus' }]);
  } finally {
    await c.close();
  }
});

test('password: signed in as the user', async () => {
  const c = await sql.openSqlConnection(`${server()};Authentication=Active Directory Password;User ID=dba@example.com;Password=User-Secret-42;Client Id=public-app`);
  try {
    expect((await c.query<{ who: string }>('SELECT SUSER_SNAME() AS who')).rows).toEqual([{ who: 'dba@example.com' }]);
  } finally {
    await c.close();
  }
});

test("a refused token request explains itself with Entra's reason, never the secret", async () => {
  const error = (await sql
    .openSqlConnection(`${server()};Authentication=Active Directory Service Principal;User ID=app-1;Password=Wrong-Secret-99;Tenant Id=tenant-1`)
    .catch((e: Error) => e)) as InstanceType<typeof sql.SqlError>;
  expect(error).toBeInstanceOf(sql.SqlError);
  expect(error.kind).toBe('login');
  expect(error.message).toMatch(/Microsoft Entra/);
  expect(error.message).toMatch(/AADSTS50126/);
  expect(error.message).not.toContain('Wrong-Secret-99');
});
