/**
 * Dependency-free SVG charts, the one home for them: the hub's inventory history
 * (`GET /inventory/history.svg`) and the vision reports (training log, confusion matrix,
 * turned into PNG by the caller). Pure strings, so the hub never loads an image library.
 */

export const CHART_PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface ChartAxis {
  /** The axis spans 0..max. */
  max: number;
  /** Tick values (drawn as labels and grid lines). */
  ticks: number[];
  format: (v: number) => string;
}

export interface LineSeries {
  name: string;
  /** [x, y] in data units. */
  points: Array<[number, number]>;
  /** Which y axis the values belong to (default left). */
  axis?: 'left' | 'right';
  color?: string;
  /** SVG stroke-dasharray, e.g. "6,4". */
  dash?: string;
}

export interface LineChartSpec {
  title: string;
  width: number;
  height: number;
  margin: { top: number; right: number; bottom: number; left: number };
  x: { min: number; max: number; ticks: Array<{ at: number; label: string }>; label: string };
  left: ChartAxis;
  right?: ChartAxis;
  series: LineSeries[];
  /** Legend beside the plot (right) or below it (bottom). */
  legend: 'right' | 'bottom';
}

/** A line chart: series over a numeric x axis, one or two y axes (each from 0), grid, legend. */
export function lineChartSvg(spec: LineChartSpec): string {
  const { width, height, margin: m } = spec;
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const span = spec.x.max - spec.x.min;
  const x = (v: number) => m.left + (span <= 0 ? w / 2 : ((v - spec.x.min) / span) * w);
  const yOf = (axis: ChartAxis) => (v: number) => m.top + h - (v / (axis.max || 1)) * h;
  const yl = yOf(spec.left);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.left}" y="24" font-size="16">${escapeXml(spec.title)}</text>`,
  ];
  for (const v of spec.left.ticks) {
    parts.push(`<line x1="${m.left}" y1="${yl(v)}" x2="${m.left + w}" y2="${yl(v)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 8}" y="${yl(v) + 4}" text-anchor="end">${escapeXml(spec.left.format(v))}</text>`);
  }
  if (spec.right) {
    const yr = yOf(spec.right);
    for (const v of spec.right.ticks) parts.push(`<text x="${m.left + w + 8}" y="${yr(v) + 4}">${escapeXml(spec.right.format(v))}</text>`);
  }
  parts.push(
    `<line x1="${m.left}" y1="${m.top + h}" x2="${m.left + w}" y2="${m.top + h}" stroke="#333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + h}" stroke="#333"/>`,
  );
  for (const t of spec.x.ticks) parts.push(`<text x="${x(t.at)}" y="${m.top + h + 18}" text-anchor="middle">${escapeXml(t.label)}</text>`);
  spec.series.forEach((s, idx) => {
    const color = s.color ?? CHART_PALETTE[idx % CHART_PALETTE.length];
    const y = s.axis === 'right' && spec.right ? yOf(spec.right) : yl;
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    if (s.points.length > 0) {
      const pts = s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts}"/>`);
    }
    if (spec.legend === 'right') {
      parts.push(`<rect x="${m.left + w + 16}" y="${m.top + idx * 18}" width="12" height="12" fill="${color}"/>`);
      parts.push(`<text x="${m.left + w + 34}" y="${m.top + idx * 18 + 10}">${escapeXml(s.name)}</text>`);
    } else {
      const lx = m.left + 10 + idx * 170;
      parts.push(`<line x1="${lx}" x2="${lx + 30}" y1="${height - 15}" y2="${height - 15}" stroke="${color}" stroke-width="2"${dash}/>`);
      parts.push(`<text x="${lx + 35}" y="${height - 11}">${escapeXml(s.name)}</text>`);
    }
  });
  const labelY = spec.legend === 'bottom' ? height - 30 : height - 10;
  parts.push(`<text x="${m.left + w / 2}" y="${labelY}" text-anchor="middle">${escapeXml(spec.x.label)}</text>`, '</svg>');
  return parts.join('\n');
}

export interface ChartSeries {
  name: string;
  values: number[];
}

/** Counts over a time axis (ISO times, one value per series per time), legend on the right. */
export function timeSeriesChartSvg(title: string, times: string[], series: ChartSeries[], width = 900, height = 420): string {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const n = Math.min(times.length, 6);
  const ticks = Array.from({ length: n }, (_, k) => {
    const i = n === 1 ? 0 : Math.round((k * (times.length - 1)) / (n - 1));
    return { at: i, label: (times[i] ?? '').slice(0, 16).replace('T', ' ') };
  });
  return lineChartSvg({
    title,
    width,
    height,
    margin: { top: 40, right: 160, bottom: 50, left: 60 },
    x: { min: 0, max: Math.max(0, times.length - 1), ticks, label: 'time (UTC)' },
    left: { max, ticks: [0, 1, 2, 3, 4].map((k) => Math.round((max * k) / 4)), format: String },
    series: series.map((s) => ({ name: s.name, points: s.values.map((v, i) => [i, v] as [number, number]) })),
    legend: 'right',
  });
}

/** A square heat map of counts (rows: true class, columns: predicted); diagonal blue, the rest red. */
export function confusionMatrixSvg(labels: string[], matrix: number[][], title: string): string {
  const n = labels.length;
  const cell = Math.max(8, Math.min(28, Math.floor(900 / Math.max(1, n))));
  const lab = Math.min(180, 8 + Math.max(0, ...labels.map((l) => l.length)) * 6.5);
  const W = lab + n * cell + 20;
  const H = lab + n * cell + 50;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="8" y="18" font-size="14">${escapeXml(title)} (rows: true, columns: predicted)</text>`,
    `<rect x="${lab}" y="${lab + 30}" width="${n * cell}" height="${n * cell}" fill="none" stroke="#999"/>`,
  ];
  for (let i = 0; i < n; i++) {
    const row = matrix[i] ?? [];
    const total = row.reduce((a, b) => a + b, 0) || 1;
    for (let j = 0; j < n; j++) {
      const v = row[j] ?? 0;
      if (v === 0) continue;
      const f = v / total;
      const color = i === j ? `rgba(31,119,180,${(0.15 + 0.85 * f).toFixed(3)})` : `rgba(214,39,40,${(0.2 + 0.8 * f).toFixed(3)})`;
      parts.push(`<rect x="${lab + j * cell}" y="${lab + 30 + i * cell}" width="${cell}" height="${cell}" fill="${color}"><title>${v}</title></rect>`);
      if (cell >= 16) parts.push(`<text x="${lab + j * cell + cell / 2}" y="${lab + 30 + i * cell + cell / 2 + 4}" font-size="${Math.min(11, cell / 2)}" text-anchor="middle">${v}</text>`);
    }
  }
  const fs = Math.min(12, cell - 1);
  labels.forEach((l, i) => {
    parts.push(`<text x="${lab - 4}" y="${lab + 30 + i * cell + cell / 2 + fs / 3}" font-size="${fs}" text-anchor="end">${escapeXml(l)}</text>`);
    const cx = lab + i * cell + cell / 2 + fs / 3;
    parts.push(`<text x="${cx}" y="${lab + 26}" font-size="${fs}" transform="rotate(-60 ${cx} ${lab + 26})">${escapeXml(l)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
