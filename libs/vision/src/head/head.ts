import * as tf from '@tensorflow/tfjs';
import { headParamCount, headShapes, type FeatureNorm, type HeadSpec } from '@shelfsight/contracts';
import { seededRng, gaussian } from '../image/distort';

/**
 * The trainable part of a model. `softmax` is retrain.py's final layer: N × (D + 1)
 * numbers. `mlp` adds one hidden ReLU layer (trained with dropout) for more accuracy.
 * A head may be an ensemble: `members` heads of the same shape, trained from different
 * seeds, whose probabilities are averaged (N times the size: megabytes for MLP heads).
 * Shape and weight layout are the artifact contract's (`@shelfsight/contracts` head-math,
 * which also has a TensorFlow-free forward pass for the hub).
 */
export { headShapes, headParamCount, type HeadType, type FeatureNorm, type HeadSpec, type DenseShape } from '@shelfsight/contracts';

/** Apply the head's feature normalisation. */
export function normalizeFeatures(x: tf.Tensor2D, norm: FeatureNorm): tf.Tensor2D {
  if (norm === 'none') return x;
  return tf.tidy(() => {
    const d = x.shape[1];
    const len = tf.sqrt(tf.sum(tf.square(x), 1, true)).add(1e-8);
    return x.div(len).mul(Math.sqrt(d)) as tf.Tensor2D;
  });
}

/**
 * The initial weights of one head for a seed, in `Head.toWeights()` layout ([W0, b0, W1, b1]):
 * Glorot-uniform kernels (softmax: tiny Gaussian, as retrain.py starts near zero), zero biases.
 */
export function initialWeights(spec: HeadSpec, seed: number): Float32Array {
  const rng = seededRng(seed);
  const out = new Float32Array(headParamCount({ ...spec, members: 1 }));
  let off = 0;
  for (const s of headShapes(spec)) {
    const limit = Math.sqrt(6 / (s.inDim + s.outDim));
    const n = s.inDim * s.outDim;
    for (let i = 0; i < n; i++) out[off + i] = spec.type === 'softmax' ? gaussian(rng) * 0.001 : (rng() * 2 - 1) * limit;
    off += n + s.outDim;
  }
  return out;
}

export class Head {
  /** Output i counts towards reported label `groups[i]` (hierarchical labels); absent: one label per output. */
  groups?: number[];

  private constructor(
    readonly spec: HeadSpec,
    /** [W0, b0, W1, b1, ...], member after member. */
    readonly vars: tf.Variable[],
  ) {}

  /** Number of heads averaged (1 unless an ensemble). */
  get members(): number {
    return this.spec.members ?? 1;
  }

  /** Several trained heads of one shape as one ensemble head (the inputs are disposed). */
  static ensemble(heads: Head[]): Head {
    const first = heads[0];
    if (!first) throw new Error('an ensemble needs at least one head');
    const { members: _m, ...shape } = first.spec;
    for (const h of heads) {
      const { members: _hm, ...other } = h.spec;
      if (h.members !== 1 || JSON.stringify(other) !== JSON.stringify(shape)) throw new Error('ensemble members must be single heads of one shape');
    }
    if (heads.length === 1) return first;
    const spec: HeadSpec = { ...shape, members: heads.length };
    const weights = new Float32Array(headParamCount(spec));
    let off = 0;
    for (const h of heads) {
      const w = h.toWeights();
      weights.set(w, off);
      off += w.length;
      h.dispose();
    }
    const out = Head.fromWeights(spec, weights);
    out.groups = first.groups;
    return out;
  }

  /** Number of reported labels: groups when set, else the softmax outputs. */
  get outputDim(): number {
    return this.groups ? Math.max(...this.groups) + 1 : this.spec.numClasses;
  }

  /** Glorot-uniform weights, zero biases (softmax: all zeros, as retrain.py starts near it). */
  static init(spec: HeadSpec, seed = 1): Head {
    if ((spec.members ?? 1) !== 1) throw new Error('train ensemble members one at a time, then combine them with Head.ensemble');
    return Head.fromWeights(spec, initialWeights(spec, seed), true);
  }

  /** Weights laid out as `toWeights()` returns them; `trainable` makes variables an optimizer may update. */
  static fromWeights(spec: HeadSpec, weights: Float32Array, trainable = false): Head {
    const shapes = headShapes(spec);
    const expected = headParamCount(spec);
    if (weights.length !== expected) throw new Error(`head weights: expected ${expected} floats, got ${weights.length}`);
    const vars: tf.Variable[] = [];
    let off = 0;
    for (let m = 0; m < (spec.members ?? 1); m++) {
      for (const s of shapes) {
        vars.push(tf.variable(tf.tensor2d(weights.subarray(off, off + s.inDim * s.outDim), [s.inDim, s.outDim]), trainable));
        off += s.inDim * s.outDim;
        vars.push(tf.variable(tf.tensor1d(weights.subarray(off, off + s.outDim)), trainable));
        off += s.outDim;
      }
    }
    return new Head(spec, vars);
  }
  /**
   * Logits of one member; with `dropout` > 0 applies dropout on the hidden layer
   * (training only; `dropoutSeed` makes the mask reproducible). `normalized`: the
   * features are already normalised (training normalises once up front).
   */
  logits(features: tf.Tensor2D, dropout = 0, normalized = false, member = 0, dropoutSeed?: number): tf.Tensor2D {
    return tf.tidy(() => {
      let h = normalized ? features : normalizeFeatures(features, this.spec.normalize);
      const n = this.vars.length / 2 / this.members;
      const first = member * n;
      for (let i = 0; i < n; i++) {
        const w = this.vars[2 * (first + i)] as tf.Variable;
        const b = this.vars[2 * (first + i) + 1] as tf.Variable;
        h = tf.add(tf.matMul(h, w), b) as tf.Tensor2D;
        if (i < n - 1) {
          h = tf.relu(h);
          if (dropout > 0) h = tf.dropout(h, dropout, undefined, dropoutSeed) as tf.Tensor2D;
        }
      }
      return h;
    });
  }

  /** Probabilities of the reported labels, [batch, outputDim] (sub-class probabilities summed per group, members averaged). */
  predict(features: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const x = normalizeFeatures(features, this.spec.normalize);
      let p = tf.softmax(this.logits(x, 0, true, 0));
      for (let m = 1; m < this.members; m++) p = tf.add(p, tf.softmax(this.logits(x, 0, true, m)));
      if (this.members > 1) p = tf.div(p, this.members);
      if (!this.groups) return p;
      const g = this.groups;
      const toGroup = new Float32Array(g.length * this.outputDim);
      g.forEach((to, i) => (toGroup[i * this.outputDim + to] = 1));
      return tf.matMul(p, tf.tensor2d(toGroup, [g.length, this.outputDim]));
    });
  }

  /** Weight matrices only (for weight decay). */
  kernels(): tf.Variable[] {
    return this.vars.filter((_, i) => i % 2 === 0);
  }

  toWeights(): Float32Array {
    const parts = this.vars.map((v) => v.dataSync() as Float32Array);
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** A frozen copy (used to keep the best weights during early stopping). */
  snapshot(): Float32Array {
    return this.toWeights();
  }

  dispose(): void {
    for (const v of this.vars) v.dispose();
  }
}
