// `npm run octopus-simulator -- --port 8065`: the Octopus API simulator as a standalone server,
// so `npm run publish` and the steps can be tried without an Octopus Server.
import { parseArgs } from 'node:util';
import { OctopusSimulator } from './simulator';

function main(): void {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8065' },
      host: { type: 'string', default: '127.0.0.1' },
      environment: { type: 'string', multiple: true },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npm run octopus-simulator -- [--port 8065] [--host 127.0.0.1] [--environment Production ...]\n' +
        'Serves an in-memory Octopus REST API (space "Default"). Any API key that starts with API- is accepted.\n',
    );
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, not "${values.port}".`);
  const simulator = new OctopusSimulator({ environments: values.environment });
  simulator.start(port, values.host).then(
    (url) => {
      process.stdout.write(
        `Octopus API simulator listening on ${url} (space "Default"; environments: ${simulator.state.spaces[0].environments.map((e) => e.Name).join(', ')}).\n` +
          `Any API key starting with API- is accepted, e.g.:\n` +
          `  OCTOPUSDR_OCTOPUS_APIKEY=API-SIMULATOR npm run publish -- --server-url ${url} --space Default --environment Production\n` +
          'Requests are logged below; Ctrl+C stops.\n',
      );
      let logged = 0;
      setInterval(() => {
        for (; logged < simulator.requests.length; logged++) {
          const r = simulator.requests[logged];
          process.stdout.write(`${r.status} ${r.method} ${r.url}\n`);
        }
      }, 200).unref();
      const stop = () => {
        simulator.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (error: unknown) => {
      process.stderr.write(`Cannot start the simulator on ${values.host}:${port}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

main();
