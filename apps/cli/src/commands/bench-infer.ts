import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { cfg, loadConfig } from '@shelfsight/common';
import { benchInfer, benchModelInfer, DEFAULT_BACKBONE, IMAGE_EXTENSIONS, DEMO_CATEGORIES, renderShelfPhoto } from '@shelfsight/vision';
import { addConfigOptions, flagsFrom } from '../options';
import { OFFLINE_FIELD, visionAction } from './vision-options';

const SPEC = {
  backbone: { env: 'SHELF_BACKBONE', flag: 'backbone', description: 'backbone to measure', schema: cfg.string(DEFAULT_BACKBONE) },
  frames: { env: 'SHELF_BENCH_FRAMES', flag: 'frames', description: 'frames timed one at a time', schema: cfg.int(40, 1) },
  batchFrames: { env: 'SHELF_BENCH_BATCH_FRAMES', flag: 'batch-frames', description: 'frames for the throughput runs', schema: cfg.int(96, 8) },
  workers: { env: 'SHELF_WORKERS', flag: 'workers', description: 'workers for the all-cores run (default: all cores)', schema: z.coerce.number().int().min(1).optional() },
  repeat: { env: 'SHELF_BENCH_REPEAT', flag: 'repeat', description: 'throughput runs per worker count (median, min, max reported)', schema: cfg.int(3, 1) },
  inFlight: { env: 'SHELF_BENCH_IN_FLIGHT', flag: 'in-flight', description: 'chunks of 8 frames queued per worker (1 = no overlap of decode and backbone)', schema: cfg.int(2, 1) },
  model: { env: 'SHELF_BENCH_MODEL', flag: 'model', description: 'also time this model artifact frame by frame beside the head-only path on its backbone (a tuned model: frozen part + tail; ratio = its ms per frame over head-only)', schema: cfg.optionalString() },
  images: { env: 'SHELF_BENCH_IMAGES', flag: 'images', description: 'folder of images to use (default: synthetic shelf photos)', schema: cfg.optionalString() },
  offline: OFFLINE_FIELD,
};

/** `shelf bench infer`: per-frame latency and frames/s on one core vs all cores; last stdout line is JSON. */
export function registerBenchInfer(bench: Command): void {
  const cmd = bench.command('infer').description('Backbone inference: p50/p95 latency of single frames, frames/s on one core and on all cores');
  addConfigOptions(cmd, SPEC);
  cmd.action(visionAction(async (opts: Record<string, unknown>) => {
    const c = loadConfig(SPEC, flagsFrom(SPEC, opts));
    let images: Buffer[] | undefined;
    if (c.images) {
      const names = (await readdir(c.images)).filter((n) => IMAGE_EXTENSIONS.includes(extname(n).toLowerCase())).sort().slice(0, 32);
      images = await Promise.all(names.map((n) => readFile(join(c.images as string, n))));
    }
    const r = await benchInfer({ backbone: c.backbone, frames: c.frames, batchFrames: c.batchFrames, workers: c.workers, repeat: c.repeat, inFlight: c.inFlight, images, offline: c.offline });
    process.stdout.write(
      `${r.backbone} (${r.backend}, input ${r.input.join('x')}): p50 ${r.p50_ms} ms, p95 ${r.p95_ms} ms per frame; ` +
        `${r.frames_per_s_one_core} frames/s on one core, ${r.frames_per_s_all_cores} on ${r.workers} (x${r.speedup}; medians of ${r.repeat} runs, ` +
        `${Object.entries(r.throughput).map(([n, t]) => `${n}: ${t.min}-${t.max}`).join(', ')}; load ${r.load.join(' -> ')})\n`,
    );
    if (c.model) {
      const frames = images ?? (await Promise.all(Array.from({ length: 16 }, (_, i) => renderShelfPhoto(DEMO_CATEGORIES[i % 4] as (typeof DEMO_CATEGORIES)[number], 777 + i))));
      const m = await benchModelInfer({ model: c.model, images: frames, frames: c.frames, offline: c.offline });
      process.stdout.write(
        `model ${m.model} (${m.tuned ? `tuned from ${m.freeze_point}` : 'head only'}, tta ${m.tta}): p50 ${m.model_path.p50_ms} ms, ${m.model_path.frames_per_s} frames/s; ` +
          `head-only path p50 ${m.head_only.p50_ms} ms, ${m.head_only.frames_per_s} frames/s; ratio ${m.ratio}\n`,
      );
      process.stdout.write(JSON.stringify({ ...r, model: m }) + '\n');
      return;
    }
    process.stdout.write(JSON.stringify(r) + '\n');
  }));
}
