import * as tf from '@tensorflow/tfjs';
import { describeBackbone, type Backbone } from '../backbones/backbone';
import { findFreezePoint, type FreezePoint } from '../backbones/freeze';
import { BackboneError } from '../errors';

/**
 * The frozen part of a backbone as a backbone of its own: its "features" are the
 * activation at the freeze point, flattened (h·w·c floats, NHWC). Same id and checksum:
 * it is the same model, run only up to the node.
 */
export function frozenPart(backbone: Backbone, freezePoint: string | FreezePoint): Backbone {
  const fp = typeof freezePoint === 'string' ? findFreezePoint(backbone.freezePoints, freezePoint, backbone.id) : freezePoint;
  const activationAt = backbone.activationAt;
  if (!activationAt) throw new BackboneError(`backbone ${backbone.id} (${backbone.format}) cannot be cut at a freeze point`);
  const [h, w, c] = fp.shape;
  return {
    ...describeBackbone(backbone),
    featureDim: h * w * c,
    extract: (batch) =>
      tf.tidy(() => {
        const a = activationAt(batch, fp.node);
        if (a.shape[1] !== h || a.shape[2] !== w || a.shape[3] !== c) {
          throw new BackboneError(`freeze point ${fp.name}: node gives ${a.shape.slice(1).join('×')}, declared ${h}×${w}×${c}`);
        }
        return a.reshape([batch.shape[0], h * w * c]) as tf.Tensor2D;
      }),
    activationAt,
    pretrainedTail: backbone.pretrainedTail,
    dispose: () => backbone.dispose(),
  };
}
