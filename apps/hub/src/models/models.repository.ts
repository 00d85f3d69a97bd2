import { Inject, Injectable } from '@nestjs/common';
import { Prisma, type PrismaClient } from '@shelfsight/db';
import { PrismaService } from '../prisma/prisma.service';
import type { ModelMetrics, ScoredRow } from './evaluation';

export interface ModelVersionRow {
  version: string;
  backbone_id: string;
  backbone_checksum: string;
  labels: string[];
  category_set: string;
  head_type: string;
  manifest: Record<string, unknown>;
  artifact_sha256: string;
  artifact_bytes: bigint | number;
  training_set_sha256: string | null;
  training_set_rows: number | null;
  parent_version: string | null;
  lineage: Record<string, unknown>;
  metrics: ModelMetrics | null;
  releasable: boolean | null;
  gate_reason: string | null;
  source: string;
  registered_by: string | null;
  created_at: Date;
  registered_at: Date;
  rescore_state: string | null;
  rescored_samples: number | null;
  rescored_at: Date | null;
  rescore_after_id: bigint | null;
  rescore_attempts: number;
  rescore_retry_at: Date | null;
  rescore_error: string | null;
  gate: Record<string, unknown> | null;
  gate_override: GateOverride | null;
  declared: Record<string, unknown> | null;
}

/** An operator's release of a version the gate left unverified. */
export interface GateOverride {
  by: string;
  reason: string;
  at: string;
}

export type NewModelVersion = Omit<
  ModelVersionRow,
  'registered_at' | 'rescore_state' | 'rescored_samples' | 'rescored_at' | 'rescore_after_id' | 'rescore_attempts' | 'rescore_retry_at' | 'rescore_error' | 'gate_override'
>;

/** A claimed backlog re-score: where it stopped (resumable) and how often it failed. */
export type RescoreClaim = Pick<ModelVersionRow, 'version' | 'backbone_id' | 'artifact_sha256' | 'rescore_after_id' | 'rescored_samples' | 'rescore_attempts'>;

export interface EvaluationSetRow {
  category_set: string;
  labels: string[];
  backbone_id: string;
  embedding_dim: number;
  blob_sha256: string;
  rows: number;
  counts: Record<string, number>;
  frozen_by: string;
  created_at: Date;
}

export interface PendingEmbedding {
  id: bigint;
  embedding: Uint8Array;
}

/** SQL of the model registry: model_versions, evaluation_sets, categories, and the samples it re-scores. */
@Injectable()
export class ModelsRepository {
  /** Any Prisma client: the hub's PrismaService, or a worker process's own client. */
  constructor(@Inject(PrismaService) private readonly prisma: PrismaClient) {}

  async insertVersion(v: NewModelVersion): Promise<void> {
    await this.prisma.$executeRaw`
      INSERT INTO model_versions (version, backbone_id, backbone_checksum, labels, category_set, head_type, manifest,
        artifact_sha256, artifact_bytes, training_set_sha256, training_set_rows, parent_version, lineage, metrics,
        releasable, gate_reason, source, registered_by, created_at, rescore_state, gate, declared)
      VALUES (${v.version}, ${v.backbone_id}, ${v.backbone_checksum}, ${JSON.stringify(v.labels)}::jsonb, ${v.category_set}, ${v.head_type},
        ${JSON.stringify(v.manifest)}::jsonb, ${v.artifact_sha256}, ${BigInt(v.artifact_bytes)}, ${v.training_set_sha256}, ${v.training_set_rows},
        ${v.parent_version}, ${JSON.stringify(v.lineage)}::jsonb, ${v.metrics ? JSON.stringify(v.metrics) : null}::jsonb,
        ${v.releasable}, ${v.gate_reason}, ${v.source}, ${v.registered_by}, ${v.created_at},
        ${v.releasable === true ? 'queued' : null}, ${v.gate ? JSON.stringify(v.gate) : null}::jsonb, ${v.declared ? JSON.stringify(v.declared) : null}::jsonb)`;
  }

