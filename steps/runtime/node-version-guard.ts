// Imported first by steps whose dependencies need a newer Node.js than the rest: on an older
// node the program says so and how to get a newer one, before any dependency is loaded.
import { serviceMessages } from './service-messages';

export function requireNodeMajor(minimum: number, stepName: string): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= minimum) return;
  const message =
    `${stepName} needs Node.js ${minimum} or newer (its storage SDKs do), and this is Node.js ${process.versions.node}. ` +
    `Run it with a newer node: install Node.js ${minimum}+ (https://nodejs.org, or your package manager), use the ` +
    `octopusdeploy/worker-tools container image, or set the parameter Node.js executable (OctopusDr.NodePath).`;
  if (process.env.OCTOPUSDR_RUNNER) {
    process.stdout.write(serviceMessages.resultMessage(message) + '\n');
  }
  process.stderr.write(`ERROR: ${message}\n`);
  process.exit(1);
}
