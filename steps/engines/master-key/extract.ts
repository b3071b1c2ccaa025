// Finds master-key-encrypted values in an Octopus JSON document, wherever they are: Octopus
// stores each as the string `base64(ciphertext)|base64(iv)` (a 16-byte IV is always 24 base64
// characters ending "=="). Property names are not used, so fields we do not know are covered.

export interface EncryptedValue {
  /** JSON path of the string inside its document, e.g. `$.Variables[3].Value`. */
  readonly path: string;
  readonly ciphertext: Buffer;
  readonly iv: Buffer;
}

export interface MalformedValue {
  readonly path: string;
  /** What is wrong, without any of the value. */
  readonly problem: string;
}

export interface ExtractedValues {
  readonly values: EncryptedValue[];
  /** Strings that end like an encrypted value (`|` + a 16-byte IV) but cannot be one: likely corruption. */
  readonly malformed: MalformedValue[];
}

const ENCRYPTED_VALUE = /^([A-Za-z0-9+/]+={0,2})\|([A-Za-z0-9+/]{22}==)$/;
// Anything that ends with a plausible IV after a "|": if it fails the strict pattern, it is damaged.
const ENDS_LIKE_ENCRYPTED_VALUE = /\|[A-Za-z0-9+/]{22}==$/;
const AES_BLOCK = 16;
/** Octopus sometimes stores JSON inside a JSON string; look inside, to a small depth. */
const MAX_NESTED_JSON_DEPTH = 3;

function isCanonicalBase64(text: string, bytes: Buffer): boolean {
  return text.length % 4 === 0 && bytes.toString('base64') === text;
}

/** Classifies one string: an encrypted value, a damaged one, or neither (undefined). */
export function parseEncryptedValue(text: string, path: string): EncryptedValue | MalformedValue | undefined {
  const match = ENCRYPTED_VALUE.exec(text);
  if (!match) {
    if (text.length > 25 && ENDS_LIKE_ENCRYPTED_VALUE.test(text)) {
      return { path, problem: 'ends with "|" and an IV, but the ciphertext part is not base64' };
    }
    return undefined;
  }
  const ciphertext = Buffer.from(match[1], 'base64');
  const iv = Buffer.from(match[2], 'base64');
  if (!isCanonicalBase64(match[1], ciphertext) || !isCanonicalBase64(match[2], iv)) {
    return { path, problem: 'is shaped like an encrypted value, but its base64 is not valid' };
  }
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0) {
    return { path, problem: 'is shaped like an encrypted value, but its ciphertext is not a whole number of AES blocks' };
  }
  return { path, ciphertext, iv };
}

function propertyPath(parent: string, name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `${parent}.${name}` : `${parent}[${JSON.stringify(name)}]`;
}

function walk(node: unknown, path: string, depth: number, out: { values: EncryptedValue[]; malformed: MalformedValue[] }): void {
  if (typeof node === 'string') {
    const parsed = parseEncryptedValue(node, path);
    if (parsed) {
      if ('problem' in parsed) out.malformed.push(parsed);
      else out.values.push(parsed);
      return;
    }
    const first = node.trimStart()[0];
    if (depth < MAX_NESTED_JSON_DEPTH && (first === '{' || first === '[') && node.includes('|')) {
      let inner: unknown;
      try {
        inner = JSON.parse(node);
      } catch {
        return;
      }
      walk(inner, `${path}<json>`, depth + 1, out);
    }
    return;
  }
  if (Array.isArray(node)) {
    node.forEach((item, index) => walk(item, `${path}[${index}]`, depth, out));
    return;
  }
  if (node !== null && typeof node === 'object') {
    for (const [name, value] of Object.entries(node as Record<string, unknown>)) walk(value, propertyPath(path, name), depth, out);
  }
}

/** Every encrypted value in a parsed JSON document, with its JSON path. */
export function findEncryptedValues(document: unknown): ExtractedValues {
  const out = { values: [] as EncryptedValue[], malformed: [] as MalformedValue[] };
  walk(document, '$', 0, out);
  return out;
}

/** Parses a document's JSON text; undefined when it is not JSON (a damaged row). */
export function parseDocument(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}
