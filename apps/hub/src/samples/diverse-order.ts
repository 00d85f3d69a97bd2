import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Bounds of one diverse ordering: what a `GET /samples?order=diverse` may cost the hub. */
export interface DiverseBounds {
  /** Candidates considered (the filtered samples of one backbone, least margin first). */
  pool: number;
  /** Most samples placed by the greedy pass; the rest of the pool follows in its own order. */
  maxRanked: number;
  /** Most multiply-adds of one greedy pass (ranked × pool × dim): fewer ranked for long embeddings. */
  budget: number;
  /** The pass yields to the event loop after this many multiply-adds, so other requests are served meanwhile. */
  slice: number;
}

export const DIVERSE_BOUNDS: DiverseBounds = { pool: 1000, maxRanked: 300, budget: 120_000_000, slice: 4_000_000 };

export interface DiverseOrder {
  /** Pool indices: the greedy farthest-point order first, then the rest of the pool as it came. */
  order: number[];
  /** How many of `order` the greedy pass placed. */
  ranked: number;
  /** Multiply-adds spent. */
  work: number;
}

/**
 * Greedy farthest-point order of unit vectors (cosine distance), bounded: the first pick is
 * the pool's first (its most uncertain), each next one the candidate least like those
 * already picked, until `maxRanked` or the work budget is reached; then the rest of the
 * pool in its own order. O(ranked × pool × dim), cooperative (yields every `slice`).
 */
export async function diverseOrder(vectors: readonly Float32Array[], bounds: DiverseBounds = DIVERSE_BOUNDS): Promise<DiverseOrder> {
  const n = vectors.length;
  const dim = vectors[0]?.length ?? 0;
  const perPick = Math.max(1, n * dim);
  const ranked = Math.min(n, bounds.maxRanked, Math.max(1, Math.floor(bounds.budget / perPick)));
  const order: number[] = [];
  const nearest = new Float64Array(n).fill(Infinity);
  const taken = new Uint8Array(n);
  let work = 0;
  let sinceYield = 0;
  let next = 0;
  while (n > 0 && order.length < ranked) {
    order.push(next);
    taken[next] = 1;
    if (order.length === ranked) break;
    const v = vectors[next]!;
    let best = -1;
    let bestD = -Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const u = vectors[i]!;
      let s = 0;
      for (let k = 0; k < dim; k++) s += v[k]! * u[k]!;
      const d = 1 - s;
      if (d < nearest[i]!) nearest[i] = d;
      if (nearest[i]! > bestD) {
        bestD = nearest[i]!;
        best = i;
      }
    }
    work += n * dim;
    sinceYield += n * dim;
    if (best < 0) break;
    next = best;
    if (sinceYield >= bounds.slice) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
  const placed = order.length;
  for (let i = 0; i < n; i++) if (!taken[i]) order.push(i);
  return { order, ranked: placed, work };
}

/**
 * Orders computed recently, by key (filter and backbone), for `ttlMs`: the pages of one
 * listing reuse one order, and concurrent requests for the same key share one computation.
 */
export class DiverseOrderCache<T> {
  private readonly entries = new Map<string, { at: number; value: Promise<T> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 64,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string, compute: () => Promise<T>): Promise<T> {
    const t = this.now();
    for (const [k, e] of this.entries) if (t - e.at > this.ttlMs) this.entries.delete(k);
    const hit = this.entries.get(key);
    if (hit) return hit.value;
    const value = compute();
    value.catch(() => this.entries.delete(key));
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { at: t, value });
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}