  /** Release a version the gate left unverified (only while it is not releasable); queues its backlog re-score. */
  async setOverride(version: string, override: GateOverride, gateReason: string): Promise<boolean> {
    const n = await this.prisma.$executeRaw`
      UPDATE model_versions SET releasable = TRUE, gate_override = ${JSON.stringify(override)}::jsonb, gate_reason = ${gateReason},
        rescore_state = 'queued', rescore_retry_at = NULL
      WHERE version = ${version} AND releasable IS NOT TRUE`;
    return n === 1;
  }

  /** Every frozen evaluation set of a backbone (base rows of every category set, and operators' evaluation rows). */
  async evaluationSetsOf(backboneId: string): Promise<EvaluationSetRow[]> {
    return this.prisma.$queryRaw<EvaluationSetRow[]>`SELECT * FROM evaluation_sets WHERE backbone_id = ${backboneId} ORDER BY created_at, category_set`;
  }

  /** Ids and labels of the operator-labelled samples of a backbone with a usable embedding, not found to mismatch their thumbnails (the hold-out is chosen from them). */
  async labelledSampleIds(backboneId: string, dim: number): Promise<Array<{ id: bigint; label: string }>> {
    return this.prisma.$queryRaw<Array<{ id: bigint; label: string }>>`
      SELECT id, label FROM samples
      WHERE state = 'labelled' AND label IS NOT NULL AND embedding IS NOT NULL AND backbone_id = ${backboneId} AND embedding_dim = ${dim}
        AND embedding_mismatch IS NULL
      ORDER BY id`;
  }

  /** Record samples whose embeddings a training worker found not to match their thumbnails (with the distance). */
  async markEmbeddingMismatches(found: Map<string, number>): Promise<void> {
    if (found.size === 0) return;
    await this.prisma.$executeRaw`
      UPDATE samples s SET embedding_mismatch = u.d
      FROM (SELECT unnest(${[...found.keys()].map((id) => BigInt(id))}::bigint[]) AS id, unnest(${[...found.values()]}::real[]) AS d) u
      WHERE s.id = u.id`;
  }

  /** Labelled samples of a backbone found before to carry embeddings that do not match their thumbnails. */
  async embeddingMismatches(backboneId: string): Promise<Set<string>> {
    const rows = await this.prisma.$queryRaw<Array<{ id: bigint }>>`
      SELECT id FROM samples WHERE backbone_id = ${backboneId} AND embedding_mismatch IS NOT NULL`;
    return new Set(rows.map((r) => r.id.toString()));
  }

  async sampleEmbeddings(ids: bigint[]): Promise<Array<{ id: bigint; label: string; embedding: Uint8Array }>> {
    if (ids.length === 0) return [];
    return this.prisma.$queryRaw<Array<{ id: bigint; label: string; embedding: Uint8Array }>>`
      SELECT id, label, embedding FROM samples WHERE id = ANY(${ids}::bigint[]) ORDER BY id`;
  }

  /** The releasable version of the backbone most devices run, if any. */
  async fleetVersion(backboneId: string, except: string): Promise<ModelVersionRow | undefined> {
    const rows = await this.prisma.$queryRaw<ModelVersionRow[]>`
      SELECT m.* FROM model_versions m JOIN devices d ON d.model_version = m.version
      WHERE m.backbone_id = ${backboneId} AND m.releasable AND m.version <> ${except}
      GROUP BY m.version ORDER BY count(*) DESC, m.registered_at DESC LIMIT 1`;
    return rows[0];
  }

  /** The newest releasable version of the backbone. */
  async newestReleasable(backboneId: string, except: string): Promise<ModelVersionRow | undefined> {
    const rows = await this.prisma.$queryRaw<ModelVersionRow[]>`
      SELECT * FROM model_versions WHERE backbone_id = ${backboneId} AND releasable AND version <> ${except}
      ORDER BY registered_at DESC, version DESC LIMIT 1`;
    return rows[0];
  }

