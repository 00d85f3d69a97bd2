import type { ScoredCategory } from '@shelfsight/contracts';

export interface Uncertainty {
  /** Top-1 minus top-2 confidence (1 when there is no second). */
  margin: number;
  /** Shannon entropy (nats) of the top-k, with the mass outside it as one more outcome. */
  entropy: number;
}

/** How unsure a prediction is, from its top-k: the queue orders by these. */
export function uncertaintyOf(topK: readonly ScoredCategory[]): Uncertainty {
  const sorted = [...topK].map((s) => s.confidence).sort((a, b) => b - a);
  const first = sorted[0] ?? 0;
  const second = sorted[1] ?? 0;
  const rest = Math.max(0, 1 - sorted.reduce((a, b) => a + b, 0));
  let entropy = 0;
  for (const p of [...sorted, rest]) if (p > 0) entropy -= p * Math.log(p);
  return { margin: sorted.length > 1 ? first - second : first, entropy };
}

/** Hub-side sample reasons: the device's, plus `disagreement` (a frame the hub requested because devices disagreed). */
export const STORED_SAMPLE_REASONS = ['low_confidence', 'small_margin', 'audit', 'requested', 'disagreement'] as const;
export type StoredSampleReason = (typeof STORED_SAMPLE_REASONS)[number];

export const SAMPLE_STATES = ['pending', 'labelled', 'skipped'] as const;
export type SampleState = (typeof SAMPLE_STATES)[number];

/** Queue priority: higher first. Disagreement frames go ahead of plain low-confidence samples. */
export const PRIORITY: Record<StoredSampleReason, number> = { disagreement: 10, requested: 5, low_confidence: 0, small_margin: 0, audit: 0 };

/** Why a sample was refused; the `reason` label of shelfsight_samples_rejected_total. */
export type SampleRejectReason =
  | 'invalid_json'
  | 'schema'
  | 'device_mismatch'
  | 'unknown_topic'
  | 'unknown_backbone'
  | 'dimension_mismatch'
  | 'quota'
  | 'queue_full'
  | 'unknown_request'
  | 'wrong_frame'
  | 'already_answered'
  | 'store_failed';
