import { readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { BackboneError } from '../errors';
import type { Backbone, BackboneManifest } from './backbone';
import { parseBackboneManifest } from './manifest';
import { createTfjsBackbone, type ModelBundle } from './tfjs-backbone';

interface ModelJson {
  modelTopology: object;
  format?: string;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

/** Read a `backbone.json` + `model.json` + weight shards from a folder into memory. */
export async function readFolderBackbone(dir: string): Promise<{ manifest: BackboneManifest; bundle: ModelBundle }> {
  const manifestPath = statSync(dir).isDirectory() ? join(dir, 'backbone.json') : dir;
  const root = dirname(manifestPath);
  if (!existsSync(manifestPath)) throw new BackboneError(`no backbone.json in ${dir}`);
  const manifest = parseBackboneManifest(await readJson(manifestPath), manifestPath);
  const modelPath = join(root, manifest.modelFile ?? 'model.json');
  const model = (await readJson(modelPath)) as ModelJson;
  if (!model.modelTopology || !Array.isArray(model.weightsManifest)) {
    throw new BackboneError(`${modelPath}: not a TensorFlow.js model.json (modelTopology / weightsManifest missing)`);
  }
  const shards: Buffer[] = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      try {
        shards.push(await readFile(join(root, p)));
      } catch (err) {
        throw new BackboneError(`backbone ${manifest.name}: weight shard ${p} unreadable: ${(err as Error).message}`);
      }
    }
  }
  const data = Buffer.concat(shards);
  return {
    manifest,
    bundle: {
      modelTopology: model.modelTopology,
      format: model.format,
      weightSpecs: model.weightsManifest.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
    },
  };
}

export async function loadFolderBackbone(dir: string): Promise<Backbone> {
  const { manifest, bundle } = await readFolderBackbone(dir);
  return createTfjsBackbone(manifest, bundle, dir);
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new BackboneError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BackboneError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}
