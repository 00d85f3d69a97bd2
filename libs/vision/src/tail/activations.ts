import { createLogger, createProgress, type Logger } from '@shelfsight/common';
import type { BackboneInfo } from '../backbones/backbone';
import { findFreezePoint, type FreezePoint } from '../backbones/freeze';
import { computeBottlenecks, type BottleneckRequest, type BottleneckResult } from '../bottlenecks';
import { ActivationCache, quantiseActivation, type QuantisedActivation } from '../cache/activation-cache';
import { defaultCacheRoot } from '../cache/bottleneck-cache';
import type { FeatureExtractor } from '../extractor';
import { initRuntime } from '../runtime';
import { WorkerPoolExtractor } from '../workers/worker-pool';

export interface ActivationOptions {
  backbone: string;
  /** Freeze point name or node. */
  freezePoint: string;
  workers?: number;
  offline?: boolean;
  /** Cache root (default `$SHELF_CACHE_DIR` or `~/.cache/shelfsight`); `false`: no cache. */
  cacheDir?: string | false;
  logger?: Logger;
  /** Tests inject an extractor of the frozen part instead of starting workers. */
  extractor?: FeatureExtractor;
}

export interface ActivationSets {
  backbone: BackboneInfo;
  freezePoint: FreezePoint;
  sets: Array<BottleneckResult<QuantisedActivation>>;
  seconds: number;
}

/**
 * Freeze-point activations for several request lists (training, validation, …): the
 * backbone runs only up to the freeze point, on worker threads; every activation is
 * quantised (8-bit, per-tensor scale) as soon as it arrives and kept on disk, so a second
 * run never runs the backbone and memory stays at ~25 KB per 7×7×512 view.
 */
export async function computeActivations(opts: ActivationOptions, lists: BottleneckRequest[][], label = 'activations'): Promise<ActivationSets> {
  const logger = opts.logger ?? createLogger('vision');
  await initRuntime(logger);
  const started = Date.now();
  const total = lists.reduce((n, l) => n + l.reduce((m, r) => m + r.views.length, 0), 0);
  let extractor = opts.extractor;
  const owned = !extractor;
  if (!extractor) {
    const workers = Math.max(1, Math.min(opts.workers ?? WorkerPoolExtractor.defaultSize(), Math.ceil(total / 8)));
    extractor = await WorkerPoolExtractor.start(opts.backbone, { workers, offline: opts.offline, freezePoint: opts.freezePoint });
  }
  try {
    const backbone = extractor.backbone;
    const freezePoint = findFreezePoint(backbone.freezePoints, opts.freezePoint, backbone.id);
    const size = freezePoint.shape[0] * freezePoint.shape[1] * freezePoint.shape[2];
    if (backbone.featureDim !== size) throw new Error(`extractor gives ${backbone.featureDim} floats per view, freeze point ${freezePoint.name} is ${size}`);
    const cache = opts.cacheDir === false ? undefined : new ActivationCache(opts.cacheDir ?? defaultCacheRoot(), backbone, freezePoint.name, size);
    const progress = createProgress(label, total);
    let shown = 0;
    const sets: Array<BottleneckResult<QuantisedActivation>> = [];
    for (const list of lists) {
      const base = shown;
      const r = await computeBottlenecks(list, extractor, cache, {
        logger,
        encode: quantiseActivation,
        onProgress: (d) => {
          if (base + d > shown) progress.tick(base + d - shown);
          shown = Math.max(shown, base + d);
        },
      });
      sets.push(r);
    }
    progress.done(`cache hits ${sets.reduce((n, s) => n + s.cacheHits, 0)}, computed ${sets.reduce((n, s) => n + s.computed, 0)}`);
    return { backbone, freezePoint, sets, seconds: (Date.now() - started) / 1000 };
  } finally {
    if (owned) await extractor.close();
  }
}
