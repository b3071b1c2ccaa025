import * as os from 'node:os';
import type { ParameterValues } from '../../templates/model';
import type { checkWorker as template } from '../../templates/check-worker';
import { ParameterError, StepFailure } from '../runtime/errors';
import type { StepContext } from '../runtime/step-context';
import { checkDirectory, checkEndpoint, formatGB } from './checks';
import { parseEndpoint } from './endpoint';

type Params = ParameterValues<typeof template.params>;

/**
 * "Worker is ready" after checking no folder and no endpoint would be a green run that proved
 * nothing the runbooks need (only that Node.js starts), so it is bad input, refused before any check.
 */
function refuseNothingToCheck(params: Params): void {
  if (params.directories.length > 0 || params.tcpEndpoints.length > 0) return;
  throw new ParameterError([
    'Nothing to check: "Directories" and "TCP endpoints" are both empty, so "Worker is ready" would prove only that Node.js starts: ' +
      'set "Directories" (OctopusDr.Worker.Directories) to the folders this worker backs up to and restores from, or "TCP endpoints" ' +
      '(OctopusDr.Worker.TcpEndpoints) to the SQL Server and Octopus Server it must reach, in the step, or --directories or --tcp-endpoints on the command line.',
  ]);
}

const MINIMUM_NODE_MAJOR = 18;

export async function checkWorker(params: Params, context: StepContext): Promise<void> {
  const { log } = context;
  refuseNothingToCheck(params);
  const failures: string[] = [];

  const nodeMajor = Number(process.versions.node.split('.')[0]);
  log.info(`Operating system: ${os.type()} ${os.release()} (${process.platform}), ${os.arch()}`);
  log.info(`Node.js: ${process.version} at ${process.execPath}`);
  context.setOutput('OperatingSystem', `${os.type()} ${os.release()}`);
  context.setOutput('Platform', process.platform);
  context.setOutput('Architecture', os.arch());
  context.setOutput('NodeVersion', process.versions.node);
  if (nodeMajor < MINIMUM_NODE_MAJOR) failures.push(`Node.js ${process.version} is too old; octopus-dr needs ${MINIMUM_NODE_MAJOR} or newer.`);

  const minimumFreeBytes = (params.minimumFreeSpaceGB ?? 0) * 1e9;
  for (const [index, directory] of params.directories.entries()) {
    context.throwIfCancelled();
    const result = await checkDirectory(directory, minimumFreeBytes, log);
    const n = index + 1;
    const free = result.freeBytes === undefined ? 'free space unknown' : `${formatGB(result.freeBytes)} GB free`;
    const ok = result.problems.length === 0;
    log.info(`${ok ? 'OK  ' : 'FAIL'} directory ${directory}: ${result.exists ? 'exists' : 'missing'}, ${result.writable ? 'writable' : 'not writable'}, ${free}`);
    context.setOutput(`Directory.${n}.Path`, directory);
    context.setOutput(`Directory.${n}.Exists`, result.exists ? 'True' : 'False');
    context.setOutput(`Directory.${n}.Writable`, result.writable ? 'True' : 'False');
    if (result.freeBytes !== undefined) context.setOutput(`Directory.${n}.FreeSpaceGB`, formatGB(result.freeBytes));
    context.setOutput(`Directory.${n}.Passed`, ok ? 'True' : 'False');
    failures.push(...result.problems);
  }

  const timeoutMs = (params.timeoutSeconds ?? 5) * 1000;
  const endpoints = params.tcpEndpoints.map((address) => ({ address, parsed: parseEndpoint(address) }));
  const results = await Promise.all(
    endpoints.map(({ address, parsed }) =>
      typeof parsed === 'string'
        ? Promise.resolve({ address, reachable: false, problem: parsed, milliseconds: undefined })
        : checkEndpoint(address, parsed, timeoutMs, context.signal),
    ),
  );
  context.throwIfCancelled();
  for (const [index, result] of results.entries()) {
    const n = index + 1;
    log.info(
      result.reachable
        ? `OK   endpoint ${result.address}: connected in ${result.milliseconds} ms`
        : `FAIL endpoint ${result.problem}`,
    );
    context.setOutput(`Endpoint.${n}.Address`, result.address);
    context.setOutput(`Endpoint.${n}.Passed`, result.reachable ? 'True' : 'False');
    if (result.milliseconds !== undefined) context.setOutput(`Endpoint.${n}.Milliseconds`, result.milliseconds);
    if (!result.reachable && result.problem) failures.push(result.problem);
  }

  context.setOutput('Passed', failures.length === 0 ? 'True' : 'False');
  context.setOutput('Failures', failures.join('\n'));
  const checked = `${params.directories.length} director${params.directories.length === 1 ? 'y' : 'ies'} and ${results.length} endpoint${results.length === 1 ? '' : 's'}`;
  if (failures.length > 0) {
    throw new StepFailure(`Worker check failed (${failures.length} problem${failures.length === 1 ? '' : 's'}):\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  }
  log.highlight(`Worker is ready: Node.js ${process.versions.node}, ${checked} checked.`);
  context.result(`Worker is ready (${checked} checked).`);
}
