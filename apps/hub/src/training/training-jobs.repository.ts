import { Inject, Injectable } from '@nestjs/common';
import { Prisma, PrismaClient } from '@shelfsight/db';
import { TRAINING_JOB_INTERRUPTED, type TrainingJobPhase, type TrainingJobProgress, type TrainingJobStatus } from '@shelfsight/contracts';
import { PrismaService } from '../prisma/prisma.service';

export interface TrainingJobRow {
  id: bigint;
  root_id: bigint | null;
  attempt: number;
  retry_of: bigint | null;
  spec: unknown;
  status: TrainingJobStatus;
  phase: TrainingJobPhase;
  progress: TrainingJobProgress;
  error: string | null;
  queue_job_id: string | null;
  worker_id: string | null;
  created_by: string;
  created_at: Date;
  started_at: Date | null;
  heartbeat_at: Date | null;
  finished_at: Date | null;
  cancel_requested_at: Date | null;
  cancelled_by: string | null;
  result_version: string | null;
  result: Record<string, unknown> | null;
}

/** Another attempt of the job is still queued or running. */
export class LiveAttemptExistsError extends Error {
  override name = 'LiveAttemptExistsError';
  constructor(readonly rootId: bigint) {
    super(`another attempt of training job ${rootId} is queued or running`);
  }
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; meta?: { code?: string; driverAdapterError?: { cause?: { originalCode?: string; kind?: string } } }; message?: string };
  return e.code === 'P2002' || e.code === '23505' || e.meta?.code === '23505' || e.meta?.driverAdapterError?.cause?.originalCode === '23505' || /23505|unique constraint/i.test(e.message ?? '');
}

export interface LabelledSampleRow {
  id: bigint;
  device_id: string;
  sample_id: string;
  label: string;
  embedding: Uint8Array;
  embedding_dim: number;
  backbone_id: string;
}

export interface VersionBaseRow {
  version: string;
  backbone_id: string;
  manifest: unknown;
  training_set_sha256: string | null;
}

/**
 * SQL of the training jobs, used by the hub (create, read, cancel, sweep) and by the worker
 * process (claim, heartbeat, finish). Times come from the database's clock, so hubs and
 * workers on different machines agree on what "stale" means.
 */
@Injectable()
export class TrainingJobsRepository {
  constructor(@Inject(PrismaService) private readonly db: PrismaClient) {}

  /**
   * A new job, or a new attempt of one (`retry`). At most one attempt of a job is queued
   * or running (a partial unique index): a second live attempt is refused with
   * {@link LiveAttemptExistsError}, so two retries of one failed job never both run.
   */
  async create(spec: unknown, createdBy: string, retry?: { rootId: bigint; attempt: number; retryOf: bigint }): Promise<TrainingJobRow> {
    try {
      const rows = await this.db.$queryRaw<TrainingJobRow[]>`
        INSERT INTO training_jobs (spec, created_by, root_id, attempt, retry_of)
        VALUES (${JSON.stringify(spec)}::jsonb, ${createdBy}, ${retry?.rootId ?? null}, ${retry?.attempt ?? 1}, ${retry?.retryOf ?? null})
        RETURNING *`;
      const row = rows[0] as TrainingJobRow;
      if (row.root_id === null) {
        await this.db.$executeRaw`UPDATE training_jobs SET root_id = id WHERE id = ${row.id}`;
        row.root_id = row.id;
      }
      return row;
    } catch (err) {
      if (retry && isUniqueViolation(err)) throw new LiveAttemptExistsError(retry.rootId);
      throw err;
    }
  }

  /** The newest attempt of a job (its root). */
  async latestAttempt(rootId: bigint): Promise<TrainingJobRow | undefined> {
    const rows = await this.db.$queryRaw<TrainingJobRow[]>`SELECT * FROM training_jobs WHERE root_id = ${rootId} ORDER BY attempt DESC, id DESC LIMIT 1`;
    return rows[0];
  }

