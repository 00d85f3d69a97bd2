import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { labelsHash, type RolloutManifest, type ScoredCategory } from '@shelfsight/contracts';
import type { FrameClassification, FrameClassifier } from '@shelfsight/vision';

export const STAND_IN_CATEGORIES = ['apples', 'bananas', 'bread', 'cheese', 'juice', 'milk', 'oranges', 'yogurt'];

/** The stand-in "backbone" has no weights; its checksum is the sha256 of its id, so manifests can name it. */
export const STAND_IN_BACKBONE_ID = 'stand-in';
export const STAND_IN_BACKBONE_CHECKSUM = createHash('sha256').update(STAND_IN_BACKBONE_ID).digest('hex');

/** Marker for synthetic frames: `SIMFRAME category=<name>\n...`; real images are hashed. */
export const SIM_FRAME_MARKER = 'SIMFRAME';

export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
}

/** Build a synthetic frame body that the stand-in classifies as `category`. */
export function syntheticFrame(category: string, payload = ''): Buffer {
  return Buffer.from(`${SIM_FRAME_MARKER} category=${category}\n${payload}`);
}

/**
 * Deterministic stand-in for the TensorFlow classifier (simulation and tests): the
 * category comes from a synthetic frame's marker, or from a hash of the image bytes.
 * Bytes that are neither a synthetic frame nor a JPEG/PNG/WebP fail like a corrupt
 * image would.
 */
export class StandInClassifier implements FrameClassifier {
  // classifyFeatures makes it a ShadowableHead (models/head-holder.ts) for rollout tests and the simulator.
  readonly backboneId = STAND_IN_BACKBONE_ID;
  readonly backboneChecksum = STAND_IN_BACKBONE_CHECKSUM;
  constructor(
    readonly modelVersion = 'stand-in-1',
    private readonly categories: string[] = STAND_IN_CATEGORIES,
    private readonly topK = 3,
  ) {}

  async classify(image: Buffer): Promise<FrameClassification> {
    const started = performance.now();
    const hash = createHash('sha256').update(image).digest();
    const head = image.subarray(0, 128).toString('latin1');
    let marked: string | undefined;
    if (head.startsWith(SIM_FRAME_MARKER)) {
      marked = /category=([^\s]+)/.exec(head)?.[1];
    } else if (!isImage(image)) {
      throw new ImageDecodeError('not a JPEG, PNG or WebP image');
    }
    // A small deterministic feature vector stands in for the backbone's bottleneck.
    const embedding = Float32Array.from(hash.subarray(0, 16), (b) => b / 255);
    const topK = this.score(embedding, marked);
    const first = topK[0] as ScoredCategory;
    return { category: first.category, confidence: first.confidence, topK, latencyMs: performance.now() - started, embedding };
  }

  /** The head step on an embedding (this stand-in's own, or another stand-in's on the same frame). */
  classifyFeatures(features: Float32Array): { topK: ScoredCategory[] } {
    return { topK: this.score(features, undefined) };
  }

  private score(embedding: Float32Array, marked: string | undefined): ScoredCategory[] {
    const bytes = Array.from(embedding, (x) => Math.round(x * 255));
    const category = marked ?? pick(this.categories, bytes[0] ?? 0);
    const confidence = 0.4 + ((bytes[1] ?? 0) / 255) * 0.59;
    const rest = this.categories.filter((c) => c !== category);
    const topK = [{ category, confidence }];
    let left = 1 - confidence;
    for (let i = 0; i < Math.min(this.topK - 1, rest.length); i++) {
      const share = left * (0.6 - ((bytes[2 + i] ?? 0) / 255) * 0.2);
      topK.push({ category: pick(rest, (bytes[2 + i] ?? 0) + i), confidence: share });
      left -= share;
    }
    return topK.filter((s, i) => topK.findIndex((t) => t.category === s.category) === i);
  }

  dispose(): void {}
}

const StandInHeadSchema = z.object({
  kind: z.literal('stand-in-head'),
  modelVersion: z.string().min(1).max(128),
  categories: z.array(z.string().min(1).max(64)).min(1),
});

/** A stand-in head as a rollout artifact (the simulator's and the tests' "model file"). */
export function standInHeadArtifact(modelVersion: string, categories: string[] = STAND_IN_CATEGORIES): Buffer {
  return Buffer.from(JSON.stringify({ kind: 'stand-in-head', modelVersion, categories }));
}

/**
 * Load a verified stand-in head artifact. It must be the head the manifest describes: the
 * same version and the label list whose hash was signed.
 */
export async function loadStandInHead(file: string, manifest: Pick<RolloutManifest, 'modelVersion' | 'labelsHash'>, topK = 3): Promise<StandInClassifier> {
  const head = StandInHeadSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  if (head.modelVersion !== manifest.modelVersion) throw new Error(`artifact holds ${head.modelVersion}, the manifest names ${manifest.modelVersion}`);
  if (labelsHash(head.categories) !== manifest.labelsHash) throw new Error(`artifact labels do not hash to the signed labels hash`);
  return new StandInClassifier(head.modelVersion, head.categories, topK);
}

function pick(list: string[], n: number): string {
  return list[n % list.length] as string;
}

export function isImage(b: Buffer): boolean {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return true;
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return true;
  return b.length >= 12 && b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP';
}
