import * as tf from '@tensorflow/tfjs';
import type { Logger } from '@shelfsight/common';
import type { ScoredCategory } from '@shelfsight/contracts';
import { assertSameBackbone, loadModel, type ModelManifest } from './artifact/artifact';
import type { Backbone } from './backbones/backbone';
import { loadBackbone } from './backbones/resolve';
import type { FrameClassification, FrameClassifier } from './classifier';
import type { Head } from './head/head';
import { toBatch } from './image/batch';
import { decodeRgb, renderInput, toInputRange } from './image/preprocess';
import { inputSpecOf } from './features';
import { ttaViews, type ImageView, type TtaMode } from './data/views';
import { sha256Hex } from './hash';
import { ImageDecodeError } from './errors';

export interface LoadClassifierOptions {
  /** Model artifact folder (manifest.json, head.bin, labels.txt). */
  model: string;
  /** Backbone spec or an already loaded backbone; default: the one recorded in the manifest. */
  backbone?: string | Backbone;
  topK?: number;
  /** Test-time augmentation: average over flipped / zoomed views (slower). Default: as trained. */
  tta?: TtaMode;
  offline?: boolean;
  logger?: Logger;
}

export interface ScoredFeatures {
  topK: ScoredCategory[];
  probabilities: Float32Array;
}

/** Backbone + head: classifies encoded frames (JPEG/PNG/WebP bytes). */
export class TfjsFrameClassifier implements FrameClassifier {
  readonly backboneId: string;
  readonly modelVersion: string;

  constructor(
    readonly backbone: Backbone,
    readonly head: Head,
    readonly labels: string[],
    readonly manifest: ModelManifest,
    readonly topK: number,
    private readonly ownsBackbone: boolean,
    readonly views: ImageView[] = ttaViews('none'),
  ) {
    assertSameBackbone(manifest, backbone);
    this.backboneId = backbone.id;
    this.modelVersion = manifest.version;
  }

  async classify(image: Buffer, source = 'frame'): Promise<FrameClassification> {
    const started = performance.now();
    const spec = inputSpecOf(this.backbone);
    const rgb = await decodeRgb(image, source);
    const hash = this.views.length > 1 ? sha256Hex(image) : '';
    let pixels: Float32Array[];
    try {
      pixels = await Promise.all(this.views.map(async (v) => toInputRange(await renderInput(rgb, spec.size, v.draw(hash)), spec.range)));
    } catch (err) {
      throw new ImageDecodeError(source, err);
    }
    const probs = tf.tidy(() => {
      // TTA views go through the backbone one at a time: the same work as one batch, but
      // the WASM heap (which never shrinks) only ever holds one view's activations.
      const features = pixels.map((px) => this.backbone.extract(toBatch([px], spec)));
      const p = this.head.predict(features.length > 1 ? tf.concat(features, 0) : (features[0] as tf.Tensor2D));
      return (pixels.length > 1 ? p.mean(0) : p).dataSync() as Float32Array;
    });
    const topK = rankTopK(probs, this.labels, this.topK);
    const first = topK[0] as ScoredCategory;
    return { category: first.category, confidence: first.confidence, topK, latencyMs: performance.now() - started };
  }

  /** Classify a bottleneck vector computed elsewhere (cache, worker). */
  classifyFeatures(features: Float32Array): ScoredFeatures {
    const probs = tf.tidy(() => this.head.predict(tf.tensor2d(features, [1, features.length])).dataSync() as Float32Array);
    return { topK: rankTopK(probs, this.labels, this.topK), probabilities: probs };
  }

  dispose(): void {
    this.head.dispose();
    if (this.ownsBackbone) this.backbone.dispose();
  }
}

export function rankTopK(probs: ArrayLike<number>, labels: string[], k: number): ScoredCategory[] {
  const idx = Array.from({ length: labels.length }, (_, i) => i);
  idx.sort((a, b) => (probs[b] as number) - (probs[a] as number));
  return idx.slice(0, Math.max(1, Math.min(k, labels.length))).map((i) => ({
    category: labels[i] as string,
    confidence: Math.min(1, Math.max(0, probs[i] as number)),
  }));
}

/** Load a model artifact and its backbone (verified to be the one the head was trained on). */
export async function loadClassifier(opts: LoadClassifierOptions): Promise<TfjsFrameClassifier> {
  const model = await loadModel(opts.model);
  let backbone: Backbone;
  let owns = false;
  if (typeof opts.backbone === 'object') {
    backbone = opts.backbone;
  } else {
    backbone = await loadBackbone(opts.backbone ?? model.manifest.backbone.source, { offline: opts.offline, logger: opts.logger });
    owns = true;
  }
  try {
    const tta = opts.tta ?? ((model.manifest.training.tta as TtaMode | undefined) ?? 'none');
    return new TfjsFrameClassifier(backbone, model.head, model.labels, model.manifest, opts.topK ?? 3, owns, ttaViews(tta));
  } catch (err) {
    model.head.dispose();
    if (owns) backbone.dispose();
    throw err;
  }
}
