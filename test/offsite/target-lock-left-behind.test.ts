// Red team 39: a run that wrote its offsite lock and then failed or was cancelled before
// acquireOffsiteLock returned (the probe of the store's conditions failed; a cancel during the
// pause a store that ignores conditions needs) left the lock behind, its own, with no release: every
// run from another host then waited for it and failed, for the 15 minutes until it expired.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acquireOffsiteLock, OFFSITE_LOCK_KEY } from '../../steps/engines/offsite/target-lock';
import { openOffsiteStore } from '../../steps/engines/offsite/open';
import { offsiteTargetFrom } from '../../steps/engines/offsite/target';
import { azureProvider, s3Provider } from './providers';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './servers';

const quiet = { info: () => undefined, verbose: () => undefined, warn: () => undefined };

describe('s3rver (conditions ignored)', () => {
  const provider = s3Provider();
  beforeAll(() => provider.start(), 60_000);
  afterAll(() => provider.stop());

  test('cancelled while it lets a concurrent write land: the lock it wrote is not left behind', async () => {
    const url = await provider.newTarget();
    const store = provider.store(url);
    try {
      const abort = new AbortController();
      const taking = acquireOffsiteLock({ store, step: 'copy-offsite', waitMs: 0, log: quiet, signal: abort.signal, settleMs: 3000 });
      // The lock is written and probed well before the pause ends.
      await new Promise((r) => setTimeout(r, 1000));
      expect(await store.read(OFFSITE_LOCK_KEY)).toBeDefined();
      abort.abort(new Error('cancelled'));
      await expect(taking).rejects.toThrow('cancelled');
      await new Promise((r) => setTimeout(r, 200));
      expect(await store.read(OFFSITE_LOCK_KEY)).toBeUndefined();
    } finally {
      store.close();
    }
  }, 30_000);
});

describe('Azurite (conditions kept)', () => {
  const provider = azureProvider();
  beforeAll(() => provider.start(), 60_000);
  afterAll(() => provider.stop());

  test('the probe of the conditions fails: the lock just written is not left behind', async () => {
    const url = await provider.newTarget();
    const upstream = new URL(`http://127.0.0.1:${provider.server().port}`);
    let lockPuts = 0;
    // The store refuses the second write of the lock (the probe) with a 400 (as a gateway or a policy might).
    const server: Server = createServer((req, res) => {
      if (req.method === 'PUT' && (req.url ?? '').includes(OFFSITE_LOCK_KEY) && ++lockPuts >= 2) {
        req.resume();
        req.on('end', () => {
          res.writeHead(400, { 'content-length': 0 });
          res.end();
        });
        return;
      }
      const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accountUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${AZURITE_ACCOUNT}`;
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${accountUrl};`;
    const container = new URL(url).pathname.split('/')[2];
    const store = openOffsiteStore(offsiteTargetFrom({ ...provider.settings(url), offsiteUrl: `${accountUrl}/${container}/dr/octopus`, azureConnectionString: connectionString }));
    const direct = provider.store(url);
    try {
      await expect(acquireOffsiteLock({ store, step: 'copy-offsite', waitMs: 0, log: quiet, signal: new AbortController().signal })).rejects.toThrow();
      expect(lockPuts).toBeGreaterThanOrEqual(2);
      expect(await direct.read(OFFSITE_LOCK_KEY)).toBeUndefined();
    } finally {
      store.close();
      direct.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);
});
