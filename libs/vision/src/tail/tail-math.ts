import * as tf from '@tensorflow/tfjs';
import { headShapes, type HeadSpec } from '../head/head';

/**
 * The trainable tail of a backbone cut at a freeze point: layers of 3×3 depthwise
 * (stride 1, SAME) or 1×1 pointwise convolutions over an H×W×C activation, batch-norm
 * folded into each layer's kernel and bias, ReLU6 after each, then a global average pool
 * to a C-vector (the backbone's feature vector). Activations are NHWC rows of H·W·C floats.
 *
 * Parameter layout, layer after layer: depthwise — kernel [9·C] (tap (dy·3 + dx) major,
 * channel minor) then bias [C]; pointwise — kernel [C·C] (input channel major) then bias [C].
 *
 * Forward and backward passes are written by hand: the WASM backend has no convolution
 * backprop kernels. A pointwise conv over positions is a matmul [B·H·W, C]·[C, C], run
 * through tf.matMul's untransposed 2-D path (XNNPACK); transposes are built in JS. The
 * depthwise conv is small (9 multiply-adds per output) and runs in typed arrays.
 */
export type TailLayerKind = 'depthwise' | 'pointwise';

export interface TailSpec {
  /** [height, width] of the activation at the freeze point. */
  hw: [number, number];
  channels: number;
  layers: TailLayerKind[];
}

export function layerParamCount(kind: TailLayerKind, c: number): number {
  return kind === 'depthwise' ? 9 * c + c : c * c + c;
}

export function tailParamCount(spec: TailSpec): number {
  return spec.layers.reduce((n, k) => n + layerParamCount(k, spec.channels), 0);
}

/** Per-layer views into a flat parameter (or gradient) array. */
export function tailLayerViews(spec: TailSpec, params: Float32Array): Array<{ kind: TailLayerKind; kernel: Float32Array; bias: Float32Array }> {
  const c = spec.channels;
  let off = 0;
  return spec.layers.map((kind) => {
    const kn = kind === 'depthwise' ? 9 * c : c * c;
    const v = { kind, kernel: params.subarray(off, off + kn), bias: params.subarray(off + kn, off + kn + c) };
    off += kn + c;
    return v;
  });
}

/**
 * a [m × k] · b [k × n] through tf.matMul (the fast untransposed path). Not in a tf.tidy:
 * on the WASM backend a 3136×512 · 512×512 product read back inside a tidy scope took
 * 2 s of CPU instead of 60 ms (measured; cause not investigated), so tensors are disposed by hand.
 */
export function matmul(a: Float32Array, m: number, k: number, b: Float32Array, n: number): Float32Array {
  const ta = tf.tensor2d(a, [m, k]);
  const tb = tf.tensor2d(b, [k, n]);
  const tc = tf.matMul(ta, tb);
  try {
    return tc.dataSync() as Float32Array;
  } finally {
    tf.dispose([ta, tb, tc]);
  }
}

/** rows × cols matrix transposed (cols × rows). */
export function transpose(src: Float32Array, rows: number, cols: number, out = new Float32Array(rows * cols)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let k = 0; k < cols; k++) out[k * rows + r] = src[base + k] as number;
  }
  return out;
}

function relu6(pre: Float32Array): Float32Array {
  const out = new Float32Array(pre.length);
  for (let i = 0; i < pre.length; i++) {
    const v = pre[i] as number;
    out[i] = v < 0 ? 0 : v > 6 ? 6 : v;
  }
  return out;
}

function depthwiseForward(x: Float32Array, batch: number, h: number, w: number, c: number, kernel: Float32Array, bias: Float32Array): Float32Array {
  const out = new Float32Array(batch * h * w * c);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const o = ((b * h + i) * w + j) * c;
        out.set(bias, o);
        for (let dy = 0; dy < 3; dy++) {
          const ii = i + dy - 1;
          if (ii < 0 || ii >= h) continue;
          for (let dx = 0; dx < 3; dx++) {
            const jj = j + dx - 1;
            if (jj < 0 || jj >= w) continue;
            const s = ((b * h + ii) * w + jj) * c;
            const ko = (dy * 3 + dx) * c;
            for (let ch = 0; ch < c; ch++) out[o + ch] += (x[s + ch] as number) * (kernel[ko + ch] as number);
          }
        }
      }
    }
  }
  return out;
}

/** Kernel and bias gradients of a depthwise layer from the gradient at its pre-activation (the input needs none: it is frozen). */
function depthwiseBackward(x: Float32Array, g: Float32Array, batch: number, h: number, w: number, c: number, dKernel: Float32Array, dBias: Float32Array, dx?: Float32Array, kernel?: Float32Array): void {
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const o = ((b * h + i) * w + j) * c;
        for (let ch = 0; ch < c; ch++) dBias[ch] += g[o + ch] as number;
        for (let dy = 0; dy < 3; dy++) {
          const ii = i + dy - 1;
          if (ii < 0 || ii >= h) continue;
          for (let dxx = 0; dxx < 3; dxx++) {
            const jj = j + dxx - 1;
            if (jj < 0 || jj >= w) continue;
            const s = ((b * h + ii) * w + jj) * c;
            const ko = (dy * 3 + dxx) * c;
            for (let ch = 0; ch < c; ch++) dKernel[ko + ch] += (x[s + ch] as number) * (g[o + ch] as number);
            if (dx && kernel) for (let ch = 0; ch < c; ch++) dx[s + ch] += (kernel[ko + ch] as number) * (g[o + ch] as number);
          }
        }
      }
    }
  }
}

