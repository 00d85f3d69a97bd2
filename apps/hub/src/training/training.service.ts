import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, Optional, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { TrainingJobRequestSchema, type TrainingJobRequest, type TrainingJobStatus } from '@shelfsight/contracts';
import { HUB_CONFIG, HUB_CONFIG_SPEC, type HubConfig } from '../config/hub-config';
import { EventBus } from '../events/event-bus';
import type { TrainingJobDto } from './training-job.dto';
import { TrainingBaseError, TrainingJobNotFoundError, TrainingJobStateError, TrainingQueueUnavailableError } from './training.error';
import { LiveAttemptExistsError, TrainingJobsRepository, type TrainingJobRow } from './training-jobs.repository';
import { backboneRef, datasetPath, JobPathError, jobPathRoots, realPathInRoots, type JobPathRoots } from './job-paths';
import { TRAINING_QUEUE_CLIENT, TRAINING_SEND_PAUSE, type TrainingQueueClient, type TrainingQueueMessage } from './training-queue';

/** Sends of a job's queue message before the job is recorded as failed (backoff 200 ms, 800 ms between them). */
export const QUEUE_SEND_ATTEMPTS = 3;

/**
 * Training jobs as the hub sees them: queue (pg-boss), read progress, cancel, retry, and
 * sweep jobs whose worker went silent. The training itself runs in a worker process
 * (`shelf worker`, or the child the hub starts): this process never loads TensorFlow.
 */
