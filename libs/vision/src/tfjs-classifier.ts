import * as tf from '@tensorflow/tfjs';
import type { Logger } from '@shelfsight/common';
import type { ScoredCategory } from '@shelfsight/contracts';
import { assertSameBackbone, loadModel, type ModelManifest, type ModelTail } from './artifact/artifact';
import { tailForward } from './tail/tail-math';
import { BackboneError } from './errors';
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
    /** A fine-tuned tail: the backbone runs up to its freeze point, the tail does the rest. */
    readonly tail?: ModelTail,
  ) {
    assertSameBackbone(manifest, backbone);
    if (tail && !backbone.activationAt) throw new BackboneError(`model ${manifest.version} has a tuned tail, backbone ${backbone.id} cannot be cut at ${tail.freezePoint.node}`);
    if (tail && tail.spec.channels !== backbone.featureDim) throw new BackboneError(`model ${manifest.version}: tail gives ${tail.spec.channels} features, backbone ${backbone.featureDim}`);
    this.backboneId = backbone.id;
    this.modelVersion = manifest.version;
  }

  async classify(image: Buffer, source = 'frame'): Promise<FrameClassification> {
    const started = performance.now();
    const views = await this.embed(image, source);
    const { topK } = this.classifyViews(views);
    const first = topK[0] as ScoredCategory;
    return { category: first.category, confidence: first.confidence, topK, latencyMs: performance.now() - started, embedding: views[0] };
  }

  /** The backbone step: one bottleneck per TTA view of the frame, in `views` order. */
  async embed(image: Buffer, source = 'frame'): Promise<Float32Array[]> {
    const spec = inputSpecOf(this.backbone);
    const rgb = await decodeRgb(image, source);
    const hash = this.views.length > 1 ? sha256Hex(image) : '';
    let pixels: Float32Array[];
    try {
      pixels = await Promise.all(this.views.map(async (v) => toInputRange(await renderInput(rgb, spec.size, v.draw(hash)), spec.range)));
    } catch (err) {
      throw new ImageDecodeError(source, err);
    }
    // TTA views go through the backbone one at a time: the same work as one batch, but
    // the WASM heap (which never shrinks) only ever holds one view's activations.
    const tail = this.tail;
    const activationAt = this.backbone.activationAt;
    if (tail && activationAt) {
      // Frozen part up to the freeze point, then the tuned tail (its own forward pass).
      return pixels.map((px) => {
        const batch = toBatch([px], spec);
        const act = activationAt(batch, tail.freezePoint.node);
        const x = act.dataSync() as Float32Array;
        tf.dispose([batch, act]);
        return tailForward(tail.spec, tail.params, x, 1).pooled;
      });
    }
    return pixels.map((px) => tf.tidy(() => this.backbone.extract(toBatch([px], spec)).dataSync() as Float32Array));
  }

  /** The head step on bottlenecks computed elsewhere: the views' probabilities averaged (TTA). */
  classifyViews(views: Float32Array[]): ScoredFeatures {
    const dim = this.backbone.featureDim;
    const x = new Float32Array(views.length * dim);
    views.forEach((v, i) => x.set(v, i * dim));
    const probs = tf.tidy(() => {
      const p = this.head.predict(tf.tensor2d(x, [views.length, dim]));
      return (views.length > 1 ? p.mean(0) : p).dataSync() as Float32Array;
    });
    return { topK: rankTopK(probs, this.labels, this.topK), probabilities: probs };
  }

  /** Classify one bottleneck vector computed elsewhere (cache, worker, a classification's `embedding`). */
  classifyFeatures(features: Float32Array): ScoredFeatures {
    return this.classifyViews([features]);
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
    return new TfjsFrameClassifier(backbone, model.head, model.labels, model.manifest, opts.topK ?? 3, owns, ttaViews(tta), model.tail);
  } catch (err) {
    model.head.dispose();
    if (owns) backbone.dispose();
    throw err;
  }
}
