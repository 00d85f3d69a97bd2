import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { encodeTrainingRows, TRAINING_ROWS_FILE } from '@shelfsight/contracts';
import { createLogger, createProgress, type Logger } from '@shelfsight/common';
import { readManifest, saveModel } from '../artifact/artifact';
import { describeBackbone } from '../backbones/backbone';
import { DEFAULT_BACKBONE } from '../backbones/builtin';
import { loadBackbone } from '../backbones/resolve';
import { extractFeatures } from '../features';
import { predictGrouped, trainHead } from '../head/train';
import * as tf from '@tensorflow/tfjs';
import { DEMO_CATEGORIES, renderShelfPhoto, type DemoCategory } from './synthetic';

export interface DemoModel {
  modelDir: string;
  framesDir: string;
  categories: string[];
}

export interface DemoOptions {
  logger?: Logger;
  /**
   * Training images per category (default 20) and held-out images per category (default 24: at
   * least the hub gate's default GATE_MIN_EVAL_ROWS, so the demo model is verified, not only overridable).
   */
  trainPerClass?: number;
  heldOutPerClass?: number;
  /** Sample frames for the simulated agents (default 36). */
  frames?: number;
}

/** Location codes over two aisles: A-01-1-A … B-03-3-B. */
export function demoLocations(): string[] {
  const out: string[] = [];
  for (const aisle of ['A', 'B'])
    for (const rack of ['01', '02', '03'])
      for (const shelf of ['1', '2', '3']) for (const bin of ['A', 'B']) out.push(`${aisle}-${rack}-${shelf}-${bin}`);
  return out;
}

/**
 * Everything `npm start` needs on a bare machine, made from nothing but npm packages:
 * synthetic shelf photos (SVG rendered by sharp), a head trained on them with the
 * built-in `nsfw-mobilenet-v2` backbone, and sample frames with location sidecars for
 * the simulated agents. Reuses whatever `dataDir` already holds.
 */
export async function ensureDemoModel(dataDir: string, opts: DemoOptions = {}): Promise<DemoModel> {
  const logger = opts.logger ?? createLogger('vision').child({ task: 'demo-model' });
  const modelDir = join(dataDir, 'demo-model');
  const framesDir = join(dataDir, 'demo-frames');
  const categories = [...DEMO_CATEGORIES];
  await mkdir(dataDir, { recursive: true });
  await ensureFrames(framesDir, opts.frames ?? 36, logger);
  if (await hasModel(modelDir)) {
    logger.info('demo model present', { modelDir });
    return { modelDir, framesDir, categories };
  }
  await trainDemoModel(dataDir, modelDir, opts, logger);
  return { modelDir, framesDir, categories };
}

async function hasModel(dir: string): Promise<boolean> {
  try {
    await readManifest(dir);
    return true;
  } catch {
    return false;
  }
}

async function ensureFrames(framesDir: string, count: number, logger: Logger): Promise<void> {
  await mkdir(framesDir, { recursive: true });
  const existing = (await readdir(framesDir)).filter((f) => f.endsWith('.jpg'));
  if (existing.length >= count) return;
  const locations = demoLocations();
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const name = `frame-${String(i + 1).padStart(3, '0')}`;
    if (existsSync(join(framesDir, `${name}.json`))) continue;
    const location = locations[i % locations.length] as string;
    // Aisle A holds the chilled cartons, aisle B the fruit; the last bins of each rack vary.
    const aisleCats: DemoCategory[] = location.startsWith('A') ? ['milk', 'juice'] : ['apples', 'bananas'];
    const category = aisleCats[(i + Math.floor(i / 7)) % 2] as DemoCategory;
    await writeFile(join(framesDir, `${name}.jpg`), await renderShelfPhoto(category, 900_000 + i));
    const capturedAt = new Date(now - (count - i) * 60_000).toISOString();
    await writeFile(join(framesDir, `${name}.json`), JSON.stringify({ location, capturedAt }) + '\n');
  }
  logger.info('demo frames written', { framesDir, count });
}

