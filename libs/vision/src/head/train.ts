import * as tf from '@tensorflow/tfjs';
import { seededRng } from '../image/distort';
import { Head, headParamCount, headShapes, initialWeights, type DenseShape, type FeatureNorm, type HeadSpec } from './head';

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

/**
 * The head-training defaults: the one home for them (`trainModel`, `shelf train`,
 * `shelf bench train` and the learning loop read these). The `fast` preset of
 * `shelf train` is exactly these.
 */
export const DEFAULT_TRAIN_OPTIONS: TrainHeadOptions = {
  head: { type: 'softmax', normalize: 'l2' },
  numClasses: 0,
  learningRate: 0.01,
  optimizer: 'adam',
  epochs: 40,
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
  const [only] = await trainHeads(train, val, opts, 1, onEval && ((r, _m, total) => onEval(r, total)));
  return only as TrainHeadResult;
}

/**
 * Train `members` heads at once: member m starts from seed `opts.seed + m` (its own
 * initial weights, data order and dropout masks), and every step runs all members in
 * one pass (one forward/backward per member, one Adam update over all of them) instead
 * of one training after another. Each member's loss, gradients and Adam state depend
 * only on its own weights, so member m ends up as a single `trainHead` run with seed
 * `opts.seed + m` would (up to float rounding). Early stopping freezes a member's best
 * weights; training ends when every member has stopped. Use `trainEnsemble` to spread
 * the members over worker threads.
 */
