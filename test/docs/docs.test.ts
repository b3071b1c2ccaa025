// The user and developer docs: every step has its page with an up-to-date parameter table
// (`npm test` builds with --no-readme, so a stale table fails here), every relative link and
// anchor resolves, every repository path the docs cite exists, and the README stays short.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { templates } from '../../templates';
import { BEGIN_MARKER, END_MARKER, parameterTable, stepPagePath, withParameterTable } from '../../scripts/build/step-docs';

const ROOT = path.resolve(__dirname, '../..');
const README_BUDGET_BYTES = 15 * 1024;

function markdownFilesUnder(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.posix.join(folder, entry.name);
    if (entry.isDirectory()) return markdownFilesUnder(relative);
    return entry.name.endsWith('.md') ? [relative] : [];
  });
}

const DOCS = ['README.md', 'DEVELOPING.md', ...markdownFilesUnder('docs')];

function read(relative: string): string {
  return readFileSync(path.join(ROOT, relative), 'utf8');
}

/** The text outside fenced code blocks, where links and headings mean something. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = match[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Relative link targets (`[text](target)`, images too), outside code. */
function relativeLinksOf(markdown: string): string[] {
  const withoutCode = prose(markdown).replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((match) => match[1])
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

describe('step pages', () => {
  test('every step template has its page, and no page is left for a step that is gone', () => {
    const pages = readdirSync(path.join(ROOT, 'docs/steps')).filter((name) => name.endsWith('.md')).sort();
    expect(pages).toEqual(templates.map((t) => `${t.stepId}.md`).sort());
  });

  test.each(templates.map((t) => [t.stepId, t] as const))('%s: the parameter table is up to date (npm run build refreshes it)', (_stepId, template) => {
    const page = read(stepPagePath(template.stepId));
    expect(page.split(BEGIN_MARKER)).toHaveLength(2);
    const section = page.slice(page.indexOf(BEGIN_MARKER), page.indexOf(END_MARKER) + END_MARKER.length);
    expect(section).toBe(parameterTable(template));
  });

  test('the generated table names every parameter with its CLI flag or environment variable', () => {
    const verify = templates.find((t) => t.stepId === 'verify-master-key')!;
    const table = parameterTable(verify);
    for (const p of verify.parameters) expect(table).toContain(`| \`${p.name}\` | ${p.label} |`);
    expect(table).toContain('env `OCTOPUSDR_MASTERKEY` or `--master-key-file`');
    expect(table).toContain('**3** Inconclusive');
  });

  test('a build writes only between the markers; a page without them fails the build; a new step gets a page', () => {
    const template = templates[0];
    const page = `# Title\n\nProse before.\n\n${BEGIN_MARKER}\nold table\n${END_MARKER}\n\nProse after.\n`;
    expect(withParameterTable(page, template)).toBe(`# Title\n\nProse before.\n\n${parameterTable(template)}\n\nProse after.\n`);
    expect(() => withParameterTable('# Title\n\nNo markers.\n', template)).toThrow(`${stepPagePath(template.stepId)} lacks the generated parameter markers`);
    const fresh = withParameterTable(undefined, template);
    expect(fresh.startsWith(`# ${template.name.replace(/^Octopus DR - /, '')}\n`)).toBe(true);
    expect(fresh).toContain(parameterTable(template));
  });

  test('the README links every step page', () => {
    const links = relativeLinksOf(read('README.md'));
    for (const t of templates) expect(links).toContain(stepPagePath(t.stepId));
  });
});

describe('links and paths', () => {
  test.each(DOCS)('%s: every relative link resolves to a file, and every anchor to a heading', (doc) => {
    const broken: string[] = [];
    for (const target of relativeLinksOf(read(doc))) {
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file === '' ? doc : path.posix.normalize(path.posix.join(path.posix.dirname(doc), decodeURI(file)));
      if (resolved.startsWith('..') || !existsSync(path.join(ROOT, resolved))) {
        broken.push(`${target} (no file ${resolved})`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(anchor)) {
        broken.push(`${target} (no heading for #${anchor} in ${resolved})`);
      }
    }
    expect(broken).toEqual([]);
  });

  test.each(DOCS)('%s: every repository path it cites in code exists', (doc) => {
    const cited = [...read(doc).matchAll(/`((?:steps|scripts|templates|test|docs|\.ci)\/[^`\s]*|[A-Za-z-]+\.(?:md|json|ts|cjs))`/g)]
      .map((match) => match[1])
      .filter((p) => !/[<>*]/.test(p) && p.includes('/'))
      .map((p) => p.replace(/\/$/, ''));
    expect(cited.filter((p) => !existsSync(path.join(ROOT, p)))).toEqual([]);
  });

  test('the anchor rule matches GitHub for headings with code and punctuation', () => {
    const anchors = anchorsOf('# Octopus DR - Check Worker (`check-worker`)\n## What a green run guarantees\n## Steps\n## Steps\n```sh\n# not a heading\n```\n');
    expect([...anchors]).toEqual(['octopus-dr---check-worker-check-worker', 'what-a-green-run-guarantees', 'steps', 'steps-1']);
  });
});

test(`the README stays short (at most ${README_BUDGET_BYTES} bytes): details belong in docs/`, () => {
  expect(statSync(path.join(ROOT, 'README.md')).size).toBeLessThanOrEqual(README_BUDGET_BYTES);
});
