// Small inline SVG charts for the HTML report: no script, no external asset, so the report opens
// offline, as an Octopus artifact and in any browser. Text is escaped: database names and paths
// are user content.

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

export interface ChartPoint {
  at: Date;
  value: number | null;
  /** Drawn as a failed drill (red marker). */
  failed: boolean;
}

export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  points: ChartPoint[];
  /** A horizontal line: the objective the values must stay under. */
  target?: { value: number; label: string };
  width?: number;
  height?: number;
}

const MARGIN = { left: 56, right: 16, top: 28, bottom: 36 };

/** A tidy upper bound for the axis: 1, 2 or 5 times a power of ten. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function formatTick(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1).replace(/\.0$/, '');
  return value.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

function formatDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** A line chart of one measure over the drills, with its objective as a dashed line. */
export function lineChart(spec: ChartSpec): string {
  const width = spec.width ?? 640;
  const height = spec.height ?? 220;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const measured = spec.points.filter((p): p is ChartPoint & { value: number } => p.value !== null && Number.isFinite(p.value));
  const top = niceCeiling(Math.max(spec.target?.value ?? 0, ...measured.map((p) => p.value), 0) * 1.1);
  const times = spec.points.map((p) => p.at.getTime());
  const first = Math.min(...times);
  const last = Math.max(...times);
  const x = (at: Date) => MARGIN.left + (last === first ? plotWidth / 2 : ((at.getTime() - first) / (last - first)) * plotWidth);
  const y = (value: number) => MARGIN.top + plotHeight - (value / top) * plotHeight;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeHtml(spec.id)}" class="chart" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`,
    `<title>${escapeHtml(spec.title)}</title>`,
    `<text x="${MARGIN.left}" y="18" class="chart-title">${escapeHtml(spec.title)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const value = (top / 4) * i;
    parts.push(
      `<line x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" class="grid"/>`,
      `<text x="${MARGIN.left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end" class="tick">${formatTick(value)} ${escapeHtml(spec.unit)}</text>`,
    );
  }
  if (spec.points.length > 0) {
    parts.push(
      `<text x="${MARGIN.left}" y="${height - 10}" class="tick">${formatDay(new Date(first))}</text>`,
      `<text x="${width - MARGIN.right}" y="${height - 10}" text-anchor="end" class="tick">${formatDay(new Date(last))}</text>`,
    );
  }
  if (spec.target) {
    const ty = y(spec.target.value).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${ty}" y2="${ty}" class="target"/>`,
      `<text x="${MARGIN.left + 4}" y="${(Number(ty) - 5).toFixed(1)}" class="target-label">${escapeHtml(spec.target.label)}</text>`,
    );
  }
  if (measured.length > 1) {
    const path = measured.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" class="series"/>`);
  }
  for (const p of measured) {
    parts.push(
      `<circle cx="${x(p.at).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3.5" class="${p.failed ? 'point failed' : 'point'}">` +
        `<title>${formatDay(p.at)}: ${formatTick(p.value)} ${escapeHtml(spec.unit)}${p.failed ? ' (failed drill)' : ''}</title></circle>`,
    );
  }
  if (measured.length === 0) {
    parts.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${MARGIN.top + plotHeight / 2}" text-anchor="middle" class="tick">No measurement yet</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}