export async function trainHeads(
  train: FeatureSet,
  val: FeatureSet | undefined,
  opts: TrainHeadOptions,
  members: number,
  onEval?: (r: EvalRecord, member: number, total: number) => void,
): Promise<TrainHeadResult[]> {
  const started = Date.now();
  const rows = train.y.length;
  if (rows === 0) throw new Error('no training examples');
  if (!Number.isInteger(members) || members < 1) throw new Error(`members must be a positive integer, got ${members}`);
  const M = members;
  const spec: HeadSpec = { ...opts.head, inputDim: train.dim, numClasses: opts.numClasses };
  const shapes = headShapes(spec);
  const perMember = headParamCount(spec);
  const seeds = Array.from({ length: M }, (_, m) => opts.seed + m);
  const batchSize = Math.min(opts.batchSize, rows);
  const stepsPerEpoch = Math.ceil(rows / batchSize);
  const totalSteps = opts.steps ?? Math.max(1, Math.round((opts.epochs ?? DEFAULT_TRAIN_OPTIONS.epochs ?? 40) * stepsPerEpoch));
  const evalInterval = opts.evalInterval ?? stepsPerEpoch;
  const dim = train.dim;
  const c = opts.numClasses;
  const smooth = opts.labelSmoothing;
  const hidden = spec.type === 'mlp' ? (shapes[0] as DenseShape).outDim : 0;
  const useDropout = opts.dropout > 0 && shapes.length > 1;

  // Member m's layer l: W [in, out] and b [out], variables of their own (Adam's update is
  // element-wise, so one optimizer over all members updates each exactly as alone).
  const init = seeds.map((sd) => initialWeights(spec, sd));
  const layers = init.map((iw) => {
    let off = 0;
    return shapes.map((sh) => {
      const wn = sh.inDim * sh.outDim;
      const w = tf.variable(tf.tensor2d(iw.subarray(off, off + wn), [sh.inDim, sh.outDim]), true);
      const b = tf.variable(tf.tensor1d(iw.subarray(off + wn, off + wn + sh.outDim)), true);
      off += wn + sh.outDim;
      return { w, b };
    });
  });
  const vars = layers.flatMap((ls) => ls.flatMap((l) => [l.w, l.b]));
  /**
   * One training step of every member: forward, softmax cross-entropy and hand-written
   * backward pass. Only untransposed 2-D matmuls: the WASM backend runs those through
   * XNNPACK, while batched (rank-3) and transposed matmuls take a path ~10× slower, which
   * is also why the members are not one rank-3 matmul. Transposes of the inputs are built
   * in JS with the batch. Returns the gradients (in `vars` order) and the members' losses.
   */
  const stepGrads = (x: tf.Tensor2D[], xT: tf.Tensor2D[], y: tf.Tensor2D[], masks: Array<tf.Tensor2D | undefined>): { grads: tf.Tensor[]; loss: tf.Tensor1D } =>
    tf.tidy(() => {
      const grads: tf.Tensor[] = [];
      const losses: tf.Scalar[] = [];
      layers.forEach((ls, m) => {
        const acts: tf.Tensor2D[] = [x[m] as tf.Tensor2D];
        const pre: tf.Tensor2D[] = [];
        ls.forEach((l, k) => {
          const z = tf.add(tf.matMul(acts[k] as tf.Tensor2D, l.w), l.b) as tf.Tensor2D;
          pre.push(z);
          if (k < ls.length - 1) {
            const mask = masks[m];
            acts.push(mask ? (tf.mul(tf.relu(z), mask) as tf.Tensor2D) : tf.relu(z));
          }
        });
        const logp = tf.logSoftmax(pre[pre.length - 1] as tf.Tensor2D);
        const ym = y[m] as tf.Tensor2D;
        losses.push(tf.div(tf.neg(tf.sum(tf.mul(ym, logp))), batchSize) as tf.Scalar);
        // d(mean loss)/d logits = (softmax − targets) / batch (targets sum to 1 per row).
        let g = tf.div(tf.sub(tf.exp(logp), ym), batchSize) as tf.Tensor2D;
        const mine: tf.Tensor[] = [];
        for (let k = ls.length - 1; k >= 0; k--) {
          const l = ls[k] as { w: tf.Variable; b: tf.Variable };
          const aT = k === 0 ? (xT[m] as tf.Tensor2D) : tf.transpose(acts[k] as tf.Tensor2D);
          let dw = tf.matMul(aT, g);
          if (opts.weightDecay > 0) dw = tf.add(dw, tf.mul(l.w, 2 * opts.weightDecay));
          mine.unshift(dw, tf.sum(g, 0));
          if (k > 0) {
            g = tf.matMul(g, tf.transpose(l.w)) as tf.Tensor2D;
            const mask = masks[m];
            if (mask) g = tf.mul(g, mask) as tf.Tensor2D;
            g = tf.mul(g, tf.step(pre[k - 1] as tf.Tensor2D)) as tf.Tensor2D;
          }
        }
        grads.push(...mine);
      });
      return { grads, loss: tf.stack(losses) as tf.Tensor1D };
    });
  /** Member m's weights in `Head.toWeights()` layout. */
  const readWeights = (): Float32Array[] =>
    layers.map((ls) => {
      const out = new Float32Array(perMember);
      let off = 0;
      for (const l of ls) {
        for (const v of [l.w, l.b]) {
          const d = v.dataSync() as Float32Array;
          out.set(d, off);
          off += d.length;
        }
      }
      return out;
    });

  const optimizer = opts.optimizer === 'sgd' ? tf.train.sgd(opts.learningRate) : tf.train.adam(opts.learningRate);
  // Normalise once; batches are cut in JS (cheaper than gather ops per step).
  const xData = spec.normalize === 'none' ? train.x : normalizedRows(train.x, dim, spec.normalize);
  const evalRows = Math.min(rows, 2000);
  const xEvalTrain = tf.tensor2d(xData.subarray(0, evalRows * dim), [evalRows, dim]);
  const valX =
    val && val.y.length > 0 ? tf.tensor2d(spec.normalize === 'none' ? val.x : normalizedRows(val.x, val.dim, spec.normalize), [val.y.length, val.dim]) : undefined;
  const xb = new Float32Array(M * batchSize * dim);
  const xbT = new Float32Array(M * batchSize * dim);
  const yb = new Float32Array(M * batchSize * c);

  const state = seeds.map((seed) => {
    const rng = seededRng(seed);
    return {
      rng,
      order: shuffled(rows, rng),
      cursor: 0,
      history: [] as EvalRecord[],
      best: { acc: -1, step: 0, weights: undefined as Float32Array | undefined },
      sinceBest: 0,
      stoppedAt: 0,
    };
  });
  let lossSum: tf.Tensor1D = tf.zeros([M]);
  let lossCount = 0;
  let step = 0;
  try {
    for (step = 1; step <= totalSteps; step++) {
      yb.fill(smooth / c);
      const dropoutSeeds: number[] = [];
      state.forEach((st, m) => {
        if (st.cursor + batchSize > rows) {
          st.order = shuffled(rows, st.rng);
          st.cursor = 0;
        }
        const xo = m * batchSize * dim;
        const yo = m * batchSize * c;
        for (let k = 0; k < batchSize; k++) {
          const r = st.order[st.cursor + k] as number;
          xb.set(xData.subarray(r * dim, (r + 1) * dim), xo + k * dim);
          yb[yo + k * c + (train.y[r] as number)] += 1 - smooth;
        }
        st.cursor += batchSize;
        // Dropout masks from the seeded generator too, so a seed reproduces a run exactly.
        dropoutSeeds.push(Math.floor(st.rng() * 2 ** 31));
      });
      const xs = seeds.map((_, m) => tf.tensor2d(xb.subarray(m * batchSize * dim, (m + 1) * batchSize * dim), [batchSize, dim]));
      const xTs = seeds.map((_, m) => tf.tensor2d(transposed(xb, m * batchSize * dim, batchSize, dim, xbT.subarray(m * batchSize * dim, (m + 1) * batchSize * dim)), [dim, batchSize]));
      const ys = seeds.map((_, m) => tf.tensor2d(yb.subarray(m * batchSize * c, (m + 1) * batchSize * c), [batchSize, c]));
      // tf.dropout's own mask (keep = floor(u + keep) / keep), one seeded draw per member.
      const masks = dropoutSeeds.map((sd) => (useDropout ? dropoutMask(sd, batchSize, hidden, opts.dropout) : undefined));
      const { grads, loss: memberLoss } = stepGrads(xs, xTs, ys, masks);
      optimizer.applyGradients(vars.map((v, k) => ({ name: v.name, tensor: grads[k] as tf.Tensor })));
      tf.dispose([...xs, ...xTs, ...ys, ...grads]);
      for (const mk of masks) mk?.dispose();
      // Accumulate on the backend: reading the loss every step would force a sync.
      const next = lossSum.add(memberLoss) as tf.Tensor1D;
      lossSum.dispose();
      memberLoss.dispose();
      lossSum = next;
      lossCount++;
      if (step % evalInterval === 0 || step === totalSteps) {
        const count = lossCount;
        const losses = count ? ((await lossSum.data()) as Float32Array) : undefined;
        lossSum.dispose();
        lossSum = tf.zeros([M]);
        lossCount = 0;
        const weights = valX ? readWeights() : undefined;
        state.forEach((st, m) => {
          if (st.stoppedAt) return;
          const rec: EvalRecord = {
            step,
            epoch: +(step / stepsPerEpoch).toFixed(2),
            trainLoss: losses ? (losses[m] as number) / count : NaN,
            trainAccuracy: accuracyOfMember(forwardMember(xEvalTrain, m), train.y, evalRows),
            elapsedMs: Date.now() - started,
          };
          if (valX && val && weights) {
            const { accuracy, loss: vl } = scoreGrouped(groupProbs(forwardMember(valX, m), c, val));
            rec.valAccuracy = accuracy;
            rec.valLoss = vl;
            if (accuracy > st.best.acc) {
              st.best = { acc: accuracy, step, weights: weights[m] };
              st.sinceBest = 0;
            } else {
              st.sinceBest++;
            }
          }
          st.history.push(rec);
          onEval?.(rec, m, totalSteps);
          if (opts.patience > 0 && st.sinceBest >= opts.patience) st.stoppedAt = step;
        });
        // Let timers and I/O run once per evaluation (a caller's heartbeat, progress, cancel check):
        // the steps themselves never give the event loop a turn.
        await new Promise<void>((r) => setImmediate(r));
        if (state.every((st) => st.stoppedAt)) break;
      }
    }
    const finalWeights = readWeights();
    const lastStep = Math.min(step, totalSteps);
    return state.map((st, m) => ({
      head: Head.fromWeights(spec, st.best.weights ?? (finalWeights[m] as Float32Array)),
      history: st.history,
      bestStep: st.best.weights ? st.best.step : st.stoppedAt || lastStep,
      bestValAccuracy: st.best.weights ? st.best.acc : undefined,
      steps: st.stoppedAt || lastStep,
      durationMs: Date.now() - started,
      stoppedEarly: st.stoppedAt > 0,
    }));
  } finally {
    for (const v of vars) v.dispose();
    xEvalTrain.dispose();
    valX?.dispose();
    lossSum.dispose();
    optimizer.dispose();
  }

  /** Probabilities of member m for 2-D inputs (already normalised). */
  function forwardMember(x: tf.Tensor2D, m: number): Float32Array {
    return tf.tidy(() => {
      const ls = layers[m] as Array<{ w: tf.Variable; b: tf.Variable }>;
      let h: tf.Tensor2D = x;
      ls.forEach((l, k) => {
        h = tf.add(tf.matMul(h, l.w), l.b) as tf.Tensor2D;
        if (k < ls.length - 1) h = tf.relu(h);
      });
      return tf.softmax(h).dataSync() as Float32Array;
    });
  }
  function accuracyOfMember(p: Float32Array, y: Int32Array, n: number): number {
    let ok = 0;
    for (let i = 0; i < n; i++) if (argmax(p.subarray(i * c, (i + 1) * c)) === y[i]) ok++;
    return ok / n;
  }
}

