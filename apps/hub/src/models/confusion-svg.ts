/**
 * A confusion matrix drawn as SVG (rows: true category, columns: predicted), cells shaded
 * by the share of the row, with counts. Dependency-free, like common/svg-chart.ts.
 */
export function confusionMatrixSvg(title: string, labels: string[], confusion: number[][]): string {
  const cell = Math.max(28, Math.min(64, Math.floor(640 / Math.max(1, labels.length))));
  const left = 20 + Math.min(160, 7 * Math.max(...labels.map((l) => l.length), 4));
  const top = 60 + Math.min(160, 7 * Math.max(...labels.map((l) => l.length), 4));
  const width = left + cell * labels.length + 20;
  const height = top + cell * labels.length + 40;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15">${esc(title)}</text>`,
    `<text x="10" y="40" fill="#555">rows: true category · columns: predicted</text>`,
  ];
  labels.forEach((name, i) => {
    const x = left + i * cell + cell / 2;
    parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${esc(name)}</text>`);
    parts.push(`<text transform="translate(${x + 4},${top - 6}) rotate(-60)">${esc(name)}</text>`);
  });
  confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      const share = total > 0 ? count / total : 0;
      const hue = i === j ? '31,119,180' : '214,39,40';
      const x = left + j * cell;
      const y = top + i * cell;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="rgba(${hue},${(0.08 + 0.92 * share).toFixed(3)})" stroke="#ddd"><title>${esc(labels[i] ?? '')} → ${esc(labels[j] ?? '')}: ${count}</title></rect>`);
      parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${share > 0.5 ? 'white' : '#222'}">${count}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}