  /** A queued job whose queue message could not be sent ends as failed, with why; false when it was no longer queued. */
  async failQueued(id: bigint, error: string): Promise<TrainingJobRow | undefined> {
    const rows = await this.db.$queryRaw<TrainingJobRow[]>`
      UPDATE training_jobs SET status = 'failed', error = ${error}, finished_at = now()
      WHERE id = ${id} AND status = 'queued' RETURNING *`;
    return rows[0];
  }

  /**
   * Inside a transaction: lock this worker's running job row (FOR UPDATE), so a sweep
   * waits for the transaction and then no longer finds it running. Undefined when the job
   * is not (any more) this worker's running job.
   */
  async lockRunning(id: bigint, workerId: string): Promise<TrainingJobRow | undefined> {
    const rows = await this.db.$queryRaw<TrainingJobRow[]>`
      SELECT * FROM training_jobs WHERE id = ${id} AND worker_id = ${workerId} AND status = 'running' FOR UPDATE`;
    return rows[0];
  }

  async setQueueJobId(id: bigint, queueJobId: string): Promise<void> {
    await this.db.$executeRaw`UPDATE training_jobs SET queue_job_id = ${queueJobId} WHERE id = ${id}`;
  }

  async get(id: bigint): Promise<TrainingJobRow | undefined> {
    const rows = await this.db.$queryRaw<TrainingJobRow[]>`SELECT * FROM training_jobs WHERE id = ${id}`;
    return rows[0];
  }

