import { seededRng } from '../image/distort';
import { trainEnsemble } from './ensemble';
import { trainHead, trainHeads, DEFAULT_TRAIN_OPTIONS, type FeatureSet } from './train';

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

const opts = { ...DEFAULT_TRAIN_OPTIONS, head: { type: 'mlp' as const, hidden: 16, normalize: 'l2' as const }, numClasses: 3, epochs: 3, batchSize: 10, dropout: 0.5 };
const weightsOf = async (p: Promise<Array<{ head: { toWeights(): Float32Array; dispose(): void } }>>) =>
  (await p).map((r) => {
    const w = r.head.toWeights();
    r.head.dispose();
    return Array.from(w);
  });

describe(trainHead.name, () => {
  it('is reproducible for a seed, dropout included, and differs between seeds', async () => {
    const data = clusters(60, 5);
    const run = async (seed: number) => (await weightsOf(trainHead(data, undefined, { ...opts, seed }).then((r) => [r])))[0];
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });
});

describe(trainHeads.name, () => {
  it('trains member k exactly as a single head with seed + k would (own init, data order and dropout masks)', async () => {
    const data = clusters(60, 5);
    const val = clusters(30, 6);
    const batched = await weightsOf(trainHeads(data, val, { ...opts, seed: 7 }, 3));
    const single = await Promise.all([7, 8, 9].map(async (seed) => (await weightsOf(trainHead(data, val, { ...opts, seed }).then((r) => [r])))[0]));
    expect(batched).toHaveLength(3);
    batched.forEach((w, k) => {
      const s = single[k] as number[];
      expect(w.length).toBe(s.length);
      expect(Math.max(...w.map((v, i) => Math.abs(v - (s[i] as number))))).toBeLessThan(1e-5);
    });
    expect(batched[1]).not.toEqual(batched[0]);
    expect(batched[2]).not.toEqual(batched[1]);
  });

  it('reports evaluations per member and keeps each member’s best validation step', async () => {
    const data = clusters(60, 5);
    const seen = new Map<number, number>();
    const r = await trainHeads(data, clusters(30, 6), { ...opts, seed: 1 }, 2, (_rec, m) => seen.set(m, (seen.get(m) ?? 0) + 1));
    expect([...seen.keys()].sort()).toEqual([0, 1]);
    expect(seen.get(0)).toBe(3);
    for (const m of r) {
      expect(m.bestValAccuracy).toBeGreaterThan(0.9);
      expect(m.history).toHaveLength(3);
      m.head.dispose();
    }
  });
});

describe(trainEnsemble.name, () => {
  it('gives the same members on two worker threads as in this thread', async () => {
    const data = clusters(60, 5);
    const inThread = await weightsOf(trainEnsemble(data, undefined, opts, 3, { workers: 1 }));
    const threaded = await weightsOf(trainEnsemble(data, undefined, opts, 3, { workers: 2 }));
    expect(threaded).toHaveLength(3);
    threaded.forEach((w, k) => expect(Math.max(...w.map((v, i) => Math.abs(v - ((inThread[k] as number[])[i] as number))))).toBeLessThan(1e-5));
  });
});
