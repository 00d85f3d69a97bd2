import type * as tf from '@tensorflow/tfjs';
import { BackboneError } from '../errors';
import { readWeight, type FreezePoint } from '../backbones/freeze';
import { tailLayerViews, tailParamCount, type TailSpec } from './tail-math';

/**
 * The pretrained tail after a freeze point, read from the backbone's weights with each
 * batch-norm folded into its conv: scale = γ / √(σ² + ε), kernel × scale per output
 * channel, bias = β − μ · scale. The result computes what the backbone computes.
 */
export function pretrainedTail(fp: FreezePoint, weightSpecs: tf.io.WeightsManifestEntry[], weightData: ArrayBuffer): { spec: TailSpec; params: Float32Array } {
  const [h, w, c] = fp.shape;
  const spec: TailSpec = { hw: [h, w], channels: c, layers: fp.tail.map((l) => l.kind) };
  const params = new Float32Array(tailParamCount(spec));
  const views = tailLayerViews(spec, params);
  fp.tail.forEach((layer, i) => {
    const v = views[i] as (typeof views)[number];
    const kernel = readWeight(weightSpecs, weightData, layer.weights);
    const bn = (s: string) => readWeight(weightSpecs, weightData, `${layer.batchNorm}/${s}`);
    const [gamma, beta, mean, variance] = [bn('gamma'), bn('beta'), bn('moving_mean'), bn('moving_variance')];
    const expected = layer.kind === 'depthwise' ? 9 * c : c * c;
    if (kernel.length !== expected || gamma.length !== c) {
      throw new BackboneError(`freeze point ${fp.name}: ${layer.weights} has ${kernel.length} weights, a ${layer.kind} conv over ${c} channels needs ${expected}`);
    }
    for (let ch = 0; ch < c; ch++) {
      const scale = (gamma[ch] as number) / Math.sqrt((variance[ch] as number) + layer.epsilon);
      v.bias[ch] = (beta[ch] as number) - (mean[ch] as number) * scale;
      // Both layouts put the output channel last: [3, 3, C, 1] and [1, 1, Cin, Cout].
      for (let r = 0; r < expected / c; r++) v.kernel[r * c + ch] = (kernel[r * c + ch] as number) * scale;
    }
  });
  return { spec, params };
}
