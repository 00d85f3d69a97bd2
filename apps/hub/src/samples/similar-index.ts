import { Inject, Injectable } from '@nestjs/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { embeddingFromBytes, normalised } from './embedding';
import { SamplesRepository } from './samples.repository';

/** Dimensions of the random projection used to prefilter. */
const PROJ_DIM = 32;
/** Projections of unit vectors on Gaussian directions are ≈ N(0, 1): ×32 fits int8 to ±4σ. */
const PROJ_SCALE = 32;
/** Candidates kept by the projection prefilter (at least; 1% of the index when larger), then compared on the int8 vectors. */
const PREFILTER = 400;
const PREFILTER_FRACTION = 0.01;
const LOAD_CHUNK = 5000;
/** At most one catch-up query per backbone this often: new samples are searchable within it. */
const CATCH_UP_MS = 1000;

/** One backbone's vectors: normalised, int8-quantised (×127), plus a 64-d random projection of each. */
class BackboneIndex {
  ids: bigint[] = [];
  q8: Int8Array = new Int8Array(0);
  /** Projections, int8 (×PROJ_SCALE, clamped): a quarter of the memory to scan per query. */
  proj: Int8Array = new Int8Array(0);
  dim = 0;
  maxId = 0n;
  private planes?: Float32Array;

  add(id: bigint, v: Float32Array, max: number): void {
    if (this.dim === 0) this.dim = v.length;
    if (v.length !== this.dim) return;
    if (this.ids.length >= max) this.dropOldest(Math.max(1, Math.floor(max / 10)));
    const n = this.ids.length;
    if ((n + 1) * this.dim > this.q8.length) this.grow(Math.min(max, Math.max(1024, n * 2)));
    const u = normalised(v);
    const q = this.q8.subarray(n * this.dim, (n + 1) * this.dim);
    for (let i = 0; i < this.dim; i++) q[i] = Math.round(u[i]! * 127);
    const p = new Float32Array(PROJ_DIM);
    this.project(u, p);
    const o = n * PROJ_DIM;
    for (let j = 0; j < PROJ_DIM; j++) this.proj[o + j] = Math.max(-127, Math.min(127, Math.round(p[j]! * PROJ_SCALE)));
    this.ids.push(id);
    if (id > this.maxId) this.maxId = id;
  }

  /** Ids of the `k` best candidates for the (normalised) query by the int8 cosine. */
  candidates(query: Float32Array, k: number, exclude: bigint): bigint[] {
    const n = this.ids.length;
    if (n === 0 || query.length !== this.dim) return [];
    const qp = new Float32Array(PROJ_DIM);
    this.project(query, qp);
    // 1. prefilter on the projection: the PREFILTER highest projected dot products.
    const pre = topK(n, Math.min(n, Math.max(PREFILTER, Math.ceil(n * PREFILTER_FRACTION))), (i) => {
      let s = 0;
      const o = i * PROJ_DIM;
      for (let j = 0; j < PROJ_DIM; j++) s += qp[j]! * this.proj[o + j]!;
      return s;
    });
    // 2. rerank those on the full int8 vectors.
    const scored = pre.map((i) => {
      let s = 0;
      const o = i * this.dim;
      for (let j = 0; j < this.dim; j++) s += query[j]! * this.q8[o + j]!;
      return { i, s };
    });
    scored.sort((a, b) => b.s - a.s);
    return scored.filter((c) => this.ids[c.i] !== exclude).slice(0, k).map((c) => this.ids[c.i]!);
  }

  get bytes(): number {
    return this.q8.byteLength + this.proj.byteLength + this.ids.length * 8;
  }

  private project(u: Float32Array, out: Float32Array): void {
    if (!this.planes) {
      // Fixed seed: every replica and restart projects the same way.
      const rand = mulberry32(0x5eed);
      this.planes = new Float32Array(PROJ_DIM * this.dim);
      for (let i = 0; i < this.planes.length; i++) this.planes[i] = gaussian(rand);
    }
    for (let j = 0; j < PROJ_DIM; j++) {
      let s = 0;
      const o = j * this.dim;
      for (let i = 0; i < this.dim; i++) s += this.planes[o + i]! * u[i]!;
      out[j] = s;
    }
  }

  private grow(rows: number): void {
    const q8 = new Int8Array(rows * this.dim);
    q8.set(this.q8.subarray(0, this.ids.length * this.dim));
    const proj = new Int8Array(rows * PROJ_DIM);
    proj.set(this.proj.subarray(0, this.ids.length * PROJ_DIM));
    this.q8 = q8;
    this.proj = proj;
  }

