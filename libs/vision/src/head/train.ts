import * as tf from '@tensorflow/tfjs';
import { seededRng } from '../image/distort';
import { Head, normalizeFeatures, type HeadSpec } from './head';

/**
 * Bottleneck rows for training or evaluation. Several rows may belong to one image
 * (distorted views): `group[i]` is the image of row i; evaluation averages the
 * probabilities of an image's rows (test-time augmentation).
 */
export interface FeatureSet {
  dim: number;
  /** rows × dim floats. */
  x: Float32Array;
  /** Label per row. */
  y: Int32Array;
  /** Image index per row (defaults to the row index). */
  group?: Int32Array;
}

export interface TrainHeadOptions {
  head: Omit<HeadSpec, 'inputDim' | 'numClasses'>;
  numClasses: number;
  learningRate: number;
  optimizer: 'adam' | 'sgd';
  /** Training length in epochs over the training rows (or `steps`). */
  epochs?: number;
  steps?: number;
  batchSize: number;
  /** Evaluate every this many steps (default: once per epoch). */
  evalInterval?: number;
  /** Stop after this many evaluations without validation improvement (0: never). */
  patience: number;
  labelSmoothing: number;
  weightDecay: number;
  dropout: number;
  seed: number;
}

export interface EvalRecord {
  step: number;
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  elapsedMs: number;
}

export interface TrainHeadResult {
  head: Head;
  history: EvalRecord[];
  bestStep: number;
  bestValAccuracy?: number;
  steps: number;
  durationMs: number;
  stoppedEarly: boolean;
}

export const DEFAULT_TRAIN_OPTIONS: TrainHeadOptions = {
  head: { type: 'softmax', normalize: 'l2' },
  numClasses: 0,
  learningRate: 0.01,
  optimizer: 'adam',
  epochs: 30,
  batchSize: 100,
  patience: 0,
  labelSmoothing: 0,
  weightDecay: 0,
  dropout: 0,
  seed: 1,
};

/** Train a head on cached bottlenecks; keeps the weights of the best validation evaluation. */
export async function trainHead(
  train: FeatureSet,
  val: FeatureSet | undefined,
  opts: TrainHeadOptions,
  onEval?: (r: EvalRecord, total: number) => void,
): Promise<TrainHeadResult> {
  const started = Date.now();
  const rows = train.y.length;
  if (rows === 0) throw new Error('no training examples');
  const spec: HeadSpec = { ...opts.head, inputDim: train.dim, numClasses: opts.numClasses };
  const head = Head.init(spec, opts.seed);
  const batchSize = Math.min(opts.batchSize, rows);
  const stepsPerEpoch = Math.ceil(rows / batchSize);
  const totalSteps = opts.steps ?? Math.max(1, Math.round((opts.epochs ?? 30) * stepsPerEpoch));
  const evalInterval = opts.evalInterval ?? stepsPerEpoch;
  const optimizer = opts.optimizer === 'sgd' ? tf.train.sgd(opts.learningRate) : tf.train.adam(opts.learningRate);
  const rng = seededRng(opts.seed);
  const xAll = tf.tensor2d(train.x, [rows, train.dim]);
  // Normalise once; batches are cut in JS (cheaper than gather ops per step).
  const xNorm = tf.tidy(() => normalizeFeatures(xAll, spec.normalize));
  const xData = spec.normalize === 'none' ? train.x : ((await xNorm.data()) as Float32Array);
  if (xNorm !== xAll) xNorm.dispose();
  const dim = train.dim;
  const c = opts.numClasses;
  const smooth = opts.labelSmoothing;
  const xb = new Float32Array(batchSize * dim);
  const yb = new Float32Array(batchSize * c);
  const valX = val && val.y.length > 0 ? tf.tensor2d(val.x, [val.y.length, val.dim]) : undefined;

  // Under a test runner that loaded TensorFlow.js twice (global setup + test module registry), the
  // engine's Variable class differs from this module's and tfjs rejects an explicit list; without
  // one it trains every trainable variable that the loss depends on, which is exactly this head's.
  const varList = head.vars.every((v) => v instanceof tf.Variable) ? head.vars : undefined;
  const history: EvalRecord[] = [];
  let best = { acc: -1, step: 0, weights: undefined as Float32Array | undefined };
  let sinceBest = 0;
  let stoppedEarly = false;
  let order = shuffled(rows, rng);
  let cursor = 0;
  let lossSum: tf.Scalar = tf.scalar(0);
  let lossCount = 0;
  let step = 0;
  try {
    for (step = 1; step <= totalSteps; step++) {
      if (cursor + batchSize > rows) {
        order = shuffled(rows, rng);
        cursor = 0;
      }
      yb.fill(smooth / c);
      for (let k = 0; k < batchSize; k++) {
        const r = order[cursor + k] as number;
        xb.set(xData.subarray(r * dim, (r + 1) * dim), k * dim);
        yb[k * c + (train.y[r] as number)] += 1 - smooth;
      }
      cursor += batchSize;
      const xt = tf.tensor2d(xb, [batchSize, dim]);
      const yt = tf.tensor2d(yb, [batchSize, c]);
      // Dropout masks from the seeded generator too, so a seed reproduces a run exactly.
      const dropoutSeed = Math.floor(rng() * 2 ** 31);
      const loss = optimizer.minimize(
        () =>
          tf.tidy(() => {
            const logits = head.logits(xt, opts.dropout, true, 0, dropoutSeed);
            let l = tf.losses.softmaxCrossEntropy(yt, logits) as tf.Scalar;
            if (opts.weightDecay > 0) {
              for (const k of head.kernels()) l = l.add(tf.sum(tf.square(k)).mul(opts.weightDecay));
            }
            return l;
          }),
        true,
        varList,
      );
      xt.dispose();
      yt.dispose();
      if (loss) {
        // Accumulate on the backend: reading the loss every step would force a sync.
        const next = lossSum.add(loss) as tf.Scalar;
        lossSum.dispose();
        loss.dispose();
        lossSum = next;
        lossCount++;
      }
      if (step % evalInterval === 0 || step === totalSteps) {
        const trainAcc = accuracyOf(head, xAll, train, Math.min(rows, 2000));
        const rec: EvalRecord = {
          step,
          epoch: +(step / stepsPerEpoch).toFixed(2),
          trainLoss: lossCount ? ((await lossSum.data())[0] as number) / lossCount : NaN,
          trainAccuracy: trainAcc,
          elapsedMs: Date.now() - started,
        };
        lossSum.dispose();
        lossSum = tf.scalar(0);
        lossCount = 0;
        if (valX && val) {
          const { accuracy, loss: vl } = evaluateGrouped(head, valX, val);
          rec.valAccuracy = accuracy;
          rec.valLoss = vl;
          if (accuracy > best.acc) {
            best = { acc: accuracy, step, weights: head.snapshot() };
            sinceBest = 0;
          } else {
            sinceBest++;
          }
        }
        history.push(rec);
        onEval?.(rec, totalSteps);
        // Let timers and I/O run once per evaluation (a caller's heartbeat, progress, cancel check):
        // the steps themselves never give the event loop a turn.
        await new Promise<void>((r) => setImmediate(r));
        if (opts.patience > 0 && sinceBest >= opts.patience) {
          stoppedEarly = true;
          break;
        }
      }
    }
  } finally {
    xAll.dispose();
    valX?.dispose();
    lossSum.dispose();
    optimizer.dispose();
  }
  let finalHead = head;
  if (best.weights) {
    finalHead = Head.fromWeights(spec, best.weights);
    head.dispose();
  }
  return {
    head: finalHead,
    history,
    bestStep: best.weights ? best.step : Math.min(step, totalSteps),
    bestValAccuracy: best.weights ? best.acc : undefined,
    steps: Math.min(step, totalSteps),
    durationMs: Date.now() - started,
    stoppedEarly,
  };
}

