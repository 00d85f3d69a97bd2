import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  ArtifactVerificationError,
  LABELS_FILE,
  MANIFEST_FILE,
  ManifestSchema,
  OUTPUTS_FILE,
  SUPPORTED_FORMAT_VERSIONS,
  verifyArtifact,
  WEIGHTS_FILE,
  type ModelManifest,
  type VerifiedArtifact,
} from '@shelfsight/contracts';
import type { BackboneIdentity, BackboneInfo } from '../backbones/backbone';
import { BackboneMismatchError, TruncatedArtifactError, UnsupportedFormatVersionError } from '../errors';
import { sha256Hex } from '../hash';
import { Head, headParamCount } from '../head/head';
import type { FreezePoint } from '../backbones/freeze';
import type { TailSpec } from '../tail/tail-math';

/** A fine-tuned tail as an artifact carries it: where the backbone is cut, and the layers after it. */
export interface ModelTail {
  freezePoint: Pick<FreezePoint, 'name' | 'node' | 'shape'>;
  spec: TailSpec;
  params: Float32Array;
}

export {
  ARTIFACT_FORMAT_VERSION,
  SUPPORTED_FORMAT_VERSIONS,
  MANIFEST_FILE,
  LABELS_FILE,
  WEIGHTS_FILE,
  OUTPUTS_FILE,
  ManifestSchema,
  type ModelManifest,
} from '@shelfsight/contracts';

export interface SaveModelInput {
  head: Head;
  labels: string[];
  backbone: BackboneInfo;
  training: Record<string, unknown>;
  metrics: Record<string, unknown>;
  parent?: string;
  createdAt?: Date;
  /** Sub-class names of the head's outputs, when it was trained on sub-labels and `groups` maps them to `labels`. */
  outputs?: string[];
  groups?: number[];
  /** A fine-tuned tail: its weights follow the head's in `head.bin`, pinned to the freeze point. */
  tail?: ModelTail;
}

/**
 * Write a model artifact folder: `head.bin` (float32 little-endian), `labels.txt`,
 * `manifest.json` (written last). Written beside the target and renamed into place, so
 * readers never see half an artifact.
 */
export async function saveModel(dir: string, input: SaveModelInput): Promise<ModelManifest> {
  const spec = input.head.spec;
  if (input.groups) {
    if (input.groups.length !== spec.numClasses || Math.max(...input.groups) + 1 !== input.labels.length) throw new Error('groups do not match head outputs and labels');
  } else if (input.labels.length !== spec.numClasses) throw new Error(`labels (${input.labels.length}) != head classes (${spec.numClasses})`);
  const headWeights = input.head.toWeights();
  const weights = new Float32Array(headWeights.length + (input.tail?.params.length ?? 0));
  weights.set(headWeights);
  if (input.tail) weights.set(input.tail.params, headWeights.length);
  const bytes = Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength);
  const tail = input.tail;
  const createdAt = input.createdAt ?? new Date();
  const weightsSha256 = sha256Hex(bytes);
  const manifest: ModelManifest = {
    formatVersion: 1,
    version: `${createdAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${weightsSha256.slice(0, 8)}`,
    createdAt: createdAt.toISOString(),
    backbone: {
      id: input.backbone.id,
      checksum: input.backbone.checksum,
      format: input.backbone.format,
      inputSize: input.backbone.inputSize,
      inputRange: input.backbone.inputRange,
      featureDim: input.backbone.featureDim,
      source: input.backbone.source,
    },
    input: { size: input.backbone.inputSize, range: input.backbone.inputRange, resize: 'cover-centre' },
    head: {
      ...spec,
      params: headParamCount(spec),
      weightsFile: WEIGHTS_FILE,
      weightsBytes: bytes.byteLength,
      weightsSha256,
      ...(input.groups ? { groups: input.groups } : {}),
    },
    ...(tail
      ? {
          tail: {
            freezePoint: tail.freezePoint.name,
            node: tail.freezePoint.node,
            shape: tail.freezePoint.shape,
            layers: tail.spec.layers,
            params: tail.params.length,
          },
        }
      : {}),
    labels: { file: LABELS_FILE, count: input.labels.length },
    training: input.training,
    metrics: input.metrics,
    ...(input.parent ? { lineage: { parent: input.parent } } : {}),
  };
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, WEIGHTS_FILE), bytes);
  await writeFile(join(tmp, LABELS_FILE), input.labels.join('\n') + '\n');
  if (input.outputs) await writeFile(join(tmp, OUTPUTS_FILE), input.outputs.join('\n') + '\n');
  await writeFile(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return manifest;
}

export interface LoadedModel {
  dir: string;
  manifest: ModelManifest;
  labels: string[];
  head: Head;
  tail?: ModelTail;
}

/** Read the manifest only, validating format version and shape. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new TruncatedArtifactError(dir, `${MANIFEST_FILE} missing`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TruncatedArtifactError(dir, `${MANIFEST_FILE} is not complete JSON`);
  }
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (!SUPPORTED_FORMAT_VERSIONS.includes(version as number)) {
    throw new UnsupportedFormatVersionError(dir, version, SUPPORTED_FORMAT_VERSIONS);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TruncatedArtifactError(dir, `${MANIFEST_FILE}: ${issue?.path.join('.')} ${issue?.message}`);
  }
  return parsed.data;
}

/**
 * Load and verify an artifact: manifest, weights (size and SHA-256), labels, shape — the
 * checks are the contract's `verifyArtifact` (the hub runs the same without TensorFlow).
 */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const manifest = await readManifest(dir);
  const read = async (file: string) => {
    try {
      return await readFile(join(dir, file));
    } catch {
      throw new TruncatedArtifactError(dir, `${file} missing`);
    }
  };
  const files = {
    manifest: await read(MANIFEST_FILE),
    weights: await read(manifest.head.weightsFile),
    labels: await read(manifest.labels.file),
  };
  let verified: VerifiedArtifact;
  try {
    verified = verifyArtifact(files);
  } catch (err) {
    if (err instanceof ArtifactVerificationError) throw new TruncatedArtifactError(dir, err.reason);
    throw err;
  }
  const head = Head.fromWeights(verified.head.spec, verified.head.weights);
  if (verified.head.groups) head.groups = verified.head.groups;
  const tail = modelTail(verified.manifest, verified.tailWeights);
  return { dir, manifest: verified.manifest, labels: verified.labels, head, ...(tail ? { tail } : {}) };
}

/** The tail a verified manifest declares, with its weights (undefined for head-only models). */
export function modelTail(manifest: ModelManifest, weights: Float32Array | undefined): ModelTail | undefined {
  const t = manifest.tail;
  if (!t || !weights) return undefined;
  return { freezePoint: { name: t.freezePoint, node: t.node, shape: t.shape }, spec: { hw: [t.shape[0], t.shape[1]], channels: t.shape[2], layers: t.layers }, params: weights };
}

/** Refuse to pair a head with a backbone other than the one it was trained on. */
export function assertSameBackbone(manifest: ModelManifest, backbone: BackboneIdentity): void {
  if (manifest.backbone.id !== backbone.id || manifest.backbone.checksum !== backbone.checksum) {
    throw new BackboneMismatchError(manifest.backbone, backbone);
  }
}
