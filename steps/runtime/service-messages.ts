// Wire format of Octopus service messages: `##octopus[name attr='base64' ...]`, one per line on
// stdout. Every attribute value is base64 of UTF-8, so quotes, `]` and newlines cannot break
// the message. Calamari reads them from stdout only. Parsing is here too, for tests and tools.

export type ServiceMessageAttributes = Record<string, string>;

export interface ServiceMessage {
  name: string;
  attributes: ServiceMessageAttributes;
}

const NAME = /^[A-Za-z][A-Za-z0-9-]*$/;

export function encodeServiceMessage(name: string, attributes: ServiceMessageAttributes = {}): string {
  if (!NAME.test(name)) throw new Error(`Invalid service message name: ${name}`);
  const parts = [name];
  for (const [key, value] of Object.entries(attributes)) {
    if (!NAME.test(key)) throw new Error(`Invalid service message attribute name: ${key}`);
    parts.push(`${key}='${Buffer.from(value, 'utf8').toString('base64')}'`);
  }
  return `##octopus[${parts.join(' ')}]`;
}

const MESSAGE = /##octopus\[([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z][A-Za-z0-9-]*='[A-Za-z0-9+/=]*')*)\s*\]/g;
const ATTRIBUTE = /([A-Za-z][A-Za-z0-9-]*)='([A-Za-z0-9+/=]*)'/g;

/** Finds every service message in a block of output, decoding attribute values. */
export function parseServiceMessages(output: string): ServiceMessage[] {
  const messages: ServiceMessage[] = [];
  for (const match of output.matchAll(MESSAGE)) {
    const attributes: ServiceMessageAttributes = {};
    for (const attribute of match[2].matchAll(ATTRIBUTE)) {
      attributes[attribute[1]] = Buffer.from(attribute[2], 'base64').toString('utf8');
    }
    messages.push({ name: match[1], attributes });
  }
  return messages;
}

export const serviceMessages = {
  setVariable: (name: string, value: string, sensitive = false) =>
    encodeServiceMessage('setVariable', sensitive ? { name, value, sensitive: 'True' } : { name, value }),
  createArtifact: (path: string, name: string, length: number) =>
    encodeServiceMessage('createArtifact', { path, name, length: String(length) }),
  progress: (percentage: number, message: string) =>
    encodeServiceMessage('progress', { percentage: String(Math.max(0, Math.min(100, Math.round(percentage)))), message }),
  resultMessage: (message: string) => encodeServiceMessage('resultMessage', { message }),
  mask: (value: string) => encodeServiceMessage('mask', { value }),
  /** Level for following stdout lines; `default` resets. */
  stdoutLevel: (level: 'default' | 'verbose' | 'warning' | 'highlight' | 'wait' | 'error' | 'ignore') => `##octopus[stdout-${level}]`,
  /** Level for following stderr lines; `progress` logs them as verbose, `default` resets. */
  stderrLevel: (level: 'default' | 'progress' | 'error' | 'ignore') => `##octopus[stderr-${level}]`,
};

/** The output variables a block of output sets, by name (a later value wins, as in Octopus). */
export function outputVariablesIn(output: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const m of parseServiceMessages(output)) if (m.name === 'setVariable') variables[m.attributes.name] = m.attributes.value;
  return variables;
}

/** The last result message in a block of output, if any. */
export function resultMessageIn(output: string): string | undefined {
  return parseServiceMessages(output).filter((m) => m.name === 'resultMessage').at(-1)?.attributes.message;
}
