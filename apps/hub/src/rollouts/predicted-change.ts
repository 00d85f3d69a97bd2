import type { RolloutShadowGate, ShadowStats } from '@shelfsight/contracts';

/** Frames that would move from one category to another, pooled over devices' shadow runs. */
export interface PredictedPair {
  from: string;
  to: string;
  frames: number;
  /** `frames` ÷ every pooled shadowed frame: the inventory that would move ("12% of 340 frames"). */
  share: number;
  /** `frames` ÷ the pooled frames the active head put under `from`: how much of that category would move. */
  ofFrom: number;
}

/** What the pooling reads of a device's shadow report. */
export type PooledShadow = Pick<ShadowStats, 'frames' | 'agreement' | 'categories' | 'changes'>;

/**
 * The predicted inventory change of a version: over the shadow runs of some devices, the
 * share of frames whose category would change, and per (active → candidate) pair.
 */
export interface PredictedChange {
  /** Devices whose shadow runs are pooled. */
  devices: number;
  /** Shadowed frames pooled. */
  frames: number;
  /** Of them, frames on which the candidate picks another category than the active head. */
  changed: number;
  /** `changed` ÷ `frames` (0 without frames). */
  share: number;
  /** Per pair, most frames first. */
  pairs: PredictedPair[];
  /** Changed frames reported without per-pair counts (agents that predate them). */
  unpaired: number;
}

/**
 * Pool shadow reports into the predicted inventory change. Pure. A report with `changes`
 * contributes its pairs; one without contributes only its count of changed frames (from
 * `agreement`), as `unpaired`.
 */
export function predictedChange(reports: readonly PooledShadow[]): PredictedChange {
  let frames = 0;
  let changed = 0;
  let unpaired = 0;
  let devices = 0;
  const activeUnder = new Map<string, number>();
  const pairs = new Map<string, { from: string; to: string; frames: number }>();
  for (const r of reports) {
    if (r.frames <= 0) continue;
    devices += 1;
    frames += r.frames;
    for (const [category, c] of Object.entries(r.categories)) activeUnder.set(category, (activeUnder.get(category) ?? 0) + c.active);
    if (r.changes) {
      for (const p of r.changes) {
        const key = JSON.stringify([p.from, p.to]);
        const pair = pairs.get(key) ?? { from: p.from, to: p.to, frames: 0 };
        pair.frames += p.frames;
        pairs.set(key, pair);
        changed += p.frames;
      }
    } else {
      const n = Math.round(r.frames * (1 - r.agreement));
      changed += n;
      unpaired += n;
    }
  }
  return {
    devices,
    frames,
    changed,
    share: frames === 0 ? 0 : changed / frames,
    pairs: [...pairs.values()]
      .map((p) => ({ ...p, share: p.frames / frames, ofFrom: p.frames / Math.max(p.frames, activeUnder.get(p.from) ?? 0) }))
      .sort((a, b) => b.frames - a.frames || (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : 1)),
    unpaired,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** "milk → yogurt 12.0% of 340 frames (41)". */
export function describePair(p: PredictedPair, frames: number): string {
  return `${p.from} → ${p.to} ${pct(p.share)} of ${frames} frames (${p.frames})`;
}

/**
 * Which of the gate's hub limits the predicted change breaks, in words (undefined: within
 * them, no gate, or no shadowed frame yet). The largest pair is named.
 */
export function predictedChangeBreach(gate: RolloutShadowGate | false, change: PredictedChange): string | undefined {
  if (gate === false || change.frames === 0) return undefined;
  const top = change.pairs[0];
  if (gate.maxPairChange !== undefined && top && top.share > gate.maxPairChange) {
    return `predicted inventory change ${describePair(top, change.frames)} is above maxPairChange ${pct(gate.maxPairChange)}`;
  }
  if (gate.maxPredictedChange !== undefined && change.share > gate.maxPredictedChange) {
    return `predicted inventory change ${pct(change.share)} of ${change.frames} frames (${change.changed}) is above maxPredictedChange ${pct(gate.maxPredictedChange)}${top ? `; largest: ${describePair(top, change.frames)}` : ''}`;
  }
  return undefined;
}
