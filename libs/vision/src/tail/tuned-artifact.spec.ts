import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@shelfsight/common';
import { describeBackbone, type Backbone } from '../backbones/backbone';
import { loadModel, saveModel } from '../artifact/artifact';
import { TruncatedArtifactError } from '../errors';
import { Head } from '../head/head';
import { seededRng } from '../image/distort';
import { toBatch } from '../image/batch';
import { decodeRgb, renderInput, toInputRange } from '../image/preprocess';
import { initRuntime } from '../runtime';
import { TfjsFrameClassifier } from '../tfjs-classifier';
import { tailForward, tailParamCount, type TailSpec } from './tail-math';
import { headProbs } from './tune';

/** A tiny graph-like backbone: 9×9 input, the "freeze point" a 3×3 average pool (3 channels). */
function fakeBackbone(): Backbone {
  const info = { id: 'tiny', checksum: 'b'.repeat(64), format: 'tfjs-graph' as const, inputSize: [9, 9] as [number, number], inputRange: [0, 1] as [number, number], featureDim: 3, source: 'tiny' };
  const activationAt = (batch: tf.Tensor4D) => tf.tidy(() => tf.avgPool(batch, 3, 3, 'valid') as tf.Tensor4D);
  return {
    ...info,
    freezePoints: [{ name: 'pool', node: 'pool', shape: [3, 3, 3], tail: [{ kind: 'depthwise', weights: 'w', batchNorm: 'bn', epsilon: 1e-3 }, { kind: 'pointwise', weights: 'w2', batchNorm: 'bn2', epsilon: 1e-3 }] }],
    extract: (batch) => tf.tidy(() => tf.mean(activationAt(batch), [1, 2]) as tf.Tensor2D),
    activationAt,
    dispose: () => undefined,
  };
}

describe('tuned model artifact', () => {
  let dir: string;
  beforeAll(() => initRuntime(silentLogger));
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-tuned-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("predicts what the training-time forward pass gives on the same activations: saved, loaded, and through the classifier's frozen part + tail", async () => {
    const backbone = fakeBackbone();
    const fp = backbone.freezePoints?.[0];
    if (!fp) throw new Error('no freeze point');
    const spec: TailSpec = { hw: [3, 3], channels: 3, layers: ['depthwise', 'pointwise'] };
    const rng = seededRng(5);
    const tail = Float32Array.from({ length: tailParamCount(spec) }, () => rng() * 1.5 - 0.4);
    const headSpec = { type: 'mlp' as const, inputDim: 3, numClasses: 4, hidden: 5, normalize: 'l2' as const };
    const head = Head.init(headSpec, 9);
    const headWeights = head.toWeights();
    head.groups = [0, 0, 1, 2];
    const modelDir = join(dir, 'model');
    const manifest = await saveModel(modelDir, {
      head,
      labels: ['apple', 'milk', 'juice'],
      backbone: describeBackbone(backbone),
      training: { tta: 'none' },
      metrics: {},
      groups: [0, 0, 1, 2],
      outputs: ['apple/red', 'apple/green', 'milk/milk', 'juice/juice'],
      tail: { freezePoint: fp, spec, params: tail },
    });
    head.dispose();
    expect(manifest.tail).toEqual({ freezePoint: 'pool', node: 'pool', shape: [3, 3, 3], layers: ['depthwise', 'pointwise'], params: tailParamCount(spec) });
    expect(manifest.head.weightsBytes).toBe((headWeights.length + tail.length) * 4);

    // A real image through the frozen part: the activation training would have cached.
    const jpeg = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 40, b: 90 } } })
      .composite([{ input: await sharp({ create: { width: 12, height: 30, channels: 3, background: { r: 10, g: 220, b: 30 } } }).png().toBuffer(), left: 5, top: 0 }])
      .jpeg()
      .toBuffer();
    const px = toInputRange(await renderInput(await decodeRgb(jpeg), [9, 9]), [0, 1]);
    const act = tf.tidy(() => backbone.activationAt?.(toBatch([px], { size: [9, 9], range: [0, 1] }), 'pool').dataSync() as Float32Array);
    // Training time: tail forward + head (outputs summed per label).
    const outProbs = headProbs(headSpec, headWeights, tailForward(spec, tail, act, 1).pooled);
    const expected = [(outProbs[0] as number) + (outProbs[1] as number), outProbs[2] as number, outProbs[3] as number];

    const loaded = await loadModel(modelDir);
    expect(loaded.tail?.params).toEqual(tail);
    const sut = new TfjsFrameClassifier(backbone, loaded.head, loaded.labels, loaded.manifest, 3, false, undefined, loaded.tail);
    const views = await sut.embed(jpeg);
    const { probabilities } = sut.classifyViews(views);
    expect(Array.from(probabilities)).toHaveLength(3);
    probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i] as number, 5));
    // Not a trivial tail: the tuned tail's features differ from the backbone's own.
    const plain = tf.tidy(() => backbone.extract(toBatch([px], { size: [9, 9], range: [0, 1] })).dataSync() as Float32Array);
    expect(Math.max(...Array.from(views[0] as Float32Array, (v, i) => Math.abs(v - (plain[i] as number))))).toBeGreaterThan(1e-3);
    sut.dispose();
  });

  it('refuses an artifact whose tail weights were cut short', async () => {
    const backbone = fakeBackbone();
    const fp = backbone.freezePoints?.[0];
    if (!fp) throw new Error('no freeze point');
    const spec: TailSpec = { hw: [3, 3], channels: 3, layers: ['pointwise'] };
    const head = Head.init({ type: 'softmax', inputDim: 3, numClasses: 2, normalize: 'none' }, 1);
    const modelDir = join(dir, 'model');
    const m = await saveModel(modelDir, { head, labels: ['a', 'b'], backbone: describeBackbone(backbone), training: {}, metrics: {}, tail: { freezePoint: fp, spec, params: new Float32Array(tailParamCount(spec)).fill(0.1) } });
    head.dispose();
    const bytes = await readFile(join(modelDir, m.head.weightsFile));
    await writeFile(join(modelDir, m.head.weightsFile), bytes.subarray(0, bytes.length - 4));
    await expect(loadModel(modelDir)).rejects.toBeInstanceOf(TruncatedArtifactError);
  });
});
