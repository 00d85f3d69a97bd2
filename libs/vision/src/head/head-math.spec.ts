import * as tf from '@tensorflow/tfjs';
import { headParamCount, predictPlain, type HeadSpec } from '@shelfsight/contracts';
import { seededRng } from '../image/distort';
import { Head } from './head';

/** The hub's TensorFlow-free forward pass and the vision core's tf.js head compute the same probabilities. */
describe('plain head forward pass (contracts) vs Head.predict (tf.js)', () => {
  const rng = seededRng(7);
  const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
  const cases: Array<{ name: string; spec: HeadSpec; groups?: number[] }> = [
    { name: 'softmax, l2', spec: { type: 'softmax', inputDim: 8, numClasses: 4, normalize: 'l2' } },
    { name: 'softmax, none', spec: { type: 'softmax', inputDim: 8, numClasses: 3, normalize: 'none' } },
    { name: 'mlp', spec: { type: 'mlp', inputDim: 8, numClasses: 3, hidden: 6, normalize: 'l2' } },
    { name: 'ensemble of 3 mlp', spec: { type: 'mlp', inputDim: 8, numClasses: 3, hidden: 5, normalize: 'l2', members: 3 } },
    { name: 'softmax with groups', spec: { type: 'softmax', inputDim: 8, numClasses: 5, normalize: 'l2' }, groups: [0, 0, 1, 2, 2] },
  ];

  it.each(cases)('$name', ({ spec, groups }) => {
    const weights = random(headParamCount(spec), 0.8);
    const rows = 6;
    const x = random(rows * spec.inputDim, 2);
    const head = Head.fromWeights(spec, weights);
    if (groups) head.groups = groups;
    const input = tf.tensor2d(x, [rows, spec.inputDim]);
    const expected = head.predict(input);
    const want = expected.dataSync() as Float32Array;
    const got = predictPlain({ spec, weights, ...(groups ? { groups } : {}) }, x, rows);
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i] as number, 5);
    tf.dispose([input, expected]);
    head.dispose();
  });
});
