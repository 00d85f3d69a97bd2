import { readFile } from 'node:fs/promises';
import type { Logger } from '@shelfsight/common';
import type { ImageView } from './data/views';
import { ImageDecodeError } from './errors';
import type { FeatureExtractor } from './extractor';
import type { FeatureJob } from './features';
import { sha256Hex } from './hash';

export interface BottleneckFailure {
  path: string;
  error: string;
}

export interface BottleneckResult<T = Float32Array> {
  /** Per input path: view key → bottleneck. Paths that failed are absent. */
  features: Map<string, Map<string, T>>;
  /** Unreadable or undecodable images: reported and skipped, never fatal. */
  failed: BottleneckFailure[];
  cacheHits: number;
  computed: number;
}

export interface BottleneckRequest {
  path: string;
  views: ImageView[];
}

/** Where computed vectors are kept between runs: `BottleneckCache` (float32), `ActivationCache` (quantised). */
export interface FeatureCache<T> {
  get(imageHash: string, view: string): Promise<T | undefined>;
  put(imageHash: string, view: string, value: T): Promise<void>;
}

/**
 * Bottlenecks for images × views, from the cache where possible; the rest go through
 * the extractor (in chunks, so an interrupted run keeps what it computed) and into the
 * cache. Keyed by image content hash, so renamed or copied files still hit.
 */
export async function computeBottlenecks<T = Float32Array>(
  requests: BottleneckRequest[],
  extractor: FeatureExtractor,
  cache: FeatureCache<T> | undefined,
  opts: {
    logger?: Logger;
    onProgress?: (done: number, total: number) => void;
    chunk?: number;
    /** How a computed vector is kept (default: as is); e.g. quantised, so large activations stay small in memory. */
    encode?: (f: Float32Array) => T;
  } = {},
): Promise<BottleneckResult<T>> {
  const encode = opts.encode ?? ((f: Float32Array) => f as unknown as T);
  const features = new Map<string, Map<string, T>>();
  const failed = new Map<string, string>();
  const missing: Array<{ path: string; hash: string; view: ImageView }> = [];
  let cacheHits = 0;
  const total = requests.reduce((n, r) => n + r.views.length, 0);
  let done = 0;

  await mapLimit(requests, 16, async (req) => {
    let bytes: Buffer;
    try {
      bytes = await readFile(req.path);
    } catch (err) {
      failed.set(req.path, `unreadable: ${(err as Error).message}`);
      done += req.views.length;
      return;
    }
    const hash = sha256Hex(bytes);
    const mine = new Map<string, T>();
    features.set(req.path, mine);
    for (const view of req.views) {
      const hit = cache ? await cache.get(hash, view.key) : undefined;
      if (hit) {
        mine.set(view.key, hit);
        cacheHits++;
        done++;
      } else {
        missing.push({ path: req.path, hash, view });
      }
    }
  });
  opts.onProgress?.(done, total);

  const chunk = opts.chunk ?? 256;
  for (let start = 0; start < missing.length; start += chunk) {
    const part = missing.slice(start, start + chunk);
    const jobs: FeatureJob[] = part.map((m) => ({ input: m.path, source: m.path, draw: m.view.draw(m.hash) }));
    const base = done;
    const results = await extractor.extract(jobs, (n) => opts.onProgress?.(base + n, total));
    for (const [k, r] of results.entries()) {
      const m = part[k] as (typeof part)[number];
      if (r instanceof ImageDecodeError || !(r instanceof Float32Array)) {
        failed.set(m.path, r instanceof Error ? r.message : 'no result');
        continue;
      }
      const kept = encode(r);
      features.get(m.path)?.set(m.view.key, kept);
      if (cache) await cache.put(m.hash, m.view.key, kept);
    }
    done = base + part.length;
    opts.onProgress?.(done, total);
  }
  for (const path of failed.keys()) features.delete(path);
  const failures = [...failed].map(([path, error]) => ({ path, error }));
  for (const f of failures) opts.logger?.warn('image skipped', { path: f.path, error: f.error });
  return { features, failed: failures, cacheHits, computed: missing.length };
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const run = async () => {
    while (i < items.length) {
      const item = items[i++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}
