import { createLogger } from '@shelfsight/common';
import type { ModelTail } from '../artifact/artifact';
import type { BackboneInfo } from '../backbones/backbone';
import { computeBottlenecks, type BottleneckRequest, type BottleneckResult } from '../bottlenecks';
import type { ExtractionOptions } from '../pipeline/context';
import { initRuntime } from '../runtime';
import { WorkerPoolExtractor } from '../workers/worker-pool';
import { tailForward } from './tail-math';

/**
 * Feature vectors of a tuned model for images × views: the backbone's frozen part on
 * worker threads (float activations, no cache), then the model's tail in this thread.
 * `check` sees the backbone before any work (e.g. the artifact's checksum pin).
 */
export async function tunedFeatures(
  tail: ModelTail,
  requests: BottleneckRequest[],
  opts: Omit<ExtractionOptions, 'cacheDir'>,
  check?: (backbone: BackboneInfo) => void,
): Promise<BottleneckResult> {
  const logger = opts.logger ?? createLogger('vision');
  await initRuntime(logger);
  const total = requests.reduce((n, r) => n + r.views.length, 0);
  const extractor =
    opts.extractor ??
    (await WorkerPoolExtractor.start(opts.backbone, {
      workers: Math.max(1, Math.min(opts.workers ?? WorkerPoolExtractor.defaultSize(), Math.ceil(total / 8))),
      offline: opts.offline,
      freezePoint: tail.freezePoint.node,
    }));
  try {
    check?.(extractor.backbone);
    const acts = await computeBottlenecks(requests, extractor, undefined, { logger });
    const features = new Map<string, Map<string, Float32Array>>();
    for (const [path, views] of acts.features) {
      const keys = [...views.keys()];
      const size = tail.spec.hw[0] * tail.spec.hw[1] * tail.spec.channels;
      const x = new Float32Array(keys.length * size);
      keys.forEach((k, i) => x.set(views.get(k) as Float32Array, i * size));
      const pooled = tailForward(tail.spec, tail.params, x, keys.length).pooled;
      const c = tail.spec.channels;
      features.set(path, new Map(keys.map((k, i) => [k, pooled.slice(i * c, (i + 1) * c)])));
    }
    return { ...acts, features };
  } finally {
    if (!opts.extractor) await extractor.close();
  }
}
