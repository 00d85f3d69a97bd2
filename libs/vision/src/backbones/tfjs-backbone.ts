import * as tf from '@tensorflow/tfjs';
import { BackboneError } from '../errors';
import { sha256Hex } from '../hash';
import type { Backbone, BackboneManifest } from './backbone';
import { knownFreezePoints } from './freeze';
import { pretrainedTail } from '../tail/pretrained';

/** A TensorFlow.js model in memory: topology, flat weight specs and the concatenated weight bytes. */
export interface ModelBundle {
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
  /** Graph models exported by the converter carry signature / format hints. */
  format?: string;
}

export function bundleChecksum(bundle: ModelBundle): string {
  return sha256Hex(JSON.stringify(bundle.modelTopology), new Uint8Array(bundle.weightData));
}

function ioHandler(bundle: ModelBundle): tf.io.IOHandler {
  return {
    load: async () => ({
      modelTopology: bundle.modelTopology,
      format: bundle.format,
      weightSpecs: bundle.weightSpecs,
      weightData: bundle.weightData,
    }),
  };
}

/** Build a backbone from a model bundle and its manifest. Call after initRuntime(). */
export async function createTfjsBackbone(
  manifest: BackboneManifest,
  bundle: ModelBundle,
  source: string,
  checksum = bundleChecksum(bundle),
): Promise<Backbone> {
  const base = {
    id: manifest.name,
    checksum,
    format: manifest.format,
    inputSize: manifest.inputSize,
    inputRange: manifest.inputRange,
    featureDim: manifest.featureDim,
    source,
  };
  if (manifest.format === 'tfjs-graph') {
    const model = await tf.loadGraphModel(ioHandler(bundle));
    const inputNode = manifest.inputNode ?? model.inputs[0]?.name;
    if (!inputNode) throw new BackboneError(`backbone ${manifest.name}: graph model has no input`);
    const featureNode = manifest.featureNode;
    const freezePoints = manifest.freezePoints ?? knownFreezePoints(bundle.modelTopology, bundle.weightSpecs, manifest.inputSize);
    return {
      ...base,
      ...(freezePoints.length ? { freezePoints } : {}),
      activationAt: (batch, node) =>
        tf.tidy(() => {
          const out = model.execute({ [inputNode]: batch }, node) as tf.Tensor | tf.Tensor[];
          const t = Array.isArray(out) ? out[0] : out;
          if (!t || t.rank !== 4) throw new BackboneError(`backbone ${manifest.name}: node ${node} gives no [batch, h, w, c] activation`);
          return t as tf.Tensor4D;
        }),
      pretrainedTail: (fp) => pretrainedTail(fp, bundle.weightSpecs, bundle.weightData),
      extract: (batch) =>
        tf.tidy(() => {
          const out = (featureNode ? model.execute({ [inputNode]: batch }, featureNode) : model.execute({ [inputNode]: batch })) as
            | tf.Tensor
            | tf.Tensor[];
          const t = Array.isArray(out) ? out[0] : out;
          if (!t) throw new BackboneError(`backbone ${manifest.name}: no output`);
          return t.reshape([batch.shape[0], -1]) as tf.Tensor2D;
        }),
      dispose: () => model.dispose(),
    };
  }
  if (manifest.format === 'tfjs-layers') {
    const full = await tf.loadLayersModel(ioHandler(bundle));
    let extractor: tf.LayersModel = full;
    if (manifest.featureNode) {
      let layer: tf.layers.Layer;
      try {
        layer = full.getLayer(manifest.featureNode);
      } catch {
        throw new BackboneError(`backbone ${manifest.name}: layer ${manifest.featureNode} not found`);
      }
      extractor = tf.model({ inputs: full.inputs, outputs: layer.output as tf.SymbolicTensor });
    }
    return {
      ...base,
      extract: (batch) =>
        tf.tidy(() => {
          const t = extractor.predict(batch) as tf.Tensor;
          return t.reshape([batch.shape[0], -1]) as tf.Tensor2D;
        }),
      dispose: () => full.dispose(),
    };
  }
  throw new BackboneError(`backbone ${manifest.name}: unknown format ${String(manifest.format)}`);
}
