import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs';
import { BackboneError } from '../errors';
import type { Backbone, BackboneManifest } from './backbone';
import { createTfjsBackbone, type ModelBundle } from './tfjs-backbone';

/**
 * Backbones that ship inside the `nsfwjs` npm package (Keras layers models stored as JS
 * modules), so they work offline. They were trained to spot unsafe images: their
 * features are weak for groceries, but good enough for a demo and for tests.
 */
export const BUILTIN_BACKBONES: Record<string, BackboneManifest & { dir: string }> = {
  'nsfw-mobilenet-v2': {
    name: 'nsfw-mobilenet-v2',
    description: 'MobileNet V2 from the nsfwjs package (Keras layers model), flatten_1 features',
    format: 'tfjs-layers',
    featureNode: 'flatten_1',
    inputSize: [224, 224],
    inputRange: [0, 1],
    featureDim: 1280,
    license: 'MIT',
    dir: 'mobilenet_v2',
  },
  'nsfw-inception-v3': {
    name: 'nsfw-inception-v3',
    description: 'Inception V3 from the nsfwjs package (Keras layers model), flatten_1 features',
    format: 'tfjs-layers',
    featureNode: 'flatten_1',
    inputSize: [299, 299],
    inputRange: [0, 1],
    featureDim: 2048,
    license: 'MIT',
    dir: 'inception_v3',
  },
};

export const DEFAULT_BACKBONE = 'nsfw-mobilenet-v2';

export function isBuiltinBackbone(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(BUILTIN_BACKBONES, name);
}

function nsfwModelsDir(): string {
  // The package's `exports` blocks deep requires: find its dist folder from the entry point.
  let dir = dirname(require.resolve('nsfwjs'));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'models');
    if (existsSync(join(candidate, 'mobilenet_v2'))) return candidate;
    dir = dirname(dir);
  }
  throw new BackboneError('nsfwjs models not found: is the nsfwjs package installed?');
}

interface JsModel {
  modelTopology: object;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

export function readBuiltinBundle(name: string): { manifest: BackboneManifest; bundle: ModelBundle } {
  const entry = BUILTIN_BACKBONES[name];
  if (!entry) throw new BackboneError(`unknown built-in backbone ${name}`);
  const dir = join(nsfwModelsDir(), entry.dir);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const model = require(join(dir, 'model.min.js')) as JsModel;
  const shards = model.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const file = join(dir, `${p}.min.js`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const b64 = require(file) as string;
      delete require.cache[file]; // the decoded bytes are all we keep
      return Buffer.from(b64, 'base64');
    }),
  );
  const data = Buffer.concat(shards);
  const { dir: _dir, ...manifest } = entry;
  return {
    manifest,
    bundle: {
      modelTopology: model.modelTopology,
      weightSpecs: model.weightsManifest.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
    },
  };
}

export async function loadBuiltinBackbone(name: string): Promise<Backbone> {
  const { manifest, bundle } = readBuiltinBundle(name);
  return createTfjsBackbone(manifest, bundle, name);
}
