import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import type { Logger } from '@shelfsight/common';
import { csvField, loadDataset } from '../data/dataset';
import { evaluateModel } from '../pipeline/evaluate-model';
import { resolveTrainPreset, type TrainPresetName } from '../pipeline/presets';
import { trainTunedModel, type TuneSettings } from '../pipeline/train-tuned';

export interface TuneBenchOptions extends TuneSettings {
  preset: TrainPresetName;
  data: string;
  backbone: string;
  /** Scored once at the end (`shelf eval`); absent: no val_accuracy. */
  valData?: string;
  /** Use every k-th image so that about this many remain (smoke runs); absent: all. */
  images?: number;
  ensemble?: number;
  epochs?: number;
  workers?: number;
  cacheDir?: string;
  logger?: Logger;
}

export interface TuneBenchResult {
  preset: string;
  freeze_point: string;
  images: number;
  cache_s: number;
  tune_s: number;
  heads_s: number;
  total_s: number;
  val_accuracy: number | null;
  validation_accuracy: number | null;
  artifact_bytes: number;
  peak_rss_mb: number;
  load: [number, number];
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) if (['manifest.json', 'head.bin', 'labels.txt', 'outputs.txt'].includes(f)) n += (await stat(join(dir, f))).size;
  return n;
}

/**
 * `shelf bench train --tune-from`: a preset's training with the tail tuned, from the
 * activations (cached after a first run; a fresh `cacheDir` measures from nothing) to the
 * artifact, then one score on `valData`.
 */
export async function benchTune(opts: TuneBenchOptions): Promise<TuneBenchResult> {
  const started = Date.now();
  const load0 = loadavg()[0] as number;
  const work = await mkdtemp(join(tmpdir(), 'shelf-bench-tune-'));
  try {
    let data = opts.data;
    const ds = await loadDataset(opts.data);
    let images = ds.images;
    if (opts.images && opts.images < images.length) {
      const step = images.length / opts.images;
      images = Array.from({ length: opts.images }, (_, i) => images[Math.floor(i * step)] as (typeof images)[number]);
      data = join(work, 'subset.csv');
      await writeFile(data, ['image,label,sublabel', ...images.map((i) => [i.path, i.label, i.sublabel ?? i.label].map(csvField).join(','))].join('\n') + '\n');
    }
    // A smoke-size subset has too few photos per sub-class for a validation split: train on all of it.
    const s = resolveTrainPreset(opts.preset, { backbone: opts.backbone, ensemble: opts.ensemble, epochs: opts.epochs, ...(data !== opts.data ? { validationPercentage: 0 } : {}) });
    const out = join(work, 'model');
    const r = await trainTunedModel({
      ...s,
      data,
      out,
      workers: opts.workers,
      cacheDir: opts.cacheDir,
      logger: opts.logger,
      tuneFrom: opts.tuneFrom ?? s.tuneFrom ?? 'last-block',
      tuneEpochs: opts.tuneEpochs ?? s.tuneEpochs,
      tailLearningRate: opts.tailLearningRate,
      tuneHeadLearningRate: opts.tuneHeadLearningRate,
      decayToPretrained: opts.decayToPretrained,
      groupRuns: opts.groupRuns ?? s.groupRuns,
    });
    const seconds = r.manifest.training.seconds as Record<string, number>;
    let valAccuracy: number | null = null;
    if (opts.valData) {
      const ev = await evaluateModel({ model: out, data: opts.valData, topK: 5, out: join(work, 'eval'), workers: opts.workers, logger: opts.logger });
      valAccuracy = ev.metrics.accuracy;
    }
    return {
      preset: opts.preset,
      freeze_point: String((r.manifest.tail as { freezePoint?: string } | undefined)?.freezePoint),
      images: images.length,
      cache_s: +r.bottleneckSeconds.toFixed(1),
      tune_s: +((seconds['first-head'] ?? 0) + (seconds.tune ?? 0) + (seconds.pooled ?? 0)).toFixed(1),
      heads_s: +(seconds.heads ?? 0).toFixed(1),
      total_s: +((Date.now() - started) / 1000).toFixed(1),
      val_accuracy: valAccuracy,
      validation_accuracy: (r.manifest.metrics.validationAccuracy as number | null) ?? null,
      artifact_bytes: await folderBytes(out),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      load: [+load0.toFixed(2), +(loadavg()[0] as number).toFixed(2)],
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
