import { createHash } from 'node:crypto';
import { z } from 'zod';
import { headParamCount, type PlainHead } from './head-math';

/**
 * A model artifact's manifest (`manifest.json` of a `shelf train` output folder). It lives
 * here, not in the vision core, so the hub validates uploaded artifacts without loading
 * TensorFlow; `@shelfsight/vision` re-exports it and writes/reads artifacts with it.
 */

/** Bump when the layout changes; loaders refuse versions they do not know. */
export const ARTIFACT_FORMAT_VERSION = 1;
export const SUPPORTED_FORMAT_VERSIONS = [1];

export const MANIFEST_FILE = 'manifest.json';
export const LABELS_FILE = 'labels.txt';
export const WEIGHTS_FILE = 'head.bin';
export const OUTPUTS_FILE = 'outputs.txt';

export const ManifestSchema = z.object({
  formatVersion: z.literal(1),
  version: z.string().min(1),
  createdAt: z.string().min(1),
  backbone: z.object({
    id: z.string().min(1),
    checksum: z.string().regex(/^[0-9a-f]{64}$/),
    format: z.enum(['tfjs-graph', 'tfjs-layers']),
    inputSize: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    inputRange: z.tuple([z.number(), z.number()]),
    featureDim: z.number().int().positive(),
    source: z.string(),
  }),
  input: z.object({
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
    range: z.tuple([z.number(), z.number()]),
    resize: z.literal('cover-centre'),
  }),
  head: z.object({
    type: z.enum(['softmax', 'mlp']),
    inputDim: z.number().int().positive(),
    numClasses: z.number().int().min(1),
    hidden: z.number().int().positive().optional(),
    normalize: z.enum(['none', 'l2']),
    /** Ensemble: this many heads of the shape above, averaged; absent = 1. */
    members: z.number().int().min(1).optional(),
    params: z.number().int().positive(),
    weightsFile: z.string().min(1),
    weightsBytes: z.number().int().positive(),
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** Hierarchical labels: output i of the softmax counts towards labels[groups[i]]; outputs named in outputs.txt. */
    groups: z.array(z.number().int().min(0)).optional(),
  }),
  /**
   * A fine-tuned tail: the backbone runs only up to `node` (its freeze point) and these
   * layers (3×3 depthwise / 1×1 pointwise convs, batch-norm folded, ReLU6, then a global
   * average pool) replace the rest. Its float32 weights follow the head's in the weights
   * file (`params` floats); absent: a head on the backbone's own features.
   */
  tail: z
    .object({
      freezePoint: z.string().min(1),
      node: z.string().min(1),
      shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
      layers: z.array(z.enum(['depthwise', 'pointwise'])).min(1),
      params: z.number().int().positive(),
    })
    .optional(),
  labels: z.object({ file: z.string().min(1), count: z.number().int().min(1) }),
  training: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()),
  lineage: z.object({ parent: z.string().optional() }).optional(),
});
export type ModelManifest = z.infer<typeof ManifestSchema>;

/** The files of an artifact folder, as bytes (read from disk, or unpacked from an upload). */
export interface ArtifactFiles {
  manifest: Buffer;
  weights: Buffer;
  labels: Buffer;
  outputs?: Buffer;
}

export interface VerifiedArtifact {
  manifest: ModelManifest;
  labels: string[];
  /** Sub-class names of the outputs (outputs.txt), when the head has groups. */
  outputs?: string[];
  head: PlainHead;
  /** The tuned tail's weights (manifest `tail`), when the model has one. */
  tailWeights?: Float32Array;
}

/** An artifact that is incomplete or does not match its manifest; `reason` says how. */
export class ArtifactVerificationError extends Error {
  override name = 'ArtifactVerificationError';
  constructor(readonly reason: string) {
    super(`model artifact refused: ${reason}`);
  }
}

const lines = (b: Buffer) => b.toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0);

/**
 * Check an artifact without TensorFlow: manifest schema and format version, head.bin's
 * byte length and SHA-256 against the manifest, the labels count, and the head shape
 * against its weights. Returns the head's weights for the plain forward pass.
 */
