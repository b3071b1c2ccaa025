// The shared Octopus connection code (steps/engines/octopus): URL checks, version comparison, and
// failures explained, on real sockets.
import * as http from 'node:http';
import * as net from 'node:net';
import { compareVersions, connectToOctopus, describeOctopusError, normaliseServerUrl } from '../../steps/engines/octopus/connection';

test('server URLs: http(s) only, no credentials or query; a trailing /api and slashes are dropped, a virtual directory kept', () => {
  expect(normaliseServerUrl(' https://octopus.example.com/ ')).toEqual({ url: 'https://octopus.example.com' });
  expect(normaliseServerUrl('https://octopus.example.com/octopus/api/')).toEqual({ url: 'https://octopus.example.com/octopus' });
  expect(normaliseServerUrl('octopus.example.com')).toEqual({ problem: expect.stringMatching(/is not a URL/) });
  expect(normaliseServerUrl('ftp://octopus')).toEqual({ problem: expect.stringMatching(/https:\/\/ or http:\/\//) });
  expect(normaliseServerUrl('https://admin:pw@octopus')).toEqual({ problem: expect.stringMatching(/must not contain a user name or password/) });
  expect(normaliseServerUrl('https://octopus/?x=1')).toEqual({ problem: expect.stringMatching(/query or fragment/) });
});

test('versions compare part by part, numerically', () => {
  expect(compareVersions('2025.3.12345', '2022.3.0')).toBeGreaterThan(0);
  expect(compareVersions('2022.3.5512', '2022.3.10000')).toBeLessThan(0);
  expect(compareVersions('2022.3', '2022.3.0')).toBe(0);
  expect(compareVersions('2021.1.7500-preview', '2022.3.0')).toBeLessThan(0);
});

test('network and TLS error codes become advice', () => {
  const tls = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  expect(describeOctopusError(tls, 'https://octopus', 'connecting').message).toMatch(/self-signed; trust it by pointing NODE_EXTRA_CA_CERTS/);
  const dns = Object.assign(new Error('getaddrinfo ENOTFOUND octopus'), { code: 'ENOTFOUND' });
  expect(describeOctopusError(dns, 'https://octopus', 'connecting').message).toBe(
    'Cannot reach the Octopus Server at https://octopus while connecting: the host name does not resolve (DNS) (ENOTFOUND). Check the server URL and that this machine can reach it.',
  );
  const conflict = { StatusCode: 409, ErrorMessage: 'modified since you loaded it' };
  expect(describeOctopusError(conflict, 'https://octopus', 'updating X').message).toBe('The Octopus Server at https://octopus refused the change (409) while updating X: modified since you loaded it');
});

test('a server that accepts the connection but never answers times out with a clear message', async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    await expect(
      connectToOctopus({ serverUrl: `http://127.0.0.1:${port}`, apiKey: 'API-X', userAgentApp: 'tests', apiKeySource: 'test', requestTimeoutMs: 300 }),
    ).rejects.toThrow(`The Octopus Server at http://127.0.0.1:${port} did not answer within 300 ms while connecting.`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('something that is not an Octopus Server is named as such', async () => {
  const web = http.createServer((_, res) => res.end('<html>hello</html>'));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  const port = (web.address() as net.AddressInfo).port;
  try {
    await expect(connectToOctopus({ serverUrl: `http://127.0.0.1:${port}`, apiKey: 'API-X', userAgentApp: 'tests', apiKeySource: 'test' })).rejects.toThrow(
      /did not answer like an Octopus Server/,
    );
  } finally {
    web.closeAllConnections();
    await new Promise((resolve) => web.close(resolve));
  }
});