  async list(limit: number, status?: TrainingJobStatus): Promise<TrainingJobRow[]> {
    return this.db.$queryRaw<TrainingJobRow[]>`
      SELECT * FROM training_jobs ${status ? Prisma.sql`WHERE status = ${status}` : Prisma.empty}
      ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
  }

  /** The worker takes a queued job; undefined when it is no longer queued (cancelled, or already taken). */
  async claim(id: bigint, workerId: string): Promise<TrainingJobRow | undefined> {
    const rows = await this.db.$queryRaw<TrainingJobRow[]>`
      UPDATE training_jobs SET status = 'running', phase = 'bottlenecks', worker_id = ${workerId}, started_at = now(), heartbeat_at = now()
      WHERE id = ${id} AND status = 'queued' RETURNING *`;
    return rows[0];
  }

  /**
   * The worker's heartbeat, with its progress. Returns whether a cancel was requested, or
   * undefined when the job is no longer this worker's running job (swept as interrupted).
   */
  async heartbeat(id: bigint, workerId: string, phase?: TrainingJobPhase, progress?: TrainingJobProgress): Promise<{ cancelRequested: boolean } | undefined> {
    const rows = await this.db.$queryRaw<Array<{ cancel_requested_at: Date | null }>>`
      UPDATE training_jobs SET heartbeat_at = now(),
        phase = COALESCE(${phase ?? null}::text, phase),
        progress = COALESCE(${progress ? JSON.stringify(progress) : null}::jsonb, progress)
      WHERE id = ${id} AND worker_id = ${workerId} AND status = 'running'
      RETURNING cancel_requested_at`;
    const row = rows[0];
    return row ? { cancelRequested: row.cancel_requested_at !== null } : undefined;
  }

  /** End a running job of this worker; false when it was not (already swept). */
  async finish(
    id: bigint,
    workerId: string,
    end: { status: 'done' | 'failed' | 'cancelled'; error?: string; resultVersion?: string; result?: Record<string, unknown> },
  ): Promise<boolean> {
    const n = await this.db.$executeRaw`
      UPDATE training_jobs SET status = ${end.status}::text, phase = CASE WHEN ${end.status}::text = 'done' THEN 'done' ELSE phase END,
        error = ${end.error ?? null}::text, result_version = ${end.resultVersion ?? null}::text,
        result = ${end.result ? JSON.stringify(end.result) : null}::jsonb, finished_at = now(), heartbeat_at = now()
      WHERE id = ${id} AND worker_id = ${workerId} AND status = 'running'`;
    return n > 0;
  }

  /** A queued job is cancelled at once; a running one is asked to stop (its worker ends it). */
  async requestCancel(id: bigint, by: string): Promise<TrainingJobRow | undefined> {
    const rows = await this.db.$queryRaw<TrainingJobRow[]>`
      UPDATE training_jobs SET
        status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
        finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
        cancel_requested_at = COALESCE(cancel_requested_at, now()), cancelled_by = COALESCE(cancelled_by, ${by})
      WHERE id = ${id} AND status IN ('queued', 'running') RETURNING *`;
    return rows[0];
  }

  /** Running jobs whose worker stopped beating for `timeoutS` end as failed: interrupted. */
  async failStale(timeoutS: number): Promise<bigint[]> {
    const rows = await this.db.$queryRaw<Array<{ id: bigint }>>`
      UPDATE training_jobs SET status = 'failed', error = ${TRAINING_JOB_INTERRUPTED}, finished_at = now()
      WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => ${timeoutS}) RETURNING id`;
    return rows.map((r) => r.id);
  }

  /** Running jobs of a worker known to be gone (its process exited) end as failed: interrupted. */
  async failWorkerJobs(workerId: string): Promise<bigint[]> {
    const rows = await this.db.$queryRaw<Array<{ id: bigint }>>`
      UPDATE training_jobs SET status = 'failed', error = ${TRAINING_JOB_INTERRUPTED}, finished_at = now()
      WHERE status = 'running' AND worker_id = ${workerId} RETURNING id`;
    return rows.map((r) => r.id);
  }

  /** Labelled samples of a backbone, in a stable order (device, the device's sample id), not arrival order. */
  async labelledSamples(backboneId: string, dim: number): Promise<LabelledSampleRow[]> {
    return this.db.$queryRaw<LabelledSampleRow[]>`
      SELECT id, device_id, sample_id, label, embedding, embedding_dim, backbone_id FROM samples
      WHERE state = 'labelled' AND label IS NOT NULL AND embedding IS NOT NULL AND backbone_id = ${backboneId} AND embedding_dim = ${dim}
      ORDER BY device_id, sample_id`;
  }

  /** The thumbnails' blob keys of samples, by sample id. */
  async thumbnailsOf(ids: bigint[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.$queryRaw<Array<{ id: bigint; thumbnail_sha256: string | null }>>`
      SELECT id, thumbnail_sha256 FROM samples WHERE id = ANY(${ids}::bigint[])`;
    return new Map(rows.filter((r) => r.thumbnail_sha256).map((r) => [r.id.toString(), r.thumbnail_sha256 as string]));
  }

  /** Labelled samples left out for another backbone or without an embedding. */
  async countUnusableLabelled(backboneId: string, dim: number): Promise<number> {
    const rows = await this.db.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM samples WHERE state = 'labelled'
        AND (embedding IS NULL OR backbone_id <> ${backboneId} OR embedding_dim IS DISTINCT FROM ${dim})`;
    return rows[0]?.n ?? 0;
  }

  async version(version: string): Promise<VersionBaseRow | undefined> {
    const rows = await this.db.$queryRaw<VersionBaseRow[]>`
      SELECT version, backbone_id, manifest, training_set_sha256 FROM model_versions WHERE version = ${version}`;
    return rows[0];
  }

  /** The backbone spec of the newest version on this backbone (for a dataset base without one). */
  async newestManifestFor(backboneId?: string): Promise<unknown> {
    const rows = await this.db.$queryRaw<Array<{ manifest: unknown }>>`
      SELECT manifest FROM model_versions ${backboneId ? Prisma.sql`WHERE backbone_id = ${backboneId}` : Prisma.empty}
      ORDER BY registered_at DESC LIMIT 1`;
    return rows[0]?.manifest;
  }
}
