import { createLogger, type Logger } from '@shelfsight/common';
import { BottleneckCache, defaultCacheRoot } from '../cache/bottleneck-cache';
import type { FeatureExtractor } from '../extractor';
import { WorkerPoolExtractor } from '../workers/worker-pool';
import { initRuntime } from '../runtime';

/** Shared knobs of the commands that run a backbone over many images. */
export interface ExtractionOptions {
  backbone: string;
  /** Worker threads for the backbone (default: all cores). */
  workers?: number;
  offline?: boolean;
  /** Cache root (default `$SHELF_CACHE_DIR` or `~/.cache/shelfsight`); `false` disables the bottleneck cache. */
  cacheDir?: string | false;
  logger?: Logger;
  /** Tests inject an extractor instead of starting workers. */
  extractor?: FeatureExtractor;
}

export interface ExtractionContext {
  extractor: FeatureExtractor;
  cache: BottleneckCache | undefined;
  logger: Logger;
  close(): Promise<void>;
}

export async function openExtraction(opts: ExtractionOptions, jobsHint = Infinity): Promise<ExtractionContext> {
  const logger = opts.logger ?? createLogger('vision');
  // This thread trains / applies the head: give it the fast backend too.
  await initRuntime(logger);
  let extractor = opts.extractor;
  let owned = false;
  if (!extractor) {
    const workers = Math.max(1, Math.min(opts.workers ?? WorkerPoolExtractor.defaultSize(), Math.ceil(jobsHint / 8)));
    extractor = await WorkerPoolExtractor.start(opts.backbone, { workers, offline: opts.offline });
    owned = true;
    logger.info('backbone workers ready', { backbone: extractor.backbone.id, workers });
  }
  const cache =
    opts.cacheDir === false ? undefined : new BottleneckCache(opts.cacheDir ?? defaultCacheRoot(), extractor.backbone, extractor.backbone.featureDim);
  const ex = extractor;
  return { extractor: ex, cache, logger, close: async () => (owned ? ex.close() : undefined) };
}
