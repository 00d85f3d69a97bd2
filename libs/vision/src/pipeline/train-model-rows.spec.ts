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

  it('holds testing rows out: neither trained on nor used to pick the epoch, returned as split 2 for the registry', async () => {
    const dim = 3;
    // Pre-computed testing rows (a base version's frozen evaluation rows) with a misleading colour.
    const testing: TrainingRows = {
      dim,
      labels: ['milk'],
      label: new Uint32Array(5),
      split: Uint8Array.from([2, 2, 2, 2, 2]),
      x: Float32Array.from({ length: 5 * dim }, (_, i) => [0.94, 0.55, 0.08][i % 3] as number),
      ids: ['t0', 't1', 't2', 't3', 't4'],
    };
    const seen: TrainModelProgress[] = [];
    const r = await train({ data: join(dir, 'data'), extraRows: testing, keepTesting: true, testingPercentage: 30, out: join(dir, 'e'), onProgress: (p) => seen.push(p) });
    const training = r.manifest.training as { images: { training: number; validation: number; testing: number }; rows: { training: number; validation: number; testing: number } };
    expect(training.images.testing).toBeGreaterThan(0);
    const split = [...r.rows.split];
    // The dataset's testing images and the pre-computed testing rows come back as split 2 ...
    expect(split.filter((x) => x === 2)).toHaveLength(training.images.testing + 5);
    expect(training.rows.testing).toBe(training.images.testing + 5);
    // ... but the head trained on split 0 only and validated on split 1 only.
    const last = seen[seen.length - 1] as TrainModelProgress;
    expect(last.rows).toBe(split.filter((x) => x === 0).length);
    expect(training.rows.training).toBe(split.filter((x) => x === 0).length);
    expect(r.manifest.metrics.validationImages).toBe(training.images.validation);
    const at = split.lastIndexOf(2);
    expect(Array.from(r.rows.x.subarray(at * dim, (at + 1) * dim))).toEqual(Array.from(testing.x.subarray(4 * dim, 5 * dim)));
    // Without keepTesting (plain shelf train) the testing images are not even computed.
    const plain = await train({ data: join(dir, 'data'), testingPercentage: 30, out: join(dir, 'f') });
    expect([...plain.rows.split].filter((x) => x === 2)).toHaveLength(0);
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
