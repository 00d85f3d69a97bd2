import { LatencyWindow } from '../metrics/metrics';
import { MAX_SHADOW_PAIRS, SHADOW_HISTOGRAM_BINS, type ScoredCategory, type ShadowStats } from '@shelfsight/contracts';

/**
 * Running comparison of a candidate head with the active one on the same frames: what
 * `rollout-status` reports as `shadow` (agreement, mean top-1 confidence of each head, their
 * confidence histograms, per category the frames each head would have put into inventory
 * under it, and per (active → candidate) pair the frames that would change category).
 */
export class ShadowTally {
  private frames = 0;
  private agreed = 0;
  private activeSum = 0;
  private candidateSum = 0;
  private readonly activeHistogram = new Array<number>(SHADOW_HISTOGRAM_BINS).fill(0);
  private readonly candidateHistogram = new Array<number>(SHADOW_HISTOGRAM_BINS).fill(0);
  private readonly categories = new Map<string, { active: number; candidate: number }>();
  /** Frames the heads disagreed on, per active category, per candidate category. */
  private readonly changes = new Map<string, Map<string, number>>();
  /** Wall time of the active head on each shadowed frame: the baseline a health watch compares with. */
  private readonly activeLatencies = new LatencyWindow(100_000);

  get count(): number {
    return this.frames;
  }

  /** One frame: the top-1 of each head, and how long the active head took on it. */
  add(active: ScoredCategory, candidate: ScoredCategory, activeLatencyMs = 0): void {
    this.frames += 1;
    this.activeLatencies.add(activeLatencyMs);
    if (active.category === candidate.category) this.agreed += 1;
    else {
      let to = this.changes.get(active.category);
      if (!to) this.changes.set(active.category, (to = new Map()));
      to.set(candidate.category, (to.get(candidate.category) ?? 0) + 1);
    }
    this.activeSum += active.confidence;
    this.candidateSum += candidate.confidence;
    this.activeHistogram[bin(active.confidence)]! += 1;
    this.candidateHistogram[bin(candidate.confidence)]! += 1;
    this.category(active.category).active += 1;
    this.category(candidate.category).candidate += 1;
  }

  stats(): ShadowStats {
    const n = this.frames;
    return {
      frames: n,
      agreement: n === 0 ? 0 : this.agreed / n,
      activeMeanConfidence: n === 0 ? 0 : clamp01(this.activeSum / n),
      candidateMeanConfidence: n === 0 ? 0 : clamp01(this.candidateSum / n),
      histogram: { active: [...this.activeHistogram], candidate: [...this.candidateHistogram] },
      categories: Object.fromEntries([...this.categories].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, v]) => [c, { ...v }])),
      changes: [...this.changes]
        .flatMap(([from, to]) => [...to].map(([t, frames]) => ({ from, to: t, frames })))
        .sort((a, b) => b.frames - a.frames || (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : 1))
        .slice(0, MAX_SHADOW_PAIRS),
    };
  }

  /** The active head's figures on the shadowed frames (what the candidate must hold up to once active). */
  baseline(): { p95LatencyMs: number; meanConfidence: number } {
    return { p95LatencyMs: this.activeLatencies.percentile(95), meanConfidence: this.frames === 0 ? 0 : clamp01(this.activeSum / this.frames) };
  }

  private category(name: string): { active: number; candidate: number } {
    let c = this.categories.get(name);
    if (!c) this.categories.set(name, (c = { active: 0, candidate: 0 }));
    return c;
  }
}

/** Bin i holds [i/B, (i+1)/B); a confidence of exactly 1 goes into the last bin. */
function bin(confidence: number): number {
  return Math.min(SHADOW_HISTOGRAM_BINS - 1, Math.max(0, Math.floor(confidence * SHADOW_HISTOGRAM_BINS)));
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

