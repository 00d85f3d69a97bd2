import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  name: string;
  values: number[];
}

const COLORS = ['#2f6fdb', '#e0672b', '#2aa25a', '#b0399c', '#c9a227', '#17a2b8', '#6c757d', '#d63384', '#7952b3', '#20c997'];

/** A time-series line chart (uPlot): `times` are ISO strings, one value per time in each series. */
export function TimeChart({ title, times, series, width = 760, height = 280 }: { title: string; times: string[]; series: Series[]; width?: number; height?: number }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const data: uPlot.AlignedData = [times.map((t) => new Date(t).getTime() / 1000), ...series.map((s) => s.values)];
    const plot = new uPlot(
      {
        title,
        width,
        height,
        scales: { x: { time: true } },
        axes: [{}, { label: 'locations' }],
        series: [{}, ...series.map((s, i) => ({ label: s.name, stroke: COLORS[i % COLORS.length], width: 2 }))],
      },
      data,
      el.current,
    );
    return () => plot.destroy();
  }, [title, times, series, width, height]);
  return <div ref={el} className="chart" data-testid="history-chart" />;
}
