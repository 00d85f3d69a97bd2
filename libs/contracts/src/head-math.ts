/**
 * The head of a model artifact in plain TypeScript: its shape, its parameter layout in
 * `head.bin`, and its forward pass (softmax, mlp, ensembles, grouped outputs). The hub
 * evaluates and re-scores with it from stored embeddings without TensorFlow; the vision
 * core's `Head` computes the same numbers with tf.js (a test pins that they agree).
 */
export type HeadType = 'softmax' | 'mlp';
/** `l2`: features are scaled to unit length × √D before the head (robust to brightness/contrast). */
export type FeatureNorm = 'none' | 'l2';

export interface HeadSpec {
  type: HeadType;
  inputDim: number;
  numClasses: number;
  /** Hidden units of the `mlp` head. */
  hidden?: number;
  normalize: FeatureNorm;
  /** Ensemble size (default 1): the weights hold this many heads of the shape above, one after another. */
  members?: number;
}

export interface DenseShape {
  inDim: number;
  outDim: number;
}

export function headShapes(spec: HeadSpec): DenseShape[] {
  if (spec.type === 'mlp') {
    const hidden = spec.hidden ?? 512;
    return [
      { inDim: spec.inputDim, outDim: hidden },
      { inDim: hidden, outDim: spec.numClasses },
    ];
  }
  return [{ inDim: spec.inputDim, outDim: spec.numClasses }];
}

export function headParamCount(spec: HeadSpec): number {
  return (spec.members ?? 1) * headShapes(spec).reduce((n, s) => n + s.inDim * s.outDim + s.outDim, 0);
}

/** A head's weights as stored in `head.bin`: [W0 (in×out, row-major), b0, W1, b1, …], member after member. */
export interface PlainHead {
  spec: HeadSpec;
  weights: Float32Array;
  /** Output i counts towards reported label `groups[i]`; absent: one label per output. */
  groups?: number[];
}

/** Number of reported labels of a head. */
export function headOutputDim(head: Pick<PlainHead, 'spec' | 'groups'>): number {
  return head.groups ? Math.max(...head.groups) + 1 : head.spec.numClasses;
}

/**
 * Probabilities of the reported labels for `rows` feature vectors (`x`: rows × inputDim,
 * row-major) → rows × outputDim. Members' softmax outputs are averaged; grouped outputs
 * are summed into their label. Computed in float64, one row at a time (bounded memory).
 */
export function predictPlain(head: PlainHead, x: Float32Array, rows: number): Float32Array {
  const { spec } = head;
  const d = spec.inputDim;
  if (x.length !== rows * d) throw new Error(`features: expected ${rows}×${d} values, got ${x.length}`);
  if (head.weights.length !== headParamCount(spec)) throw new Error(`head weights: expected ${headParamCount(spec)} floats, got ${head.weights.length}`);
  const shapes = headShapes(spec);
  const members = spec.members ?? 1;
  const memberSize = headParamCount({ ...spec, members: 1 });
  const outDim = headOutputDim(head);
  const out = new Float32Array(rows * outDim);
  const feat = new Float64Array(d);
  const probs = new Float64Array(spec.numClasses);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) feat[i] = x[r * d + i] as number;
    if (spec.normalize === 'l2') {
      let sq = 0;
      for (let i = 0; i < d; i++) sq += (feat[i] as number) ** 2;
      const scale = Math.sqrt(d) / (Math.sqrt(sq) + 1e-8);
      for (let i = 0; i < d; i++) feat[i] = (feat[i] as number) * scale;
    }
    probs.fill(0);
    for (let m = 0; m < members; m++) {
      let h: Float64Array = feat;
      let off = m * memberSize;
      shapes.forEach((s, layer) => {
        const next = new Float64Array(s.outDim);
        const b = off + s.inDim * s.outDim;
        for (let o = 0; o < s.outDim; o++) next[o] = head.weights[b + o] as number;
        for (let i = 0; i < s.inDim; i++) {
          const v = h[i] as number;
          if (v === 0) continue;
          const row = off + i * s.outDim;
          for (let o = 0; o < s.outDim; o++) next[o] = (next[o] as number) + v * (head.weights[row + o] as number);
        }
        off = b + s.outDim;
        if (layer < shapes.length - 1) for (let o = 0; o < s.outDim; o++) next[o] = Math.max(0, next[o] as number);
        h = next;
      });
      let max = -Infinity;
      for (let o = 0; o < spec.numClasses; o++) max = Math.max(max, h[o] as number);
      let sum = 0;
      const e = new Float64Array(spec.numClasses);
      for (let o = 0; o < spec.numClasses; o++) sum += e[o] = Math.exp((h[o] as number) - max);
      for (let o = 0; o < spec.numClasses; o++) probs[o] = (probs[o] as number) + (e[o] as number) / sum / members;
    }
    for (let o = 0; o < spec.numClasses; o++) {
      const to = head.groups ? (head.groups[o] as number) : o;
      out[r * outDim + to] = (out[r * outDim + to] as number) + (probs[o] as number);
    }
  }
  return out;
}
