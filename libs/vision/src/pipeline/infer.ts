import * as tf from '@tensorflow/tfjs';
import type { Head } from '../head/head';

/** Class probabilities per image, averaging the head's output over the image's views. */
export function predictImages(head: Head, views: Float32Array[][]): Float32Array[] {
  const dim = head.spec.inputDim;
  const c = head.outputDim;
  const rows = views.reduce((n, v) => n + v.length, 0);
  if (rows === 0) return [];
  const x = new Float32Array(rows * dim);
  let r = 0;
  for (const v of views) for (const f of v) x.set(f, r++ * dim);
  const probs = tf.tidy(() => head.predict(tf.tensor2d(x, [rows, dim])).dataSync() as Float32Array);
  const out: Float32Array[] = [];
  r = 0;
  for (const v of views) {
    const p = new Float32Array(c);
    for (let k = 0; k < v.length; k++, r++) for (let j = 0; j < c; j++) p[j] += probs[r * c + j] / v.length;
    out.push(p);
  }
  return out;
}
