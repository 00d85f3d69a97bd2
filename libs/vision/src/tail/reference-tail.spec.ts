import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { silentLogger } from '@shelfsight/common';
import { GROCERY_DIR, REFERENCE_BACKBONE, requireShared } from '../../../../test/support/workspace-data';
import { loadBackbone } from '../backbones/resolve';
import { findFreezePoint } from '../backbones/freeze';
import { InThreadExtractor } from '../extractor';
import { BackboneError } from '../errors';
import { frozenPart } from './frozen';
import { tailForward } from './tail-math';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { saveModel } from '../artifact/artifact';
import { describeBackbone } from '../backbones/backbone';
import { Head } from '../head/head';
import { seededRng } from '../image/distort';
import { loadClassifier } from '../tfjs-classifier';
import { predictImagesWithModel } from '../pipeline/predict-images';

const withShared = requireShared('the reference backbone freeze-point tests') ? describe : describe.skip;

function realImages(): string[] {
  const lines = readFileSync(join(GROCERY_DIR, 'train.txt'), 'utf8').trim().split('\n');
  return [lines[0], lines[900], lines[1800]].map((l) => join(GROCERY_DIR, ((l as string).split(',')[0] as string).trim()));
}

withShared('freeze points of the reference MobileNet V1 0.5', () => {
  it('offers the 7×7×512 activations before the last block and before the last pointwise conv, whose pretrained tail gives the backbone feature vector', async () => {
    const backbone = await loadBackbone(REFERENCE_BACKBONE, { logger: silentLogger });
    try {
      expect(backbone.freezePoints?.map((f) => [f.name, f.shape])).toEqual([
        ['last-block', [7, 7, 512]],
        ['last-pointwise', [7, 7, 512]],
      ]);
      const images = realImages();
      const jobs = images.map((p) => ({ input: p, source: p }));
      const pooled = (await new InThreadExtractor(backbone).extract(jobs)) as Float32Array[];
      for (const name of ['last-block', 'last-pointwise']) {
        const fp = findFreezePoint(backbone.freezePoints, name, backbone.id);
        const sut = frozenPart(backbone, fp);
        expect(sut.featureDim).toBe(7 * 7 * 512);
        const acts = (await new InThreadExtractor(sut).extract(jobs)) as Float32Array[];
        const tail = sut.pretrainedTail?.(fp);
        if (!tail) throw new Error('the graph backbone offers no pretrained tail');
        const { spec, params } = tail;
        const x = new Float32Array(images.length * 7 * 7 * 512);
        acts.forEach((a, i) => x.set(a, i * a.length));
        const out = tailForward(spec, params, x, images.length).pooled;
        let maxDiff = 0;
        let maxAbs = 0;
        pooled.forEach((p, i) => p.forEach((v, k) => {
          maxDiff = Math.max(maxDiff, Math.abs(v - (out[i * 512 + k] as number)));
          maxAbs = Math.max(maxAbs, Math.abs(v));
        }));
        expect(maxAbs).toBeGreaterThan(0.5);
        expect(maxDiff).toBeLessThan(1e-3);
      }
      expect(() => findFreezePoint(backbone.freezePoints, 'Conv2d_3', backbone.id)).toThrow(BackboneError);
    } finally {
      backbone.dispose();
    }
  }, 60_000);

  it('gives the same labels and confidences through shelf predict (worker threads, frozen part + tail) as through the classifier an agent runs, for a tuned artifact', async () => {
    const backbone = await loadBackbone(REFERENCE_BACKBONE, { logger: silentLogger });
    const dir = await mkdtemp(join(tmpdir(), 'shelf-tuned-ref-'));
    try {
      const fp = findFreezePoint(backbone.freezePoints, 'last-block', backbone.id);
      const tail = backbone.pretrainedTail?.(fp);
      if (!tail) throw new Error('no pretrained tail');
      // A "tuned" tail: the pretrained one, nudged, so the test would notice a path that skipped it.
      const rng = seededRng(4);
      const params = tail.params.map((v) => v * (1 + 0.2 * (rng() - 0.5)));
      const head = Head.init({ type: 'mlp', inputDim: 512, numClasses: 3, hidden: 16, normalize: 'l2' }, 2);
      const model = join(dir, 'model');
      await saveModel(model, { head, labels: ['a', 'b', 'c'], backbone: { ...describeBackbone(backbone), source: REFERENCE_BACKBONE }, training: { tta: 'zoom-flip' }, metrics: {}, tail: { freezePoint: fp, spec: tail.spec, params } });
      head.dispose();
      const images = realImages();
      const predicted = await predictImagesWithModel({ model, inputs: images, topK: 3, workers: 2, logger: silentLogger });
      const sut = await loadClassifier({ model, backbone, logger: silentLogger });
      expect(sut.tail?.freezePoint.node).toBe(fp.node);
      for (const [i, path] of images.entries()) {
        const c = await sut.classify(await readFile(path));
        const p = predicted.predictions[i];
        expect(p?.label).toBe(c.category);
        expect(p?.confidence).toBeCloseTo(c.confidence, 4);
      }
    } finally {
      backbone.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
