import { createLogger, type Logger } from '@shelfsight/common';
import { computeBottlenecks } from '../bottlenecks';
import { loadDataset } from '../data/dataset';
import { CENTER_VIEW } from '../data/views';
import { gaussian, seededRng } from '../image/distort';
import type { FeatureNorm, HeadType } from '../head/head';
import { trainEnsemble } from '../head/ensemble';
import { DEFAULT_TRAIN_OPTIONS, type FeatureSet } from '../head/train';
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
  hidden?: number;
  normalize: FeatureNorm;
  epochs: number;
  batchSize: number;
  learningRate: number;
  dropout?: number;
  labelSmoothing?: number;
  /** Heads trained together (batched, split over `workers` threads). */
  ensemble?: number;
  /** Threads for the backbone (real bottlenecks) and for the ensemble members. */
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
  ensemble: number;
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
  const started = performance.now();
  const members = opts.ensemble ?? 1;
  const results = await trainEnsemble(
    set,
    undefined,
    {
      ...DEFAULT_TRAIN_OPTIONS,
      head: { type: opts.head, hidden: opts.hidden, normalize: opts.normalize },
      numClasses: classes,
      learningRate: opts.learningRate,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      labelSmoothing: opts.labelSmoothing ?? 0,
      dropout: opts.dropout ?? 0,
    },
    members,
    { workers: opts.workers },
  );
  // CPU of this process, worker threads included.
  const cpu = process.cpuUsage(cpuBefore);
  const result = results[0] as (typeof results)[number];
  const last = result.history[result.history.length - 1];
  for (const r of results) r.head.dispose();
  const seconds = (performance.now() - started) / 1000;
  return {
    source,
    backend: runtime.backend,
    rows: set.y.length,
    dim: set.dim,
    classes,
    head: opts.head,
    ensemble: members,
    epochs: opts.epochs,
    steps: result.steps,
    seconds: Math.round(seconds * 100) / 100,
    cpu_seconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    rows_per_s: Math.round((set.y.length * opts.epochs * members) / seconds),
    train_accuracy: last?.trainAccuracy ?? NaN,
  };
}
