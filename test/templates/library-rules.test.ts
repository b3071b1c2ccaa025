// Every built template must pass the Octopus Library's own checks (spec/step-template-validation-tests.js)
// and ours. Run `npm run build` first (`npm test` does).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { templates } from '../../templates';
import { TEMPLATE_BUDGET_BYTES } from '../../scripts/build/index';

const BUILD = path.resolve(__dirname, '../../build/templates');

/** Library templates whose names and Ids ours must not repeat (Ids as in OctopusDeploy/Library). */
const LIBRARY_TEMPLATES = [
  { Name: 'SQL - Backup Database', Id: '34b4fa10-329f-4c50-ab7c-d6b047264b83' },
  { Name: 'SQL - Restore Database', Id: '469b6d9d-761a-4f94-9745-20e9c2f93841' },
  { Name: 'File System - Backup Directory', Id: undefined },
];

interface TemplateJson {
  Id: string;
  Name: string;
  Version: number;
  Category: string;
  LastModifiedBy?: string;
  $Meta?: { ExportedAt?: string };
  Packages: { FeedId?: string | null }[];
  Properties: Record<string, unknown>;
  Parameters: { Id: string; Name: string; Label: string; DefaultValue: unknown; DisplaySettings: Record<string, string> }[];
}

const files = ['powershell', 'bash'].flatMap((syntax) => {
  const dir = path.join(BUILD, syntax);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f)) : [];
});
const loaded = files.map((file) => ({ file, raw: readFileSync(file), json: JSON.parse(readFileSync(file, 'utf8')) as TemplateJson }));

test('every template definition was built in both syntaxes', () => {
  expect(files.length).toBe(templates.length * 2);
  for (const t of templates) {
    expect(existsSync(path.join(BUILD, 'powershell', `${t.stepId}.json`))).toBe(true);
    expect(existsSync(path.join(BUILD, 'bash', `${t.stepId}.json`))).toBe(true);
  }
});

describe.each(loaded.map((l) => [path.relative(BUILD, l.file), l] as const))('%s', (_name, { raw, json }) => {
  test('is UTF-8 JSON without a BOM, 2-space indented, no JSON booleans', () => {
    expect(raw.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf]))).toBe(false);
    expect(raw.toString('utf8')).toBe(JSON.stringify(json, null, 2) + '\n');
    expect(raw.toString('utf8')).not.toMatch(/:\s*(true|false)\b/);
  });

  test('has the Library fields, in export order', () => {
    expect(Object.keys(json)).toEqual([
      'Id', 'Name', 'Description', 'ActionType', 'Version', 'CommunityActionTemplateId', 'Packages', 'GitDependencies',
      'Properties', 'Parameters', 'StepPackageId', 'LastModifiedBy', '$Meta', 'Category',
    ]);
    expect(json.LastModifiedBy).toBeDefined();
    expect(json.$Meta?.ExportedAt).toBeDefined();
    expect(Number.isInteger(json.Version)).toBe(true);
    expect(json.Category).toBe('octopus');
  });

  test('Name and Id follow the Library rules', () => {
    expect(json.Name.length).toBeGreaterThan(0);
    expect(json.Name.length).toBeLessThanOrEqual(200);
    expect(json.Name).toMatch(/^Octopus DR - /);
    expect(json.Id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(json.Id).not.toBe('00000000-0000-0000-0000-000000000000');
    expect(json.Id).not.toBe('abcdef00-ab00-cd00-ef00-000000abcdef');
  });

  test('every property value is a string; packages reference feeds by variable only', () => {
    for (const value of Object.values(json.Properties)) expect(typeof value).toBe('string');
    for (const pkg of json.Packages) expect(pkg.FeedId == null || String(pkg.FeedId).startsWith('#')).toBe(true);
  });

  test('parameters: unique, namespaced, with valid defaults for their control type', () => {
    const names = json.Parameters.map((p) => p.Name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(json.Parameters.map((p) => p.Id)).size).toBe(names.length);
    for (const p of json.Parameters) {
      expect(p.Name).toMatch(/^OctopusDr\.[A-Za-z]+(\.[A-Za-z0-9]+)*$/);
      expect(p.Id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(p.Label.length).toBeGreaterThan(0);
      expect(p.DefaultValue === null || typeof p.DefaultValue === 'string').toBe(true);
      const control = p.DisplaySettings['Octopus.ControlType'];
      expect(['SingleLineText', 'MultiLineText', 'Checkbox', 'Select', 'Sensitive']).toContain(control);
      if (control === 'Checkbox') expect(['True', 'False']).toContain(p.DefaultValue);
      if (control === 'Select') {
        const options = p.DisplaySettings['Octopus.SelectOptions'].split('\n').map((line) => line.split('|')[0]);
        expect(options.every((o) => o.length > 0)).toBe(true);
        if (p.DefaultValue) expect(options).toContain(p.DefaultValue);
      }
    }
  });

  test('the script carries no Octostache outside what a parameter default intends, and fits the budget', () => {
    const body = json.Properties['Octopus.Action.Script.ScriptBody'] as string;
    expect(body).not.toContain('#{');
    expect(raw.length).toBeLessThanOrEqual(TEMPLATE_BUDGET_BYTES);
  });
});

test('Names and Ids are unique across our templates and the Library ones we replace', () => {
  const names = [...loaded.map((l) => l.json.Name), ...LIBRARY_TEMPLATES.map((t) => t.Name)];
  const ids = [...loaded.map((l) => l.json.Id), ...LIBRARY_TEMPLATES.flatMap((t) => (t.Id ? [t.Id] : []))];
  expect(new Set(names).size).toBe(names.length);
  expect(new Set(ids).size).toBe(ids.length);
});

test('the Bash variant has its own Id and a name ending in " (Bash)"', () => {
  for (const t of templates) {
    const ps = loaded.find((l) => l.file.endsWith(path.join('powershell', `${t.stepId}.json`)))!.json;
    const sh = loaded.find((l) => l.file.endsWith(path.join('bash', `${t.stepId}.json`)))!.json;
    expect(sh.Id).not.toBe(ps.Id);
    expect(sh.Name).toBe(`${ps.Name} (Bash)`);
    expect(ps.Properties['Octopus.Action.Script.Syntax']).toBe('PowerShell');
    expect(sh.Properties['Octopus.Action.Script.Syntax']).toBe('Bash');
  }
});

test('the same parameter name means the same thing in every template', () => {
  const seen = new Map<string, string>();
  for (const t of templates) {
    for (const p of t.parameters) {
      const signature = JSON.stringify([p.label, p.type, p.flag, p.multiLine ?? false]);
      if (seen.has(p.name)) expect([p.name, signature]).toEqual([p.name, seen.get(p.name)]);
      seen.set(p.name, signature);
    }
  }
});

test('help never promises a meaning for an empty value of a parameter that has a default (empty takes the default)', () => {
  for (const t of templates) {
    for (const p of t.parameters.filter((parameter) => parameter.defaultValue)) {
      expect([p.name, /\bEmpty\s*=/.test(p.helpText)]).toEqual([p.name, false]);
    }
  }
});

test('template definitions have distinct step ids, Ids and names', () => {
  const all = templates.flatMap((t) => [t.id, t.bashId]);
  expect(new Set(all).size).toBe(all.length);
  expect(new Set(templates.map((t) => t.stepId)).size).toBe(templates.length);
  expect(new Set(templates.map((t) => t.name)).size).toBe(templates.length);
});
