import { Inject, Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
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
import { DIVERSE_BOUNDS, DiverseOrderCache, diverseOrder, type DiverseBounds } from './diverse-order';

/** How long a diverse order is reused for the pages of one listing (and by every request for the same filter). */
export const DIVERSE_TTL_MS = 30_000;
/** Candidates the similar index proposes per neighbour asked for; they are reranked exactly. */
const RERANK_FACTOR = 3;

/** The labelling queue: list, label, skip, neighbours, counts. */
@Injectable()
export class SamplesService {
  /** Diverse orders (sample ids) by filter and backbone, for DIVERSE_TTL_MS. */
  private readonly diverseOrders = new DiverseOrderCache<{ ids: bigint[]; ranked: number }>(DIVERSE_TTL_MS);
  /** Bounds of one diverse ordering (tests pass smaller ones). */
  diverseBounds: DiverseBounds = DIVERSE_BOUNDS;

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
    if (q.order === 'diverse') return this.diverse(filter, q.limit, q.cursor, q.backbone);
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

  /** The thumbnail's bytes (or bytes `start..end` of it), streamed from the blob store. */
  async thumbnail(id: bigint, range?: { start: number; end: number }): Promise<{ sha256: string; stream: Readable; bytes: number }> {
    const row = await this.repo.get(id);
    if (!row) throw new SampleNotFoundError(id);
    const blob = await this.blobs.open(row.thumbnail_sha256, range);
    if (!blob) throw new ThumbnailMissingError(id);
    return { sha256: row.thumbnail_sha256, ...blob };
  }

  /** The thumbnail's ETag and length without reading it (for If-None-Match and Range). */
  async thumbnailFacts(id: bigint): Promise<{ sha256: string; bytes: number }> {
    const row = await this.repo.get(id);
    if (!row) throw new SampleNotFoundError(id);
    return { sha256: row.thumbnail_sha256, bytes: Number(row.thumbnail_bytes) };
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

  /**
   * Greedy farthest-point over the candidate pool, bounded (DIVERSE_BOUNDS: pool, ranked
   * samples, work per pass; cooperative) and computed once per filter and backbone for
   * DIVERSE_TTL_MS, so paging and repeated requests cost a lookup. Candidates are of one
   * backbone (their embeddings are comparable): the one asked for, else that of the most
   * uncertain candidate; the cursor keeps it.
   */
  private async diverse(filter: SampleFilter, limit: number, cursor: string | undefined, asked: string | undefined): Promise<SamplePageDto> {
    const position = decodeDiverseCursor(cursor);
    const backbone = asked ?? position.backbone ?? (await this.repo.diverseBackbone(filter));
    if (!backbone) return { items: [], nextCursor: null, backbone: null };
    const { ids: order } = await this.diverseOrders.get(JSON.stringify([filter, backbone, this.diverseBounds]), async () => {
      const pool = await this.repo.diverseCandidates(filter, backbone, this.diverseBounds.pool);
      const r = await diverseOrder(
        pool.map((c) => normalised(embeddingFromBytes(c.embedding))),
        this.diverseBounds,
      );
      return { ids: r.order.map((i) => pool[i]!.id), ranked: r.ranked };
    });
    const ids = order.slice(position.offset, position.offset + limit);
    const rows = new Map((await this.repo.byIds(ids)).map((r) => [r.id, r]));
    // A sample labelled or skipped since the order was computed is left out of its pages.
    const items = ids
      .map((i) => rows.get(i))
      .filter((r): r is NonNullable<typeof r> => r !== undefined && r.state === filter.state)
      .map(toSampleDto);
    const end = position.offset + limit;
    return { items, nextCursor: end < order.length ? encodeDiverseCursor(end, backbone) : null, backbone };
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

function encodeDiverseCursor(o: number, b: string): string {
  return Buffer.from(JSON.stringify({ o, b })).toString('base64url');
}

function decodeDiverseCursor(cursor: string | undefined): { offset: number; backbone?: string } {
  if (!cursor) return { offset: 0 };
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { o?: unknown; b?: unknown };
    const offset = typeof c.o === 'number' && Number.isInteger(c.o) && c.o >= 0 ? c.o : 0;
    return typeof c.b === 'string' && c.b.length > 0 && c.b.length <= 128 ? { offset, backbone: c.b } : { offset };
  } catch {
    return { offset: 0 };
  }
}
