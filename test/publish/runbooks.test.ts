// The publisher binds parameters by the template objects' definitions: every name it binds exists in
// the template it binds to, and runbooks.ts spells no parameter name itself. And its earlier option
// spellings (--server, OCTOPUS_URL, OCTOPUS_API_KEY) still work, each with a warning naming the new one.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parsePublishOptions } from '../../scripts/publish/options';
import { PROJECT_VARIABLES, RUNBOOKS } from '../../scripts/publish/runbooks';
import { templates } from '../../templates';

const ROOT = path.resolve(__dirname, '../..');
const parameterNamesOf = (stepId: string) => {
  const template = templates.find((t) => t.stepId === stepId);
  if (!template) throw new Error(`No template has the step id ${stepId}.`);
  return new Set(template.parameters.map((p) => p.name));
};

describe('runbooks bind only parameters their templates define', () => {
  for (const runbook of RUNBOOKS) {
    for (const step of runbook.steps) {
      test(`${runbook.name} > ${step.name}`, () => {
        const names = parameterNamesOf(step.stepId);
        const bound = [...Object.keys(step.values ?? {}), ...(step.fromProjectVariables ?? []), ...(step.blankProjectVariables ?? [])];
        expect(bound.length).toBeGreaterThan(0);
        expect(bound.filter((name) => !names.has(name))).toEqual([]);
      });
    }
  }

  test('every project variable supplies a parameter of a template some runbook uses', () => {
    const used = new Set(RUNBOOKS.flatMap((r) => r.steps.flatMap((s) => [...parameterNamesOf(s.stepId)])));
    expect(PROJECT_VARIABLES.map((v) => v.name).filter((name) => !used.has(name))).toEqual([]);
  });

  test('runbooks.ts spells no parameter name itself (only the former name of a renamed variable)', () => {
    const source = readFileSync(path.join(ROOT, 'scripts/publish/runbooks.ts'), 'utf8');
    expect(source.match(/['`"]OctopusDr\.[A-Za-z.]+/g)).toEqual(["'OctopusDr.Restore.ExpectedKeyId"]);
  });

  test('the expected key ID has one name: the verify step\'s parameter is the project variable', () => {
    const variable = PROJECT_VARIABLES.find((v) => v.formerName === 'OctopusDr.Restore.ExpectedKeyId');
    expect(variable?.name).toBe('OctopusDr.MasterKey.ExpectedKeyId');
    expect(parameterNamesOf('verify-master-key').has(variable!.name)).toBe(true);
  });
});

describe('publisher options: one spelling shared with the steps, the earlier ones still accepted with a warning', () => {
  const parse = (argv: string[], env: NodeJS.ProcessEnv) => {
    const options = parsePublishOptions(argv, env, ROOT);
    if (options === 'help') throw new Error('help');
    return options;
  };

  test('--server-url and OCTOPUSDR_OCTOPUS_APIKEY, as Set Maintenance Mode takes them: no warning', () => {
    const options = parse(['--server-url', 'https://octopus.example.com'], { OCTOPUSDR_OCTOPUS_APIKEY: 'API-NEW' });
    expect(options).toMatchObject({ serverUrl: 'https://octopus.example.com', apiKey: 'API-NEW', warnings: [] });
    expect(options.apiKeySource).toBe('the OCTOPUSDR_OCTOPUS_APIKEY environment variable');
    expect(parse([], { OCTOPUSDR_OCTOPUS_SERVERURL: 'https://env.example.com', OCTOPUSDR_OCTOPUS_APIKEY: 'API-NEW' }).serverUrl).toBe('https://env.example.com');
  });

  test('--server still works and warns', () => {
    const options = parse(['--server', 'https://octopus.example.com'], { OCTOPUSDR_OCTOPUS_APIKEY: 'API-NEW' });
    expect(options.serverUrl).toBe('https://octopus.example.com');
    expect(options.warnings).toEqual(['--server is deprecated and will be removed: use --server-url instead.']);
  });

  test('OCTOPUS_URL still works and warns', () => {
    const options = parse([], { OCTOPUS_URL: 'https://old.example.com', OCTOPUSDR_OCTOPUS_APIKEY: 'API-NEW' });
    expect(options.serverUrl).toBe('https://old.example.com');
    expect(options.warnings).toEqual(['OCTOPUS_URL is deprecated and will be removed: use OCTOPUSDR_OCTOPUS_SERVERURL instead.']);
  });

  test('OCTOPUS_API_KEY still works and warns; the new variable wins when both are set', () => {
    const options = parse(['--server-url', 'https://octopus.example.com'], { OCTOPUS_API_KEY: 'API-OLD' });
    expect(options.apiKey).toBe('API-OLD');
    expect(options.apiKeySource).toBe('the OCTOPUS_API_KEY environment variable');
    expect(options.warnings).toEqual(['OCTOPUS_API_KEY is deprecated and will be removed: use OCTOPUSDR_OCTOPUS_APIKEY instead.']);
    const both = parse(['--server-url', 'https://octopus.example.com'], { OCTOPUS_API_KEY: 'API-OLD', OCTOPUSDR_OCTOPUS_APIKEY: 'API-NEW' });
    expect(both).toMatchObject({ apiKey: 'API-NEW', warnings: [] });
  });

  test('--server and --server-url together are refused', () => {
    expect(() => parse(['--server', 'https://a.example.com', '--server-url', 'https://b.example.com'], { OCTOPUSDR_OCTOPUS_APIKEY: 'API-NEW' })).toThrow(
      /given twice \(--server-url and --server\)/,
    );
  });
});
