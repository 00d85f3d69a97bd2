import { availableParallelism, cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { createLogger, type Logger } from '@shelfsight/common';
import { loadBackbone } from '../backbones/resolve';
import { DEMO_CATEGORIES, renderShelfPhoto } from '../demo/synthetic';
import type { FeatureJob } from '../features';
import { toBatch } from '../image/batch';
import { preprocessImage } from '../image/preprocess';
import { initRuntime } from '../runtime';
import { inputSpecOf } from '../features';
import { WorkerPoolExtractor } from '../workers/worker-pool';

export interface InferBenchOptions {
  backbone: string;
  /** Frames timed one at a time (latency). */
  frames: number;
  /** Frames pushed through the pools (throughput). */
  batchFrames: number;
  workers?: number;
  /** Throughput runs per worker count (alternating 1 and all workers); the spread is reported. */
  repeat?: number;
  /** Chunks queued per worker (the pool's default 2; 1 = the previous behaviour). */
  inFlight?: number;
  offline?: boolean;
  /** Images to use (encoded bytes); default: synthetic shelf photos. */
  images?: Buffer[];
  logger?: Logger;
}

export interface InferBenchResult {
  backbone: string;
  backend: string;
  input: [number, number];
  feature_dim: number;
  frames: number;
  p50_ms: number;
  p95_ms: number;
  mean_ms: number;
  frames_per_s_one_core: number;
  frames_per_s_all_cores: number;
  workers: number;
  /** Median all-cores over median one-core frames/s. */
  speedup: number;
  /** Frames/s of every run per worker count, with median, min and max. */
  throughput: Record<string, { median: number; min: number; max: number; runs: number[] }>;
  repeat: number;
  in_flight: number;
  /** 1-minute load average at the start and end (the machine may be shared). */
  load: [number, number];
  cpu: string;
  cores: number;
  node: string;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

async function throughput(spec: string, workers: number, jobs: FeatureJob[], offline: boolean, inFlight?: number): Promise<number> {
  const pool = await WorkerPoolExtractor.start(spec, { workers, offline, batchSize: 8, inFlight });
  try {
    await pool.extract(jobs.slice(0, Math.min(jobs.length, 8 * workers))); // warm-up
    const t = performance.now();
    await pool.extract(jobs);
    return jobs.length / ((performance.now() - t) / 1000);
  } finally {
    await pool.close();
  }
}

/**
 * Latency of one frame at a time (decode + resize + backbone, this thread) and
 * throughput of batch work with one worker vs one worker per core.
 */
export async function benchInfer(opts: InferBenchOptions): Promise<InferBenchResult> {
  const logger = opts.logger ?? createLogger('bench');
  const runtime = await initRuntime(logger);
  const images = opts.images ?? (await Promise.all(Array.from({ length: 16 }, (_, i) => renderShelfPhoto(DEMO_CATEGORIES[i % 4] as (typeof DEMO_CATEGORIES)[number], 777 + i))));
  const backbone = await loadBackbone(opts.backbone, { offline: opts.offline, logger });
  const spec = inputSpecOf(backbone);
  const times: number[] = [];
  try {
    for (let i = 0; i < opts.frames + 3; i++) {
      const img = images[i % images.length] as Buffer;
      const t = performance.now();
      const px = await preprocessImage(img, spec);
      const f = tf.tidy(() => backbone.extract(toBatch([px], spec)));
      await f.data();
      f.dispose();
      if (i >= 3) times.push(performance.now() - t);
    }
  } finally {
    backbone.dispose();
  }
  times.sort((a, b) => a - b);
  logger.info('latency measured', { p50: percentile(times, 50) });
  const jobs: FeatureJob[] = Array.from({ length: opts.batchFrames }, (_, i) => ({ input: images[i % images.length] as Buffer, source: `bench-${i}` }));
  const workers = opts.workers ?? availableParallelism();
  const repeat = Math.max(1, opts.repeat ?? 3);
  const counts = workers > 1 ? [1, workers] : [1];
  const runs = new Map<number, number[]>(counts.map((n) => [n, []]));
  const load0 = loadavg()[0] ?? 0;
  for (let r = 0; r < repeat; r++) {
    for (const n of counts) {
      const fps = await throughput(opts.backbone, n, jobs, !!opts.offline, opts.inFlight);
      runs.get(n)?.push(fps);
      logger.info('throughput measured', { run: r + 1, of: repeat, workers: n, fps: Math.round(fps * 100) / 100 });
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length / 2;
    const median = s.length % 2 ? (s[Math.floor(mid)] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
    return { median: r2(median), min: r2(s[0] as number), max: r2(s[s.length - 1] as number), runs: xs.map(r2) };
  };
  const throughputs = Object.fromEntries(counts.map((n) => [String(n), stats(runs.get(n) as number[])]));
  const one = (throughputs['1'] as { median: number }).median;
  const all = (throughputs[String(workers)] as { median: number }).median;
  return {
    backbone: backbone.id,
    backend: runtime.backend,
    input: backbone.inputSize,
    feature_dim: backbone.featureDim,
    frames: times.length,
    p50_ms: r2(percentile(times, 50)),
    p95_ms: r2(percentile(times, 95)),
    mean_ms: r2(times.reduce((a, b) => a + b, 0) / Math.max(1, times.length)),
    frames_per_s_one_core: r2(one),
    frames_per_s_all_cores: r2(all),
    workers,
    speedup: r2(all / one),
    throughput: throughputs,
    repeat,
    in_flight: opts.inFlight ?? 2,
    load: [r2(load0), r2(loadavg()[0] ?? 0)],
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    node: process.version,
  };
}
