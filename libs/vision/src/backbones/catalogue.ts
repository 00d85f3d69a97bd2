import type { BackboneManifest } from './backbone';

/**
 * Standard ImageNet feature-vector models, downloaded on first use (as retrain.py does)
 * into the backbone cache. `modelUrl` points at a TensorFlow.js graph model.json; the
 * shards are fetched relative to it. `sha256`, when set, pins the backbone checksum;
 * otherwise the first download is pinned (trust on first use) and later loads verify.
 */
export interface CatalogueEntry extends BackboneManifest {
  modelUrl: string;
  /** Query string appended to every file URL (TF Hub serves files with `?tfjs-format=file`). */
  query?: string;
  sha256?: string;
}

export const BACKBONE_CATALOGUE: Record<string, CatalogueEntry> = {
  'imagenet-inception-v3': {
    name: 'imagenet-inception-v3',
    description: 'ImageNet Inception V3 feature vector (TF Hub, TensorFlow.js graph model), 2048-d',
    format: 'tfjs-graph',
    modelUrl: 'https://tfhub.dev/google/tfjs-model/imagenet/inception_v3/feature_vector/3/default/1/model.json',
    query: 'tfjs-format=file',
    inputSize: [299, 299],
    inputRange: [0, 1],
    featureDim: 2048,
    license: 'Apache-2.0',
  },
  'imagenet-mobilenet-v2-100-224': {
    name: 'imagenet-mobilenet-v2-100-224',
    description: 'ImageNet MobileNet V2 1.0 224 feature vector (TF Hub, TensorFlow.js graph model), 1280-d',
    format: 'tfjs-graph',
    modelUrl: 'https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v2_100_224/feature_vector/3/default/1/model.json',
    query: 'tfjs-format=file',
    inputSize: [224, 224],
    inputRange: [0, 1],
    featureDim: 1280,
    license: 'Apache-2.0',
  },
  'imagenet-mobilenet-v1-050-224': {
    name: 'imagenet-mobilenet-v1-050-224',
    description: 'ImageNet MobileNet V1 0.5 224 feature vector (TF Hub, TensorFlow.js graph model), 512-d',
    format: 'tfjs-graph',
    modelUrl: 'https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v1_050_224/feature_vector/3/default/1/model.json',
    query: 'tfjs-format=file',
    inputSize: [224, 224],
    inputRange: [0, 1],
    featureDim: 512,
    license: 'Apache-2.0',
  },
};
