import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { components } from '../api/openapi';

type Change = components['schemas']['PredictedChangeDto'];
type Policy = NonNullable<components['schemas']['RolloutDto']['policy']>;

/** Pairs drawn; the rest are summed in the text. */
const MAX_BARS = 12;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** "milk → yogurt 25.0% of 80 frames (20)". */
export function pairText(p: Change['pairs'][number], frames: number): string {
  return `${p.from} → ${p.to} ${pct(p.share)} of ${frames} frames (${p.frames})`;
}

/** A uPlot series drawn as bars, its values in percent. */
function bars(label: string, stroke: string, fill: string): uPlot.Series {
  return { label, stroke, fill, paths: uPlot.paths.bars!({ size: [0.6, 80] }), points: { show: false }, value: (_u, v) => (v === null ? '' : `${v.toFixed(1)}%`) };
}

/**
 * The predicted inventory change of a rollout, drawn (uPlot bars): first the share of all
 * shadowed frames whose category would change, against the gate's `maxPredictedChange`, then
 * per (active → candidate) category pair the share that would move, against `maxPairChange`
 * (the dashed line is the limit each bar is held to).
 */
export function PredictedChangeChart({ change, gate, width = 760, height = 260 }: { change: Change; gate: Policy['shadowGate']; width?: number; height?: number }) {
  const el = useRef<HTMLDivElement>(null);
  const pairs = useMemo(() => change.pairs.slice(0, MAX_BARS), [change]);
  const pairLimit = gate === false ? undefined : gate.maxPairChange;
  const overallLimit = gate === false ? undefined : gate.maxPredictedChange;
  const drawn = change.frames > 0;
  useEffect(() => {
    if (!el.current || !drawn) return;
    const labels = ['all frames', ...pairs.map((p) => `${p.from} → ${p.to}`)];
    const xs = labels.map((_, i) => i);
    const overall = xs.map((i) => (i === 0 ? change.share * 100 : null));
    const shares = xs.map((i) => (i === 0 ? null : pairs[i - 1]!.share * 100));
    const limits = xs.map((i) => {
      const l = i === 0 ? overallLimit : pairLimit;
      return l === undefined ? null : l * 100;
    });
    const top = Math.max(change.share * 100, ...pairs.map((p) => p.share * 100), ...limits.map((l) => l ?? 0));
    const plot = new uPlot(
      {
        width,
        height,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, Math.min(100, Math.max(5, Math.ceil(top * 1.2)))] } },
        axes: [
          { splits: () => xs, values: (_u, splits) => splits.map((i) => labels[i] ?? ''), size: 40, gap: 6 },
          { label: '% of shadowed frames', values: (_u, splits) => splits.map((v) => `${v}%`), size: 56 },
        ],
        series: [{}, bars('all frames that would change', '#8c1d17', 'rgba(140, 29, 23, 0.75)'), bars('moving from one category to another', '#d64532', 'rgba(214, 69, 50, 0.55)')],
        hooks: {
          // Each bar's limit: a dashed line across it.
          draw: [
            (u) => {
              const ctx = u.ctx;
              ctx.save();
              ctx.strokeStyle = '#1f2937';
              ctx.lineWidth = 2 * devicePixelRatio;
              ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
              limits.forEach((l, i) => {
                if (l === null) return;
                const y = u.valToPos(l, 'y', true);
                ctx.beginPath();
                ctx.moveTo(u.valToPos(i - 0.4, 'x', true), y);
                ctx.lineTo(u.valToPos(i + 0.4, 'x', true), y);
                ctx.stroke();
              });
              ctx.restore();
            },
          ],
        },
      },
      [xs, overall, shares],
      el.current,
    );
    return () => plot.destroy();
  }, [change, drawn, pairs, pairLimit, overallLimit, width, height]);

  const overLimit = gate !== false && gate.maxPredictedChange !== undefined && change.share > gate.maxPredictedChange;
  return (
    <figure className="predicted-change" data-testid="predicted-change" aria-label="predicted inventory change">
      <figcaption>
        {change.frames === 0 ? (
          <span className="muted">No shadow run reported yet: the predicted inventory change appears as devices finish shadowing the head.</span>
        ) : (
          <>
            <strong className={overLimit ? 'error' : undefined} data-testid="predicted-share">
              {pct(change.share)} of {change.frames} shadowed frames
            </strong>{' '}
            would change category ({change.changed} frames on {change.devices} devices)
            {gate !== false && gate.maxPredictedChange !== undefined && <span className="muted"> · limit {pct(gate.maxPredictedChange)} overall</span>}
            {gate === false && <span className="muted"> · shadow gate off: nothing halts on it</span>}
            {change.unpaired > 0 && <span className="muted"> · {change.unpaired} changed frames from devices that do not report pairs</span>}
          </>
        )}
      </figcaption>
      {drawn && (
        <div>
          <div ref={el} className="chart" data-testid="predicted-change-chart" />
          {gate !== false && <p className="muted">Dashed: the limit each bar is held to (maxPredictedChange for all frames, maxPairChange per pair); past it the stage halts.</p>}
        </div>
      )}
      {pairs.length > 0 && (
        <ul className="pairs" data-testid="predicted-pairs">
          {pairs.map((p) => (
            <li key={`${p.from}\u0000${p.to}`} className={pairLimit !== undefined && p.share > pairLimit ? 'error' : undefined}>
              {pairText(p, change.frames)} — {pct(p.ofFrom)} of {p.from}
            </li>
          ))}
          {change.pairs.length > pairs.length && <li className="muted">and {change.pairs.length - pairs.length} smaller pairs</li>}
        </ul>
      )}
    </figure>
  );
}
