import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingRows } from '@shelfsight/contracts';
import { computeBottlenecks } from '../bottlenecks';
import { distortedView } from '../data/views';
import { TrainingCancelledError, TrainOptionsError } from '../errors';
import { hasDistortions, type DistortionOptions } from '../image/distort';
import { openExtraction, type ExtractionOptions } from './context';
import { TRAIN_PRESETS } from './presets';

/** The distortions a thumbnail augmentation uses when it names none: those of `shelf train --preset accurate`. */
export const THUMBNAIL_DISTORTIONS: DistortionOptions = TRAIN_PRESETS.accurate.settings.distortions;

export interface ThumbnailImage {
  /** Row id prefix (e.g. `sample:42`); each view's row is `<id>#<view key>`. */
  id: string;
  label: string;
  /** The encoded image (JPEG, PNG, WebP). */
  bytes: Buffer;
}

export interface ThumbnailViewOptions extends ExtractionOptions {
  images: ThumbnailImage[];
  /** Distorted views per image. */
  views: number;
  distortions: DistortionOptions;
  /** Folder for the images while the backbone reads them (default the system temp folder). */
  workDir?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface ThumbnailViewResult {
  /** One training row (split 0) per image and view, labels sorted. */
  rows: TrainingRows;
  /** Images that could not be decoded: skipped, never fatal. */
  skipped: Array<{ id: string; error: string }>;
  seconds: number;
}

/**
 * Training rows from distorted views of small images (the labelled samples' thumbnails):
 * the same views as `shelf train` draws for its training images (`distortedView`, seeded by
 * the image's content hash, so a view's bottleneck is cached and a retried job reuses it),
 * through the backbone. An undecodable image is skipped and reported, never fatal.
 */
export async function thumbnailViewRows(opts: ThumbnailViewOptions): Promise<ThumbnailViewResult> {
  const started = Date.now();
  if (!hasDistortions(opts.distortions)) throw new TrainOptionsError('thumbnail augmentation needs at least one distortion (flipLeftRight, crop, scale, brightness, blur, noise, rotate)');
  const views = Array.from({ length: opts.views }, (_, i) => distortedView(opts.distortions, i));
  const dir = await mkdtemp(join(opts.workDir ?? tmpdir(), 'thumbnails-'));
  try {
    // In image order (rows come out in this order, so a job's rows do not depend on write timing).
    const paths = new Map<string, ThumbnailImage>(opts.images.map((img, i) => [join(dir, `${i}.img`), img]));
    await Promise.all([...paths].map(([path, img]) => writeFile(path, img.bytes)));
    const requests = [...paths.keys()].map((path) => ({ path, views }));
    const ctx = await openExtraction(opts, requests.length * views.length);
    let result;
    try {
      result = await computeBottlenecks(requests, ctx.extractor, ctx.cache, { logger: ctx.logger, onProgress: opts.onProgress, chunk: 64 });
    } finally {
      await ctx.close();
    }
    if (opts.signal?.aborted) throw new TrainingCancelledError();
    const dim = ctx.extractor.backbone.featureDim;
    const labels = [...new Set(opts.images.map((i) => i.label))].sort();
    const x: number[][] = [];
    const label: number[] = [];
    const ids: string[] = [];
    for (const [path, img] of paths) {
      const feats = result.features.get(path);
      if (!feats) continue;
      for (const view of views) {
        const f = feats.get(view.key);
        if (!f) continue;
        x.push(Array.from(f));
        label.push(labels.indexOf(img.label));
        ids.push(`${img.id}#${view.key}`);
      }
    }
    const flat = new Float32Array(x.length * dim);
    x.forEach((row, i) => flat.set(row, i * dim));
    return {
      rows: { dim, labels, label: Uint32Array.from(label), split: new Uint8Array(label.length), x: flat, ids },
      skipped: result.failed.map((f) => ({ id: (paths.get(f.path) as ThumbnailImage).id, error: f.error })),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
