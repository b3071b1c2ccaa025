import { encodeServiceMessage, outputVariablesIn, parseServiceMessages, resultMessageIn, serviceMessages } from '../../steps/runtime/service-messages';

const AWKWARD = [
  "it's",
  'a ] bracket',
  "quote ' and ]' together",
  'line one\nline two\r\nline three',
  'Zürich ✓ 日本語 🙂',
  '##octopus[setVariable name=\'x\']',
  '',
];

describe('service message wire format', () => {
  test.each(AWKWARD)('round-trips %j as name and value', (text) => {
    const line = serviceMessages.setVariable(`Out.${text}`, text);
    expect(line).not.toContain('\n');
    expect(line.startsWith('##octopus[setVariable ')).toBe(true);
    expect(parseServiceMessages(line)).toEqual([{ name: 'setVariable', attributes: { name: `Out.${text}`, value: text } }]);
  });

  test('attribute values are base64 of UTF-8, as Calamari expects', () => {
    expect(serviceMessages.setVariable('Name', 'Zürich')).toBe("##octopus[setVariable name='TmFtZQ==' value='WsO8cmljaA==']");
  });

  test('a sensitive output variable carries sensitive=True', () => {
    const [message] = parseServiceMessages(serviceMessages.setVariable('Key', 'v', true));
    expect(message.attributes).toEqual({ name: 'Key', value: 'v', sensitive: 'True' });
  });

  test('artifact, progress, result and mask messages', () => {
    const text = [
      serviceMessages.createArtifact('/backups/manifest.json', 'manifest.json', 1234),
      serviceMessages.progress(42.7, 'Backing up ] files'),
      serviceMessages.progress(140, 'clamped'),
      serviceMessages.resultMessage("Done: 'all' ok"),
      serviceMessages.mask('p@ss;word'),
    ].join('\n');
    expect(parseServiceMessages(text)).toEqual([
      { name: 'createArtifact', attributes: { path: '/backups/manifest.json', name: 'manifest.json', length: '1234' } },
      { name: 'progress', attributes: { percentage: '43', message: 'Backing up ] files' } },
      { name: 'progress', attributes: { percentage: '100', message: 'clamped' } },
      { name: 'resultMessage', attributes: { message: "Done: 'all' ok" } },
      { name: 'mask', attributes: { value: 'p@ss;word' } },
    ]);
  });

  test('level switches have no attributes', () => {
    expect(serviceMessages.stdoutLevel('verbose')).toBe('##octopus[stdout-verbose]');
    expect(serviceMessages.stderrLevel('progress')).toBe('##octopus[stderr-progress]');
    expect(parseServiceMessages('##octopus[stdout-default]')).toEqual([{ name: 'stdout-default', attributes: {} }]);
  });

  test('refuses names that would break the message', () => {
    expect(() => encodeServiceMessage("set'Variable")).toThrow(/Invalid service message name/);
    expect(() => encodeServiceMessage('setVariable', { 'na me': 'x' })).toThrow(/attribute name/);
  });

  test('reads output variables (a later value wins) and the last result message out of mixed output', () => {
    const output = [
      'plain line',
      serviceMessages.setVariable('A', 'first'),
      serviceMessages.resultMessage('early'),
      serviceMessages.setVariable('B', 'line 1\nline 2'),
      serviceMessages.setVariable('A', 'second'),
      serviceMessages.resultMessage('final'),
    ].join('\n');
    expect(outputVariablesIn(output)).toEqual({ A: 'second', B: 'line 1\nline 2' });
    expect(resultMessageIn(output)).toBe('final');
    expect(resultMessageIn('no messages')).toBeUndefined();
  });
});
