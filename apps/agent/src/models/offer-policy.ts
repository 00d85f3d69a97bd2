import type { HealthStats, OfferPolicy, ShadowStats } from '@shelfsight/contracts';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Which limit of an offer's shadow gate the shadow run broke, in words (undefined: it passed,
 * or there is no gate). A gate with no shadowed frames fails: there is nothing to judge by.
 */
export function shadowGateFailure(gate: OfferPolicy['shadowGate'], stats: ShadowStats): string | undefined {
  if (!gate) return undefined;
  if (gate.minAgreement === undefined && gate.maxCategoryShift === undefined && gate.minCandidateConfidence === undefined) return undefined;
  if (stats.frames === 0) return 'shadow gate: no frames were shadowed';
  if (gate.minAgreement !== undefined && stats.agreement < gate.minAgreement) {
    return `shadow gate: agreement ${pct(stats.agreement)} is below minAgreement ${pct(gate.minAgreement)} over ${stats.frames} frames`;
  }
  if (gate.maxCategoryShift !== undefined) {
    let worst: { category: string; shift: number } | undefined;
    for (const [category, c] of Object.entries(stats.categories)) {
      const shift = Math.abs(c.candidate - c.active) / stats.frames;
      if (!worst || shift > worst.shift) worst = { category, shift };
    }
    if (worst && worst.shift > gate.maxCategoryShift) {
      return `shadow gate: category ${worst.category} would shift by ${pct(worst.shift)} of the frames, above maxCategoryShift ${pct(gate.maxCategoryShift)}`;
    }
  }
  if (gate.minCandidateConfidence !== undefined && stats.candidateMeanConfidence < gate.minCandidateConfidence) {
    return `shadow gate: candidate mean confidence ${stats.candidateMeanConfidence.toFixed(3)} is below minCandidateConfidence ${gate.minCandidateConfidence}`;
  }
  return undefined;
}

/**
 * Which health limit the activated head broke against the previous head's shadow-run
 * figures, in words (undefined: healthy, or no limits). A baseline latency of 0 (no shadow
 * run) cannot be compared with and passes.
 */
export function healthFailure(limits: OfferPolicy['health'], health: HealthStats): string | undefined {
  if (!limits) return undefined;
  const { baseline } = health;
  if (limits.maxLatencyRatio !== undefined && baseline.p95LatencyMs > 0 && health.p95LatencyMs > limits.maxLatencyRatio * baseline.p95LatencyMs) {
    return `health: p95 latency ${health.p95LatencyMs.toFixed(1)} ms is above ${limits.maxLatencyRatio} x the previous head's ${baseline.p95LatencyMs.toFixed(1)} ms`;
  }
  if (limits.maxConfidenceDrop !== undefined && baseline.meanConfidence - health.meanConfidence > limits.maxConfidenceDrop) {
    return `health: mean confidence ${health.meanConfidence.toFixed(3)} fell by more than ${limits.maxConfidenceDrop} from the previous head's ${baseline.meanConfidence.toFixed(3)}`;
  }
  return undefined;
}
