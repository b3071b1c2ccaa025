// Red team 39: a lock write that reached the store, but whose answer did not reach this run (a
// gateway's 503 after the write was committed, a connection reset), is retried by the SDK; the retry
// meets this run's own write and is refused (409 BlobAlreadyExists / 412 ConditionNotMet). The run
// then took its own lock for another run's: it waited for itself and failed naming its own process,
// or (at a renewal) declared the lock lost to itself, failed the copy, and left the lock in place.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acquireOffsiteLock, OFFSITE_LOCK_KEY } from '../../steps/engines/offsite/target-lock';
import { openOffsiteStore } from '../../steps/engines/offsite/open';
import { offsiteTargetFrom } from '../../steps/engines/offsite/target';
import { azureProvider } from './providers';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './servers';

/** Forwards everything to Azurite; a request `breaks` picks is carried out there, but answered 503 here. */
async function lossyProxy(upstream: string, breaks: (method: string, url: string, headers: Record<string, unknown>) => boolean) {
  const target = new URL(upstream);
  const server: Server = createServer((req, res) => {
    const broken = breaks(req.method ?? '', req.url ?? '', req.headers);
    const forward = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (broken) {
        answer.resume();
        answer.on('end', () => {
          res.writeHead(503, { 'content-length': 0 });
          res.end();
        });
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const provider = azureProvider();
beforeAll(() => provider.start(), 60_000);
afterAll(() => provider.stop());

const quiet = { info: () => undefined, verbose: () => undefined, warn: () => undefined };

function storeThrough(proxyUrl: string, url: string) {
  const accountUrl = `${proxyUrl}/${AZURITE_ACCOUNT}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${accountUrl};`;
  const container = new URL(url).pathname.split('/')[2];
  const offsiteUrl = `${accountUrl}/${container}/dr/octopus`;
  return openOffsiteStore(offsiteTargetFrom({ ...provider.settings(url), offsiteUrl, azureConnectionString: connectionString }));
}

const isLockPut = (method: string, url: string) => method === 'PUT' && url.includes(OFFSITE_LOCK_KEY);

/** A fresh target reached through a proxy that loses the answer to the first lock PUT `first` picks; `body` gets the store and a direct view. */
async function throughLossyProxy(
  first: (headers: Record<string, unknown>) => boolean,
  body: (store: ReturnType<typeof storeThrough>, direct: ReturnType<typeof provider.store>, broken: () => number) => Promise<void>,
): Promise<void> {
  const url = await provider.newTarget();
  let broken = 0;
  const proxy = await lossyProxy(`http://127.0.0.1:${provider.server().port}`, (method, u, headers) => isLockPut(method, u) && first(headers) && broken === 0 && ++broken === 1);
  const store = storeThrough(proxy.url, url);
  const direct = provider.store(url);
  try {
    await body(store, direct, () => broken);
  } finally {
    store.close();
    direct.close();
    await proxy.stop();
  }
}

test('a renewal whose answer was lost: the run still holds its lock, and releases it', () =>
  // The first renewal (a PUT conditional on the ETag) is carried out, and its answer lost.
  throughLossyProxy((headers) => Boolean(headers['if-match']), async (store, direct, broken) => {
    const lock = await acquireOffsiteLock({ store, step: 'copy-offsite', waitMs: 0, log: quiet, signal: new AbortController().signal, pollMs: 50, heartbeatMs: 200, staleAfterMs: 60_000 });
    // Long enough for the first renewal and the SDK's retry of it (its first retry waits about 4 s).
    await new Promise((r) => setTimeout(r, 9000));
    expect(broken()).toBe(1);
    await expect(lock.assertHeld()).resolves.toBeUndefined();
    await lock.release();
    expect(await direct.read(OFFSITE_LOCK_KEY)).toBeUndefined();
  }), 60_000);

test('a create-only write whose answer was lost: the run takes the lock it wrote instead of waiting for itself', () =>
  throughLossyProxy((headers) => headers['if-none-match'] === '*', async (store, direct, broken) => {
    const lock = await acquireOffsiteLock({ store, step: 'copy-offsite', waitMs: 0, log: quiet, signal: new AbortController().signal, pollMs: 50 });
    expect(broken()).toBe(1);
    await lock.release();
    expect(await direct.read(OFFSITE_LOCK_KEY)).toBeUndefined();
  }), 60_000);
