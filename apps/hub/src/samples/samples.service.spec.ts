import { Readable } from 'node:stream';
import type { BlobStore } from '../blobs/blob-store';
import type { CategoriesService } from '../categories/categories.service';
import { InactiveCategoryError } from '../categories/categories.error';
import type { HubConfig } from '../config/hub-config';
import type { SamplesQuery } from './sample.dto';
import type { SampleFilter, SampleKey, SampleRow, SamplesRepository } from './samples.repository';
import { NoEmbeddingError, SampleNotFoundError, ThumbnailMissingError } from './samples.error';
import { SamplesService } from './samples.service';
import type { SimilarIndex } from './similar-index';

type Stored = SampleRow & { embedding: Uint8Array | null };
type Repo = Pick<SamplesRepository, 'list' | 'get' | 'byIds' | 'label' | 'skip' | 'requeue' | 'counts' | 'diverseBackbone' | 'diverseCandidates'>;

const bytes = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

const sample = (id: number, over: Partial<Stored> = {}): Stored =>
  ({
    id: BigInt(id),
    device_id: 'cam-1',
    sample_id: `f${id}:low_confidence`,
    reason: 'low_confidence',
    request_id: null,
    frame_id: `f${id}`,
    detection_id: null,
    site: 's1',
    zone: 'A',
    location: 'A-01-1-A',
    captured_at: new Date('2026-12-01T00:00:00Z'),
    received_at: new Date('2026-12-01T00:00:01Z'),
    predicted_category: 'milk',
    predicted_confidence: 0.4,
    predicted_top_k: [],
    model_version: 'm1',
    backbone_id: 'b1',
    embedding_dim: 2,
    thumbnail_sha256: `sha${id}`,
    thumbnail_bytes: 10,
    thumbnail_width: 4,
    thumbnail_height: 2,
    scored_category: 'milk',
    scored_confidence: 0.4,
    scored_margin: id / 10,
    scored_entropy: 1 - id / 10,
    scored_top_k: [],
    scored_model_version: 'm1',
    priority: 0,
    state: 'pending',
    label: null,
    labelled_by: null,
    labelled_at: null,
    expires_at: null,
    embedding: bytes(1, 0),
    ...over,
  }) as Stored;

/** The samples table at its boundary: rows by id, with the state changes the SQL makes. */
class FakeSamples implements Repo {
  readonly rows = new Map<bigint, Stored>();
  readonly retention: number[] = [];
  lastListAfter?: SampleKey;
  backbone?: string;
  candidateCalls = 0;

  add(...rows: Stored[]): void {
    for (const r of rows) this.rows.set(r.id, r);
  }

  list(filter: SampleFilter, _order: unknown, limit: number, after?: SampleKey): Promise<SampleRow[]> {
    this.lastListAfter = after;
    return Promise.resolve([...this.rows.values()].filter((r) => (!after || r.id > after.id) && (!filter.state || r.state === filter.state)).slice(0, limit));
  }

  get(id: bigint): Promise<SampleRow | undefined> {
    return Promise.resolve(this.rows.get(id));
  }

  byIds(ids: bigint[]): Promise<Stored[]> {
    return Promise.resolve(ids.map((i) => this.rows.get(i)).filter((r): r is Stored => r !== undefined));
  }

  label(ids: bigint[], category: string, by: string, at: Date): Promise<bigint[]> {
    const done = ids.filter((i) => this.rows.has(i));
    for (const i of done) Object.assign(this.rows.get(i)!, { state: 'labelled', label: category, labelled_by: by, labelled_at: at });
    return Promise.resolve(done);
  }

  skip(id: bigint, retentionMs: number): Promise<boolean> {
    this.retention.push(retentionMs);
    const row = this.rows.get(id);
    if (row) row.state = 'skipped';
    return Promise.resolve(row !== undefined);
  }

