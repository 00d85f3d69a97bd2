import { Inject, Injectable } from '@nestjs/common';
import type { ReadStream } from 'node:fs';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { CategoriesService } from '../categories/categories.service';
import { dot, embeddingFromBytes, normalised } from './embedding';
import {
  type BulkLabelBody,
  type LabelResultDto,
  type SampleCountsDto,
  type SampleDto,
  type SamplePageDto,
  type SamplesQuery,
  type SimilarPageDto,
  toSampleDto,
} from './sample.dto';
import { SamplesRepository, type SampleFilter, type SampleKey, type SampleRow } from './samples.repository';
import { NoEmbeddingError, SampleNotFoundError, ThumbnailMissingError } from './samples.error';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { SimilarIndex } from './similar-index';

/**
 * Candidates the diverse order spreads over: the filtered samples with embeddings, least
 * margin first, at most this many (greedy farthest-point is O(page × pool × dim)).
 */
export const DIVERSE_POOL = 1000;
/** Candidates the similar index proposes per neighbour asked for; they are reranked exactly. */
const RERANK_FACTOR = 3;

/** The labelling queue: list, label, skip, neighbours, counts. */
@Injectable()
export class SamplesService {
  constructor(
    private readonly repo: SamplesRepository,
    private readonly categories: CategoriesService,
    private readonly similar: SimilarIndex,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  async list(q: SamplesQuery): Promise<SamplePageDto> {
    const filter: SampleFilter = {
      state: q.state,
      category: q.category,
      predicted: q.predicted,
      minConfidence: q.minConfidence,
      maxConfidence: q.maxConfidence,
      device: q.device,
      site: q.site,
      reason: q.reason,
      from: q.from,
      to: q.to,
    };
    if (q.order === 'diverse') return this.diverse(filter, q.limit, decodeOffset(q.cursor));
    const after = decodeKey(q.cursor);
    const rows = await this.repo.list(filter, q.order, q.limit + 1, after);
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    const value = (r: SampleRow) => (q.order === 'entropy' ? r.scored_entropy : r.scored_margin);
    return {
      items: page.map(toSampleDto),
      nextCursor: rows.length > q.limit && last ? encodeKey({ priority: last.priority, value: value(last), id: last.id }) : null,
    };
  }

  async get(id: bigint): Promise<SampleDto> {
    const row = await this.repo.get(id);
    if (!row) throw new SampleNotFoundError(id);
    return toSampleDto(row);
  }

  async thumbnail(id: bigint): Promise<{ sha256: string; stream: ReadStream; bytes: number }> {
    const row = await this.repo.get(id);
    if (!row) throw new SampleNotFoundError(id);
    const blob = await this.blobs.open(row.thumbnail_sha256);
    if (!blob) throw new ThumbnailMissingError(id);
    return { sha256: row.thumbnail_sha256, ...blob };
  }

  /** The thumbnail's ETag without reading it (for If-None-Match). */
  async thumbnailSha(id: bigint): Promise<string> {
    const row = await this.repo.get(id);
    if (!row) throw new SampleNotFoundError(id);
    return row.thumbnail_sha256;
  }

  async label(id: bigint, category: string, by: string, now = new Date()): Promise<SampleDto> {
    await this.categories.assertActive(category);
    const done = await this.repo.label([id], category, by, now);
    if (done.length === 0) throw new SampleNotFoundError(id);
    return this.get(id);
  }

  async bulkLabel(body: BulkLabelBody, by: string, now = new Date()): Promise<LabelResultDto> {
    await this.categories.assertActive(body.category);
    const ids = [...new Set(body.ids)].map((i) => BigInt(i));
    const done = new Set((await this.repo.label(ids, body.category, by, now)).map(String));
    return { labelled: [...done], missing: ids.map(String).filter((i) => !done.has(i)) };
  }

  async skip(id: bigint): Promise<SampleDto> {
    if (!(await this.repo.skip(id, this.config.sampleRetentionDays * 86_400_000))) throw new SampleNotFoundError(id);
    return this.get(id);
  }

  /** Undo a label or a skip: the sample is pending again (and expires again unless labelled later). */
  async requeue(id: bigint): Promise<SampleDto> {
    if (!(await this.repo.requeue(id, this.config.sampleRetentionDays * 86_400_000))) throw new SampleNotFoundError(id);
    return this.get(id);
  }

  /** Nearest samples of the same backbone by cosine on the embeddings. */
  async similarTo(id: bigint, limit: number): Promise<SimilarPageDto> {
    const [row] = await this.repo.byIds([id]);
    if (!row) throw new SampleNotFoundError(id);
    if (!row.embedding) throw new NoEmbeddingError(id);
    const query = normalised(embeddingFromBytes(row.embedding));
    const candidates = await this.similar.nearest(row.backbone_id, query, limit * RERANK_FACTOR, id);
    // Exact rerank on the stored float32 vectors; ids deleted since drop out here.
    const rows = await this.repo.byIds(candidates);
    const scored = rows
      .filter((r) => r.embedding !== null)
      .map((r) => ({ r, similarity: dot(query, normalised(embeddingFromBytes(r.embedding!))) }))
      .sort((a, b) => b.similarity - a.similarity || (a.r.id < b.r.id ? -1 : 1))
      .slice(0, limit);
    return { items: scored.map(({ r, similarity }) => ({ ...toSampleDto(r), similarity })) };
  }

  async counts(): Promise<SampleCountsDto> {
    const rows = await this.repo.counts();
    const states: Record<string, number> = { pending: 0, labelled: 0, skipped: 0 };
    for (const r of rows) states[r.state] = (states[r.state] ?? 0) + r.n;
    return { states, byCategory: rows.map((r) => ({ state: r.state, category: r.category, samples: r.n })) };
  }

  /** Greedy farthest-point over the candidate pool: each next sample is the one least like those already chosen. */
  private async diverse(filter: SampleFilter, limit: number, offset: number): Promise<SamplePageDto> {
    const pool = await this.repo.diverseCandidates(filter, DIVERSE_POOL);
    const vectors = pool.map((c) => normalised(embeddingFromBytes(c.embedding)));
    const want = Math.min(pool.length, offset + limit);
    const chosen: number[] = [];
    const nearest = new Float64Array(pool.length).fill(Infinity);
    const taken = new Uint8Array(pool.length);
    let next = 0;
    while (chosen.length < want) {
      chosen.push(next);
      taken[next] = 1;
      let best = -1;
      let bestD = -Infinity;
      for (let i = 0; i < pool.length; i++) {
        if (taken[i]) continue;
        const d = 1 - dot(vectors[next]!, vectors[i]!);
        if (d < nearest[i]!) nearest[i] = d;
        if (nearest[i]! > bestD) {
          bestD = nearest[i]!;
          best = i;
        }
      }
      if (best < 0) break;
      next = best;
    }
    const ids = chosen.slice(offset).map((i) => pool[i]!.id);
    const rows = new Map((await this.repo.byIds(ids)).map((r) => [r.id, r]));
    const items = ids.map((i) => rows.get(i)).filter((r): r is NonNullable<typeof r> => r !== undefined).map(toSampleDto);
    return { items, nextCursor: offset + limit < pool.length ? encodeOffset(offset + limit) : null };
  }
}

function encodeKey(k: SampleKey): string {
  return Buffer.from(JSON.stringify({ p: k.priority, v: k.value, i: k.id.toString() })).toString('base64url');
}

function decodeKey(cursor: string | undefined): SampleKey | undefined {
  if (!cursor) return undefined;
  try {
    const o = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { p?: unknown; v?: unknown; i?: unknown };
    if (typeof o.p === 'number' && typeof o.v === 'number' && typeof o.i === 'string' && /^\d+$/.test(o.i)) {
      return { priority: o.p, value: o.v, id: BigInt(o.i) };
    }
  } catch {
    // fall through: an unreadable cursor starts from the top
  }
  return undefined;
}

function encodeOffset(o: number): string {
  return Buffer.from(JSON.stringify({ o })).toString('base64url');
}

function decodeOffset(cursor: string | undefined): number {
  if (!cursor) return 0;
  try {
    const o = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { o?: unknown };
    return typeof o.o === 'number' && Number.isInteger(o.o) && o.o >= 0 ? o.o : 0;
  } catch {
    return 0;
  }
}
