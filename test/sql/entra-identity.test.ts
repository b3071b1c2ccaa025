// The @azure/identity stand-in bundled into the steps: the OAuth 2.0 token requests tedious needs
// for Authentication=Active Directory Password / Service Principal, against a local token endpoint.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClientSecretCredential, DefaultAzureCredential, UsernamePasswordCredential } from '../../steps/shared/sql/entra-identity';

let server: http.Server;
const requests: { url: string; form: Record<string, string> }[] = [];
const previousHost = process.env.AZURE_AUTHORITY_HOST;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      requests.push({ url: req.url ?? '', form });
      res.setHeader('content-type', 'application/json');
      if (form.client_secret === 'wrong' || form.password === 'wrong') {
        res.statusCode = 401;
        res.end(JSON.stringify({ error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1' }));
        return;
      }
      res.end(JSON.stringify({ token_type: 'Bearer', expires_in: 3599, access_token: `token-for-${form.grant_type}` }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.env.AZURE_AUTHORITY_HOST = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  if (previousHost === undefined) delete process.env.AZURE_AUTHORITY_HOST;
  else process.env.AZURE_AUTHORITY_HOST = previousHost;
  await new Promise((r) => server.close(r));
});

test('service principal: client_credentials grant to the tenant, scope from tedious', async () => {
  const token = await new ClientSecretCredential('tenant-1', 'app-1', 's3cret').getToken('https://database.windows.net/.default');
  expect(token.token).toBe('token-for-client_credentials');
  expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3_500_000);
  expect(requests.pop()).toEqual({
    url: '/tenant-1/oauth2/v2.0/token',
    form: { grant_type: 'client_credentials', client_id: 'app-1', client_secret: 's3cret', scope: 'https://database.windows.net/.default' },
  });
});

test('password: resource-owner password grant', async () => {
  const token = await new UsernamePasswordCredential('common', 'app-2', 'user@example.com', 'pw').getToken(['https://database.windows.net/.default']);
  expect(token.token).toBe('token-for-password');
  expect(requests.pop()?.form).toEqual({ grant_type: 'password', client_id: 'app-2', username: 'user@example.com', password: 'pw', scope: 'https://database.windows.net/.default' });
});

test("a refusal carries Entra's first line and never the secret", async () => {
  const error = await new ClientSecretCredential('t', 'a', 'wrong').getToken('s').catch((e: Error) => e);
  expect((error as Error).message).toBe('Microsoft Entra ID did not issue a token: AADSTS7000215: Invalid client secret provided.');
});

test('credential types our connection strings never produce fail clearly', () => {
  expect(() => new DefaultAzureCredential()).toThrow(/Active Directory Password or Active Directory Service Principal/);
});
