import { createLogger, type Logger } from '@shelfsight/common';
import { computeBottlenecks } from '../bottlenecks';
import { loadDataset } from '../data/dataset';
import { CENTER_VIEW } from '../data/views';
import { gaussian, seededRng } from '../image/distort';
import type { FeatureNorm, HeadType } from '../head/head';
import { trainHead, type FeatureSet } from '../head/train';
import { openExtraction } from '../pipeline/context';
import { initRuntime } from '../runtime';

export interface TrainBenchOptions {
  /** Real bottlenecks: a dataset and backbone (bottlenecks from the cache, computed if missing). */
  data?: string;
  backbone?: string;
  /** Synthetic bottlenecks otherwise. */
  rows: number;
  dim: number;
  classes: number;
  head: HeadType;
  normalize: FeatureNorm;
  epochs: number;
  batchSize: number;
  learningRate: number;
  workers?: number;
  cacheDir?: string;
  logger?: Logger;
}

export interface TrainBenchResult {
  source: string;
  backend: string;
  rows: number;
  dim: number;
  classes: number;
  head: HeadType;
  epochs: number;
  steps: number;
  seconds: number;
  /** CPU time of this process during training (wall time suffers when other work shares the cores). */
  cpu_seconds: number;
  rows_per_s: number;
  train_accuracy: number;
}

function syntheticSet(rows: number, dim: number, classes: number): FeatureSet {
  const rng = seededRng(42);
  const centers = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => Math.max(0, gaussian(rng))));
  const x = new Float32Array(rows * dim);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const c = r % classes;
    y[r] = c;
    const ctr = centers[c] as Float32Array;
    for (let d = 0; d < dim; d++) x[r * dim + d] = Math.max(0, (ctr[d] as number) + gaussian(rng) * 0.8);
  }
  return { dim, x, y };
}

/** Time to train a head on bottlenecks already in memory (the part `shelf train` repeats when only the head changes). */
export async function benchTrain(opts: TrainBenchOptions): Promise<TrainBenchResult> {
  const logger = opts.logger ?? createLogger('bench');
  const runtime = await initRuntime(logger);
  let set: FeatureSet;
  let classes = opts.classes;
  let source = 'synthetic';
  if (opts.data && opts.backbone) {
    const ds = await loadDataset(opts.data);
    const images = ds.images.slice(0, opts.rows);
    const ctx = await openExtraction({ backbone: opts.backbone, workers: opts.workers, cacheDir: opts.cacheDir, logger }, images.length);
    try {
      const bn = await computeBottlenecks(images.map((i) => ({ path: i.path, views: [CENTER_VIEW] })), ctx.extractor, ctx.cache, { logger });
      const ok = images.filter((i) => bn.features.has(i.path));
      const dim = ctx.extractor.backbone.featureDim;
      const x = new Float32Array(ok.length * dim);
      ok.forEach((i, k) => x.set(bn.features.get(i.path)?.get(CENTER_VIEW.key) as Float32Array, k * dim));
      const labelIndex = new Map(ds.labels.map((l, i) => [l, i]));
      set = { dim, x, y: Int32Array.from(ok.map((i) => labelIndex.get(i.label) as number)) };
      classes = ds.labels.length;
      source = `${ds.source} (${bn.cacheHits} cached, ${bn.computed} computed)`;
    } finally {
      await ctx.close();
    }
  } else {
    set = syntheticSet(opts.rows, opts.dim, opts.classes);
  }
  const cpuBefore = process.cpuUsage();
  const result = await trainHead(set, undefined, {
    head: { type: opts.head, normalize: opts.normalize },
    numClasses: classes,
    learningRate: opts.learningRate,
    optimizer: 'adam',
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    patience: 0,
    labelSmoothing: 0,
    weightDecay: 0,
    dropout: 0,
    seed: 1,
  });
  const cpu = process.cpuUsage(cpuBefore);
  const last = result.history[result.history.length - 1];
  result.head.dispose();
  const seconds = result.durationMs / 1000;
  return {
    source,
    backend: runtime.backend,
    rows: set.y.length,
    dim: set.dim,
    classes,
    head: opts.head,
    epochs: opts.epochs,
    steps: result.steps,
    seconds: Math.round(seconds * 100) / 100,
    cpu_seconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    rows_per_s: Math.round((set.y.length * opts.epochs) / seconds),
    train_accuracy: last?.trainAccuracy ?? NaN,
  };
}