  requeue(id: bigint, retentionMs: number): Promise<boolean> {
    this.retention.push(retentionMs);
    const row = this.rows.get(id);
    if (row) Object.assign(row, { state: 'pending', label: null });
    return Promise.resolve(row !== undefined);
  }

  counts(): Promise<Array<{ state: string; category: string; n: number }>> {
    return Promise.resolve([
      { state: 'labelled', category: 'milk', n: 2 },
      { state: 'labelled', category: 'bread', n: 1 },
      { state: 'pending', category: 'milk', n: 4 },
    ]);
  }

  diverseBackbone(): Promise<string | undefined> {
    return Promise.resolve(this.backbone);
  }

  diverseCandidates(filter: SampleFilter, backbone: string, pool: number): Promise<Array<{ id: bigint; embedding: Uint8Array }>> {
    this.candidateCalls++;
    return Promise.resolve(
      [...this.rows.values()]
        .filter((r) => r.backbone_id === backbone && r.state === filter.state && r.embedding)
        .slice(0, pool)
        .map((r) => ({ id: r.id, embedding: r.embedding! })),
    );
  }
}

describe(SamplesService.name, () => {
  let repo: FakeSamples;
  let blobs: Map<string, Buffer>;
  let nearest: bigint[];
  let sut: SamplesService;

  beforeEach(() => {
    repo = new FakeSamples();
    blobs = new Map();
    nearest = [];
    const categories: Pick<CategoriesService, 'assertActive'> = {
      assertActive: (name) => (name === 'caviar' ? Promise.reject(new InactiveCategoryError(name, false)) : Promise.resolve()),
    };
    const similar: Pick<SimilarIndex, 'nearest'> = { nearest: () => Promise.resolve(nearest) };
    const store: Pick<BlobStore, 'open'> = {
      open: (sha, range) => {
        const b = blobs.get(sha);
        return Promise.resolve(b && { stream: Readable.from([range ? b.subarray(range.start, range.end + 1) : b]), bytes: b.length });
      },
    };
    sut = new SamplesService(repo as unknown as SamplesRepository, categories as CategoriesService, similar as SimilarIndex, store as BlobStore, {
      sampleRetentionDays: 14,
    } as HubConfig);
  });

  it('labels a sample only with an active category, and answers 404 for an unknown sample', async () => {
    repo.add(sample(1));
    expect(await sut.label(1n, 'bread', 'key:ops', new Date('2026-12-02T00:00:00Z'))).toMatchObject({ state: 'labelled', label: 'bread' });
    await expect(sut.label(1n, 'caviar', 'key:ops')).rejects.toThrow(InactiveCategoryError);
    expect(repo.rows.get(1n)!.label).toBe('bread');
    await expect(sut.label(9n, 'bread', 'key:ops')).rejects.toThrow(SampleNotFoundError);
  });

  it('bulk-labels each id once and names the ids it did not find', async () => {
    repo.add(sample(1), sample(2));
    expect(await sut.bulkLabel({ ids: ['1', '2', '2', '5', '5'], category: 'milk' }, 'key:ops')).toEqual({ labelled: ['1', '2'], missing: ['5'] });
    await expect(sut.bulkLabel({ ids: ['1'], category: 'caviar' }, 'key:ops')).rejects.toThrow(InactiveCategoryError);
  });

  it('skips and requeues with SAMPLE_RETENTION_DAYS as the new expiry, and answers 404 for an unknown sample', async () => {
    repo.add(sample(1));
    expect(await sut.skip(1n)).toMatchObject({ state: 'skipped' });
    expect(await sut.requeue(1n)).toMatchObject({ state: 'pending' });
    expect(repo.retention).toEqual([14 * 86_400_000, 14 * 86_400_000]);
    await expect(sut.skip(9n)).rejects.toThrow(SampleNotFoundError);
    await expect(sut.requeue(9n)).rejects.toThrow(SampleNotFoundError);
  });

  it('serves a thumbnail (or its range) by its sha256; 404 for an unknown sample, and a distinct error when its blob is missing', async () => {
    repo.add(sample(1), sample(2));
    blobs.set('sha1', Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    expect(await sut.thumbnail(1n)).toMatchObject({ sha256: 'sha1', bytes: 4 });
    const part = await sut.thumbnail(1n, { start: 1, end: 2 });
    expect(Buffer.concat(await part.stream.toArray())).toEqual(Buffer.from([0xd8, 0xff]));
    expect(await sut.thumbnailFacts(2n)).toEqual({ sha256: 'sha2', bytes: 10 });
    await expect(sut.thumbnail(2n)).rejects.toThrow(ThumbnailMissingError);
    await expect(sut.thumbnail(9n)).rejects.toThrow(SampleNotFoundError);
  });

  it('gives a cursor only when there is a next page, and starts from the top on an unreadable cursor', async () => {
    repo.add(sample(1), sample(2), sample(3));
    const first = await sut.list({ state: 'pending', order: 'margin', limit: 2 } as SamplesQuery);
    expect(first.items.map((s) => s.id)).toEqual(['1', '2']);
    const second = await sut.list({ state: 'pending', order: 'margin', limit: 2, cursor: first.nextCursor! } as SamplesQuery);
    expect(repo.lastListAfter).toEqual({ priority: 0, value: 0.2, id: 2n });
    expect(second.items.map((s) => s.id)).toEqual(['3']);
    expect(second.nextCursor).toBeNull();
    await sut.list({ state: 'pending', order: 'margin', limit: 2, cursor: 'bm90IGEgY3Vyc29y' } as SamplesQuery);
    expect(repo.lastListAfter).toBeUndefined();
  });

  it('ranks neighbours by exact cosine on the stored vectors, dropping candidates deleted since or without an embedding', async () => {
    repo.add(sample(1, { embedding: bytes(1, 0) }), sample(2, { embedding: bytes(0, 1) }), sample(3, { embedding: bytes(1, 0.1) }), sample(4, { embedding: null }));
    nearest = [2n, 3n, 4n, 8n];
    const page = await sut.similarTo(1n, 5);
    expect(page.items.map((s) => s.id)).toEqual(['3', '2']);
    expect(page.items[0]!.similarity).toBeCloseTo(0.995, 3);
    await expect(sut.similarTo(4n, 5)).rejects.toThrow(NoEmbeddingError);
    await expect(sut.similarTo(9n, 5)).rejects.toThrow(SampleNotFoundError);
  });

  it('counts samples by state, with every state present', async () => {
    expect((await sut.counts()).states).toEqual({ pending: 4, labelled: 3, skipped: 0 });
  });

  it('orders diversely within one backbone, reuses the order for the next page, and leaves out samples labelled since', async () => {
    repo.add(sample(1), sample(2, { embedding: bytes(0, 1) }), sample(3, { embedding: bytes(1, 0.01) }), sample(4, { backbone_id: 'b2' }));
    repo.backbone = 'b1';
    const q = { state: 'pending', order: 'diverse', limit: 2 } as SamplesQuery;
    const first = await sut.list(q);
    expect(first.backbone).toBe('b1');
    expect(first.items).toHaveLength(2);
    expect(new Set(first.items.map((s) => s.id))).toEqual(new Set(['1', '2'])); // the two far apart come first
    await sut.label(3n, 'milk', 'key:ops');
    const second = await sut.list({ ...q, cursor: first.nextCursor! });
    expect(second).toEqual({ items: [], nextCursor: null, backbone: 'b1' });
    expect(repo.candidateCalls).toBe(1);
  });

  it('answers an empty diverse page when no candidate has a backbone', async () => {
    expect(await sut.list({ state: 'pending', order: 'diverse', limit: 2 } as SamplesQuery)).toEqual({ items: [], nextCursor: null, backbone: null });
  });
});
