// A loopback proxy in front of s3rver that answers conditional writes and deletes of chosen keys as
// Amazon S3 documents them, since s3rver ignores the conditions:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html and
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html
// - PUT with `If-None-Match: *` on a key that exists: 412 PreconditionFailed.
// - PUT or DELETE with `If-Match: <etag>` on a key with no current object: 404 NoSuchKey; on another ETag: 412.
// Or as a store that keeps only one of the two conditions (`keeps`), and ignores the other, as some
// S3-compatible stores do. Each conditional request is decided and carried out one at a time per key
// (as S3 does), after `before` (a test's hook, run as the request arrives: delete the object meanwhile,
// hold the request back).
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { S3Server } from './servers';

export interface ConditionalRequest {
  method: string;
  /** The object key, without the bucket. */
  key: string;
  ifMatch?: string;
  ifNoneMatch?: string;
}

export interface S3ConditionsProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give the SDK. */
  endpoint: string;
  /** The conditional requests seen, and what they were answered. */
  seen: (ConditionalRequest & { status: number })[];
  stop(): Promise<void>;
}

export interface S3ConditionsOptions {
  /** Which keys are answered as S3 would (others go straight through, conditions ignored as s3rver does). */
  keys: (key: string) => boolean;
  /** Which conditions the store keeps: both (Amazon S3), or one only. */
  keeps?: 'both' | 'if-none-match' | 'if-match';
  before?: (r: ConditionalRequest) => Promise<void> | void;
}

const unquote = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId><HostId>proxy</HostId></Error>`;
}

export async function startS3ConditionsProxy(s3: S3Server, options: S3ConditionsOptions): Promise<S3ConditionsProxy> {
  const upstream = new URL(s3.endpoint);
  const client = s3.client();
  const keeps = options.keeps ?? 'both';
  const queues = new Map<string, Promise<unknown>>();
  const seen: S3ConditionsProxy['seen'] = [];

  const forward = (method: string, url: string, headers: IncomingHttpHeaders, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const out = request({ host: upstream.hostname, port: upstream.port, method, path: url, headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) }));
        answer.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });

  const currentEtag = async (bucket: string, key: string): Promise<string | undefined> => {
    try {
      return unquote((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? '');
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const method = req.method ?? '';
        const url = req.url ?? '/';
        const pathname = decodeURIComponent(new URL(url, 'http://x').pathname);
        const [, bucket, ...rest] = pathname.split('/');
        const key = rest.join('/');
        const ifMatch = req.headers['if-match'] as string | undefined;
        const ifNoneMatch = req.headers['if-none-match'] as string | undefined;
        const conditional = (method === 'PUT' || method === 'DELETE') && (ifMatch !== undefined || ifNoneMatch !== undefined) && key !== '' && options.keys(key);
        const answer = (status: number, headers: IncomingHttpHeaders, text: Buffer | string) => {
          const payload = typeof text === 'string' ? Buffer.from(text) : text;
          const h: IncomingHttpHeaders = { ...headers, 'content-length': String(payload.length) };
          delete h['transfer-encoding'];
          res.writeHead(status, h as Record<string, string>);
          res.end(payload);
        };
        if (!conditional) {
          const done = await forward(method, url, req.headers, body);
          return answer(done.status, done.headers, done.body);
        }
        const r: ConditionalRequest = { method, key, ifMatch, ifNoneMatch };
        await options.before?.(r);
        const previous = queues.get(key) ?? Promise.resolve();
        const turn = previous.then(async () => {
          const etag = await currentEtag(bucket, key);
          const checkMatch = ifMatch !== undefined && keeps !== 'if-none-match';
          const checkNoneMatch = ifNoneMatch !== undefined && keeps !== 'if-match';
          if (checkMatch && etag === undefined) return { status: 404, headers: { 'content-type': 'application/xml' }, body: Buffer.from(errorXml('NoSuchKey', 'The specified key does not exist.')) };
          if (checkMatch && ifMatch!.trim() !== '*' && unquote(ifMatch!) !== etag) {
            return { status: 412, headers: { 'content-type': 'application/xml' }, body: Buffer.from(errorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')) };
          }
          if (checkNoneMatch && etag !== undefined) {
            return { status: 412, headers: { 'content-type': 'application/xml' }, body: Buffer.from(errorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')) };
          }
          return forward(method, url, req.headers, body);
        });
        queues.set(key, turn.catch(() => undefined));
        const done = await turn;
        seen.push({ ...r, status: done.status });
        answer(done.status, done.headers, done.body);
      })().catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        client.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
