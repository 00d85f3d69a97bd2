import type { QuantisedActivation } from '../cache/activation-cache';

/**
 * Quantised activations packed for training: one byte array (a SharedArrayBuffer, so
 * worker threads read it without a copy) with a per-row affine scale, labels and the
 * image each row belongs to (its views share the image).
 */
export interface ActivationSet {
  /** Floats per row (h·w·c). */
  size: number;
  codes: Uint8Array;
  min: Float32Array;
  scale: Float32Array;
  y: Int32Array;
  group: Int32Array;
}

export function rowCount(set: ActivationSet): number {
  return set.y.length;
}

export function packActivations(rows: Array<{ a: QuantisedActivation; y: number; g: number }>, size: number): ActivationSet {
  const codes = new Uint8Array(new SharedArrayBuffer(rows.length * size));
  const min = new Float32Array(rows.length);
  const scale = new Float32Array(rows.length);
  rows.forEach((r, i) => {
    if (r.a.codes.length !== size) throw new Error(`activation row ${i} has ${r.a.codes.length} values, expected ${size}`);
    codes.set(r.a.codes, i * size);
    min[i] = r.a.min;
    scale[i] = r.a.scale;
  });
  return { size, codes, min, scale, y: Int32Array.from(rows, (r) => r.y), group: Int32Array.from(rows, (r) => r.g) };
}

/** The subset of rows `idx` (a copy of their codes). */
export function subsetActivations(set: ActivationSet, idx: ArrayLike<number>): ActivationSet {
  const n = idx.length;
  const codes = new Uint8Array(new SharedArrayBuffer(n * set.size));
  const min = new Float32Array(n);
  const scale = new Float32Array(n);
  const y = new Int32Array(n);
  const group = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const r = idx[k] as number;
    codes.set(set.codes.subarray(r * set.size, (r + 1) * set.size), k * set.size);
    min[k] = set.min[r] as number;
    scale[k] = set.scale[r] as number;
    y[k] = set.y[r] as number;
    group[k] = set.group[r] as number;
  }
  return { size: set.size, codes, min, scale, y, group };
}

/** Rows `idx` decoded into floats, one after another. */
export function gatherRows(set: ActivationSet, idx: ArrayLike<number>, out = new Float32Array(idx.length * set.size)): Float32Array {
  const s = set.size;
  for (let k = 0; k < idx.length; k++) {
    const r = idx[k] as number;
    const m = set.min[r] as number;
    const sc = set.scale[r] as number;
    const base = r * s;
    const o = k * s;
    for (let i = 0; i < s; i++) out[o + i] = m + (set.codes[base + i] as number) * sc;
  }
  return out;
}
