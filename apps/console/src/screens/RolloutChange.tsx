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

/**
 * The predicted inventory change of a rollout, drawn: per (active → candidate) category pair,
 * the share of the shadowed frames that would move (bars, uPlot), against the gate's
 * `maxPairChange` (dashed line); the overall share against `maxPredictedChange` in words.
 */
export function PredictedChangeChart({ change, gate, width = 760, height = 260 }: { change: Change; gate: Policy['shadowGate']; width?: number; height?: number }) {
  const el = useRef<HTMLDivElement>(null);
  const pairs = useMemo(() => change.pairs.slice(0, MAX_BARS), [change]);
  const pairLimit = gate === false ? undefined : gate.maxPairChange;
  useEffect(() => {
    if (!el.current || pairs.length === 0) return;
    const labels = pairs.map((p) => `${p.from} → ${p.to}`);
    const xs = pairs.map((_, i) => i);
    const shares = pairs.map((p) => p.share * 100);
    const top = Math.max(...shares, pairLimit !== undefined ? pairLimit * 100 : 0);
    const plot = new uPlot(
      {
        width,
        height,
        legend: { show: true },
        cursor: { show: false },
        scales: { x: { time: false, range: [-0.5, pairs.length - 0.5] }, y: { range: [0, Math.min(100, Math.max(5, Math.ceil(top * 1.2)))] } },
        axes: [
          { splits: () => xs, values: (_u, splits) => splits.map((i) => labels[i] ?? ''), size: 40, gap: 6 },
          { label: '% of shadowed frames', values: (_u, splits) => splits.map((v) => `${v}%`), size: 56 },
        ],
        series: [
          {},
          {
            label: 'would change category',
            stroke: '#d64532',
            fill: 'rgba(214, 69, 50, 0.55)',
            paths: uPlot.paths.bars!({ size: [0.6, 80] }),
            points: { show: false },
            value: (_u, v) => (v === null ? '' : `${v.toFixed(1)}%`),
          },
          ...(pairLimit !== undefined ? [{ label: 'limit per pair (maxPairChange)', stroke: '#1f2937', dash: [6, 4], width: 2, points: { show: false }, value: () => pct(pairLimit) }] : []),
        ],
      },
      [xs, shares, ...(pairLimit !== undefined ? [xs.map(() => pairLimit * 100)] : [])],
      el.current,
    );
    return () => plot.destroy();
  }, [pairs, pairLimit, width, height]);

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
      {pairs.length > 0 && <div ref={el} className="chart" data-testid="predicted-change-chart" />}
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