  private dropOldest(count: number): void {
    this.ids.splice(0, count);
    this.q8.copyWithin(0, count * this.dim);
    this.proj.copyWithin(0, count * PROJ_DIM);
  }
}

/**
 * Nearest neighbours by cosine over the stored embeddings, in the hub process (no
 * pgvector). Per backbone, loaded on first use and caught up incrementally at most once a
 * second on query (samples with an id above the last one loaded, from any replica), it holds each
 * vector normalised and int8-quantised plus a 32-d Gaussian random projection (also int8): a query
 * scans the projections (32 multiply-adds per sample), reranks the best 400 (or 1%)
 * on the int8 vectors, and the caller reranks the best few exactly on the stored float32
 * vectors. Memory: about dim + 32 + 16 bytes per sample, ≈ 0.56 KB at 512-d, so ≈ 55 MB at
 * 100k; at most SIMILAR_INDEX_MAX vectors per backbone (the oldest are dropped, a tenth
 * at a time). Deleted samples stay in the index until a restart; callers drop ids that
 * no longer exist.
 */
@Injectable()
export class SimilarIndex {
  private readonly indexes = new Map<string, BackboneIndex>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly caughtUpAt = new Map<string, number>();

  constructor(
    private readonly repo: SamplesRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  /** Up to `k` candidate ids nearest to `vector` (excluding `exclude`), best first. */
  async nearest(backboneId: string, vector: Float32Array, k: number, exclude: bigint): Promise<bigint[]> {
    const index = await this.caughtUp(backboneId);
    return index.candidates(normalised(vector), k, exclude);
  }

  /** Memory held, bytes (for the benchmark and docs). */
  get bytes(): number {
    let b = 0;
    for (const i of this.indexes.values()) b += i.bytes;
    return b;
  }

  private async caughtUp(backboneId: string): Promise<BackboneIndex> {
    // One catch-up at a time per backbone; concurrent queries share it.
    const fresh = Date.now() - (this.caughtUpAt.get(backboneId) ?? -Infinity) < CATCH_UP_MS;
    if (fresh && !this.loading.has(backboneId)) return this.indexes.get(backboneId)!;
    let pending = this.loading.get(backboneId);
    if (!pending) {
      pending = this.catchUp(backboneId).finally(() => this.loading.delete(backboneId));
      this.loading.set(backboneId, pending);
    }
    await pending;
    return this.indexes.get(backboneId)!;
  }

  private async catchUp(backboneId: string): Promise<void> {
    let index = this.indexes.get(backboneId);
    if (!index) {
      index = new BackboneIndex();
      index.maxId = await this.repo.nthNewestId(backboneId, this.config.similarIndexMax);
      this.indexes.set(backboneId, index);
    }
    for (;;) {
      const rows = await this.repo.embeddingsSince(backboneId, index.maxId, LOAD_CHUNK);
      for (const r of rows) index.add(r.id, embeddingFromBytes(r.embedding), this.config.similarIndexMax);
      if (rows.length > 0) index.maxId = rows[rows.length - 1]!.id;
      if (rows.length < LOAD_CHUNK) break;
    }
    this.caughtUpAt.set(backboneId, Date.now());
  }
}

/** Indices of the k largest scores among 0..n-1 (a min-heap, O(n log k)). */
function topK(n: number, k: number, score: (i: number) => number): number[] {
  const heapI = new Int32Array(k);
  const heapS = new Float64Array(k);
  let size = 0;
  const down = (pos: number) => {
    for (;;) {
      const l = pos * 2 + 1;
      const r = l + 1;
      let m = pos;
      if (l < size && heapS[l]! < heapS[m]!) m = l;
      if (r < size && heapS[r]! < heapS[m]!) m = r;
      if (m === pos) return;
      [heapS[m], heapS[pos]] = [heapS[pos]!, heapS[m]!];
      [heapI[m], heapI[pos]] = [heapI[pos]!, heapI[m]!];
      pos = m;
    }
  };
  for (let i = 0; i < n; i++) {
    const s = score(i);
    if (size < k) {
      let pos = size++;
      heapS[pos] = s;
      heapI[pos] = i;
      while (pos > 0) {
        const p = (pos - 1) >> 1;
        if (heapS[p]! <= heapS[pos]!) break;
        [heapS[p], heapS[pos]] = [heapS[pos]!, heapS[p]!];
        [heapI[p], heapI[pos]] = [heapI[pos]!, heapI[p]!];
        pos = p;
      }
    } else if (s > heapS[0]!) {
      heapS[0] = s;
      heapI[0] = i;
      down(0);
    }
  }
  return Array.from(heapI.subarray(0, size));
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}
