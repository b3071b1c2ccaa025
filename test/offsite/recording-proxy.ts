// A loopback HTTP proxy in front of a storage server: it records every request the SDK sends
// (method, path and query, headers) and can answer some requests itself, as a real store that
// refuses them would. s3rver and Azurite ignore lock headers, so the tests read the requests.
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RecordingProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Answer matching requests with this instead of forwarding them. */
  refuse?: (r: RecordedRequest) => Refusal | undefined;
  stop(): Promise<void>;
}

export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const proxy: RecordingProxy = { url: '', port: 0, requests: [], stop: async () => undefined };
  const server: Server = createServer((req, res) => {
    const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    proxy.requests.push(recorded);
    const refusal = proxy.refuse?.(recorded);
    if (refusal) {
      req.resume();
      req.on('end', () => {
        res.writeHead(refusal.status, { ...refusal.headers, 'content-length': Buffer.byteLength(refusal.body) });
        res.end(refusal.body);
      });
      return;
    }
    const forward = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  proxy.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
