import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { benchTrain, benchTune, TRAIN_PRESET_NAMES, TRAIN_PRESETS, type TrainPresetName } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction } from './vision-options';

const SPEC = {
  preset: { env: 'SHELF_TRAIN_PRESET', flag: 'preset', description: `head settings of a shelf train preset (${TRAIN_PRESET_NAMES.join(', ')}); explicit options override them`, schema: z.enum(TRAIN_PRESET_NAMES as [string, ...string[]]).default('fast') },
  data: { env: 'SHELF_BENCH_DATA', flag: 'data', description: 'dataset whose cached bottlenecks to train on (with --backbone); default synthetic', schema: cfg.optionalString() },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone of the cached bottlenecks', schema: cfg.optionalString() },
  rows: { env: 'SHELF_BENCH_ROWS', flag: 'rows', description: 'bottleneck rows', schema: cfg.int(3000, 1) },
  dim: { env: 'SHELF_BENCH_DIM', flag: 'dim', description: 'bottleneck size (synthetic)', schema: cfg.int(512, 1) },
  classes: { env: 'SHELF_BENCH_CLASSES', flag: 'classes', description: 'classes (synthetic)', schema: cfg.int(43, 2) },
  head: { env: 'SHELF_HEAD', flag: 'head', description: 'softmax or mlp (default: the preset\'s)', schema: z.enum(['softmax', 'mlp']).optional() },
  normalize: { env: 'SHELF_NORMALIZE', flag: 'normalize', description: 'l2 or none (default: the preset\'s)', schema: z.enum(['l2', 'none']).optional() },
  epochs: { env: 'SHELF_EPOCHS', flag: 'epochs', description: 'epochs (default: the preset\'s)', schema: z.coerce.number().int().min(1).optional() },
  batchSize: { env: 'SHELF_BATCH_SIZE', flag: 'batch-size', description: 'batch size (default: the preset\'s)', schema: z.coerce.number().int().min(1).optional() },
  learningRate: { env: 'SHELF_LEARNING_RATE', flag: 'learning-rate', description: 'learning rate (default: the preset\'s)', schema: z.coerce.number().positive().optional() },
  ensemble: { env: 'SHELF_ENSEMBLE', flag: 'ensemble', description: 'heads trained together (default: the preset\'s)', schema: z.coerce.number().int().min(1).max(16).optional() },
  workers: { env: 'SHELF_WORKERS', flag: 'workers', description: 'threads for the ensemble members and the backbone (default: all cores)', schema: z.coerce.number().int().min(1).max(64).optional() },
  tuneFrom: { env: 'SHELF_TUNE_FROM', flag: 'tune-from', description: 'time shelf train --tune-from end to end instead (needs --data and --backbone): activations, tuning, heads, artifact; with --val-data scored once', schema: cfg.optionalString() },
  tuneEpochs: { env: 'SHELF_TUNE_EPOCHS', flag: 'tune-epochs', description: 'tuning epochs (with --tune-from)', schema: z.coerce.number().int().min(1).optional() },
  groupRuns: { env: 'SHELF_GROUP_RUNS', flag: 'group-runs', description: 'split by photo runs (with --tune-from)', schema: z.coerce.number().int().min(0).optional() },
  valData: { env: 'SHELF_VAL_DATA', flag: 'val-data', description: 'images scored once at the end (with --tune-from): val_accuracy', schema: cfg.optionalString() },
  images: { env: 'SHELF_BENCH_IMAGES', flag: 'images', description: 'use about this many images of --data (smoke runs; with --tune-from)', schema: z.coerce.number().int().min(2).optional() },
  cacheDir: { env: 'SHELF_CACHE_DIR', flag: 'cache-dir', description: 'cache folder', schema: cfg.optionalString() },
};

/** `shelf bench train`: time to train a preset's head(s) on bottlenecks in memory; last stdout line is JSON. */
export function registerBenchTrain(bench: Command): void {
  const cmd = bench.command('train').description('Head training time on bottlenecks in memory (synthetic, or cached ones of --data/--backbone), with a shelf train preset\'s head settings');
  addConfigOptions(cmd, SPEC);
  cmd.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const p = TRAIN_PRESETS[c.preset as TrainPresetName].settings;
    if (c.tuneFrom) {
      if (!c.data || !c.backbone) throw new Error('--tune-from needs --data and --backbone');
      const t = await benchTune({
        preset: c.preset as TrainPresetName,
        data: c.data,
        backbone: c.backbone,
        valData: c.valData,
        images: c.images,
        ensemble: c.ensemble,
        epochs: c.epochs,
        workers: c.workers,
        cacheDir: c.cacheDir,
        tuneFrom: c.tuneFrom,
        tuneEpochs: c.tuneEpochs,
        groupRuns: c.groupRuns,
      });
      process.stdout.write(`tuned from ${t.freeze_point} on ${t.images} images: activations ${t.cache_s} s, tuning ${t.tune_s} s, heads ${t.heads_s} s, total ${t.total_s} s; val ${t.val_accuracy}; artifact ${t.artifact_bytes} bytes\n`);
      process.stdout.write(JSON.stringify(t) + '\n');
      return;
    }
    const r = await benchTrain({
      data: c.data,
      backbone: c.backbone,
      rows: c.rows,
      dim: c.dim,
      classes: c.classes,
      head: c.head ?? p.head,
      hidden: p.hidden,
      normalize: c.normalize ?? p.normalize,
      epochs: c.epochs ?? p.epochs,
      batchSize: c.batchSize ?? p.batchSize,
      learningRate: c.learningRate ?? p.learningRate,
      dropout: p.dropout,
      labelSmoothing: p.labelSmoothing,
      ensemble: c.ensemble ?? p.ensemble,
      workers: c.workers,
      cacheDir: c.cacheDir,
    });
    process.stdout.write(`${r.ensemble} × ${r.head} head on ${r.rows} x ${r.dim} bottlenecks, ${r.classes} classes, ${r.epochs} epochs: ${r.seconds} s (${r.backend})\n`);
    process.stdout.write(JSON.stringify({ preset: c.preset, ...r }) + '\n');
  }));
}