  async findVersion(version: string): Promise<ModelVersionRow | undefined> {
    const rows = await this.prisma.$queryRaw<ModelVersionRow[]>`SELECT * FROM model_versions WHERE version = ${version}`;
    return rows[0];
  }

  /** Newest first; without metrics' confusion matrices (list view). */
  async listVersions(filter: { backboneId?: string; categorySet?: string; limit: number }): Promise<ModelVersionRow[]> {
    return this.prisma.$queryRaw<ModelVersionRow[]>`
      SELECT * FROM model_versions
      WHERE TRUE
        ${filter.backboneId ? Prisma.sql`AND backbone_id = ${filter.backboneId}` : Prisma.empty}
        ${filter.categorySet ? Prisma.sql`AND category_set = ${filter.categorySet}` : Prisma.empty}
      ORDER BY registered_at DESC, version DESC
      LIMIT ${filter.limit}`;
  }

  async evaluationSet(categorySet: string, backboneId: string): Promise<EvaluationSetRow | undefined> {
    const rows = await this.prisma.$queryRaw<EvaluationSetRow[]>`SELECT * FROM evaluation_sets WHERE category_set = ${categorySet} AND backbone_id = ${backboneId}`;
    return rows[0];
  }

  /** Freeze a category set's evaluation rows unless another registration did first; returns the frozen set. */
  async freezeEvaluationSet(e: Omit<EvaluationSetRow, 'created_at'>): Promise<EvaluationSetRow> {
    await this.prisma.$executeRaw`
      INSERT INTO evaluation_sets (category_set, labels, backbone_id, embedding_dim, blob_sha256, rows, counts, frozen_by)
      VALUES (${e.category_set}, ${JSON.stringify(e.labels)}::jsonb, ${e.backbone_id}, ${e.embedding_dim}, ${e.blob_sha256}, ${e.rows},
        ${JSON.stringify(e.counts)}::jsonb, ${e.frozen_by})
      ON CONFLICT (category_set, backbone_id) DO NOTHING`;
    return (await this.evaluationSet(e.category_set, e.backbone_id)) as EvaluationSetRow;
  }

  /** A registered version's labels become known categories (existing ones, retired or not, are left alone). */
  async addCategories(names: string[]): Promise<void> {
    await this.prisma.$executeRaw`
      INSERT INTO categories (name) SELECT unnest(${names}::text[]) ON CONFLICT (name) DO NOTHING`;
  }

  /** The most recently registered releasable version for a backbone (the one whose view the queue shows). */
  async newestVersionFor(backboneId: string): Promise<string | undefined> {
    const rows = await this.prisma.$queryRaw<Array<{ version: string }>>`
      SELECT version FROM model_versions WHERE backbone_id = ${backboneId} AND releasable ORDER BY registered_at DESC, version DESC LIMIT 1`;
    return rows[0]?.version;
  }

