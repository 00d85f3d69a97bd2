import { Inject, Injectable } from '@nestjs/common';
import { seededRng } from '@shelfsight/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { embeddingFromBytes, normalised } from './embedding';
import { SamplesRepository } from './samples.repository';

/** Bits of each vector's sign signature (SimHash): 4 × 32-bit words. */
const SIG_WORDS = 4;
const SIG_BITS = SIG_WORDS * 32;
/** Rounds of random sign flips + Walsh–Hadamard transform that make the signature's directions. */
const HD_ROUNDS = 2;
/** Candidates kept by the signature prefilter (at least; 1% of the index when larger), then compared on the int8 vectors. */
const PREFILTER = 400;
const PREFILTER_FRACTION = 0.01;
const LOAD_CHUNK = 5000;
/** At most one catch-up query per backbone this often: new samples are searchable within it. */
const CATCH_UP_MS = 1000;

/**
 * Sign signatures: bit b of a vector's signature is the sign of its projection on a random
 * direction. The directions come from HD_ROUNDS rounds of (random ±1 per coordinate, then a
 * fast Walsh–Hadamard transform) over the vector zero-padded to a power of two — O(d log d)
 * per vector instead of O(bits · d) for dense Gaussian directions. The Hamming distance of two
 * signatures estimates the angle between the vectors (SimHash), so the prefilter is a popcount.
 */
class Signer {
  private readonly size: number;
  private readonly signs: Int8Array;
  private readonly picks: Int32Array;
  private readonly work: Float32Array;