@Injectable()
export class TrainingService implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger('Training');
  private sweepTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  /** Active jobs as last published (id → status/phase/progress), for the live watch. */
  private watched = new Map<number, string>();
  private watching = false;
  private readonly roots: JobPathRoots;

  constructor(
    private readonly jobs: TrainingJobsRepository,
    @Inject(HUB_CONFIG) private readonly config: Pick<HubConfig, 'trainingHeartbeatTimeoutS'> & Partial<Pick<HubConfig, 'dataDir' | 'trainingDatasetRoots' | 'trainingBackboneRoots' | 'trainingBackbone'>>,
    @Inject(TRAINING_QUEUE_CLIENT) private readonly queue: TrainingQueueClient,
    /** Waits between send attempts (tests pass an instant one). */
    @Optional() @Inject(TRAINING_SEND_PAUSE) private readonly pause: (ms: number) => Promise<unknown> = sleep,
    /** Live events for the console (GET /events); without one (unit tests) nothing is pushed. */
    @Optional() private readonly events: EventBus = new EventBus(),
  ) {
    this.roots = jobPathRoots({ ...config, dataDir: config.dataDir ?? HUB_CONFIG_SPEC.dataDir.schema.parse(undefined) });
  }

  async onModuleInit(): Promise<void> {
    // A job's row can outgrow one NOTIFY (its spec and result): other replicas read it again.
    this.events.resolveWith('training', (id) => this.get(id).catch(() => undefined));
    await this.sweep();
    const every = Math.max(1000, (this.config.trainingHeartbeatTimeoutS * 1000) / 3);
    this.sweepTimer = setInterval(() => void this.sweep(), every);
    this.sweepTimer.unref();
    this.watchTimer = setInterval(() => void this.watch(), TrainingService.WATCH_MS);
    this.watchTimer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    await this.queue.stop();
  }

  async start(request: TrainingJobRequest, actor: string): Promise<TrainingJobDto> {
    const spec = TrainingJobRequestSchema.parse(request);
    await this.checkPaths(spec);
    const row = await this.jobs.create(spec, actor);
    return this.published(await this.enqueue(row));
  }

  async get(id: string): Promise<TrainingJobDto> {
    return this.toDto(await this.find(id));
  }

  async list(limit: number, status?: TrainingJobStatus): Promise<TrainingJobDto[]> {
    return (await this.jobs.list(limit, status)).map((r) => this.toDto(r));
  }

  async cancel(id: string, actor: string): Promise<TrainingJobDto> {
    const current = await this.find(id);
    const row = await this.jobs.requestCancel(current.id, actor);
    if (!row) throw new TrainingJobStateError(`training job ${id} is ${current.status}: only a queued or running job can be cancelled`);
    if (row.status === 'cancelled' && row.queue_job_id) await this.queue.cancel(row.queue_job_id).catch(() => undefined);
    return this.published(row);
  }

  /**
   * A new attempt of a failed or cancelled job, with the same request. Only the newest
   * attempt of a job can be retried, and only while no attempt of it is queued or running
   * (a unique index holds this under concurrent retries), so two attempts never run at once.
   */
  async retry(id: string, actor: string): Promise<TrainingJobDto> {
    const old = await this.find(id);
    if (old.status !== 'failed' && old.status !== 'cancelled') {
      throw new TrainingJobStateError(`training job ${id} is ${old.status}: only a failed or cancelled job can be retried`);
    }
    const rootId = old.root_id ?? old.id;
    const latest = await this.jobs.latestAttempt(rootId);
    if (latest && latest.id !== old.id) {
      throw new TrainingJobStateError(`training job ${id} has a newer attempt (${latest.attempt}: job ${latest.id}, ${latest.status}): retry that one`);
    }
    const parsed = TrainingJobRequestSchema.safeParse(old.spec);
    if (!parsed.success) throw new TrainingBaseError(`training job ${id}'s stored request is not valid any more: ${parsed.error.message}`);
    await this.checkPaths(parsed.data);
    let row: TrainingJobRow;
    try {
      row = await this.jobs.create(parsed.data, actor, { rootId, attempt: old.attempt + 1, retryOf: old.id });
    } catch (err) {
      if (err instanceof LiveAttemptExistsError) throw new TrainingJobStateError(`training job ${id}: ${err.message}`);
      throw err;
    }
    return this.published(await this.enqueue(row));
  }

  /** Running jobs without a heartbeat for TRAINING_HEARTBEAT_TIMEOUT_S end as failed: interrupted. */
  async sweep(): Promise<void> {
    try {
      const ids = await this.jobs.failStale(this.config.trainingHeartbeatTimeoutS);
      if (ids.length > 0) this.log.warn(`training jobs ${ids.join(', ')} lost their worker: failed (interrupted)`);
    } catch (err) {
      this.log.warn(`training job sweep failed: ${(err as Error).message}`);
    }
  }

  /** How often live screens see a job's progress (the worker writes it to the database). */
  static readonly WATCH_MS = 1000;

  /**
   * While someone watches (`GET /events`), publish each queued or running job whose status,
   * phase or progress changed, and the final state of each that left that set. The worker
   * runs in another process (or host), so the database is where progress is seen; every
   * replica watched by someone sees it there itself (`local`: not sent to the others).
   */
  async watch(): Promise<void> {
    if (this.watching || this.events.listenerCount === 0) return;
    this.watching = true;
    try {
      const active = [...(await this.jobs.list(100, 'running')), ...(await this.jobs.list(100, 'queued'))];
      const now = new Map<number, string>();
      for (const row of active) {
        const dto = this.toDto(row);
        const state = `${dto.status}/${dto.phase}/${JSON.stringify(dto.progress)}`;
        now.set(dto.id, state);
        if (this.watched.get(dto.id) !== state) this.events.publish('training', dto, { coalesce: `training:${dto.id}`, local: true });
      }
      for (const id of this.watched.keys()) {
        if (now.has(id)) continue;
        const row = await this.jobs.get(BigInt(id));
        if (row) this.events.publish('training', this.toDto(row), { coalesce: `training:${id}`, local: true });
      }
      this.watched = now;
    } catch (err) {
      this.log.warn(`training job watch failed: ${(err as Error).message}`);
    } finally {
      this.watching = false;
    }
  }

  /**
   * A request's dataset and backbone must resolve inside the configured roots as written, and,
   * when the path exists on this machine, once links are resolved (the worker, which may run
   * elsewhere, checks again before it opens anything): 400 naming the rule.
   */
  private async checkPaths(spec: TrainingJobRequest): Promise<void> {
    try {
      if ('dataset' in spec.base) {
        const path = datasetPath(spec.base.dataset, this.roots);
        if (await exists(path)) await realPathInRoots('dataset', path, this.roots.datasets, 'TRAINING_DATASET_ROOTS');
      }
      if (spec.backbone !== undefined) {
        const ref = backboneRef(spec.backbone, this.roots);
        if (ref.kind === 'path' && (await exists(ref.path))) await realPathInRoots('backbone', ref.path, this.roots.backbones, 'TRAINING_BACKBONE_ROOTS');
      }
    } catch (err) {
      if (err instanceof JobPathError) throw new TrainingBaseError(err.message);
      throw err;
    }
  }

  private published(row: TrainingJobRow): TrainingJobDto {
    const dto = this.toDto(row);
    this.events.publish('training', dto, { coalesce: `training:${dto.id}` });
    return dto;
  }

  /**
   * Send the job's queue message, retrying a failed send; when the queue still does not
   * take it, the job ends as failed with the reason (it can be retried) instead of
   * staying queued forever, and the caller gets a 503 saying so.
   */
  private async enqueue(row: TrainingJobRow): Promise<TrainingJobRow> {
    const message: TrainingQueueMessage = { jobId: row.id.toString() };
    let why = 'the queue refused the message';
    for (let attempt = 1; attempt <= QUEUE_SEND_ATTEMPTS; attempt++) {
      try {
        const queueId = await this.queue.send(message);
        if (queueId) {
          await this.jobs.setQueueJobId(row.id, queueId);
          row.queue_job_id = queueId;
          return row;
        }
        why = 'the queue refused the message (no id returned)';
      } catch (err) {
        why = (err as Error).message;
      }
      this.log.warn(`training job ${row.id}: queue send ${attempt}/${QUEUE_SEND_ATTEMPTS} failed: ${why}`);
      if (attempt < QUEUE_SEND_ATTEMPTS) await this.pause(200 * 4 ** (attempt - 1));
    }
    const error = `not queued: ${why} (after ${QUEUE_SEND_ATTEMPTS} attempts)`;
    await this.jobs.failQueued(row.id, error);
    throw new TrainingQueueUnavailableError(`training job ${row.id} failed: ${error}; retry it with POST /training-jobs/${row.id}/retry`);
  }

  private async find(id: string): Promise<TrainingJobRow> {
    const row = /^\d{1,18}$/.test(id) ? await this.jobs.get(BigInt(id)) : undefined;
    if (!row) throw new TrainingJobNotFoundError(id);
    return row;
  }

  private toDto(r: TrainingJobRow): TrainingJobDto {
    const iso = (d: Date | null) => (d ? d.toISOString() : null);
    return {
      id: Number(r.id),
      rootId: Number(r.root_id ?? r.id),
      attempt: r.attempt,
      retryOf: r.retry_of === null ? null : Number(r.retry_of),
      status: r.status,
      phase: r.phase,
      progress: r.progress,
      error: r.error,
      spec: r.spec,
      workerId: r.worker_id,
      createdBy: r.created_by,
      createdAt: r.created_at.toISOString(),
      startedAt: iso(r.started_at),
      heartbeatAt: iso(r.heartbeat_at),
      finishedAt: iso(r.finished_at),
      cancelRequestedAt: iso(r.cancel_requested_at),
      cancelledBy: r.cancelled_by,
      resultVersion: r.result_version,
      result: r.result,
    };
  }
}

/** Whether `path` (or what its links lead to) exists on this machine. */
async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
