import { createHash } from 'node:crypto';

/**
 * Whether an operator-labelled sample is held out for evaluation: a deterministic share
 * (`percent`, EVAL_HOLDOUT_PERCENT) of samples chosen by a hash of the sample's id, so the
 * same sample is always on the same side — the training worker never trains on it and the
 * registry's evaluation always scores on it, per category, beside the frozen base rows.
 * Raising the share only adds samples (a sample held out at 10% is held out at 20%).
 * The one home of the rule: the worker (run-job.ts) and the registry (models.service.ts).
 */
export function isEvaluationSample(sampleId: bigint | string | number, percent: number): boolean {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  const h = createHash('sha256').update(`sample:${String(sampleId)}`).digest();
  return (h.readUInt32BE(0) / 0x1_0000_0000) * 100 < percent;
}
