import type * as tf from '@tensorflow/tfjs';
import type { Logger } from '@shelfsight/common';
import type { FreezePoint } from './freeze';
import type { TailSpec } from '../tail/tail-math';

export type BackboneFormat = 'tfjs-graph' | 'tfjs-layers';

/** The `backbone.json` manifest that sits beside a TensorFlow.js model. */
export interface BackboneManifest {
  name: string;
  description?: string;
  format: BackboneFormat;
  /** Model file relative to the manifest (default `model.json`). */
  modelFile?: string;
  /** Graph models: the input placeholder. */
  inputNode?: string;
  /** Graph models: the node whose output is the bottleneck; layers models: the layer name. Omitted: the model's own output. */
  featureNode?: string;
  inputSize: [number, number];
  inputRange: [number, number];
  featureDim: number;
  license?: string;
  /** Graph models: where the backbone may be cut for fine-tuning its tail. */
  freezePoints?: FreezePoint[];
}

/** What a head must remember about the backbone it was trained on. */
export interface BackboneIdentity {
  id: string;
  /** SHA-256 of the model topology (canonical JSON) followed by its weight bytes. */
  checksum: string;
}

export interface BackboneInfo extends BackboneIdentity {
  format: BackboneFormat;
  /** [height, width] of the image the backbone expects. */
  inputSize: [number, number];
  /** Pixel values are scaled linearly from [0, 255] into this range. */
  inputRange: [number, number];
  featureDim: number;
  /** How it was resolved (built-in name, folder, URL): enough to resolve it again. */
  source: string;
  /** Nodes where the backbone may be cut to fine-tune the layers after it (graph models). */
  freezePoints?: FreezePoint[];
}

/** A frozen feature extractor: a batch of preprocessed images in, bottleneck vectors out. */
export interface Backbone extends BackboneInfo {
  extract(batch: tf.Tensor4D): tf.Tensor2D;
  /** The frozen part only: the activation at a freeze point's node, [batch, h, w, c]. */
  activationAt?(batch: tf.Tensor4D, node: string): tf.Tensor4D;
  /** The pretrained tail after a freeze point (batch-norm folded), to fine-tune or to compare with. */
  pretrainedTail?(fp: FreezePoint): { spec: TailSpec; params: Float32Array };
  dispose(): void;
}

export function describeBackbone(b: BackboneInfo): BackboneInfo {
  return {
    id: b.id,
    checksum: b.checksum,
    format: b.format,
    inputSize: b.inputSize,
    inputRange: b.inputRange,
    featureDim: b.featureDim,
    source: b.source,
    ...(b.freezePoints ? { freezePoints: b.freezePoints } : {}),
  };
}

/** How `loadBackbone` (and the remote loader under it) may fetch and where it keeps downloads. */
export interface LoadBackboneOptions {
  /** Never touch the network; a URL or catalogue backbone must already be cached. */
  offline?: boolean;
  /** Where downloaded backbones are kept (default `$SHELF_CACHE_DIR/backbones` or `~/.cache/shelfsight/backbones`). */
  cacheDir?: string;
  logger?: Logger;
}
