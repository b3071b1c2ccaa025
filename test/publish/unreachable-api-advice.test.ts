// The last line of a publish whose server URL answers, but not as an Octopus Server would: a web
// site whose /api is not found (the wrong host, or Octopus under a virtual directory the URL lacks),
// or a load balancer in front of a stopped Octopus answering 502/503. Before, it ended on
// "Not found on the Octopus Server at ... (404) while connecting: Request failed with status code 404"
// (or "answered 503 ..."): what failed, and nothing to do about it.
import * as http from 'node:http';
import type * as net from 'node:net';
import { runPublishCli } from '../../scripts/publish/index';
import { writeFixtureTemplates } from './fixtures';

const API_KEY = 'API-ADVICE0000000000000000000000';

async function withServer(status: number, run: (url: string) => Promise<void>): Promise<void> {
  const web = http.createServer((_, res) => {
    res.statusCode = status;
    res.setHeader('content-type', 'text/html');
    res.end(`<html><body>${status}</body></html>`);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  try {
    await run(`http://127.0.0.1:${(web.address() as net.AddressInfo).port}`);
  } finally {
    web.closeAllConnections();
    await new Promise((resolve) => web.close(resolve));
  }
}

async function publish(url: string): Promise<{ exitCode: number; last: string }> {
  let stderr = '';
  const { exitCode } = await runPublishCli(['--server-url', url, '--environment', 'Production', '--templates-dir', writeFixtureTemplates()], { OCTOPUSDR_OCTOPUS_APIKEY: API_KEY }, {
    stdout: () => undefined,
    stderr: (t) => (stderr += t),
  });
  return { exitCode, last: stderr.trim().split('\n').pop() ?? '' };
}

test('a URL whose /api is not found: the last line says it is not the Octopus Server address and how to give it', async () => {
  await withServer(404, async (url) => {
    const { exitCode, last } = await publish(`${url}/web`);
    expect(exitCode).toBe(1);
    expect(last).toContain(`${url}/web/api`);
    expect(last).toMatch(/is not the address of an Octopus Server/);
    expect(last).toMatch(/the address you open Octopus at.*including its virtual directory/);
    expect(last).not.toContain('Request failed with status code');
  });
});

test.each([502, 503])('a proxy answering %i while connecting: the last line says the server behind it is down or starting, and what to do', async (status) => {
  await withServer(status, async (url) => {
    const { exitCode, last } = await publish(url);
    expect(exitCode).toBe(1);
    expect(last).toContain(`answered ${status} while connecting`);
    expect(last).toMatch(/Check that the Octopus Server is running .*and run this again\.$/);
  });
});
