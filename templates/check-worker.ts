import { defineParameter, defineTemplate } from './model';
import { stepDescription } from './description';
import { TCP_ENDPOINT_FORMAT } from './formats';
import { nodePath } from './parameters';

export const checkWorker = defineTemplate({
  stepId: 'check-worker',
  name: 'Octopus DR - Check Worker',
  description: stepDescription(
    'Checks that this worker is ready to run Octopus DR runbooks: reports the operating system, Node.js version and ' +
      'architecture; checks that each backup directory exists, is writable and has enough free space; and checks that ' +
      'each `host:port` (SQL Server, file share, Octopus Server) accepts a TCP connection. Every failed check is listed, ' +
      'not just the first, and each result is an output variable.',
  ),
  id: '5302a0cc-5d2f-4f7f-a843-d3fadfcbfa22',
  bashId: 'ca2860ca-eb14-4f2f-9b33-81601473c158',
  version: 1,
  lastModified: '2026-11-27T00:00:00.000Z',
  category: 'octopus',
  params: {
    directories: defineParameter({
      name: 'OctopusDr.Worker.Directories',
      label: 'Directories',
      helpText:
        'Directories this worker will read or write, one per line (backup targets, restore staging, the file store). ' +
        'Each must exist, accept a new file and have the minimum free space.',
      type: 'path',
      multiLine: true,
      required: false,
      defaultValue: '',
      flag: 'directories',
    }),
    minimumFreeSpaceGB: defineParameter({
      name: 'OctopusDr.Worker.MinimumFreeSpaceGB',
      label: 'Minimum free space (GB)',
      helpText: 'Free space each directory must have, in GB (10^9 bytes). 0 skips the check.',
      type: 'integer',
      required: false,
      defaultValue: '10',
      flag: 'minimum-free-space-gb',
      min: 0,
      max: 1_000_000,
    }),
    tcpEndpoints: defineParameter({
      name: 'OctopusDr.Worker.TcpEndpoints',
      label: 'TCP endpoints',
      helpText:
        'Endpoints this worker must reach, one `host:port` per line (e.g. `sql01:1433`, `[fd00::5]:443`). ' +
        'Each must accept a TCP connection within the timeout.',
      type: 'string',
      multiLine: true,
      required: false,
      defaultValue: '',
      flag: 'tcp-endpoints',
      format: TCP_ENDPOINT_FORMAT,
    }),
    timeoutSeconds: defineParameter({
      name: 'OctopusDr.Worker.TimeoutSeconds',
      label: 'Connection timeout (seconds)',
      helpText: 'How long to wait for each TCP connection.',
      type: 'integer',
      required: false,
      defaultValue: '5',
      flag: 'timeout-seconds',
      min: 1,
      max: 300,
    }),
    nodePath,
  },
});
