import { defineParameter, defineTemplate, environmentNameOf } from '../../templates/model';
import { ParameterError } from '../../steps/shared/runtime/errors';
import { parseParameters, takeParametersFromEnvironment } from '../../steps/shared/runtime/parameters';

const template = defineTemplate({
  stepId: 'sample',
  name: 'Octopus DR - Sample',
  description: 'x',
  id: '11111111-2222-4333-8444-555555555555',
  bashId: '11111111-2222-4333-8444-666666666666',
  version: 1,
  lastModified: '2026-11-27T00:00:00.000Z',
  category: 'octopus',
  params: {
    name: defineParameter({ name: 'OctopusDr.Sample.Name', label: 'Database name', helpText: '', type: 'string', required: true, defaultValue: '', flag: 'name' }),
    verify: defineParameter({ name: 'OctopusDr.Sample.Verify', label: 'Verify backup', helpText: '', type: 'bool', required: false, defaultValue: 'True', flag: 'verify' }),
    stripes: defineParameter({ name: 'OctopusDr.Sample.Stripes', label: 'Stripes', helpText: '', type: 'integer', required: false, defaultValue: '1', flag: 'stripes', min: 1, max: 64 }),
    retention: defineParameter({ name: 'OctopusDr.Sample.RetentionDays', label: 'Retention (days)', helpText: '', type: 'integer', required: false, defaultValue: '', flag: 'retention-days', min: 1 }),
    kind: defineParameter({
      name: 'OctopusDr.Sample.Kind', label: 'Backup type', helpText: '', type: 'enum', required: false, defaultValue: 'Full', flag: 'kind',
      options: [{ value: 'Full', label: 'Full' }, { value: 'Differential', label: 'Differential' }, { value: 'Log', label: 'Log' }],
    }),
    folder: defineParameter({ name: 'OctopusDr.Sample.Folder', label: 'Backup directory', helpText: '', type: 'path', required: false, defaultValue: '', flag: 'folder' }),
    folders: defineParameter({ name: 'OctopusDr.Sample.Folders', label: 'Folders', helpText: '', type: 'path', multiLine: true, required: false, defaultValue: '', flag: 'folders' }),
    password: defineParameter({ name: 'OctopusDr.Sample.Password', label: 'Password', helpText: '', type: 'secret', required: false, defaultValue: '', flag: 'password' }),
    server: defineParameter({ name: 'OctopusDr.Sample.Server', label: 'Server URL', helpText: '', type: 'string', required: false, defaultValue: '#{Octopus.Web.ServerUri}', flag: 'server' }),
  },
});

describe('parameter parsing', () => {
  test('applies defaults and types: Octopus hands over strings, checkboxes as "True"/"False"', () => {
    const values = parseParameters(template, { 'OctopusDr.Sample.Name': '  Octopus  ' });
    expect(values).toEqual({
      name: 'Octopus', verify: true, stripes: 1, retention: undefined, kind: 'Full', folder: '', folders: [], password: '', server: '',
    });
  });

  test('reads checkbox strings case-insensitively', () => {
    expect(parseParameters(template, { 'OctopusDr.Sample.Name': 'x', 'OctopusDr.Sample.Verify': 'False' }).verify).toBe(false);
    expect(parseParameters(template, { 'OctopusDr.Sample.Name': 'x', 'OctopusDr.Sample.Verify': 'true' }).verify).toBe(true);
  });

  test('matches select values case-insensitively and returns the canonical value', () => {
    expect(parseParameters(template, { 'OctopusDr.Sample.Name': 'x', 'OctopusDr.Sample.Kind': 'differential' }).kind).toBe('Differential');
  });

  test('splits multi-line values into trimmed, non-empty lines and unquotes paths', () => {
    const values = parseParameters(template, {
      'OctopusDr.Sample.Name': 'x',
      'OctopusDr.Sample.Folders': 'TaskLogs=C:\\Octopus\\TaskLogs\r\n\r\n  "\\\\fs01\\share\\Octopus Artifacts"  \n',
      'OctopusDr.Sample.Folder': '"C:\\Program Files\\Backups"',
    });
    expect(values.folders).toEqual(['TaskLogs=C:\\Octopus\\TaskLogs', '\\\\fs01\\share\\Octopus Artifacts']);
    expect(values.folder).toBe('C:\\Program Files\\Backups');
  });

  test('an unsubstituted Octostache default counts as empty outside Octopus', () => {
    expect(parseParameters(template, { 'OctopusDr.Sample.Name': 'x' }).server).toBe('');
    expect(parseParameters(template, { 'OctopusDr.Sample.Name': 'x', 'OctopusDr.Sample.Server': 'https://octopus.example' }).server).toBe('https://octopus.example');
  });

  test('keeps secrets exactly as given (spaces included)', () => {
    expect(parseParameters(template, { 'OctopusDr.Sample.Name': 'x', 'OctopusDr.Sample.Password': ' p a ss ' }).password).toBe(' p a ss ');
  });

  test('reports every problem at once, by label, with the fix, and exit code 2', () => {
    let error: unknown;
    try {
      parseParameters(template, {
        'OctopusDr.Sample.Verify': 'yes please',
        'OctopusDr.Sample.Stripes': '65',
        'OctopusDr.Sample.RetentionDays': '7.5',
        'OctopusDr.Sample.Kind': 'Incremental',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ParameterError);
    const message = (error as ParameterError).message;
    expect((error as ParameterError).exitCode).toBe(2);
    expect(message).toContain('5 parameters need attention');
    expect(message).toContain('"Database name" is required: set "Database name" (OctopusDr.Sample.Name) in the step, or --name on the command line.');
    expect(message).toContain('"Verify backup" must be True or False, not "yes please"');
    expect(message).toContain('"Stripes" must be from 1 to 64, not 65');
    expect(message).toContain('"Retention (days)" must be a whole number, not "7.5"');
    expect(message).toContain('"Backup type" must be one of Full, Differential, Log, not "Incremental"');
  });

  test('a secret is never echoed in an error', () => {
    const secretTemplate = defineTemplate({
      ...template,
      params: { key: defineParameter({ name: 'OctopusDr.Sample.Key', label: 'Key', helpText: '', type: 'secret', required: true, defaultValue: '', flag: 'key' }) },
    });
    expect(() => parseParameters(secretTemplate, {})).toThrow('"Key" is required: set "Key" (OctopusDr.Sample.Key) in the step, or environment variable OCTOPUSDR_SAMPLE_KEY or --key-file on the command line.');
  });

  test('takes values from the runner environment and removes them', () => {
    const env: NodeJS.ProcessEnv = { [environmentNameOf('OctopusDr.Sample.Password')]: 'hunter22', OTHER: 'kept' };
    expect(takeParametersFromEnvironment(template.parameters, env)).toEqual({ 'OctopusDr.Sample.Password': 'hunter22' });
    expect(env).toEqual({ OTHER: 'kept' });
  });

  test('environment names are derived from parameter names', () => {
    expect(environmentNameOf('OctopusDr.Sql.ConnectionString')).toBe('OCTOPUSDR_SQL_CONNECTIONSTRING');
    expect(environmentNameOf('OctopusDr.MasterKey')).toBe('OCTOPUSDR_MASTERKEY');
  });
});