  constructor(dim: number) {
    let size = 1;
    while (size < Math.max(dim, SIG_BITS)) size *= 2;
    this.size = size;
    // Fixed seed: every replica and restart signs the same way.
    const rand = seededRng(0x5eed);
    this.signs = Int8Array.from({ length: HD_ROUNDS * size }, () => (rand() < 0.5 ? -1 : 1));
    // SIG_BITS distinct output coordinates.
    const order = Int32Array.from({ length: size }, (_, i) => i);
    for (let i = size - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    this.picks = order.slice(0, SIG_BITS);
    this.work = new Float32Array(size);
  }

  /** Write the signature of `u` into `out` at word offset `o`. */
  sign(u: Float32Array, out: Uint32Array, o: number): void {
    const w = this.work;
    const size = this.size;
    w.fill(0);
    w.set(u.subarray(0, Math.min(u.length, size)));
    for (let r = 0; r < HD_ROUNDS; r++) {
      const sg = r * size;
      for (let i = 0; i < size; i++) w[i] = w[i]! * this.signs[sg + i]!;
      for (let h = 1; h < size; h *= 2) {
        for (let i = 0; i < size; i += h * 2) {
          for (let j = i; j < i + h; j++) {
            const a = w[j]!;
            const b = w[j + h]!;
            w[j] = a + b;
            w[j + h] = a - b;
          }
        }
      }
    }
    for (let k = 0; k < SIG_WORDS; k++) {
      let word = 0;
      for (let b = 0; b < 32; b++) if (w[this.picks[k * 32 + b]!]! > 0) word |= 1 << b;
      out[o + k] = word >>> 0;
    }
  }
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** One backbone's vectors: normalised and int8-quantised (×127), plus a 128-bit sign signature of each. */
class BackboneIndex {
  ids: bigint[] = [];
  q8: Int8Array = new Int8Array(0);
  /** Signatures, SIG_WORDS words per vector: 16 bytes to scan per vector and query. */
  sigs: Uint32Array = new Uint32Array(0);
  dim = 0;
  maxId = 0n;
  private signer?: Signer;

  add(id: bigint, v: Float32Array, max: number): void {
    if (this.dim === 0) this.dim = v.length;
    if (v.length !== this.dim) return;
    if (this.ids.length >= max) this.dropOldest(Math.max(1, Math.floor(max / 10)));
    const n = this.ids.length;
    if ((n + 1) * this.dim > this.q8.length) this.grow(Math.min(max, Math.max(1024, n * 2)));
    const u = normalised(v);
    const q = this.q8.subarray(n * this.dim, (n + 1) * this.dim);
    for (let i = 0; i < this.dim; i++) q[i] = Math.round(u[i]! * 127);
    this.signerFor().sign(u, this.sigs, n * SIG_WORDS);
    this.ids.push(id);
    if (id > this.maxId) this.maxId = id;
  }

  /** Ids of the `k` best candidates for the (normalised) query by the int8 cosine. */
  candidates(query: Float32Array, k: number, exclude: bigint): bigint[] {
    const n = this.ids.length;
    if (n === 0 || query.length !== this.dim) return [];
    const qs = new Uint32Array(SIG_WORDS);
    this.signerFor().sign(query, qs, 0);
    // 1. prefilter: the vectors whose signatures are nearest in Hamming distance.
    const distance = new Uint8Array(n);
    const histogram = new Int32Array(SIG_BITS + 1);
    const sigs = this.sigs;
    const [q0, q1, q2, q3] = [qs[0]!, qs[1]!, qs[2]!, qs[3]!];
    for (let i = 0, o = 0; i < n; i++, o += SIG_WORDS) {
      const d = popcount32(sigs[o]! ^ q0) + popcount32(sigs[o + 1]! ^ q1) + popcount32(sigs[o + 2]! ^ q2) + popcount32(sigs[o + 3]! ^ q3);
      distance[i] = d;
      histogram[d]! += 1;
    }
    const want = Math.min(n, Math.max(PREFILTER, Math.ceil(n * PREFILTER_FRACTION)));
    let cut = 0;
    for (let seen = 0; cut <= SIG_BITS; cut++) {
      seen += histogram[cut]!;
      if (seen >= want) break;
    }
    const pre: number[] = [];
    for (let i = 0; i < n; i++) if (distance[i]! <= cut) pre.push(i);
    // 2. rerank those on the full int8 vectors.
    const q8 = this.q8;
    const dim = this.dim;
    const scored = pre.map((i) => {
      let s = 0;
      const o = i * dim;
      for (let j = 0; j < dim; j++) s += query[j]! * q8[o + j]!;
      return { i, s };
    });
    scored.sort((a, b) => b.s - a.s);
    return scored.filter((c) => this.ids[c.i] !== exclude).slice(0, k).map((c) => this.ids[c.i]!);
  }

  get bytes(): number {
    return this.q8.byteLength + this.sigs.byteLength + this.ids.length * 8;
  }

  private signerFor(): Signer {
    this.signer ??= new Signer(this.dim);
    return this.signer;
  }

  private grow(rows: number): void {
    const q8 = new Int8Array(rows * this.dim);
    q8.set(this.q8.subarray(0, this.ids.length * this.dim));
    const sigs = new Uint32Array(rows * SIG_WORDS);
    sigs.set(this.sigs.subarray(0, this.ids.length * SIG_WORDS));
    this.q8 = q8;
    this.sigs = sigs;
  }

  private dropOldest(count: number): void {
    this.ids.splice(0, count);
    this.q8.copyWithin(0, count * this.dim);
    this.sigs.copyWithin(0, count * SIG_WORDS);
  }
}

/**
 * Nearest neighbours by cosine over the stored embeddings, in the hub process (no
 * pgvector). Per backbone, loaded on first use and caught up incrementally at most once a
 * second on query (samples with an id above the last one loaded, from any replica), it holds each
 * vector normalised and int8-quantised plus a 128-bit sign signature (SimHash): a query
 * scans the signatures (four XOR + popcount per sample), reranks the nearest 400 (or 1%)
 * on the int8 vectors, and the caller reranks the best few exactly on the stored float32
 * vectors. Memory: about dim + 16 + 8 bytes per sample, ≈ 0.54 KB at 512-d, so ≈ 54 MB at
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
