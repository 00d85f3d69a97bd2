import sharp from 'sharp';
import type { EvalRecord } from '../head/train';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Loss and accuracy per evaluation as a PNG line chart. */
export async function plotTrainingLog(history: EvalRecord[], title: string): Promise<Buffer> {
  const W = 800;
  const H = 420;
  const m = { l: 60, r: 60, t: 40, b: 50 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const maxStep = Math.max(1, ...history.map((h) => h.step));
  const losses = history.flatMap((h) => [h.trainLoss, h.valLoss ?? NaN]).filter((v) => Number.isFinite(v));
  const maxLoss = Math.max(0.1, ...losses);
  const x = (s: number) => m.l + (s / maxStep) * pw;
  const yAcc = (a: number) => m.t + (1 - a) * ph;
  const yLoss = (l: number) => m.t + (1 - l / maxLoss) * ph;
  const line = (pts: Array<[number, number]>, color: string, dash = '') =>
    pts.length ? `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>` : '';
  const series = (f: (h: EvalRecord) => number | undefined, y: (v: number) => number) =>
    history.filter((h) => Number.isFinite(f(h))).map((h) => [x(h.step), y(f(h) as number)] as [number, number]);
  let grid = '';
  for (let i = 0; i <= 10; i += 2) {
    const yy = m.t + (i / 10) * ph;
    grid += `<line x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`;
    grid += `<text x="${m.l - 8}" y="${yy + 4}" text-anchor="end" font-size="11">${((1 - i / 10) * 100).toFixed(0)}%</text>`;
    grid += `<text x="${W - m.r + 8}" y="${yy + 4}" font-size="11">${((1 - i / 10) * maxLoss).toFixed(2)}</text>`;
  }
  const legend = [
    ['#1f77b4', '', 'train accuracy'],
    ['#2ca02c', '', 'validation accuracy'],
    ['#d62728', '6,4', 'train loss'],
    ['#ff7f0e', '6,4', 'validation loss'],
  ]
    .map(([c, d, t], i) => `<line x1="${m.l + 10 + i * 170}" x2="${m.l + 40 + i * 170}" y1="${H - 15}" y2="${H - 15}" stroke="${c}" stroke-width="2" ${d ? `stroke-dasharray="${d}"` : ''}/><text x="${m.l + 45 + i * 170}" y="${H - 11}" font-size="12">${t}</text>`)
    .join('');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="#fff"/>` +
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>` +
    grid +
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>` +
    `<text x="${W / 2}" y="${H - 30}" text-anchor="middle" font-size="12">step (max ${maxStep})</text>` +
    line(series((h) => h.trainAccuracy, yAcc), '#1f77b4') +
    line(series((h) => h.valAccuracy, yAcc), '#2ca02c') +
    line(series((h) => h.trainLoss, yLoss), '#d62728', '6,4') +
    line(series((h) => h.valLoss, yLoss), '#ff7f0e', '6,4') +
    legend +
    `</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Confusion matrix (rows: true class, columns: predicted) as a PNG heat map. */
export async function plotConfusionMatrix(labels: string[], matrix: number[][], title: string): Promise<Buffer> {
  const n = labels.length;
  const cell = Math.max(8, Math.min(28, Math.floor(900 / Math.max(1, n))));
  const lab = Math.min(180, 8 + Math.max(...labels.map((l) => l.length)) * 6.5);
  const W = lab + n * cell + 20;
  const H = lab + n * cell + 50;
  let cells = '';
  for (let i = 0; i < n; i++) {
    const row = matrix[i] ?? [];
    const total = row.reduce((a, b) => a + b, 0) || 1;
    for (let j = 0; j < n; j++) {
      const v = row[j] ?? 0;
      if (v === 0) continue;
      const f = v / total;
      const color = i === j ? `rgba(31,119,180,${(0.15 + 0.85 * f).toFixed(3)})` : `rgba(214,39,40,${(0.2 + 0.8 * f).toFixed(3)})`;
      cells += `<rect x="${lab + j * cell}" y="${lab + 30 + i * cell}" width="${cell}" height="${cell}" fill="${color}"><title>${v}</title></rect>`;
      if (cell >= 16) cells += `<text x="${lab + j * cell + cell / 2}" y="${lab + 30 + i * cell + cell / 2 + 4}" font-size="${Math.min(11, cell / 2)}" text-anchor="middle">${v}</text>`;
    }
  }
  const fs = Math.min(12, cell - 1);
  let axes = '';
  labels.forEach((l, i) => {
    axes += `<text x="${lab - 4}" y="${lab + 30 + i * cell + cell / 2 + fs / 3}" font-size="${fs}" text-anchor="end">${esc(l)}</text>`;
    const cx = lab + i * cell + cell / 2 + fs / 3;
    axes += `<text x="${cx}" y="${lab + 26}" font-size="${fs}" transform="rotate(-60 ${cx} ${lab + 26})">${esc(l)}</text>`;
  });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="#fff"/>` +
    `<text x="8" y="18" font-size="14">${esc(title)} (rows: true, columns: predicted)</text>` +
    `<rect x="${lab}" y="${lab + 30}" width="${n * cell}" height="${n * cell}" fill="none" stroke="#999"/>` +
    cells +
    axes +
    `</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