async function trainDemoModel(dataDir: string, modelDir: string, opts: DemoOptions, logger: Logger): Promise<void> {
  const started = Date.now();
  const trainPer = opts.trainPerClass ?? 20;
  const heldPer = opts.heldOutPerClass ?? 24;
  const cats = [...DEMO_CATEGORIES];
  // Written as class folders so `shelf train --data <dataDir>/demo-train` works on them too.
  const jobs: Array<{ path: string; label: number; held: boolean }> = [];
  for (const [label, cat] of cats.entries()) {
    for (const [split, n] of [
      ['demo-train', trainPer],
      ['demo-heldout', heldPer],
    ] as const) {
      const dir = join(dataDir, split, cat);
      await mkdir(dir, { recursive: true });
      for (let i = 0; i < n; i++) {
        const path = join(dir, `${cat}-${String(i).padStart(3, '0')}.jpg`);
        if (!existsSync(path)) {
          const seed = (split === 'demo-train' ? 10_000 : 50_000) + label * 1000 + i;
          await writeFile(path, await renderShelfPhoto(cat, seed));
        }
        jobs.push({ path, label, held: split === 'demo-heldout' });
      }
    }
  }
  const backbone = await loadBackbone(DEFAULT_BACKBONE, { logger });
  try {
    const progress = createProgress('demo model: bottlenecks', jobs.length);
    const feats = await extractFeatures(
      backbone,
      jobs.map((j) => ({ input: j.path, source: j.path })),
      { batchSize: 8, onBatch: () => progress.tick(8) },
    );
    progress.done();
    const dim = backbone.featureDim;
    const pack = (held: boolean) => {
      const rows = jobs.map((j, i) => ({ j, f: feats[i] })).filter((r) => r.j.held === held && r.f instanceof Float32Array);
      const x = new Float32Array(rows.length * dim);
      rows.forEach((r, i) => x.set(r.f as Float32Array, i * dim));
      return { dim, x, y: Int32Array.from(rows.map((r) => r.j.label)), ids: rows.map((r) => `image:${relative(dataDir, r.j.path)}`) };
    };
    const train = pack(false);
    const held = pack(true);
    const result = await trainHead(train, undefined, {
      head: { type: 'softmax', normalize: 'l2' },
      numClasses: cats.length,
      learningRate: 0.01,
      optimizer: 'adam',
      epochs: 60,
      batchSize: 32,
      patience: 0,
      labelSmoothing: 0,
      weightDecay: 0,
      dropout: 0,
      seed: 7,
    });
    const heldX = tf.tensor2d(held.x, [held.y.length, dim]);
    const { probs, labels } = predictGrouped(result.head, heldX, held);
    heldX.dispose();
    const correct = probs.filter((p, i) => p.indexOf(Math.max(...p)) === labels[i]).length;
    const accuracy = correct / Math.max(1, probs.length);
    const manifest = await saveModel(modelDir, {
      head: result.head,
      labels: cats,
      backbone: describeBackbone(backbone),
      training: {
        data: 'synthetic demo shelves',
        images: train.y.length,
        head: 'softmax',
        normalize: 'l2',
        learningRate: 0.01,
        epochs: 60,
        batchSize: 32,
      },
      metrics: { heldOutAccuracy: accuracy, heldOutImages: probs.length },
    });
    result.head.dispose();
    // The training rows (held-out images as testing rows): the hub's registry freezes its evaluation set from them.
    await writeFile(
      join(modelDir, TRAINING_ROWS_FILE),
      encodeTrainingRows({
        dim,
        labels: cats,
        label: Uint32Array.from([...train.y, ...held.y]),
        split: Uint8Array.from([...new Array<number>(train.y.length).fill(0), ...new Array<number>(held.y.length).fill(2)]),
        x: Float32Array.from([...train.x, ...held.x]),
        ids: [...train.ids, ...held.ids],
      }),
    );
    logger.info('demo model trained', {
      modelDir,
      version: manifest.version,
      heldOutAccuracy: +accuracy.toFixed(4),
      heldOutImages: probs.length,
      seconds: +((Date.now() - started) / 1000).toFixed(1),
    });
    process.stderr.write(`demo model: held-out accuracy ${(accuracy * 100).toFixed(1)}% on ${probs.length} synthetic images\n`);
  } finally {
    backbone.dispose();
  }
}
