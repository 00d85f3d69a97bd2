import { Injectable } from '@nestjs/common';
import { Prisma } from '@shelfsight/db';
import { PrismaService } from '../prisma/prisma.service';
import type { SampleState, StoredSampleReason } from './sample-scores';

/** One sample ready to store (validated, thumbnail already in the blob store). */
export interface NewSample {
  device_id: string;
  sample_id: string;
  reason: StoredSampleReason;
  request_id: string | null;
  frame_id: string;
  site: string;
  zone: string;
  location: string;
  captured_at: string;
  predicted_category: string;
  predicted_confidence: number;
  predicted_top_k: unknown;
  model_version: string;
  backbone_id: string;
  /** float32 LE bytes, base64 (decoded in SQL). */
  embedding_b64: string | null;
  embedding_dim: number | null;
  thumbnail_sha256: string;
  thumbnail_bytes: number;
  thumbnail_width: number;
  thumbnail_height: number;
  scored_margin: number;
  scored_entropy: number;
  priority: number;
  expires_at: string;
}

export interface SampleRow {
  id: bigint;
  device_id: string;
  sample_id: string;
  reason: string;
  request_id: string | null;
  frame_id: string;
  detection_id: bigint | null;
  site: string;
  zone: string;
  location: string;
  captured_at: Date;
  received_at: Date;
  predicted_category: string;
  predicted_confidence: number;
  predicted_top_k: unknown;
  model_version: string;
  backbone_id: string;
  embedding_dim: number | null;
  thumbnail_sha256: string;
  thumbnail_bytes: number;
  thumbnail_width: number;
  thumbnail_height: number;
  scored_category: string;
  scored_confidence: number;
  scored_margin: number;
  scored_entropy: number;
  scored_top_k: unknown;
  scored_model_version: string;
  priority: number;
  state: SampleState;
  label: string | null;
  labelled_by: string | null;
  labelled_at: Date | null;
  expires_at: Date | null;
}

export interface SampleFilter {
  state?: SampleState;
  category?: string;
  predicted?: string;
  minConfidence?: number;
  maxConfidence?: number;
  device?: string;
  site?: string;
  reason?: StoredSampleReason;
  from?: Date;
  to?: Date;
}

export type SampleOrder = 'margin' | 'entropy' | 'newest';

/** Keyset position: the last row's sort key. */
export interface SampleKey {
  priority: number;
  value: number;
  id: bigint;
}

export interface FrameRequestRow {
  request_id: string;
  device_id: string;
  frame_id: string;
  purpose: 'correction' | 'disagreement';
  detection_id: bigint | null;
  status: string;
  label: string | null;
  corrected_by: string | null;
}

const COLUMNS = Prisma.raw(`id, device_id, sample_id, reason, request_id, frame_id, detection_id, site, zone, location, captured_at, received_at,
  predicted_category, predicted_confidence, predicted_top_k, model_version, backbone_id, embedding_dim, thumbnail_sha256, thumbnail_bytes,
  thumbnail_width, thumbnail_height, scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version,
  priority, state, label, labelled_by, labelled_at, expires_at`);

