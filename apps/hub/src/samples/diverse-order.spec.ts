import { DiverseOrderCache, diverseOrder, type DiverseBounds } from './diverse-order';
import { SamplesService } from './samples.service';
import type { SampleFilter, SampleRow, SamplesRepository } from './samples.repository';
import type { SamplesQuery } from './sample.dto';

/** A unit vector near axis `axis` of `dim`, nudged by `jitter` on the next axis. */
function near(axis: number, dim: number, jitter: number): Float32Array {
  const v = new Float32Array(dim);
  v[axis] = 1;
  v[(axis + 1) % dim] = jitter;
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const WIDE: DiverseBounds = { pool: 1000, maxRanked: 300, budget: 1e12, slice: 1e6 };

describe(diverseOrder.name, () => {
  it('picks one sample from each cluster before a second from any, then the rest of the pool in its order', async () => {
    // 4 clusters of 5 along 4 axes; the pool order interleaves nothing (cluster after cluster).
    const vectors = [0, 1, 2, 3].flatMap((axis) => [0, 0.01, 0.02, 0.03, 0.04].map((j) => near(axis, 8, j)));
    const r = await diverseOrder(vectors, { ...WIDE, maxRanked: 4 });
    expect(r.ranked).toBe(4);
    expect(new Set(r.order.slice(0, 4).map((i) => Math.floor(i / 5)))).toEqual(new Set([0, 1, 2, 3]));
    expect(r.order[0]).toBe(0);
    expect([...r.order].sort((a, b) => a - b)).toEqual(vectors.map((_, i) => i));
    const rest = r.order.slice(4);
    expect(rest).toEqual([...rest].sort((a, b) => a - b));
  });

  it('never does more work than its budget: fewer samples are ranked for long embeddings or large pools', async () => {
    const dim = 512;
    const pool = Array.from({ length: 400 }, (_, i) => near(i % dim, dim, (i % 7) / 10));
    const budget = 2_000_000;
    const r = await diverseOrder(pool, { pool: 1000, maxRanked: 300, budget, slice: 500_000 });
    expect(r.work).toBeLessThanOrEqual(budget);
    expect(r.ranked).toBe(Math.floor(budget / (400 * dim)));
    expect(r.order).toHaveLength(400);
    // The cap on ranked samples holds however cheap the vectors are.
    expect((await diverseOrder(pool.map((v) => v.slice(0, 2)), { ...WIDE, maxRanked: 25 })).ranked).toBe(25);
  });

  it('yields to the event loop during a long pass', async () => {
    const pool = Array.from({ length: 300 }, (_, i) => near(i % 64, 64, (i % 5) / 10));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await diverseOrder(pool, { pool: 1000, maxRanked: 300, budget: 1e12, slice: 50_000 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });
});

describe(DiverseOrderCache.name, () => {
  it('computes once per key within the TTL (concurrent requests share it), again after it', async () => {
    let now = 0;
    let computed = 0;
    const sut = new DiverseOrderCache<number>(30_000, 64, () => now);
    const compute = async () => ++computed;
    expect(await Promise.all([sut.get('a', compute), sut.get('a', compute)])).toEqual([1, 1]);
    expect(await sut.get('b', compute)).toBe(2);
    now = 29_000;
    expect(await sut.get('a', compute)).toBe(1);
    now = 31_000;
    expect(await sut.get('a', compute)).toBe(3);
  });
});

describe(`${SamplesService.name} order=diverse`, () => {
  const bytes = (v: Float32Array) => new Uint8Array(v.buffer.slice(0));
  /** Samples of two backbones: "b-small" (dim 4) most uncertain first, "b-large" (dim 8). */
  const samples = [
    ...[0, 1, 2, 3].map((axis, i) => ({ id: BigInt(i + 1), backbone: 'b-small', embedding: bytes(near(axis, 4, 0)) })),
    ...[0, 1, 2].map((axis, i) => ({ id: BigInt(i + 11), backbone: 'b-large', embedding: bytes(near(axis, 8, 0)) })),
  ];
  const poolCalls: Array<{ backbone: string; pool: number }> = [];
  const fakeRepo = {
    diverseBackbone: async (_f: SampleFilter) => samples[0]!.backbone,
    diverseCandidates: async (_f: SampleFilter, backbone: string, pool: number) => {
      poolCalls.push({ backbone, pool });
      return samples.filter((s) => s.backbone === backbone).slice(0, pool).map((s) => ({ id: s.id, embedding: s.embedding }));
    },
    byIds: async (ids: bigint[]) => ids.map((id) => ({ id, state: 'pending', captured_at: new Date(0), received_at: new Date(0) }) as unknown as SampleRow),
  } as unknown as SamplesRepository;
  const query = (over: Partial<SamplesQuery>): SamplesQuery => ({ state: 'pending', order: 'diverse', limit: 2, ...over }) as SamplesQuery;

  beforeEach(() => (poolCalls.length = 0));

  it('spreads over one backbone only (the most uncertain sample\u2019s, or the one asked for), keeps it across pages, and computes the order once', async () => {
    const sut = new SamplesService(fakeRepo, {} as never, {} as never, {} as never, {} as never);
    const ids = (page: { items: Array<{ id: string }> }) => page.items.map((s) => s.id);
    const first = await sut.list(query({}));
    expect(first.backbone).toBe('b-small');
    const second = await sut.list(query({ cursor: first.nextCursor! }));
    expect([...ids(first), ...ids(second)].sort()).toEqual(['1', '2', '3', '4']);
    expect(second.nextCursor).toBeNull();
    expect(poolCalls).toEqual([{ backbone: 'b-small', pool: 1000 }]);
    const large = await sut.list(query({ backbone: 'b-large', limit: 5 }));
    expect(ids(large).sort()).toEqual(['11', '12', '13']);
    expect(poolCalls.map((c) => c.backbone)).toEqual(['b-small', 'b-large']);
  });

  it('asks the repository for at most the bounded pool', async () => {
    const sut = new SamplesService(fakeRepo, {} as never, {} as never, {} as never, {} as never);
    sut.diverseBounds = { pool: 2, maxRanked: 1, budget: 1e9, slice: 1e6 };
    const page = await sut.list(query({ limit: 10 }));
    expect(poolCalls).toEqual([{ backbone: 'b-small', pool: 2 }]);
    expect(page.items).toHaveLength(2);
  });
});
