import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { benchTrain } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { visionAction } from './vision-options';

const SPEC = {
  data: { env: 'SHELF_BENCH_DATA', flag: 'data', description: 'dataset whose cached bottlenecks to train on (with --backbone); default synthetic', schema: cfg.optionalString() },
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone of the cached bottlenecks', schema: cfg.optionalString() },
  rows: { env: 'SHELF_BENCH_ROWS', flag: 'rows', description: 'bottleneck rows', schema: cfg.int(3000, 1) },
  dim: { env: 'SHELF_BENCH_DIM', flag: 'dim', description: 'bottleneck size (synthetic)', schema: cfg.int(512, 1) },
  classes: { env: 'SHELF_BENCH_CLASSES', flag: 'classes', description: 'classes (synthetic)', schema: cfg.int(43, 2) },
  head: { env: 'SHELF_HEAD', flag: 'head', description: 'softmax or mlp', schema: z.enum(['softmax', 'mlp']).default('softmax') },
  normalize: { env: 'SHELF_NORMALIZE', flag: 'normalize', description: 'l2 or none', schema: z.enum(['l2', 'none']).default('l2') },
  epochs: { env: 'SHELF_EPOCHS', flag: 'epochs', description: 'epochs', schema: cfg.int(40, 1) },
  batchSize: { env: 'SHELF_BATCH_SIZE', flag: 'batch-size', description: 'batch size', schema: cfg.int(100, 1) },
  learningRate: { env: 'SHELF_LEARNING_RATE', flag: 'learning-rate', description: 'learning rate', schema: z.coerce.number().positive().default(0.01) },
  cacheDir: { env: 'SHELF_CACHE_DIR', flag: 'cache-dir', description: 'cache folder', schema: cfg.optionalString() },
};

/** `shelf bench train`: time to train a head on cached bottlenecks; last stdout line is JSON. */
export function registerBenchTrain(bench: Command): void {
  const cmd = bench.command('train').description('Head training time on bottlenecks in memory (synthetic, or cached ones of --data/--backbone)');
  addConfigOptions(cmd, SPEC);
  cmd.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    const r = await benchTrain({ ...c, data: c.data, backbone: c.backbone });
    process.stdout.write(`${r.head} head on ${r.rows} x ${r.dim} bottlenecks, ${r.classes} classes, ${r.epochs} epochs: ${r.seconds} s (${r.backend})\n`);
    process.stdout.write(JSON.stringify(r) + '\n');
  }));
}