/** The SQL of the sample store. */
@Injectable()
export class SamplesRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Backbones the hub has a model for, with the feature dimension its manifest names (null when it names none). */
  async knownBackbones(): Promise<Map<string, number | null>> {
    const rows = await this.prisma.$queryRaw<Array<{ backbone_id: string; dim: number | null }>>`
      SELECT backbone_id, max((manifest->'backbone'->>'featureDim')::int) AS dim FROM model_versions GROUP BY backbone_id`;
    return new Map(rows.map((r) => [r.backbone_id, r.dim]));
  }

  /** Samples each device sent today (UTC), frames the hub requested excluded. */
  async countsToday(deviceIds: string[], now: Date): Promise<Map<string, number>> {
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const rows = await this.prisma.$queryRaw<Array<{ device_id: string; n: number }>>`
      SELECT device_id, count(*)::int AS n FROM samples
      WHERE device_id = ANY(${deviceIds}) AND received_at >= ${dayStart} AND request_id IS NULL
      GROUP BY device_id`;
    return new Map(rows.map((r) => [r.device_id, r.n]));
  }

  /**
   * Store samples; a repeated (device, sampleId) changes nothing. Initially the queue's
   * scores are the device's prediction; the registry re-scores them with newer models.
   * Returns the rows actually inserted.
   */
  async insert(rows: NewSample[]): Promise<Array<{ id: bigint; device_id: string; sample_id: string }>> {
    if (rows.length === 0) return [];
    return this.prisma.$queryRawUnsafe(
      `INSERT INTO samples (device_id, sample_id, reason, request_id, frame_id, detection_id, site, zone, location, captured_at,
         predicted_category, predicted_confidence, predicted_top_k, model_version, backbone_id, embedding, embedding_dim,
         thumbnail_sha256, thumbnail_bytes, thumbnail_width, thumbnail_height,
         scored_category, scored_confidence, scored_margin, scored_entropy, scored_top_k, scored_model_version, priority, expires_at)
       SELECT x.device_id, x.sample_id, x.reason, x.request_id, x.frame_id,
         (SELECT d.id FROM detections d WHERE d.device_id = x.device_id AND d.frame_id = x.frame_id),
         x.site, x.zone, x.location, x.captured_at,
         x.predicted_category, x.predicted_confidence, x.predicted_top_k, x.model_version, x.backbone_id,
         decode(x.embedding_b64, 'base64'), x.embedding_dim,
         x.thumbnail_sha256, x.thumbnail_bytes, x.thumbnail_width, x.thumbnail_height,
         x.predicted_category, x.predicted_confidence, x.scored_margin, x.scored_entropy, x.predicted_top_k, x.model_version, x.priority, x.expires_at
       FROM jsonb_to_recordset($1::jsonb) AS x(device_id text, sample_id text, reason text, request_id text, frame_id text, site text, zone text,
         location text, captured_at timestamptz, predicted_category text, predicted_confidence real, predicted_top_k jsonb, model_version text,
         backbone_id text, embedding_b64 text, embedding_dim int, thumbnail_sha256 text, thumbnail_bytes int, thumbnail_width int,
         thumbnail_height int, scored_margin real, scored_entropy real, priority int, expires_at timestamptz)
       ORDER BY x.device_id, x.sample_id
       ON CONFLICT (device_id, sample_id) DO NOTHING
       RETURNING id, device_id, sample_id`,
      JSON.stringify(rows),
    );
  }

  async frameRequest(requestId: string): Promise<FrameRequestRow | undefined> {
    const rows = await this.prisma.$queryRaw<FrameRequestRow[]>`
      SELECT f.request_id, f.device_id, f.frame_id, f.purpose, f.detection_id, f.status, c.category AS label, c.corrected_by
      FROM frame_requests f LEFT JOIN corrections c ON c.request_id = f.request_id
      WHERE f.request_id = ${requestId}`;
    return rows[0];
  }

  /** Record a device's answer to a frame request (and on the correction that asked, if any). */
  async answerFrameRequest(requestId: string, status: 'received' | 'not_held', sampleId: bigint | null): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.$executeRaw`UPDATE frame_requests SET status = ${status}, sample_id = ${sampleId}, answered_at = now() WHERE request_id = ${requestId}`,
      this.prisma.$executeRaw`UPDATE corrections SET frame_status = ${status}, sample_id = ${sampleId} WHERE request_id = ${requestId}`,
    ]);
  }

  /** The id of a device's sample. */
  async idOf(deviceId: string, sampleId: string): Promise<bigint | undefined> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`SELECT id FROM samples WHERE device_id = ${deviceId} AND sample_id = ${sampleId}`;
    return rows[0]?.id;
  }

  async get(id: bigint): Promise<SampleRow | undefined> {
    const rows = await this.prisma.$queryRaw<SampleRow[]>`SELECT ${COLUMNS} FROM samples WHERE id = ${id}`;
    return rows[0];
  }

  async byIds(ids: bigint[]): Promise<Array<SampleRow & { embedding: Uint8Array | null }>> {
    if (ids.length === 0) return [];
    return this.prisma.$queryRaw`SELECT ${COLUMNS}, embedding FROM samples WHERE id = ANY(${ids}::bigint[])`;
  }

  /** One page of the queue in `order`, after `after`. */
  async list(filter: SampleFilter, order: SampleOrder, limit: number, after?: SampleKey): Promise<SampleRow[]> {
    const where = this.where(filter);
    let orderBy: Prisma.Sql;
    if (order === 'newest') {
      if (after) where.push(Prisma.sql`id < ${after.id}`);
      orderBy = Prisma.sql`id DESC`;
    } else if (order === 'margin') {
      if (after) {
        where.push(Prisma.sql`(priority < ${after.priority} OR (priority = ${after.priority} AND (scored_margin, id) > (${after.value}::real, ${after.id})))`);
      }
      orderBy = Prisma.sql`priority DESC, scored_margin, id`;
    } else {
      if (after) {
        where.push(
          Prisma.sql`(priority < ${after.priority} OR (priority = ${after.priority} AND (scored_entropy < ${after.value}::real OR (scored_entropy = ${after.value}::real AND id > ${after.id}))))`,
        );
      }
      orderBy = Prisma.sql`priority DESC, scored_entropy DESC, id`;
    }
    return this.prisma.$queryRaw<SampleRow[]>`
      SELECT ${COLUMNS} FROM samples WHERE ${Prisma.join(where, ' AND ')} ORDER BY ${orderBy} LIMIT ${limit}`;
  }

  /** The backbone of the most uncertain filtered sample with an embedding: the diverse order's default pool. */
  async diverseBackbone(filter: SampleFilter): Promise<string | undefined> {
    const where = this.where(filter);
    where.push(Prisma.sql`embedding IS NOT NULL`);
    const rows = await this.prisma.$queryRaw<Array<{ backbone_id: string }>>`
      SELECT backbone_id FROM samples WHERE ${Prisma.join(where, ' AND ')} ORDER BY priority DESC, scored_margin, id LIMIT 1`;
    return rows[0]?.backbone_id;
  }

  /** Candidates for the diverse order: the filtered samples of one backbone with embeddings, least margin first, at most `pool`. */
  async diverseCandidates(filter: SampleFilter, backbone: string, pool: number): Promise<Array<{ id: bigint; embedding: Uint8Array }>> {
    const where = this.where(filter);
    where.push(Prisma.sql`embedding IS NOT NULL`);
    where.push(Prisma.sql`backbone_id = ${backbone}`);
    return this.prisma.$queryRaw`
      SELECT id, embedding FROM samples WHERE ${Prisma.join(where, ' AND ')} ORDER BY priority DESC, scored_margin, id LIMIT ${pool}`;
  }

  /**
   * Label (or relabel) samples: they leave the queue and are kept for good (no expiry).
   * Returns the ids updated.
   */
  async label(ids: bigint[], category: string, by: string, at: Date): Promise<bigint[]> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      UPDATE samples SET state = 'labelled', label = ${category}, labelled_by = ${by}, labelled_at = ${at}, expires_at = NULL
      WHERE id = ANY(${ids}::bigint[]) RETURNING id`;
    return rows.map((r) => r.id);
  }

  /** Skip: out of the queue, unlabelled (so it still expires). */
  async skip(id: bigint, retentionMs: number): Promise<boolean> {
    const n = await this.prisma.$executeRaw`
      UPDATE samples SET state = 'skipped', label = NULL, labelled_by = NULL, labelled_at = NULL,
        expires_at = COALESCE(expires_at, received_at + ${retentionMs} * interval '1 millisecond')
      WHERE id = ${id}`;
    return n > 0;
  }

  /** Back into the queue (undo of a label or skip): pending, unlabelled, expiring again like a fresh one. */
  async requeue(id: bigint, retentionMs: number): Promise<boolean> {
    const n = await this.prisma.$executeRaw`
      UPDATE samples SET state = 'pending', label = NULL, labelled_by = NULL, labelled_at = NULL,
        expires_at = COALESCE(expires_at, received_at + ${retentionMs} * interval '1 millisecond')
      WHERE id = ${id}`;
    return n > 0;
  }

  async counts(): Promise<Array<{ state: string; category: string; n: number }>> {
    return this.prisma.$queryRaw`
      SELECT state, COALESCE(label, scored_category) AS category, count(*)::int AS n FROM samples GROUP BY 1, 2 ORDER BY 1, 2`;
  }

  /** Delete up to `chunk` expired unlabelled samples; returns the thumbnails they used. */
  async deleteExpired(now: Date, chunk: number): Promise<Array<{ id: bigint; backbone_id: string; thumbnail_sha256: string }>> {
    return this.prisma.$queryRaw`
      DELETE FROM samples WHERE id IN (
        SELECT id FROM samples WHERE expires_at < ${now} AND state <> 'labelled' ORDER BY expires_at LIMIT ${chunk})
      RETURNING id, backbone_id, thumbnail_sha256`;
  }

  /** Of these thumbnails, the ones no sample refers to any more. */
  async unreferencedThumbnails(shas: string[]): Promise<string[]> {
    if (shas.length === 0) return [];
    const rows = await this.prisma.$queryRaw<Array<{ sha: string }>>`
      SELECT sha FROM unnest(${shas}::text[]) AS u(sha) WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.thumbnail_sha256 = u.sha)`;
    return rows.map((r) => r.sha);
  }

  /** Embeddings of one backbone newer than `afterId`, oldest first (the similar index's catch-up). */
  async embeddingsSince(backboneId: string, afterId: bigint, limit: number): Promise<Array<{ id: bigint; embedding: Uint8Array }>> {
    return this.prisma.$queryRaw`
      SELECT id, embedding FROM samples WHERE backbone_id = ${backboneId} AND embedding IS NOT NULL AND id > ${afterId}
      ORDER BY id LIMIT ${limit}`;
  }

  /** Newest `n` ids of a backbone (where the index starts when it holds at most n). */
  async nthNewestId(backboneId: string, n: number): Promise<bigint> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      SELECT id FROM samples WHERE backbone_id = ${backboneId} AND embedding IS NOT NULL ORDER BY id DESC OFFSET ${n} LIMIT 1`;
    return rows[0]?.id ?? 0n;
  }

  private where(f: SampleFilter): Prisma.Sql[] {
    const w: Prisma.Sql[] = [Prisma.sql`TRUE`];
    if (f.state) w.push(Prisma.sql`state = ${f.state}`);
    if (f.category) w.push(Prisma.sql`scored_category = ${f.category}`);
    if (f.predicted) w.push(Prisma.sql`predicted_category = ${f.predicted}`);
    if (f.minConfidence !== undefined) w.push(Prisma.sql`scored_confidence >= ${f.minConfidence}`);
    if (f.maxConfidence !== undefined) w.push(Prisma.sql`scored_confidence <= ${f.maxConfidence}`);
    if (f.device) w.push(Prisma.sql`device_id = ${f.device}`);
    if (f.site) w.push(Prisma.sql`site = ${f.site}`);
    if (f.reason) w.push(Prisma.sql`reason = ${f.reason}`);
    if (f.from) w.push(Prisma.sql`received_at >= ${f.from}`);
    if (f.to) w.push(Prisma.sql`received_at < ${f.to}`);
    return w;
  }
}
