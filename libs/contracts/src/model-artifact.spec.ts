import { createHash } from 'node:crypto';
import { ArtifactVerificationError, verifyArtifact, type ArtifactFiles } from './model-artifact';
import { decodeTrainingRows, encodeTrainingRows, TrainingRowsFormatError } from './training-rows';

function tinyArtifact(labels = ['apples', 'milk']): ArtifactFiles {
  const weights = Buffer.from(new Float32Array([1, 0, 0, 1, 0, 0, 0, 0]).buffer);
  const manifest = {
    formatVersion: 1,
    version: 'v1',
    createdAt: '2026-12-01T00:00:00.000Z',
    backbone: { id: 'bb', checksum: 'c'.repeat(64), format: 'tfjs-layers', inputSize: [16, 16], inputRange: [0, 1], featureDim: 3, source: 'bb' },
    input: { size: [16, 16], range: [0, 1], resize: 'cover-centre' },
    head: { type: 'softmax', inputDim: 3, numClasses: 2, normalize: 'none', params: 8, weightsFile: 'head.bin', weightsBytes: 32, weightsSha256: createHash('sha256').update(weights).digest('hex') },
    labels: { file: 'labels.txt', count: labels.length },
    training: {},
    metrics: {},
  };
  return { manifest: Buffer.from(JSON.stringify(manifest)), weights, labels: Buffer.from(labels.join('\n') + '\n') };
}

describe(verifyArtifact.name, () => {
  it('accepts a complete artifact and returns its head', () => {
    const v = verifyArtifact(tinyArtifact());
    expect(v.labels).toEqual(['apples', 'milk']);
    expect(Array.from(v.head.weights.slice(0, 4))).toEqual([1, 0, 0, 1]);
  });

  it('refuses truncated weights, changed weights, a wrong label count and broken JSON, saying which', () => {
    const a = tinyArtifact();
    expect(() => verifyArtifact({ ...a, weights: a.weights.subarray(0, 28) })).toThrow(/head.bin has 28 bytes, manifest says 32/);
    const flipped = Buffer.from(a.weights);
    flipped[0] = 7;
    expect(() => verifyArtifact({ ...a, weights: flipped })).toThrow(/checksum differs/);
    expect(() => verifyArtifact({ ...a, labels: Buffer.from('apples\n') })).toThrow(/1 labels, manifest says 2/);
    expect(() => verifyArtifact({ ...a, manifest: a.manifest.subarray(0, 40) })).toThrow(ArtifactVerificationError);
  });
});

describe(encodeTrainingRows.name, () => {
  it('round-trips labels, splits, ids and embeddings', () => {
    const rows = { dim: 3, labels: ['a', 'b'], label: Uint32Array.from([0, 1, 1]), split: Uint8Array.from([0, 1, 2]), x: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), ids: ['r1', 'r2', 'r3'] };
    const back = decodeTrainingRows(encodeTrainingRows(rows));
    expect(back).toEqual(rows);
  });

  it('refuses a truncated file', () => {
    const buf = encodeTrainingRows({ dim: 2, labels: ['a'], label: Uint32Array.from([0]), split: Uint8Array.from([0]), x: Float32Array.from([1, 2]) });
    expect(() => decodeTrainingRows(buf.subarray(0, buf.length - 1))).toThrow(TrainingRowsFormatError);
  });
});
