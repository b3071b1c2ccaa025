import { backupDatabase } from '../../templates/backup-database';
import { maintenanceMode } from '../../templates/maintenance-mode';
import { defineParameter, defineTemplate, environmentNameOf } from '../../templates/model';
import { masterKeyExpectedKeyId, standbyOctopusVersion, standbyServerUrl } from '../../templates/parameters';
import { restoreDatabase } from '../../templates/restore-database';
import { verifyMasterKey } from '../../templates/verify-master-key';
import { ParameterError } from '../../steps/runtime/errors';
import { parseParameters, takeParametersFromEnvironment } from '../../steps/runtime/parameters';

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

describe('formats are part of the definition: one check, one wording, exit 2, for every step', () => {
  const problemOf = (run: () => unknown): ParameterError => {
    try {
      run();
    } catch (error) {
      if (error instanceof ParameterError) return error;
      throw error;
    }
    throw new Error('no ParameterError');
  };
  const required = { 'OctopusDr.Sql.ConnectionString': 'Server=x', 'OctopusDr.Restore.Source': '/b', 'OctopusDr.MasterKey': 'k' };

  test('a bad expected key ID: by label, the form, an example, how to set it', () => {
    const error = problemOf(() => parseParameters(verifyMasterKey, { ...required, 'OctopusDr.MasterKey.ExpectedKeyId': 'abc' }));
    expect(error.exitCode).toBe(2);
    expect(error.message).toBe(
      '"Expected key ID" must be 16 hexadecimal characters (the KeyId output variable of Octopus DR - Verify Master Key, as backup manifests record it), ' +
        'e.g. 41252bd34faf3857, not "abc": set "Expected key ID" (OctopusDr.MasterKey.ExpectedKeyId) in the step, or --expected-key-id on the command line.',
    );
    expect(parseParameters(verifyMasterKey, { ...required, 'OctopusDr.MasterKey.ExpectedKeyId': ' 41252BD34FAF3857 ' }).expectedKeyId).toBe('41252BD34FAF3857');
  });

  test('the backup step\'s key ID has the same format and the same words; a pasted key is not shown', () => {
    expect(backupDatabase.params.masterKeyId.format).toBe(masterKeyExpectedKeyId.format);
    const error = problemOf(() => parseParameters(backupDatabase, { ...required, 'OctopusDr.MasterKey.KeyId': 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8=' }));
    expect(error.message).toMatch(/^"Master key ID" must be 16 hexadecimal characters \(.*\), e\.g\. 41252bd34faf3857, not the value given \(not shown: it could be a key or password\): set "Master key ID"/);
    expect(error.message).not.toContain('q83vEjRWeJ');
  });

  test('a point in time that is not a local date and time', () => {
    for (const bad of ['yesterday', '2026-02-30T10:00:00', '2026-11-27T14:30:00Z']) {
      expect(problemOf(() => parseParameters(restoreDatabase, { ...required, 'OctopusDr.Restore.PointInTime': bad })).message).toMatch(
        /^"Point in time" must be an ISO-8601 date and time without offset, in the SQL Server's local time, e\.g\. 2026-11-27T14:30:00, not ".*": set "Point in time" \(OctopusDr\.Restore\.PointInTime\) in the step, or --point-in-time on the command line\.$/,
      );
    }
    expect(parseParameters(restoreDatabase, { ...required, 'OctopusDr.Restore.PointInTime': '2026-11-27 14:30' }).pointInTime).toBe('2026-11-27 14:30');
  });

  test('server URLs (maintenance mode, standby) and the standby version; a URL with a password is not repeated', () => {
    const url = problemOf(() => parseParameters(maintenanceMode, { 'OctopusDr.Octopus.ServerUrl': 'octopus.example.com', 'OctopusDr.Octopus.ApiKey': 'API-X' }));
    expect(url.message).toMatch(/^"Octopus Server URL" must be the Octopus Server's address \(http:\/\/ or https:\/\/, no query\), e\.g\. https:\/\/octopus\.example\.com, not "octopus\.example\.com": set/);
    const withPassword = problemOf(() => parseParameters(restoreDatabase, { ...required, [standbyServerUrl.name]: 'https://admin:Hunter2@standby' }));
    expect(withPassword.message).toContain('"Standby Octopus Server URL" must be');
    expect(withPassword.message).toContain('not a URL with a user name or password in it (use an API key)');
    expect(withPassword.message).not.toContain('Hunter2');
    // A URL that does not even parse, or one with a query, is not repeated either: its user part or query may hold a password.
    for (const bad of ['https://admin:Pw1secret@octo:80a/', 'https://octo/?pw=Summer2026x']) {
      const refused = problemOf(() => parseParameters(maintenanceMode, { 'OctopusDr.Octopus.ServerUrl': bad, 'OctopusDr.Octopus.ApiKey': 'API-X' }));
      expect(refused.message).toMatch(/^"Octopus Server URL" must be .* not the value given \(not shown: it could be a key or password\)/);
      expect(refused.message).not.toMatch(/Pw1secret|Summer2026x/);
    }
    const version = problemOf(() => parseParameters(restoreDatabase, { ...required, [standbyOctopusVersion.name]: 'latest' }));
    expect(version.message).toMatch(/^"Standby Octopus version" must be an Octopus version as shown in Octopus under Configuration > About, e\.g\. 2025\.4\.100, not "latest"/);
  });

  test('every problem at once, and formats apply to each line of a multi-line value', () => {
    const lines = defineParameter({
      name: 'OctopusDr.Sample.KeyIds', label: 'Key IDs', helpText: '', type: 'string', multiLine: true, required: false, defaultValue: '', flag: 'key-ids',
      format: masterKeyExpectedKeyId.format,
    });
    const sample = defineTemplate({ ...template, params: { lines } });
    expect(parseParameters(sample, { 'OctopusDr.Sample.KeyIds': '41252bd34faf3857\n\n0123456789abcdef' }).lines).toEqual(['41252bd34faf3857', '0123456789abcdef']);
    expect(problemOf(() => parseParameters(sample, { 'OctopusDr.Sample.KeyIds': '41252bd34faf3857\nnope' })).message).toMatch(/^"Key IDs" must be 16 hexadecimal .*not "nope"/);
    const both = problemOf(() =>
      parseParameters(restoreDatabase, { ...required, 'OctopusDr.Restore.PointInTime': 'soon', [standbyOctopusVersion.name]: 'latest' }),
    );
    expect(both.message).toMatch(/^2 parameters need attention:\n {2}- "Point in time" must be .*\n {2}- "Standby Octopus version" must be /);
  });
});