export interface TailTrace {
  batch: number;
  /** Input of each layer (the first is the frozen activation). */
  inputs: Float32Array[];
  /** Pre-activation of each layer. */
  pre: Float32Array[];
  /** Pooled features [batch × C]. */
  pooled: Float32Array;
}

/** Tail forward pass over `batch` activations (NHWC rows); keeps what the backward pass needs. */
export function tailForward(spec: TailSpec, params: Float32Array, x: Float32Array, batch: number): TailTrace {
  const [h, w] = spec.hw;
  const c = spec.channels;
  const p = h * w;
  if (x.length !== batch * p * c) throw new Error(`tail input: expected ${batch}×${h}×${w}×${c} floats, got ${x.length}`);
  const inputs: Float32Array[] = [];
  const pre: Float32Array[] = [];
  let a = x;
  for (const layer of tailLayerViews(spec, params)) {
    inputs.push(a);
    let z: Float32Array;
    if (layer.kind === 'depthwise') {
      z = depthwiseForward(a, batch, h, w, c, layer.kernel, layer.bias);
    } else {
      z = matmul(a, batch * p, c, layer.kernel, c);
      for (let r = 0; r < batch * p; r++) for (let ch = 0; ch < c; ch++) z[r * c + ch] += layer.bias[ch] as number;
    }
    pre.push(z);
    a = relu6(z);
  }
  const pooled = new Float32Array(batch * c);
  for (let b = 0; b < batch; b++) {
    for (let q = 0; q < p; q++) {
      const o = (b * p + q) * c;
      for (let ch = 0; ch < c; ch++) pooled[b * c + ch] += a[o + ch] as number;
    }
  }
  for (let i = 0; i < pooled.length; i++) pooled[i] = (pooled[i] as number) / p;
  return { batch, inputs, pre, pooled };
}

/**
 * Gradient of the tail's parameters from the gradient of the loss at the pooled features
 * ([batch × C]). Layers before `firstTrainable` are frozen: their gradients stay zero and
 * the backward pass stops there.
 */
export function tailBackward(spec: TailSpec, params: Float32Array, trace: TailTrace, gPooled: Float32Array, firstTrainable = 0): Float32Array {
  const [h, w] = spec.hw;
  const c = spec.channels;
  const p = h * w;
  const batch = trace.batch;
  const grads = new Float32Array(params.length);
  const layers = tailLayerViews(spec, params);
  const gLayers = tailLayerViews(spec, grads);
  // Gradient at the last layer's output: the pool spreads it evenly over the positions.
  let g: Float32Array = new Float32Array(batch * p * c);
  for (let b = 0; b < batch; b++) {
    for (let q = 0; q < p; q++) {
      const o = (b * p + q) * c;
      for (let ch = 0; ch < c; ch++) g[o + ch] = (gPooled[b * c + ch] as number) / p;
    }
  }
  for (let l = layers.length - 1; l >= firstTrainable; l--) {
    const layer = layers[l] as (typeof layers)[number];
    const gl = gLayers[l] as (typeof gLayers)[number];
    const z = trace.pre[l] as Float32Array;
    // ReLU6: gradient passes where 0 < z < 6.
    for (let i = 0; i < g.length; i++) {
      const v = z[i] as number;
      if (v <= 0 || v >= 6) g[i] = 0;
    }
    const input = trace.inputs[l] as Float32Array;
    const needInput = l > firstTrainable;
    if (layer.kind === 'depthwise') {
      const dx = needInput ? new Float32Array(input.length) : undefined;
      depthwiseBackward(input, g, batch, h, w, c, gl.kernel, gl.bias, dx, layer.kernel);
      if (dx) g = dx;
    } else {
      const rows = batch * p;
      gl.kernel.set(matmul(transpose(input, rows, c), c, rows, g, c));
      for (let r = 0; r < rows; r++) for (let ch = 0; ch < c; ch++) gl.bias[ch] += g[r * c + ch] as number;
      if (needInput) g = matmul(g, rows, c, transpose(layer.kernel, c, c), c);
    }
  }
  return grads;
}

/**
 * One head (a single member, `Head.toWeights()` layout) on the pooled features: forward,
 * softmax cross-entropy (label smoothing) and backward, in the same hand-written style.
 * `mask`: the dropout multiplier of the hidden layer (MLP heads; training only).
 */
