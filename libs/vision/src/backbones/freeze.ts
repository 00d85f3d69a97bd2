import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { BackboneError } from '../errors';

/**
 * A freeze point: a node of a graph backbone where the frozen part stops. The layers
 * after it up to the pooled feature vector (the "tail") can be fine-tuned: each is a
 * 3×3 depthwise or 1×1 pointwise convolution (stride 1, SAME padding) followed by
 * batch-norm and ReLU6; the last one is followed by a global average pool.
 */
export const TailLayerSchema = z.object({
  kind: z.enum(['depthwise', 'pointwise']),
  /** Weight tensor: depthwise [3, 3, C, 1], pointwise [1, 1, Cin, Cout]. */
  weights: z.string().min(1),
  /** Prefix of the batch-norm tensors `<bn>/gamma`, `/beta`, `/moving_mean`, `/moving_variance`. */
  batchNorm: z.string().min(1),
  epsilon: z.number().positive(),
});
export type TailLayer = z.infer<typeof TailLayerSchema>;

export const FreezePointSchema = z.object({
  /** Short name for `--tune-from` (the node name is accepted too). */
  name: z.string().min(1),
  /** Graph node whose output is the frozen activation. */
  node: z.string().min(1),
  /** [height, width, channels] of the activation for one image. */
  shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  description: z.string().optional(),
  tail: z.array(TailLayerSchema).min(1),
});
export type FreezePoint = z.infer<typeof FreezePointSchema>;

const MOBILENET_V1 = 'module_apply_default/MobilenetV1/MobilenetV1';

/**
 * Freeze points of a TF-Hub MobileNet V1 feature-vector export (any width), found by its
 * node names: the reference backbone's `backbone.json` predates freeze points, so they are
 * recognised here when the manifest does not list any. `last-block`: the 7×7 activation
 * before the last depthwise-separable block (tail: depthwise 13 + pointwise 13);
 * `last-pointwise`: before the last pointwise conv (tail: pointwise 13).
 */
export function knownFreezePoints(topology: object, weightSpecs: tf.io.WeightsManifestEntry[], inputSize: [number, number]): FreezePoint[] {
  const nodes = (topology as { node?: Array<{ name: string; attr?: { epsilon?: { f?: number } } }> }).node ?? [];
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const pw = weightSpecs.find((w) => w.name === 'module/MobilenetV1/Conv2d_13_pointwise/weights');
  if (!byName.has(`${MOBILENET_V1}/Conv2d_12_pointwise/Relu6`) || !byName.has(`${MOBILENET_V1}/Conv2d_13_depthwise/Relu6`) || !pw) return [];
  const channels = pw.shape[2] as number;
  const hw: [number, number] = [Math.ceil(inputSize[0] / 32), Math.ceil(inputSize[1] / 32)];
  const eps = (block: string) => byName.get(`${MOBILENET_V1}/${block}/BatchNorm/FusedBatchNorm`)?.attr?.epsilon?.f ?? 0.001;
  const layer = (block: string, kind: TailLayer['kind']): TailLayer => ({
    kind,
    weights: `module/MobilenetV1/${block}/${kind === 'depthwise' ? 'depthwise_weights' : 'weights'}`,
    batchNorm: `module/MobilenetV1/${block}/BatchNorm`,
    epsilon: eps(block),
  });
  return [
    {
      name: 'last-block',
      node: `${MOBILENET_V1}/Conv2d_12_pointwise/Relu6`,
      shape: [hw[0], hw[1], channels],
      description: 'before the last depthwise-separable block (tail: 3×3 depthwise + pointwise conv)',
      tail: [layer('Conv2d_13_depthwise', 'depthwise'), layer('Conv2d_13_pointwise', 'pointwise')],
    },
    {
      name: 'last-pointwise',
      node: `${MOBILENET_V1}/Conv2d_13_depthwise/Relu6`,
      shape: [hw[0], hw[1], channels],
      description: 'before the last pointwise conv (tail: pointwise conv)',
      tail: [layer('Conv2d_13_pointwise', 'pointwise')],
    },
  ];
}

/** The freeze point `--tune-from` names (its short name or its node), or a clear error listing the choices. */
export function findFreezePoint(points: readonly FreezePoint[] | undefined, nameOrNode: string, backboneId: string): FreezePoint {
  const list = points ?? [];
  const fp = list.find((p) => p.name === nameOrNode || p.node === nameOrNode);
  if (!fp) {
    const known = list.length ? list.map((p) => `${p.name} (${p.node})`).join(', ') : 'none: its backbone.json lists no freezePoints';
    throw new BackboneError(`backbone ${backboneId} has no freeze point "${nameOrNode}"; known: ${known}`);
  }
  return fp;
}

/** Bytes per element of a weight entry as stored. */
function storedBytes(w: tf.io.WeightsManifestEntry): number {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const q = w.quantization?.dtype;
  if (q) return n * (q === 'uint8' ? 1 : 2);
  if (w.dtype === 'string') throw new BackboneError(`weight ${w.name}: string weights are not supported here`);
  return n * 4;
}

/** One float32 weight tensor of a model bundle, by name. */
export function readWeight(weightSpecs: tf.io.WeightsManifestEntry[], weightData: ArrayBuffer, name: string): Float32Array {
  let off = 0;
  for (const w of weightSpecs) {
    const bytes = storedBytes(w);
    if (w.name === name) {
      if (w.dtype !== 'float32' || w.quantization) throw new BackboneError(`weight ${name}: only unquantised float32 tail weights are supported`);
      return new Float32Array(weightData.slice(off, off + bytes));
    }
    off += bytes;
  }
  throw new BackboneError(`weight ${name} not found in the backbone`);
}