export function verifyArtifact(files: ArtifactFiles): VerifiedArtifact {
  let raw: unknown;
  try {
    raw = JSON.parse(files.manifest.toString('utf8'));
  } catch {
    throw new ArtifactVerificationError(`${MANIFEST_FILE} is not complete JSON`);
  }
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (!SUPPORTED_FORMAT_VERSIONS.includes(version as number)) {
    throw new ArtifactVerificationError(`${MANIFEST_FILE} has format version ${JSON.stringify(version)}; supported: ${SUPPORTED_FORMAT_VERSIONS.join(', ')}`);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArtifactVerificationError(`${MANIFEST_FILE}: ${issue?.path.join('.')} ${issue?.message}`);
  }
  const manifest = parsed.data;
  const h = manifest.head;
  if (files.weights.byteLength !== h.weightsBytes) {
    throw new ArtifactVerificationError(`${h.weightsFile} has ${files.weights.byteLength} bytes, manifest says ${h.weightsBytes}`);
  }
  if (createHash('sha256').update(files.weights).digest('hex') !== h.weightsSha256) {
    throw new ArtifactVerificationError(`${h.weightsFile} checksum differs from the manifest's`);
  }
  const labels = lines(files.labels);
  if (h.groups && h.groups.length !== h.numClasses) throw new ArtifactVerificationError(`head groups (${h.groups.length}) != outputs (${h.numClasses})`);
  const expectedLabels = h.groups ? Math.max(...h.groups) + 1 : h.numClasses;
  if (labels.length !== manifest.labels.count || labels.length !== expectedLabels) {
    throw new ArtifactVerificationError(`${manifest.labels.file} has ${labels.length} labels, manifest says ${manifest.labels.count} (head reports ${expectedLabels})`);
  }
  if (new Set(labels).size !== labels.length) throw new ArtifactVerificationError(`${manifest.labels.file} names a label twice`);
  const spec = { type: h.type, inputDim: h.inputDim, numClasses: h.numClasses, hidden: h.hidden, normalize: h.normalize, members: h.members };
  if (h.inputDim !== manifest.backbone.featureDim) throw new ArtifactVerificationError(`head input ${h.inputDim} != backbone feature dim ${manifest.backbone.featureDim}`);
  const t = manifest.tail;
  if (t) {
    const [, , c] = t.shape;
    const expected = t.layers.reduce((n, l) => n + (l === 'depthwise' ? 10 * c : c * c + c), 0);
    if (t.params !== expected) throw new ArtifactVerificationError(`tail params ${t.params} do not match its layers (${expected})`);
    if (c !== manifest.backbone.featureDim) throw new ArtifactVerificationError(`tail gives ${c} features, backbone feature dim ${manifest.backbone.featureDim}`);
  }
  if (headParamCount(spec) !== h.params || (h.params + (t?.params ?? 0)) * 4 !== h.weightsBytes) throw new ArtifactVerificationError('head shape does not match its weights');
  const weights = new Float32Array(h.params);
  new Uint8Array(weights.buffer).set(files.weights.subarray(0, h.params * 4));
  if (!weights.every(Number.isFinite)) throw new ArtifactVerificationError(`${h.weightsFile} holds non-finite weights`);
  let tailWeights: Float32Array | undefined;
  if (t) {
    tailWeights = new Float32Array(t.params);
    new Uint8Array(tailWeights.buffer).set(files.weights.subarray(h.params * 4));
    if (!tailWeights.every(Number.isFinite)) throw new ArtifactVerificationError(`${h.weightsFile} holds non-finite tail weights`);
  }
  const outputs = files.outputs ? lines(files.outputs) : undefined;
  if (outputs && outputs.length !== h.numClasses) throw new ArtifactVerificationError(`${OUTPUTS_FILE} has ${outputs.length} names, head has ${h.numClasses} outputs`);
  return { manifest, labels, ...(outputs ? { outputs } : {}), head: { spec, weights, ...(h.groups ? { groups: h.groups } : {}) }, ...(tailWeights ? { tailWeights } : {}) };
}
