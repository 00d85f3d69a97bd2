import { confusionMatrixSvg, lineChartSvg, timeSeriesChartSvg } from './svg-chart';

describe(timeSeriesChartSvg.name, () => {
  it('draws one line and one legend entry per series over the times, names escaped', () => {
    const svg = timeSeriesChartSvg('Locations <per> category', ['2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', '2026-01-01T02:00:00Z'], [
      { name: 'milk & co', values: [1, 4, 2] },
      { name: 'juice', values: [0, 0, 3] },
    ]);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('Locations &lt;per&gt; category');
    expect(svg).toContain('>milk &amp; co</text>');
    expect(svg).toContain('2026-01-01 01:00');
    // 4 is the top of the axis: its point sits on the top margin (y = 40).
    expect(svg).toMatch(/points="60\.0,287\.5 400\.0,40\.0 740\.0,205\.0"/);
  });
});

describe(lineChartSvg.name, () => {
  it('puts right-axis series on their own scale and dashes them', () => {
    const svg = lineChartSvg({
      title: 't',
      width: 200,
      height: 200,
      margin: { top: 0, right: 0, bottom: 100, left: 0 },
      x: { min: 0, max: 1, ticks: [], label: 'x' },
      left: { max: 1, ticks: [0, 1], format: String },
      right: { max: 10, ticks: [0, 10], format: String },
      series: [
        { name: 'a', points: [[0, 1], [1, 0.5]] },
        { name: 'b', points: [[0, 10], [1, 5]], axis: 'right', dash: '6,4' },
      ],
      legend: 'bottom',
    });
    const lines = [...svg.matchAll(/<polyline[^>]*points="([^"]+)"/g)].map((m) => m[1]);
    expect(lines).toEqual(['0.0,0.0 200.0,50.0', '0.0,0.0 200.0,50.0']);
    expect(svg).toContain('stroke-dasharray="6,4"');
  });
});

describe(confusionMatrixSvg.name, () => {
  it('draws a cell per non-zero count with its value', () => {
    const svg = confusionMatrixSvg(['a', 'b'], [[3, 1], [0, 2]], 'm');
    expect(svg.match(/<title>/g)).toHaveLength(3);
    expect(svg).toContain('<title>1</title>');
  });
});