/** tf.dropout's multiplier: floor(u + keep) / keep for a seeded uniform u. */
function dropoutMask(seed: number, rows: number, units: number, rate: number): tf.Tensor2D {
  const keep = 1 - rate;
  return tf.tidy(() => tf.div(tf.floor(tf.add(tf.randomUniform([rows, units], 0, 1, 'float32', seed), keep)), keep) as tf.Tensor2D);
}

/** Rows × cols block of `src` starting at `off`, transposed into `out` (cols × rows). */
function transposed(src: Float32Array, off: number, rows: number, cols: number, out: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++) {
    const base = off + r * cols;
    for (let k = 0; k < cols; k++) out[k * rows + r] = src[base + k] as number;
  }
  return out;
}

/** Rows normalised as `normalizeFeatures` does, computed in JS (once per training). */
function normalizedRows(x: Float32Array, dim: number, norm: FeatureNorm): Float32Array {
  if (norm === 'none') return x;
  const out = new Float32Array(x.length);
  const scale = Math.sqrt(dim);
  for (let r = 0; r < x.length / dim; r++) {
    let ss = 0;
    for (let d = 0; d < dim; d++) ss += (x[r * dim + d] as number) ** 2;
    const f = scale / (Math.sqrt(ss) + 1e-8);
    for (let d = 0; d < dim; d++) out[r * dim + d] = (x[r * dim + d] as number) * f;
  }
  return out;
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

/** Probabilities per image: rows of the same group averaged. Returns [images × classes], labels, group ids. */
export function predictGrouped(head: Head, x: tf.Tensor2D, set: FeatureSet): GroupedProbs {
  const probs = tf.tidy(() => head.predict(x).dataSync() as Float32Array);
  return groupProbs(probs, head.outputDim, set);
}

export interface GroupedProbs {
  probs: Float32Array[];
  labels: number[];
  groups: number[];
}

/** Row probabilities ([rows × c]) averaged per image group. */
function groupProbs(probs: Float32Array, c: number, set: FeatureSet): GroupedProbs {
  const byGroup = new Map<number, { sum: Float32Array; n: number; label: number }>();
  const rows = set.y.length;
  for (let i = 0; i < rows; i++) {
    const g = set.group ? (set.group[i] as number) : i;
    let e = byGroup.get(g);
    if (!e) {
      e = { sum: new Float32Array(c), n: 0, label: set.y[i] as number };
      byGroup.set(g, e);
    }
    for (let k = 0; k < c; k++) e.sum[k] += probs[i * c + k] as number;
    e.n++;
  }
  const out: GroupedProbs = { probs: [], labels: [], groups: [] };
  for (const [g, e] of byGroup) {
    for (let k = 0; k < c; k++) e.sum[k] /= e.n;
    out.probs.push(e.sum);
    out.labels.push(e.label);
    out.groups.push(g);
  }
  return out;
}

function scoreGrouped({ probs, labels }: GroupedProbs): { accuracy: number; loss: number } {
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
