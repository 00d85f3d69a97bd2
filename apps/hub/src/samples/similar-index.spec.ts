import type { HubConfig } from '../config/hub-config';
import { SimilarIndex } from './similar-index';
import type { SamplesRepository } from './samples.repository';
import { uncertaintyOf } from './sample-scores';

/** The repository's two catch-up queries over an in-memory table (the boundary). */
function fakeRepo(rows: Array<{ id: bigint; embedding: Uint8Array }>): Pick<SamplesRepository, 'embeddingsSince' | 'nthNewestId'> {
  return {
    embeddingsSince: async (_b: string, after: bigint, limit: number) => rows.filter((r) => r.id > after).slice(0, limit),
    nthNewestId: async (_b: string, n: number) => [...rows].reverse()[n]?.id ?? 0n,
  };
}

function vector(dim: number, seed: number): Float32Array {
  const v = new Float32Array(dim);
  let s = seed;
  for (let i = 0; i < dim; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  return v;
}

const bytes = (v: Float32Array) => new Uint8Array(v.buffer.slice(0));
const cos = (a: Float32Array, b: Float32Array) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
};

describe(SimilarIndex.name, () => {
  const DIM = 96;
  // 300 shelves, 10 frames of each: near-duplicates around a centre, as real samples are.
  const centres = Array.from({ length: 300 }, (_, i) => vector(DIM, i + 1));
  const vectors = Array.from({ length: 3000 }, (_, i) => {
    const noise = vector(DIM, 10_000 + i);
    return centres[i % 300]!.map((x, j) => x + 0.15 * noise[j]!);
  });
  const rows = vectors.map((v, i) => ({ id: BigInt(i + 1), embedding: bytes(v) }));

  it('proposes the true nearest neighbours by cosine first', async () => {
    const sut = new SimilarIndex(fakeRepo(rows) as SamplesRepository, { similarIndexMax: 10_000 } as HubConfig);
    for (let q = 0; q < 20; q++) {
      const query = vectors[q * 100]!;
      const truth = vectors
        .map((v, i) => ({ id: BigInt(i + 1), s: cos(query, v) }))
        .filter((x) => x.id !== BigInt(q * 100 + 1))
        .sort((a, b) => b.s - a.s)
        .slice(0, 3)
        .map((x) => x.id);
      const got = await sut.nearest('b', query, 9, BigInt(q * 100 + 1));
      expect(got).not.toContain(BigInt(q * 100 + 1));
      for (const id of truth) expect(got).toContain(id);
    }
  });

  it('holds at most SIMILAR_INDEX_MAX vectors, the newest', async () => {
    const sut = new SimilarIndex(fakeRepo(rows) as SamplesRepository, { similarIndexMax: 500 } as HubConfig);
    const got = await sut.nearest('b', vectors[0]!, 50, 0n);
    expect(got.every((id) => id > 2500n)).toBe(true);
    expect(sut.bytes).toBeLessThan(500 * (DIM + 16 + 8) + 1);
  });
});

describe('uncertaintyOf', () => {
  it('gives the top-2 margin and the entropy with the mass outside the top-k as one outcome', () => {
    const u = uncertaintyOf([
      { category: 'juice', confidence: 0.3 },
      { category: 'milk', confidence: 0.5 },
    ]);
    expect(u.margin).toBeCloseTo(0.2);
    expect(u.entropy).toBeCloseTo(-(0.5 * Math.log(0.5) + 0.3 * Math.log(0.3) + 0.2 * Math.log(0.2)));
    expect(uncertaintyOf([{ category: 'milk', confidence: 1 }])).toEqual({ margin: 1, entropy: 0 });
  });
});
