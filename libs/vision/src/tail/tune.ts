import { seededRng } from '../image/distort';
import type { HeadSpec } from '../head/head';
import { argmax } from '../head/train';
import { TrainingCancelledError } from '../errors';
import type { ActivationSet } from './activation-set';
import { headLossAndGrads } from './tail-math';
import type { TailStepPool } from './step-pool';

export interface TuneTailOptions {
  epochs: number;
  batchSize: number;
  /** Learning rate of the tail (lower: it starts from pretrained weights) and of the head. */
  tailLearningRate: number;
  headLearningRate: number;
  /** L2-SP: λ · |w − w_pretrained|² on the tail, so it stays near what ImageNet taught it. */
  decayToPretrained: number;
  labelSmoothing: number;
  dropout: number;
  seed: number;
  /** First tail layer that trains (0: all; 1 with a two-layer tail: the pointwise conv only). */
  firstTrainable: number;
  onEpoch?: (rec: TuneEpoch) => void;
  signal?: AbortSignal;
}

export interface TuneEpoch {
  epoch: number;
  trainLoss: number;
  valAccuracy?: number;
  elapsedMs: number;
}

export interface TuneTailResult {
  tail: Float32Array;
  head: Float32Array;
  history: TuneEpoch[];
  /** Epoch whose weights were kept (best validation accuracy; the last without validation). */
  bestEpoch: number;
  bestValAccuracy?: number;
}

/** Adam over a flat parameter array (β1 0.9, β2 0.999, ε 1e-8). */
class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;
  constructor(n: number) {
    this.m = new Float32Array(n);
    this.v = new Float32Array(n);
  }
  step(w: Float32Array, g: Float32Array, lr: number): void {
    this.t++;
    const b1 = 0.9;
    const b2 = 0.999;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] as number;
      const m = (this.m[i] = b1 * (this.m[i] as number) + (1 - b1) * gi);
      const v = (this.v[i] = b2 * (this.v[i] as number) + (1 - b2) * gi * gi);
      w[i] = (w[i] as number) - (lr * (m / c1)) / (Math.sqrt(v / c2) + 1e-8);
    }
  }
}

/** Accuracy per image: probabilities of an image's rows (views) averaged. */
export function groupedAccuracy(probs: Float32Array, classes: number, labels: ArrayLike<number>, groups: ArrayLike<number>): number {
  const by = new Map<number, { sum: Float32Array; label: number }>();
  for (let i = 0; i < labels.length; i++) {
    const g = groups[i] as number;
    let e = by.get(g);
    if (!e) by.set(g, (e = { sum: new Float32Array(classes), label: labels[i] as number }));
    for (let k = 0; k < classes; k++) e.sum[k] = (e.sum[k] as number) + (probs[i * classes + k] as number);
  }
  let ok = 0;
  for (const e of by.values()) if (argmax(e.sum) === e.label) ok++;
  return by.size ? ok / by.size : 0;
}

/** Head probabilities on pooled features (rows × classes). */
export function headProbs(headSpec: HeadSpec, head: Float32Array, pooled: Float32Array): Float32Array {
  const n = pooled.length / headSpec.inputDim;
  return headLossAndGrads(headSpec, head, pooled, new Int32Array(n)).probs;
}

/**
 * Fine-tune a tail and one head together on cached activations: both start from given
 * weights (the pretrained tail; a head trained on the frozen features), Adam with a lower
 * learning rate for the tail, weight decay of the tail towards its pretrained weights,
 * dropout on an MLP head's hidden layer, and the weights of the best validation epoch kept.
 */
export async function tuneTail(
  pool: TailStepPool,
  set: ActivationSet,
  trainRows: Int32Array,
  valRows: Int32Array | undefined,
  pretrained: Float32Array,
  headSpec: HeadSpec,
  headInit: Float32Array,
  opts: TuneTailOptions,
): Promise<TuneTailResult> {
  const started = Date.now();
  const tail = pretrained.slice();
  const head = headInit.slice();
  const tailAdam = new Adam(tail.length);
  const headAdam = new Adam(head.length);
  const rng = seededRng(opts.seed);
  // An epoch visits every image once, through one of its cached views drawn at random
  // (the views are augmentations of one photo): 7× less work per epoch than every row.
  const byImage = new Map<number, number[]>();
  for (const r of trainRows) {
    const g = set.group[r] as number;
    const list = byImage.get(g) ?? [];
    list.push(r);
    byImage.set(g, list);
  }
  const images = [...byImage.values()];
  const n = images.length;
  const batch = Math.min(opts.batchSize, n);
  const hidden = headSpec.type === 'mlp' ? (headSpec.hidden ?? 0) : 0;
  const history: TuneEpoch[] = [];
  let best: { acc: number; epoch: number; tail: Float32Array; head: Float32Array } | undefined;
  const order = new Int32Array(n);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    images.forEach((views, i) => (order[i] = views[Math.floor(rng() * views.length)] as number));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = order[i] as number;
      order[i] = order[j] as number;
      order[j] = t;
    }
    let lossSum = 0;
    let count = 0;
    for (let s = 0; s + batch <= n; s += batch) {
      const rows = order.slice(s, s + batch);
      let mask: Float32Array | undefined;
      if (hidden && opts.dropout > 0) {
        const keep = 1 - opts.dropout;
        mask = Float32Array.from({ length: batch * hidden }, () => (rng() < keep ? 1 / keep : 0));
      }
      const out = await pool.step({ tail, head, rows, mask, labelSmoothing: opts.labelSmoothing, firstTrainable: opts.firstTrainable });
      const gTail = out.gTail;
      const gHead = out.gHead;
      for (let i = 0; i < gTail.length; i++) gTail[i] = (gTail[i] as number) / out.count + 2 * opts.decayToPretrained * ((tail[i] as number) - (pretrained[i] as number));
      for (let i = 0; i < gHead.length; i++) gHead[i] = (gHead[i] as number) / out.count;
      tailAdam.step(tail, gTail, opts.tailLearningRate);
      headAdam.step(head, gHead, opts.headLearningRate);
      lossSum += out.lossSum;
      count += out.count;
    }
    const rec: TuneEpoch = { epoch, trainLoss: lossSum / Math.max(1, count), elapsedMs: Date.now() - started };
    if (valRows && valRows.length > 0) {
      const pooled = await pool.pooled(tail, valRows);
      const probs = headProbs(headSpec, head, pooled);
      rec.valAccuracy = groupedAccuracy(probs, headSpec.numClasses, Array.from(valRows, (r) => set.y[r] as number), Array.from(valRows, (r) => set.group[r] as number));
      if (!best || rec.valAccuracy > best.acc) best = { acc: rec.valAccuracy, epoch, tail: tail.slice(), head: head.slice() };
    }
    history.push(rec);
    opts.onEpoch?.(rec);
    if (opts.signal?.aborted) throw new TrainingCancelledError();
  }
  if (best) return { tail: best.tail, head: best.head, history, bestEpoch: best.epoch, bestValAccuracy: best.acc };
  return { tail, head, history, bestEpoch: opts.epochs };
}
