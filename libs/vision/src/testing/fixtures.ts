import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import type { Backbone } from '../backbones/backbone';

// Generated stand-ins only: the workspace data (real photos, the reference backbone)
// is found through test/support/workspace-data.ts, never from a library's sources.

/**
 * A tiny stand-in backbone: features = mean R, G, B of the input. Counts its calls, so
 * tests can prove the cache spared it.
 */
export function meanColourBackbone(id = 'mean-colour', checksum = 'c'.repeat(64)): Backbone & { calls: number; images: number } {
  const b = {
    id,
    checksum,
    format: 'tfjs-layers' as const,
    inputSize: [16, 16] as [number, number],
    inputRange: [0, 1] as [number, number],
    featureDim: 3,
    source: id,
    calls: 0,
    images: 0,
    extract(batch: tf.Tensor4D): tf.Tensor2D {
      b.calls++;
      b.images += batch.shape[0];
      return tf.tidy(() => batch.mean([1, 2]) as tf.Tensor2D);
    },
    dispose: () => undefined,
  };
  return b;
}

export type Rgb = [number, number, number];

/** A noisy solid-colour JPEG (or PNG/WebP), different bytes per seed. */
export async function colourImage(rgb: Rgb, seed: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg', size = 40): Promise<Buffer> {
  const px = Buffer.alloc(size * size * 3);
  let s = seed * 9301 + 49297;
  for (let i = 0; i < px.length; i++) {
    s = (s * 9301 + 49297) % 233280;
    px[i] = Math.max(0, Math.min(255, (rgb[i % 3] as number) + Math.round((s / 233280 - 0.5) * 30)));
  }
  const img = sharp(px, { raw: { width: size, height: size, channels: 3 } });
  return format === 'png' ? img.png().toBuffer() : format === 'webp' ? img.webp({ lossless: true }).toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

/** Class folders `root/<label>/<label>-<i>.jpg` of noisy solid colours. */
export async function writeColourDataset(root: string, classes: Record<string, Rgb>, perClass: number): Promise<void> {
  for (const [label, rgb] of Object.entries(classes)) {
    await mkdir(join(root, label), { recursive: true });
    for (let i = 0; i < perClass; i++) await writeFile(join(root, label, `${label}-${i}.jpg`), await colourImage(rgb, i + label.length * 100));
  }
}