function shuffled(n: number, rng: () => number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i] as number;
    a[i] = a[j] as number;
    a[j] = t;
  }
  return a;
}

function accuracyOf(head: Head, x: tf.Tensor2D, set: FeatureSet, limit: number): number {
  const pred = tf.tidy(() => head.predict(x.slice([0, 0], [limit, set.dim])).argMax(1).dataSync());
  let ok = 0;
  for (let i = 0; i < limit; i++) if (pred[i] === set.y[i]) ok++;
  return ok / limit;
}

/** Probabilities per image: rows of the same group averaged. Returns [images × classes], labels, group ids. */
export function predictGrouped(head: Head, x: tf.Tensor2D, set: FeatureSet): { probs: Float32Array[]; labels: number[]; groups: number[] } {
  const probs = tf.tidy(() => head.predict(x).dataSync() as Float32Array);
  const c = head.spec.numClasses;
  const byGroup = new Map<number, { sum: Float32Array; n: number; label: number }>();
  const rows = set.y.length;
  for (let i = 0; i < rows; i++) {
    const g = set.group ? (set.group[i] as number) : i;
    let e = byGroup.get(g);
    if (!e) {
      e = { sum: new Float32Array(c), n: 0, label: set.y[i] as number };
      byGroup.set(g, e);
    }
    for (let k = 0; k < c; k++) e.sum[k] += probs[i * c + k];
    e.n++;
  }
  const out = { probs: [] as Float32Array[], labels: [] as number[], groups: [] as number[] };
  for (const [g, e] of byGroup) {
    for (let k = 0; k < c; k++) e.sum[k] /= e.n;
    out.probs.push(e.sum);
    out.labels.push(e.label);
    out.groups.push(g);
  }
  return out;
}

function evaluateGrouped(head: Head, x: tf.Tensor2D, set: FeatureSet): { accuracy: number; loss: number } {
  const { probs, labels } = predictGrouped(head, x, set);
  let ok = 0;
  let loss = 0;
  probs.forEach((p, i) => {
    const label = labels[i] as number;
    if (argmax(p) === label) ok++;
    loss -= Math.log(Math.max(p[label] as number, 1e-12));
  });
  return { accuracy: ok / probs.length, loss: loss / probs.length };
}

export function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if ((p[i] as number) > (p[best] as number)) best = i;
  return best;
}
