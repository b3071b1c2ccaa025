// The README's parameter tables, generated from the template definitions so they cannot drift.
import type { ParameterDefinition, StepTemplateDefinition } from '../../templates/model';
import { environmentNameOf } from '../../templates/model';

export const BEGIN_MARKER = '<!-- generated:parameters:begin (npm run build rewrites this section) -->';
export const END_MARKER = '<!-- generated:parameters:end -->';

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

export function parameterTables(templates: readonly StepTemplateDefinition[]): string {
  const out: string[] = [BEGIN_MARKER];
  for (const t of templates) {
    out.push('', `### ${t.name} (\`${t.stepId}\`)`, '');
    out.push(t.description.split('\n\n')[0].replace(/\n/g, ' '), '');
    out.push('| Parameter | Label | Type | Required | Default | CLI | Help |', '|---|---|---|---|---|---|---|');
    for (const p of t.parameters) {
      out.push(
        `| \`${p.name}\` | ${cell(p.label)} | ${typeOf(p)} | ${p.required ? 'yes' : 'no'} | ${p.defaultValue ? `\`${cell(p.defaultValue)}\`` : ''} | ${cliOf(p)} | ${cell(p.helpText)} |`,
      );
    }
    if (t.exitCodes && t.exitCodes.length > 0) {
      out.push('', 'Exit codes besides 0, 1, 2, 130, 143: ' + t.exitCodes.map((c) => `**${c.code}** ${c.meaning}`).join('; '));
    }
  }
  out.push('', END_MARKER);
  return out.join('\n');
}

/** Replaces the generated section; throws when the markers are missing. */
export function withParameterTables(readme: string, templates: readonly StepTemplateDefinition[]): string {
  const begin = readme.indexOf(BEGIN_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error('README.md lacks the generated parameter markers');
  return readme.slice(0, begin) + parameterTables(templates) + readme.slice(end + END_MARKER.length);
}
