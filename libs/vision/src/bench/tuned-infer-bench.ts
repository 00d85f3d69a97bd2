import { loadModel } from '../artifact/artifact';
import { loadBackbone } from '../backbones/resolve';
import type { Backbone } from '../backbones/backbone';
import { TfjsFrameClassifier } from '../tfjs-classifier';
import type { Logger } from '@shelfsight/common';
import { ttaViews, type TtaMode } from '../data/views';

export interface ModelInferStats {
  p50_ms: number;
  p95_ms: number;
  frames_per_s: number;
}

export interface TunedInferResult {
  model: string;
  tuned: boolean;
  freeze_point: string | null;
  tta: string;
  /** The model as it runs on a device: decode, frozen part (+ tail), head; one frame at a time, this thread. */
  model_path: ModelInferStats;
  /** The same frames through the whole backbone and the same head (what a head-only model costs). */
  head_only: ModelInferStats;
  /** model_path ms per frame over head_only (target ≤ 1.3 for a tuned model). */
  ratio: number;
  peak_rss_mb: number;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

async function timeFrames(classifier: TfjsFrameClassifier, images: Buffer[], frames: number): Promise<ModelInferStats> {
  const times: number[] = [];
  for (let i = 0; i < frames + 3; i++) {
    const t = performance.now();
    await classifier.classify(images[i % images.length] as Buffer);
    if (i >= 3) times.push(performance.now() - t);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return { p50_ms: r2(pct(50)), p95_ms: r2(pct(95)), frames_per_s: r2(1000 / mean) };
}

/**
 * Per-frame cost of a model artifact beside the head-only path on the same backbone:
 * a tuned model runs the backbone up to its freeze point and its tail; the head-only
 * path runs the whole backbone. Both use the model's head and TTA views, alternating
 * runs so load changes hit both.
 */
export async function benchModelInfer(opts: { model: string; images: Buffer[]; frames: number; offline?: boolean; logger?: Logger }): Promise<TunedInferResult> {
  const model = await loadModel(opts.model);
  const backbone: Backbone = await loadBackbone(model.manifest.backbone.source, { offline: opts.offline, logger: opts.logger });
  const tta = ((model.manifest.training.tta as TtaMode | undefined) ?? 'none') as TtaMode;
  try {
    const views = ttaViews(tta);
    const withTail = new TfjsFrameClassifier(backbone, model.head, model.labels, model.manifest, 3, false, views, model.tail);
    const headOnly = new TfjsFrameClassifier(backbone, model.head, model.labels, model.manifest, 3, false, views);
    const runs: Array<[ModelInferStats, ModelInferStats]> = [];
    for (let k = 0; k < 3; k++) runs.push([await timeFrames(withTail, opts.images, opts.frames), await timeFrames(headOnly, opts.images, opts.frames)]);
    const median = (xs: ModelInferStats[]): ModelInferStats => [...xs].sort((a, b) => a.p50_ms - b.p50_ms)[1] as ModelInferStats;
    const a = median(runs.map((r) => r[0]));
    const b = median(runs.map((r) => r[1]));
    return {
      model: model.manifest.version,
      tuned: !!model.tail,
      freeze_point: model.tail?.freezePoint.name ?? null,
      tta,
      model_path: a,
      head_only: b,
      ratio: r2(b.frames_per_s / a.frames_per_s),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    model.head.dispose();
    backbone.dispose();
  }
}
