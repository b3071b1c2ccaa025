import { stepDescription } from './description';
import { SERVER_URL_FORMAT } from './formats';
import { defineParameter, defineTemplate } from './model';
import { nodePath, octopusApiKey } from './parameters';

export const maintenanceMode = defineTemplate({
  stepId: 'maintenance-mode',
  name: 'Octopus DR - Set Maintenance Mode',
  description: stepDescription(
    'Turns Octopus Server maintenance mode on or off through the Octopus REST API, so that a backup sees a quiet, ' +
      'consistent server. Turning it on can wait until no other task is executing. The step is idempotent: it changes ' +
      'nothing when the server is already in the requested mode. The previous mode is an output variable ' +
      '(`PreviousMaintenanceMode`), so a final step that always runs can put the server back as it was.',
    'The API key must belong to a user with the **AdministerSystem** permission (System administrators).',
  ),
  id: 'f0baa11c-7ecc-4fa4-8773-a8e40678daca',
  bashId: '388877c6-373b-4a2d-945e-a9c002935392',
  version: 2,
  lastModified: '2026-12-01T00:00:00.000Z',
  category: 'octopus',
  params: {
    serverUrl: defineParameter({
      name: 'OctopusDr.Octopus.ServerUrl',
      label: 'Octopus Server URL',
      helpText:
        'The address of the Octopus Server, as this worker reaches it (e.g. `https://octopus.example.com`). ' +
        'The default is the server\'s own configured web address.',
      type: 'string',
      required: true,
      defaultValue: '#{Octopus.Web.ServerUri}',
      flag: 'server-url',
      format: SERVER_URL_FORMAT,
    }),
    apiKey: octopusApiKey,
    mode: defineParameter({
      name: 'OctopusDr.Octopus.MaintenanceMode',
      label: 'Maintenance mode',
      helpText:
        '`On` or `Off`. A step that leaves maintenance mode at the end of a runbook sets `Off` and ' +
        '*Only if this run set it*.',
      type: 'enum',
      options: [
        { value: 'On', label: 'On' },
        { value: 'Off', label: 'Off' },
      ],
      required: true,
      defaultValue: 'On',
      // Was --mode, which the file-store backup also had (Full/Incremental): one flag, one meaning.
      flag: 'maintenance-mode',
      aliases: [{ flag: 'mode' }],
    }),
    drainTimeoutMinutes: defineParameter({
      name: 'OctopusDr.Octopus.DrainTimeoutMinutes',
      label: 'Drain timeout (minutes)',
      helpText:
        'When turning maintenance mode on, wait up to this long until no task other than this one is executing; ' +
        'fail if tasks are still running then. 0 does not wait.',
      type: 'integer',
      required: false,
      defaultValue: '30',
      flag: 'drain-timeout-minutes',
      min: 0,
      max: 1440,
    }),
    onlyIfSetByThisRun: defineParameter({
      name: 'OctopusDr.Octopus.OnlyIfSetByThisRun',
      label: 'Only if this run set it',
      helpText:
        'For the step that leaves maintenance mode at the end of a runbook: the entering step\'s `SetByThisRun` output, as ' +
        '`#{if Octopus.Action[Enter maintenance mode].Output.SetByThisRun}#{Octopus.Action[Enter maintenance mode].Output.SetByThisRun}#{else}Unknown#{/if}` ' +
        '(an unresolved binding reads as empty). The mode is then changed only when it is `True`; `False`, `Unknown` or ' +
        'anything else changes nothing, and says so. Empty: set the mode regardless.',
      type: 'string',
      required: false,
      defaultValue: '',
      flag: 'only-if-set-by-this-run',
    }),
    currentTaskId: defineParameter({
      name: 'OctopusDr.Octopus.CurrentTaskId',
      label: 'Current task',
      helpText: 'The task running this step, which the drain does not wait for. Keep the default.',
      type: 'string',
      required: false,
      defaultValue: '#{Octopus.Task.Id}',
      flag: 'current-task-id',
    }),
    nodePath,
  },
});
