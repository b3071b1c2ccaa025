// Each step's page, docs/steps/<step>.md: the prose is written by hand, the parameter table is
// generated from the template definition between two markers, so it cannot drift.
import type { ParameterDefinition, StepTemplateDefinition } from '../../templates/model';
import { environmentNameOf } from '../../templates/model';

export const BEGIN_MARKER = '<!-- generated:parameters:begin (npm run build rewrites this section) -->';
export const END_MARKER = '<!-- generated:parameters:end -->';

/** Where a step's page lives, relative to the repository root. */
export function stepPagePath(stepId: string): string {
  return `docs/steps/${stepId}.md`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function typeOf(p: ParameterDefinition): string {
  if (p.type === 'enum') return (p.options ?? []).map((o) => o.value).join(' \\| ');
  const range = p.type === 'integer' && (p.min !== undefined || p.max !== undefined) ? ` ${p.min ?? ''}..${p.max ?? ''}` : '';
  return `${p.type}${p.multiLine ? ' (lines)' : ''}${range}`;
}

function cliOf(p: ParameterDefinition): string {
  if (p.runnerOnly) return '(runner only)';
  if (p.type === 'secret') return `env \`${environmentNameOf(p.name)}\` or \`--${p.flag}-file\``;
  if (p.type === 'bool') return `\`--${p.flag}\` / \`--no-${p.flag}\``;
  return `\`--${p.flag}\``;
}

/** The generated section of one step's page, markers included. */
export function parameterTable(t: StepTemplateDefinition): string {
  const out: string[] = [BEGIN_MARKER, '', '## Parameters', ''];
  out.push(`Template **${t.name}** (\`${t.stepId}\`): ${t.description.split('\n\n')[0].replace(/\n/g, ' ')}`, '');
  out.push('| Parameter | Label | Type | Required | Default | CLI | Help |', '|---|---|---|---|---|---|---|');
  for (const p of t.parameters) {
    out.push(
      `| \`${p.name}\` | ${cell(p.label)} | ${typeOf(p)} | ${p.required ? 'yes' : 'no'} | ${p.defaultValue ? `\`${cell(p.defaultValue)}\`` : ''} | ${cliOf(p)} | ${cell(p.helpText)} |`,
    );
  }
  if (t.exitCodes && t.exitCodes.length > 0) {
    out.push('', 'Exit codes besides 0, 1, 2, 130, 143: ' + t.exitCodes.map((c) => `**${c.code}** ${c.meaning}`).join('; '));
  }
  out.push('', END_MARKER);
  return out.join('\n');
}

/** A first page for a step that has none yet: its title, then the generated table to write the prose around. */
export function newStepPage(t: StepTemplateDefinition): string {
  const title = t.name.replace(/^Octopus DR - /, '');
  return `# ${title}\n\n${parameterTable(t)}\n`;
}

/** The page with its generated section replaced (a missing page becomes a new one); throws when the markers are missing. */
export function withParameterTable(page: string | undefined, t: StepTemplateDefinition): string {
  if (page === undefined) return newStepPage(t);
  const begin = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error(`${stepPagePath(t.stepId)} lacks the generated parameter markers`);
  return page.slice(0, begin) + parameterTable(t) + page.slice(end + END_MARKER.length);
}
