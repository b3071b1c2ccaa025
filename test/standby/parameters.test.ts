// The standby checks' parameter definitions: parsed and validated as a step will when the lead adds
// them to a template (defaults, bounds, problems named by label, exit 2).
import { defineTemplate } from '../../templates/model';
import { agreementDays, missingFilesFailPercent, octopusApiKey, standbyApiKey, standbyOctopusVersion, standbyServerUrl } from '../../templates/parameters';
import { ParameterError } from '../../steps/runtime/errors';
import { parseParameters } from '../../steps/runtime/parameters';
import { standbyParameterProblems } from '../../steps/engines/standby';

const template = defineTemplate({
  stepId: 'standby-parameters-probe',
  name: 'Octopus DR - Probe',
  description: '',
  id: '00000000-0000-0000-0000-000000000001',
  bashId: '00000000-0000-0000-0000-000000000002',
  version: 1,
  lastModified: '2026-12-01T00:00:00.000Z',
  category: 'octopus',
  params: { standbyServerUrl, standbyOctopusVersion, apiKey: standbyApiKey, agreementDays, missingFilesFailPercent },
});

test('all optional: empty values give no standby (unchecked) and the defaults 7 days / 10 %', () => {
  expect(parseParameters(template, {})).toEqual({ standbyServerUrl: '', standbyOctopusVersion: '', apiKey: '', agreementDays: 7, missingFilesFailPercent: 10 });
});

test('out-of-range numbers fail by label with exit 2; the standby URL and version are checked by standbyParameterProblems', () => {
  let error: unknown;
  try {
    parseParameters(template, { 'OctopusDr.Test.AgreementDays': '0', 'OctopusDr.Test.MissingFilesFailPercent': '101' });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ParameterError);
  expect((error as ParameterError).exitCode).toBe(2);
  expect((error as ParameterError).message).toContain('"File check window (days)" must be from 1 to 365, not 0');
  expect((error as ParameterError).message).toContain('"Missing files: fail above (%)" must be from 0 to 100, not 101');
  const values = parseParameters(template, { 'OctopusDr.Standby.ServerUrl': 'https://standby.example.com', 'OctopusDr.Standby.OctopusVersion': '2026.1' });
  expect(standbyParameterProblems({ standbyUrl: values.standbyServerUrl, standbyVersion: values.standbyOctopusVersion })).toEqual([]);
});

test('the standby API key is the Octopus API key (same name, label, flag, sensitive), only optional', () => {
  const { required: _a, helpText: _b, ...shared } = octopusApiKey;
  expect(standbyApiKey).toMatchObject({ ...shared, required: false });
  expect(octopusApiKey.required).toBe(true);
});