  async countPending(backboneId: string, dim: number): Promise<number> {
    const rows = await this.prisma.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM samples
      WHERE state = 'pending' AND backbone_id = ${backboneId} AND embedding IS NOT NULL AND embedding_dim = ${dim}`;
    return rows[0]?.n ?? 0;
  }

  /** One keyset page of pending samples' embeddings of a backbone, by id. */
  async pendingEmbeddings(backboneId: string, dim: number, afterId: bigint, limit: number): Promise<PendingEmbedding[]> {
    return this.prisma.$queryRaw<PendingEmbedding[]>`
      SELECT id, embedding FROM samples
      WHERE state = 'pending' AND backbone_id = ${backboneId} AND embedding IS NOT NULL AND embedding_dim = ${dim} AND id > ${afterId}
      ORDER BY id LIMIT ${limit}`;
  }

  /** Write a version's scores of pending samples (samples labelled meanwhile keep theirs). */
  async updateScores(version: string, ids: bigint[], scores: ScoredRow[]): Promise<number> {
    return this.prisma.$executeRaw`
      UPDATE samples s SET scored_category = u.category, scored_confidence = u.confidence, scored_margin = u.margin,
        scored_entropy = u.entropy, scored_top_k = u.top_k::jsonb, scored_model_version = ${version}
      FROM (SELECT unnest(${ids}::bigint[]) AS id, unnest(${scores.map((s) => s.category)}::text[]) AS category,
                   unnest(${scores.map((s) => s.confidence)}::real[]) AS confidence, unnest(${scores.map((s) => s.margin)}::real[]) AS margin,
                   unnest(${scores.map((s) => s.entropy)}::real[]) AS entropy, unnest(${scores.map((s) => JSON.stringify(s.topK))}::text[]) AS top_k) u
      WHERE s.id = u.id AND s.state = 'pending'`;
  }

  /**
   * Claim the oldest version whose backlog re-score is queued (and due, after a failed
   * attempt's backoff), or whose run stopped beating for `staleMs` (its process died):
   * marks it running. Times are the database's clock, so replicas with skewed clocks agree.
   * SKIP LOCKED, so with several hub replicas each version is re-scored by one of them.
   */
  async claimRescore(staleMs: number): Promise<RescoreClaim | undefined> {
    const rows = await this.prisma.$queryRaw<RescoreClaim[]>`
      UPDATE model_versions SET rescore_state = 'running', rescored_at = now()
      WHERE version = (
        SELECT version FROM model_versions
        WHERE releasable AND ((rescore_state = 'queued' AND (rescore_retry_at IS NULL OR rescore_retry_at <= now()))
           OR (rescore_state = 'running' AND rescored_at < now() - make_interval(secs => ${staleMs / 1000}::float8)))
        ORDER BY registered_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING version, backbone_id, artifact_sha256, rescore_after_id, rescored_samples, rescore_attempts`;
    return rows[0];
  }

  /** Progress of a running re-score (its heartbeat): samples scored and the last sample id, so a later claim resumes there. */
  async rescoreProgress(version: string, samples: number, afterId: bigint): Promise<void> {
    await this.prisma.$executeRaw`
      UPDATE model_versions SET rescored_samples = ${samples}, rescore_after_id = ${afterId}, rescored_at = now()
      WHERE version = ${version} AND rescore_state = 'running'`;
  }

  /** End of a re-score; rescored_at is its heartbeat while running, its end after. */
  async setRescore(version: string, state: 'done' | 'superseded', samples: number | null): Promise<void> {
    await this.prisma.$executeRaw`
      UPDATE model_versions SET rescore_state = ${state}, rescored_samples = ${samples}, rescored_at = now(), rescore_retry_at = NULL
      WHERE version = ${version}`;
  }

  /**
   * A failed attempt: queued again after `retryInS` (database clock), keeping where it
   * stopped, or failed for good once `maxAttempts` attempts failed. Returns the new state.
   */
  async rescoreAttemptFailed(version: string, error: string, maxAttempts: number, retryInS: number): Promise<{ state: string; attempts: number } | undefined> {
    const rows = await this.prisma.$queryRaw<Array<{ state: string; attempts: number }>>`
      UPDATE model_versions SET
        rescore_attempts = rescore_attempts + 1,
        rescore_state = CASE WHEN rescore_attempts + 1 >= ${maxAttempts} THEN 'failed' ELSE 'queued' END,
        rescore_retry_at = CASE WHEN rescore_attempts + 1 >= ${maxAttempts} THEN NULL ELSE now() + make_interval(secs => ${retryInS}::float8) END,
        rescore_error = ${error.slice(0, 2000)}, rescored_at = now()
      WHERE version = ${version}
      RETURNING rescore_state AS state, rescore_attempts AS attempts`;
    return rows[0];
  }
}
