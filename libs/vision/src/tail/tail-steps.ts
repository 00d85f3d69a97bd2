import type { HeadSpec } from '../head/head';
import { gatherRows, type ActivationSet } from './activation-set';
import { headLossAndGrads, tailBackward, tailForward, type TailSpec } from './tail-math';

/** What one gradient step needs besides the rows: the current weights and the training knobs. */
export interface StepInput {
  tail: Float32Array;
  head: Float32Array;
  rows: Int32Array;
  /** Dropout multipliers of the head's hidden layer, rows × hidden (MLP heads). */
  mask?: Float32Array;
  labelSmoothing: number;
  firstTrainable: number;
}

export interface StepOutput {
  /** Sums over the rows (not means), so parts of a batch add up. */
  gTail: Float32Array;
  gHead: Float32Array;
  lossSum: number;
  count: number;
}

/**
 * Gradients of tail + head on some rows of a set, summed over the rows: the unit of work
 * a worker thread does (a batch is split into parts, the parts' sums added).
 */
export function stepGradients(set: ActivationSet, spec: TailSpec, headSpec: HeadSpec, input: StepInput): StepOutput {
  const n = input.rows.length;
  const x = gatherRows(set, input.rows);
  const trace = tailForward(spec, input.tail, x, n);
  const labels = Array.from(input.rows, (r) => set.y[r] as number);
  const h = headLossAndGrads(headSpec, input.head, trace.pooled, labels, { labelSmoothing: input.labelSmoothing, mask: input.mask });
  // headLossAndGrads averages over its rows: scale back to sums.
  for (let i = 0; i < h.gPooled.length; i++) h.gPooled[i] = (h.gPooled[i] as number) * n;
  for (let i = 0; i < h.gHead.length; i++) h.gHead[i] = (h.gHead[i] as number) * n;
  const gTail = tailBackward(spec, input.tail, trace, h.gPooled, input.firstTrainable);
  return { gTail, gHead: h.gHead, lossSum: h.loss * n, count: n };
}

/** Pooled features (rows × C) of rows of a set through a tail, in chunks. */
export function pooledFeatures(set: ActivationSet, spec: TailSpec, tail: Float32Array, rows: Int32Array, chunk = 64): Float32Array {
  const c = spec.channels;
  const out = new Float32Array(rows.length * c);
  for (let s = 0; s < rows.length; s += chunk) {
    const part = rows.subarray(s, Math.min(rows.length, s + chunk));
    out.set(tailForward(spec, tail, gatherRows(set, part), part.length).pooled, s * c);
  }
  return out;
}
