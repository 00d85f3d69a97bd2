import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@shelfsight/common';
import type { TrainingRows } from '@shelfsight/contracts';
import { InThreadExtractor } from '../extractor';
import { meanColourBackbone, writeColourDataset } from '../testing/fixtures';
import { TrainingCancelledError } from '../errors';
import { TRAIN_DEFAULTS, trainModel, type TrainModelOptions, type TrainModelProgress } from './train-model';

/** The path a retraining job takes through trainModel: pre-computed rows instead of (or beside) images. */
describe(`${trainModel.name} with pre-computed rows`, () => {
  let dir: string;
  const extractor = new InThreadExtractor(meanColourBackbone());
  const train = (opts: Pick<TrainModelOptions, 'out'> & Partial<TrainModelOptions>) =>
    trainModel({ ...TRAIN_DEFAULTS, backbone: 'unused', extractor, logger: silentLogger, cacheDir: join(dir, 'cache'), distortions: {}, epochs: 10, learningRate: 0.1, batchSize: 8, ...opts });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-rows-'));
    await writeColourDataset(join(dir, 'data'), { milk: [235, 235, 235], juice: [240, 140, 20], apples: [190, 20, 30] }, 10);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains the same weights from the rows it returned as from the images (same seed): shelf train and jobs share one function', async () => {
    const fromImages = await train({ data: join(dir, 'data'), out: join(dir, 'a'), seed: 7 });
    const fromRows = await train({ extraRows: fromImages.rows, out: join(dir, 'b'), seed: 7 });
    expect(fromRows.manifest.labels).toEqual(fromImages.manifest.labels);
    expect(await readFile(join(dir, 'b', 'head.bin'))).toEqual(await readFile(join(dir, 'a', 'head.bin')));
    expect(fromRows.rows.label).toEqual(fromImages.rows.label);
  });

  it('adds the rows beside the images, with a category only the rows know, and reports progress per evaluation', async () => {
    const dim = 3;
    const extra: TrainingRows = {
      dim,
      labels: ['cola'],
      label: new Uint32Array(8),
      split: Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1]),
      // mean colour of a near-black product, as the stand-in backbone would report it
      x: Float32Array.from({ length: 8 * dim }, (_, i) => 0.05 + (i % 5) * 0.01),
    };
    const seen: TrainModelProgress[] = [];
    const r = await train({ data: join(dir, 'data'), extraRows: extra, out: join(dir, 'c'), onProgress: (p) => seen.push(p) });
    expect(r.manifest.labels).toEqual({ file: 'labels.txt', count: 4 });
    expect(r.rows.labels).toEqual(['apples', 'cola', 'juice', 'milk']);
    expect(seen[0]).toEqual({ phase: 'bottlenecks' });
    const last = seen[seen.length - 1] as TrainModelProgress;
    expect(last).toMatchObject({ phase: 'training', epoch: 10, epochs: 10 });
    expect(last.rows).toBe(r.rows.split.filter((s) => s === 0).length);
  });

  it('stops at the next evaluation when cancelled', async () => {
    const ctl = new AbortController();
    let evaluations = 0;
    const run = train({
      data: join(dir, 'data'),
      out: join(dir, 'd'),
      epochs: 200,
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.phase === 'training' && p.step) evaluations++;
        if (evaluations === 3) ctl.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(TrainingCancelledError);
    expect(evaluations).toBe(3);
  });
});
