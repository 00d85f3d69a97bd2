import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { loadModel } from '../artifact/artifact';
import { BackboneMismatchError } from '../errors';
import { InThreadExtractor } from '../extractor';
import { colourImage, meanColourBackbone, writeColourDataset } from '../testing/fixtures';
import { loadClassifier } from '../tfjs-classifier';
import { evaluateModel } from './evaluate-model';
import { predictImagesWithModel, predictionsToCsv } from './predict-images';
import { TRAIN_DEFAULTS, trainModel, type TrainModelOptions } from './train-model';

const CLASSES = { milk: [235, 235, 235], juice: [240, 140, 20], apples: [190, 20, 30] } as const;

describe(trainModel.name, () => {
  let dir: string;
  let modelDir: string;
  const backbone = meanColourBackbone();
  const extractor = new InThreadExtractor(backbone);
  /** trainModel on the colour fixtures with the stand-in backbone; the rest as given. */
  const train = (opts: Pick<TrainModelOptions, 'data' | 'out' | 'distortions'> & Partial<TrainModelOptions>) =>
    trainModel({ ...TRAIN_DEFAULTS, backbone: 'unused', extractor, logger: silentLogger, cacheDir: join(dir, 'cache'), ...opts });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-pipeline-'));
    await writeColourDataset(join(dir, 'data'), { milk: [...CLASSES.milk], juice: [...CLASSES.juice], apples: [...CLASSES.apples] }, 12);
    modelDir = join(dir, 'model');
    await train({
      data: join(dir, 'data'),
      out: modelDir,
      validationPercentage: 20,
      testingPercentage: 20,
      distortions: { flipLeftRight: true, brightness: 10 },
      views: 4,
      epochs: 15,
      learningRate: 0.1,
      batchSize: 16,
    });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes a small artifact with the backbone identity, a JSON-lines log and its plot', async () => {
    const model = await loadModel(modelDir);
    expect(model.labels).toEqual(['apples', 'juice', 'milk']);
    expect(model.manifest.backbone).toMatchObject({ id: backbone.id, checksum: backbone.checksum });
    expect(model.manifest.training).toMatchObject({ views: 4, augViews: 2, head: 'softmax' });
    expect(model.manifest.head.weightsBytes).toBeLessThan(1024);
    model.head.dispose();
    const log = (await readFile(join(modelDir, 'training-log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(log.length).toBeGreaterThan(1);
    expect(log[0]).toEqual(expect.objectContaining({ step: expect.any(Number), trainLoss: expect.any(Number), trainAccuracy: expect.any(Number) }));
    const png = await readFile(join(modelDir, 'training-log.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('evaluates on the held-out split with metrics, confusion matrix and misclassified list', async () => {
    const r = await evaluateModel({ model: modelDir, data: join(dir, 'data'), topK: 2, extractor, cacheDir: join(dir, 'cache'), logger: silentLogger });
    expect(r.split).toBe('testing');
    expect(r.metrics.images).toBeGreaterThan(0);
    expect(r.metrics.accuracy).toBe(1);
    expect(r.metrics.perClass.map((c) => c.label)).toEqual(['apples', 'juice', 'milk']);
    const confusion = JSON.parse(await readFile(join(r.outDir, 'confusion.json'), 'utf8')) as { labels: string[]; matrix: number[][] };
    expect(confusion.matrix.flat().reduce((a, b) => a + b, 0)).toBe(r.metrics.images);
    expect(existsSync(join(r.outDir, 'confusion.png'))).toBe(true);
    expect(JSON.parse(await readFile(join(r.outDir, 'misclassified.json'), 'utf8'))).toEqual([]);
  });

  it('predicts: CSV image,label,confidence with names as given, folders joined with file names, corrupt files skipped', async () => {
    const inbox = join(dir, 'inbox');
    await writeColourDataset(inbox, { x: [...CLASSES.juice] }, 2);
    const single = join(dir, 'single.png');
    await writeFile(single, await colourImage([...CLASSES.milk], 77, 'png'));
    await writeFile(join(inbox, 'x', 'broken.jpg'), Buffer.from('garbage'));
    const folderArg = join(inbox, 'x');
    const r = await predictImagesWithModel({ model: modelDir, inputs: [single, folderArg], topK: 2, extractor, cacheDir: false, logger: silentLogger });
    expect(r.failed.map((f) => f.path)).toEqual([`${folderArg}/broken.jpg`]);
    const csv = predictionsToCsv(r.predictions, 1).trim().split('\n');
    expect(csv[0]).toBe('image,label,confidence');
    expect(csv.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^${single},milk,(0|1)\\.\\d{6}$`)),
      expect.stringMatching(new RegExp(`^${folderArg}/x-0\\.jpg,juice,`)),
      expect.stringMatching(new RegExp(`^${folderArg}/x-1\\.jpg,juice,`)),
    ]);
    expect(predictionsToCsv(r.predictions, 2).split('\n')[1]).toMatch(/,milk:\d\.\d{6};(apples|juice):/);
  });

  it('classifies frames with loadClassifier and refuses a foreign backbone', async () => {
    const sut = await loadClassifier({ model: modelDir, backbone, topK: 2 });
    const result = await sut.classify(await colourImage([...CLASSES.apples], 5));
    expect(result.category).toBe('apples');
    expect(result.topK).toHaveLength(2);
    expect(result.topK[0]).toEqual({ category: 'apples', confidence: result.confidence });
    sut.dispose();
    const foreign = meanColourBackbone('mean-colour', 'e'.repeat(64));
    await expect(loadClassifier({ model: modelDir, backbone: foreign })).rejects.toThrow(BackboneMismatchError);
  });

  it('trains on sub-labels and reports their labels (--sublabels)', async () => {
    const hier = join(dir, 'hier');
    await writeColourDataset(join(hier, 'dairy'), { milk: [235, 235, 235], cream: [250, 240, 200] }, 6);
    await writeColourDataset(join(hier, 'fruit'), { apples: [190, 20, 30], oranges: [240, 140, 20] }, 6);
    const out = join(dir, 'hier-model');
    await train({
      cacheDir: false,
      data: hier,
      out,
      validationPercentage: 0,
      testingPercentage: 0,
      distortions: {},
      sublabels: true,
      epochs: 30,
      learningRate: 0.1,
      batchSize: 8,
    });
    const model = await loadModel(out);
    expect(model.labels).toEqual(['dairy', 'fruit']);
    expect(model.head.spec.numClasses).toBe(4);
    expect((await readFile(join(out, 'outputs.txt'), 'utf8')).trim().split('\n')).toEqual(['dairy/cream', 'dairy/milk', 'fruit/apples', 'fruit/oranges']);
    model.head.dispose();
    const sut = await loadClassifier({ model: out, backbone, topK: 2 });
    const r = await sut.classify(await colourImage([240, 140, 20], 99));
    expect(r.category).toBe('fruit');
    expect(r.topK.map((t) => t.category)).toEqual(['fruit', 'dairy']);
    expect(r.topK[0].confidence + r.topK[1].confidence).toBeCloseTo(1, 4);
    sut.dispose();
  });

  it('trains an ensemble (--ensemble): one head per seed, averaged, each member scored', async () => {
    const out = join(dir, 'ensemble-model');
    await train({
      data: join(dir, 'data'),
      out,
      validationPercentage: 20,
      testingPercentage: 20,
      distortions: {},
      ensemble: 3,
      epochs: 10,
      learningRate: 0.1,
      batchSize: 16,
    });
    const model = await loadModel(out);
    expect(model.head.members).toBe(3);
    expect(model.manifest.training).toMatchObject({ ensemble: 3, seed: 1 });
    expect(model.manifest.metrics.memberValidationAccuracy).toHaveLength(3);
    const log = (await readFile(join(out, 'training-log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { member: number });
    expect(new Set(log.map((r) => r.member))).toEqual(new Set([1, 2, 3]));
    model.head.dispose();
    const sut = await loadClassifier({ model: out, backbone, topK: 1 });
    expect((await sut.classify(await colourImage([...CLASSES.juice], 77))).category).toBe('juice');
    sut.dispose();
  });
});
