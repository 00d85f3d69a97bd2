import type { ModelMetrics } from './evaluation';

export interface GateTolerance {
  /** Largest allowed drop of overall accuracy (0..1). */
  maxOverallDrop: number;
  /** Largest allowed drop of any single category's accuracy (0..1). */
  maxCategoryDrop: number;
}

export interface GateVerdict {
  releasable: boolean;
  reason: string;
}

export interface GateReference {
  version: string;
  metrics: ModelMetrics;
}

const f2 = (v: number) => v.toFixed(2);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;
/** Differences are judged at 1e-9 so an equal version is never refused for rounding. */
const EPS = 1e-9;

/**
 * The registry's release gate. A version is releasable only if, on its category set's
 * frozen evaluation set, it does not fall more than the tolerance below the best
 * releasable version of that set (and backbone), overall AND on every single category — one category's
 * collapse cannot hide behind a better average. The first version of a set has nothing
 * to compare with: it is releasable when it beats what a head that knows nothing would
 * score (the larger of the majority-category share and 1 / categories). The reason is
 * recorded either way and names every damaged category.
 */
export class ModelGate {
  constructor(private readonly tolerance: GateTolerance) {}

  judge(candidate: ModelMetrics | undefined, best: GateReference | undefined): GateVerdict {
    if (!candidate) {
      return { releasable: false, reason: 'not evaluated: its category set has no frozen evaluation set yet (register a version whose training rows hold a testing split, split 2, that training never saw)' };
    }
    if (!best) {
      const floor = Math.max(candidate.baseline.majority, candidate.baseline.chance);
      return candidate.accuracy > floor + EPS
        ? { releasable: true, reason: `first version of its category set: accuracy ${f2(candidate.accuracy)} beats the no-knowledge baseline ${f2(floor)}` }
        : { releasable: false, reason: `first version of its category set: accuracy ${f2(candidate.accuracy)} does not beat the no-knowledge baseline ${f2(floor)}` };
    }
    const problems: string[] = [];
    const overall = candidate.accuracy - best.metrics.accuracy;
    if (-overall > this.tolerance.maxOverallDrop + EPS) {
      problems.push(`overall: ${f2(best.metrics.accuracy)} -> ${f2(candidate.accuracy)} (${signed(overall)}, tolerance ${f2(this.tolerance.maxOverallDrop)})`);
    }
    for (const name of best.metrics.labels) {
      const before = best.metrics.perCategory[name]?.accuracy ?? 0;
      const after = candidate.perCategory[name]?.accuracy ?? 0;
      const delta = after - before;
      if (-delta > this.tolerance.maxCategoryDrop + EPS) {
        problems.push(`category ${name}: ${f2(before)} -> ${f2(after)} (${signed(delta)}, tolerance ${f2(this.tolerance.maxCategoryDrop)})`);
      }
    }
    if (problems.length > 0) return { releasable: false, reason: `regresses against ${best.version}: ${problems.join('; ')}` };
    return {
      releasable: true,
      reason: `no regression against ${best.version}: overall ${f2(best.metrics.accuracy)} -> ${f2(candidate.accuracy)} (${signed(overall)}); no category dropped more than ${f2(this.tolerance.maxCategoryDrop)}`,
    };
  }
}
