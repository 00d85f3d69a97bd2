import * as tf from '@tensorflow/tfjs';
import type { InputSpec } from './preprocess';

/** Stack preprocessed images (each h × w × 3 floats) into one NHWC tensor. */
export function toBatch(images: Float32Array[], spec: InputSpec): tf.Tensor4D {
  const [h, w] = spec.size;
  const per = h * w * 3;
  const buf = new Float32Array(images.length * per);
  images.forEach((img, i) => buf.set(img, i * per));
  return tf.tensor4d(buf, [images.length, h, w, 3]);
}
