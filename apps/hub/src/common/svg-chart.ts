/** A dependency-free SVG line chart: one line per series over a shared time axis. */
export interface ChartSeries {
  name: string;
  values: number[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function lineChartSvg(title: string, times: string[], series: ChartSeries[], width = 900, height = 420): string {
  const m = { top: 40, right: 160, bottom: 50, left: 60 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number) => m.left + (times.length <= 1 ? w / 2 : (i / (times.length - 1)) * w);
  const y = (v: number) => m.top + h - (v / max) * h;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.left}" y="24" font-size="16">${esc(title)}</text>`,
    `<line x1="${m.left}" y1="${m.top + h}" x2="${m.left + w}" y2="${m.top + h}" stroke="#333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + h}" stroke="#333"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = Math.round((max * k) / 4);
    parts.push(`<text x="${m.left - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
    parts.push(`<line x1="${m.left}" y1="${y(v)}" x2="${m.left + w}" y2="${y(v)}" stroke="#eee"/>`);
  }
  const ticks = Math.min(times.length, 6);
  for (let k = 0; k < ticks; k++) {
    const i = ticks === 1 ? 0 : Math.round((k * (times.length - 1)) / (ticks - 1));
    parts.push(`<text x="${x(i)}" y="${m.top + h + 18}" text-anchor="middle">${esc((times[i] ?? '').slice(0, 16).replace('T', ' '))}</text>`);
  }
  series.forEach((s, idx) => {
    const color = PALETTE[idx % PALETTE.length];
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
    parts.push(`<rect x="${m.left + w + 16}" y="${m.top + idx * 18}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${m.left + w + 34}" y="${m.top + idx * 18 + 10}">${esc(s.name)}</text>`);
  });
  parts.push(`<text x="${m.left + w / 2}" y="${height - 10}" text-anchor="middle">time (UTC)</text>`, '</svg>');
  return parts.join('\n');
}
