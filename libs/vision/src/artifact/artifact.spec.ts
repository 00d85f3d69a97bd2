import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackboneInfo } from '../backbones/backbone';
import { BackboneMismatchError, TruncatedArtifactError, UnsupportedFormatVersionError } from '../errors';
import { Head } from '../head/head';
import { assertSameBackbone, loadModel, saveModel } from './artifact';

const backbone: BackboneInfo = {
  id: 'test-backbone',
  checksum: 'a'.repeat(64),
  format: 'tfjs-layers',
  inputSize: [32, 32],
  inputRange: [0, 1],
  featureDim: 6,
  source: 'test-backbone',
};

describe(loadModel.name, () => {
  let dir: string;
  let modelDir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shelf-artifact-'));
    modelDir = join(dir, 'model');
    const head = Head.init({ type: 'softmax', inputDim: 6, numClasses: 3, normalize: 'l2' }, 3);
    await saveModel(modelDir, { head, labels: ['milk', 'juice', 'apples'], backbone, training: { lr: 0.01 }, metrics: { accuracy: 0.5 } });
    head.dispose();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('round-trips head weights, labels and backbone identity', async () => {
    const sut = await loadModel(modelDir);
    expect(sut.labels).toEqual(['milk', 'juice', 'apples']);
    expect(sut.manifest.formatVersion).toBe(1);
    expect(sut.manifest.backbone).toMatchObject({ id: 'test-backbone', checksum: 'a'.repeat(64) });
    expect(sut.head.toWeights()).toHaveLength(6 * 3 + 3);
    expect(sut.manifest.head.weightsBytes).toBe((6 * 3 + 3) * 4);
    sut.head.dispose();
  });

  it('round-trips an ensemble head: members stored one after another, probabilities averaged', async () => {
    const spec = { type: 'mlp' as const, inputDim: 6, numClasses: 3, hidden: 4, normalize: 'l2' as const };
    const [a, b] = [Head.init(spec, 11), Head.init(spec, 12)];
    const x = tf.tensor2d([[1, 0, 2, 0, 1, 3], [0, 4, 1, 1, 0, 0]]);
    const pa = a.predict(x).arraySync();
    const pb = b.predict(x).arraySync();
    const ensembleDir = join(dir, 'ensemble');
    const ensemble = Head.ensemble([a, b]);
    await saveModel(ensembleDir, { head: ensemble, labels: ['milk', 'juice', 'apples'], backbone, training: {}, metrics: {} });
    ensemble.dispose();

    const sut = await loadModel(ensembleDir);
    expect(sut.manifest.head).toMatchObject({ members: 2, params: 2 * (6 * 4 + 4 + 4 * 3 + 3) });
    const p = sut.head.predict(x).arraySync();
    p.forEach((row, i) => row.forEach((v, k) => expect(v).toBeCloseTo(((pa[i]![k] as number) + (pb[i]![k] as number)) / 2, 5)));
    // ...and differs from either member alone.
    expect(Math.abs((p[0]![0] as number) - (pa[0]![0] as number))).toBeGreaterThan(1e-4);
    sut.head.dispose();
    x.dispose();
  });

  it('refuses a truncated weights file', async () => {
    await truncate(join(modelDir, 'head.bin'), 10);
    await expect(loadModel(modelDir)).rejects.toThrow(TruncatedArtifactError);
  });

  it('refuses a cut-off manifest', async () => {
    const text = await readFile(join(modelDir, 'manifest.json'), 'utf8');
    await writeFile(join(modelDir, 'manifest.json'), text.slice(0, text.length / 2));
    await expect(loadModel(modelDir)).rejects.toThrow(/manifest.json is not complete JSON/);
  });

  it('refuses a missing labels file', async () => {
    await rm(join(modelDir, 'labels.txt'));
    await expect(loadModel(modelDir)).rejects.toThrow(TruncatedArtifactError);
  });

  it('refuses an unknown format version', async () => {
    const manifest = JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(modelDir, 'manifest.json'), JSON.stringify({ ...manifest, formatVersion: 99 }));
    await expect(loadModel(modelDir)).rejects.toThrow(UnsupportedFormatVersionError);
  });

  it('refuses a foreign backbone', async () => {
    const sut = await loadModel(modelDir);
    expect(() => assertSameBackbone(sut.manifest, { id: 'test-backbone', checksum: 'b'.repeat(64) })).toThrow(BackboneMismatchError);
    expect(() => assertSameBackbone(sut.manifest, { id: 'other', checksum: 'a'.repeat(64) })).toThrow(/trained on backbone test-backbone/);
    expect(() => assertSameBackbone(sut.manifest, { id: 'test-backbone', checksum: 'a'.repeat(64) })).not.toThrow();
    sut.head.dispose();
  });
});