export function headLossAndGrads(
  spec: HeadSpec,
  weights: Float32Array,
  pooled: Float32Array,
  labels: ArrayLike<number>,
  opts: { labelSmoothing?: number; mask?: Float32Array } = {},
): { loss: number; gHead: Float32Array; gPooled: Float32Array; probs: Float32Array } {
  const batch = labels.length;
  const d = spec.inputDim;
  const nc = spec.numClasses;
  const shapes = headShapes({ ...spec, members: 1 });
  // Feature normalisation (l2: x · √d / (|x| + 1e-8)).
  const norms = new Float32Array(batch);
  let x = pooled;
  if (spec.normalize === 'l2') {
    x = new Float32Array(pooled.length);
    const s = Math.sqrt(d);
    for (let b = 0; b < batch; b++) {
      let ss = 0;
      for (let k = 0; k < d; k++) ss += (pooled[b * d + k] as number) ** 2;
      const n = Math.sqrt(ss);
      norms[b] = n;
      for (let k = 0; k < d; k++) x[b * d + k] = ((pooled[b * d + k] as number) * s) / (n + 1e-8);
    }
  }
  const views: Array<{ w: Float32Array; b: Float32Array; inDim: number; outDim: number; wOff: number }> = [];
  let off = 0;
  for (const sh of shapes) {
    views.push({ w: weights.subarray(off, off + sh.inDim * sh.outDim), b: weights.subarray(off + sh.inDim * sh.outDim, off + sh.inDim * sh.outDim + sh.outDim), inDim: sh.inDim, outDim: sh.outDim, wOff: off });
    off += sh.inDim * sh.outDim + sh.outDim;
  }
  const acts: Float32Array[] = [x];
  const pres: Float32Array[] = [];
  views.forEach((v, k) => {
    const z = matmul(acts[k] as Float32Array, batch, v.inDim, v.w, v.outDim);
    for (let r = 0; r < batch; r++) for (let o = 0; o < v.outDim; o++) z[r * v.outDim + o] += v.b[o] as number;
    pres.push(z);
    if (k < views.length - 1) {
      const a = new Float32Array(z.length);
      for (let i = 0; i < z.length; i++) a[i] = Math.max(0, z[i] as number) * (opts.mask ? (opts.mask[i] as number) : 1);
      acts.push(a);
    }
  });
  const logits = pres[pres.length - 1] as Float32Array;
  const probs = new Float32Array(batch * nc);
  const smooth = opts.labelSmoothing ?? 0;
  let loss = 0;
  let g: Float32Array = new Float32Array(batch * nc);
  for (let r = 0; r < batch; r++) {
    let max = -Infinity;
    for (let o = 0; o < nc; o++) max = Math.max(max, logits[r * nc + o] as number);
    let sum = 0;
    for (let o = 0; o < nc; o++) sum += Math.exp((logits[r * nc + o] as number) - max);
    const lse = max + Math.log(sum);
    const y = labels[r] as number;
    for (let o = 0; o < nc; o++) {
      const logp = (logits[r * nc + o] as number) - lse;
      const p = Math.exp(logp);
      probs[r * nc + o] = p;
      const t = smooth / nc + (o === y ? 1 - smooth : 0);
      loss -= t * logp;
      g[r * nc + o] = (p - t) / batch;
    }
  }
  loss /= batch;
  const gHead = new Float32Array(weights.length);
  for (let k = views.length - 1; k >= 0; k--) {
    const v = views[k] as (typeof views)[number];
    const a = acts[k] as Float32Array;
    gHead.set(matmul(transpose(a, batch, v.inDim), v.inDim, batch, g, v.outDim), v.wOff);
    const gb = gHead.subarray(v.wOff + v.inDim * v.outDim, v.wOff + v.inDim * v.outDim + v.outDim);
    for (let r = 0; r < batch; r++) for (let o = 0; o < v.outDim; o++) gb[o] += g[r * v.outDim + o] as number;
    const gIn = matmul(g, batch, v.outDim, transpose(v.w, v.inDim, v.outDim), v.inDim);
    if (k > 0) {
      const z = pres[k - 1] as Float32Array;
      for (let i = 0; i < gIn.length; i++) gIn[i] = (z[i] as number) > 0 ? (gIn[i] as number) * (opts.mask ? (opts.mask[i] as number) : 1) : 0;
    }
    g = gIn;
  }
  // Back through the normalisation.
  let gPooled = g;
  if (spec.normalize === 'l2') {
    gPooled = new Float32Array(pooled.length);
    const s = Math.sqrt(d);
    for (let b = 0; b < batch; b++) {
      const n = norms[b] as number;
      const N = n + 1e-8;
      let dot = 0;
      for (let k = 0; k < d; k++) dot += (pooled[b * d + k] as number) * (g[b * d + k] as number);
      const coef = n > 0 ? (s * dot) / (n * N * N) : 0;
      for (let k = 0; k < d; k++) gPooled[b * d + k] = (s / N) * (g[b * d + k] as number) - coef * (pooled[b * d + k] as number);
    }
  }
  return { loss, gHead, gPooled, probs };
}
