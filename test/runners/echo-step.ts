// A fixture step for the runner tests: it reports every parameter it received as an output
// variable (a secret only as its SHA-256), can hold still so the test can inspect the process
// list, and exits with the code it is asked for.
import { createHash } from 'node:crypto';
import { defineParameter, defineTemplate } from '../../templates/model';
import { nodePath } from '../../templates/parameters';
import { StepFailure } from '../../steps/runtime/errors';
import { main } from '../../steps/runtime/run-step';

export const echoTemplate = defineTemplate({
  stepId: 'echo-parameters',
  name: 'Octopus DR Test - Echo Parameters',
  description: 'Test fixture.',
  id: 'a6b0f3d2-51c4-4f7e-9d0a-3c5e8b7f1a20',
  bashId: 'b7c1e4f3-62d5-4e8f-8e1b-4d6f9c8e2b31',
  version: 1,
  lastModified: '2026-11-27T00:00:00.000Z',
  category: 'octopus',
  params: {
    text: defineParameter({ name: 'OctopusDr.Test.Text', label: 'Text', helpText: '', type: 'string', required: false, defaultValue: '', flag: 'text' }),
    lines: defineParameter({ name: 'OctopusDr.Test.Lines', label: 'Lines', helpText: '', type: 'string', multiLine: true, required: false, defaultValue: '', flag: 'lines' }),
    secret: defineParameter({ name: 'OctopusDr.Test.Secret', label: 'Secret', helpText: '', type: 'secret', required: false, defaultValue: '', flag: 'secret' }),
    flag: defineParameter({ name: 'OctopusDr.Test.Flag', label: 'Flag', helpText: '', type: 'bool', required: false, defaultValue: 'False', flag: 'flag' }),
    holdMs: defineParameter({ name: 'OctopusDr.Test.HoldMs', label: 'Hold (ms)', helpText: '', type: 'integer', required: false, defaultValue: '0', flag: 'hold-ms', min: 0, max: 60000 }),
    exitCode: defineParameter({ name: 'OctopusDr.Test.ExitCode', label: 'Exit code', helpText: '', type: 'integer', required: false, defaultValue: '0', flag: 'exit-code', min: 0, max: 255 }),
    nodePath,
  },
});

if (require.main === module || process.env.OCTOPUSDR_RUNNER) {
  main(echoTemplate, async (params, context) => {
    context.setOutput('Echo.Text', params.text);
    context.setOutput('Echo.Lines', JSON.stringify(params.lines));
    context.setOutput('Echo.SecretSha256', createHash('sha256').update(params.secret).digest('hex'));
    context.setOutput('Echo.Flag', String(params.flag));
    context.setOutput('Echo.Pid', process.pid);
    context.setOutput('Echo.ParameterVariablesLeft', Object.keys(process.env).filter((k) => k.startsWith('OCTOPUSDR_') && k !== 'OCTOPUSDR_RUNNER').join(','));
    context.log.info(`Secret as given: ${params.secret}`);
    if (params.text) context.log.info(`Text as given: ${params.text}`);
    if (params.holdMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, params.holdMs);
        context.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      context.throwIfCancelled();
    }
    if (params.exitCode !== 0) throw new StepFailure(`Asked to exit with ${params.exitCode}${params.text ? ` (${params.text})` : ''}`, { exitCode: params.exitCode });
  });
}
