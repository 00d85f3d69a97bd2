import { seededRng } from '../image/distort';
import { trainHead, DEFAULT_TRAIN_OPTIONS, type FeatureSet } from './train';

/** Three separable clusters in 8 dimensions. */
function clusters(n: number, seed: number): FeatureSet {
  const rng = seededRng(seed);
  const dim = 8;
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    for (let d = 0; d < dim; d++) x[i * dim + d] = (d % 3 === y[i] ? 2 : 0) + rng();
  }
  return { dim, x, y };
}

describe(trainHead.name, () => {
  const opts = { ...DEFAULT_TRAIN_OPTIONS, head: { type: 'mlp' as const, hidden: 16, normalize: 'l2' as const }, numClasses: 3, epochs: 3, batchSize: 10, dropout: 0.5 };

  it('is reproducible for a seed, dropout included, and differs between seeds', async () => {
    const data = clusters(60, 5);
    const run = async (seed: number) => {
      const r = await trainHead(data, undefined, { ...opts, seed });
      const w = r.head.toWeights();
      r.head.dispose();
      return w;
    };
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });
});
