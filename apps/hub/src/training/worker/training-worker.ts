import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { createLogger, type Logger } from '@shelfsight/common';
import { TrainingJobRequestSchema, type TrainingJobPhase, type TrainingJobProgress } from '@shelfsight/contracts';
import { PrismaClient } from '@shelfsight/db';
import type PgBoss from 'pg-boss';
import { createBlobStore } from '../../blobs/blob-config';
import type { BlobStore } from '../../blobs/blob-store';
import { TrainingJobsRepository } from '../training-jobs.repository';
import { startTrainingQueue, TRAINING_QUEUE, type TrainingQueueMessage } from '../training-queue';
import { jobErrorMessage, jobPathRoots, resolveDataset } from '../job-paths';
import { runTrainingJob, TrainingJobInputError } from './run-job';
import type { WorkerConfig } from './worker-config';

/**
 * The training worker process: takes jobs from the pg-boss queue one at a time (so with
 * several workers on one database each job runs exactly once), claims the job row, beats
 * a heartbeat with its progress, stops cooperatively on a cancel, and always ends the row
 * as done, failed or cancelled. Jobs of workers that stopped beating are swept to failed:
 * interrupted on start and periodically.
 */
export class TrainingWorker {
  private boss: PgBoss | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** Job inputs (training rows, thumbnails, evaluation rows) and outputs (artifacts): the hub's store, wherever this worker runs. */
  private readonly blobs: BlobStore;

  private constructor(
    private readonly config: WorkerConfig,
    private readonly db: PrismaClient,
    private readonly jobs: TrainingJobsRepository,
    private readonly logger: Logger,
  ) {
    this.blobs = createBlobStore(config);
  }

  static async start(config: WorkerConfig, logger: Logger = createLogger('worker')): Promise<TrainingWorker> {
    const db = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.databaseUrl, max: 2 }) });
    const w = new TrainingWorker(config, db, new TrainingJobsRepository(db), logger);
    await w.sweep();
    w.boss = await startTrainingQueue(config.databaseUrl, { supervise: true });
    await w.boss.work<TrainingQueueMessage>(TRAINING_QUEUE, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
      if (!job) return;
      const run = w.runOne(job.data.jobId);
      w.current = run;
      await run;
      w.current = undefined;
    });
    w.sweepTimer = setInterval(() => void w.sweep(), Math.max(1000, (config.trainingHeartbeatTimeoutS * 1000) / 3));
    w.sweepTimer.unref();
    // Where job inputs come from and artifacts go: a worker on another machine must name the hub's bucket (BLOB_STORE=s3).
    logger.info('training worker ready', { workerId: config.workerId, blobStore: config.blobStore === 's3' ? `s3://${config.s3Bucket}/${config.s3Prefix}` : join(resolve(config.dataDir), 'blobs') });
    return w;
  }

  /** Stop taking jobs; a running job is cancelled (ends as cancelled) and awaited. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.abort.abort();
    await this.boss?.offWork(TRAINING_QUEUE).catch(() => undefined);
    await this.current?.catch(() => undefined);
    await this.boss?.stop({ graceful: false, wait: true, close: true }).catch(() => undefined);
    await this.db.$disconnect();
  }

  private async sweep(): Promise<void> {
    try {
      const ids = await this.jobs.failStale(this.config.trainingHeartbeatTimeoutS);
      if (ids.length > 0) this.logger.warn('jobs lost their worker: failed (interrupted)', { jobs: ids.map(String) });
    } catch (err) {
      this.logger.warn('sweep failed', { error: (err as Error).message });
    }
  }

  private async runOne(jobIdText: string): Promise<void> {
    const id = BigInt(jobIdText);
    const workerId = this.config.workerId;
    const row = await this.jobs.claim(id, workerId);
    if (!row) {
      this.logger.info('job no longer queued; skipped', { jobId: jobIdText });
      return;
    }
    const cancel = new AbortController();
    const onStop = () => cancel.abort();
    this.abort.signal.addEventListener('abort', onStop);
    let phase: TrainingJobPhase | undefined = 'bottlenecks';
    let progress: TrainingJobProgress | undefined;
    let dirty = true;
    let lost = false;
    const beat = async () => {
      const p = dirty ? progress : undefined;
      const ph = dirty ? phase : undefined;
      dirty = false;
      const r = await this.jobs.heartbeat(id, workerId, ph, p).catch((err: Error) => {
        this.logger.warn('heartbeat failed', { jobId: jobIdText, error: err.message });
        dirty = true;
        return { cancelRequested: false };
      });
      if (!r) {
        lost = true;
        cancel.abort();
      } else if (r.cancelRequested) cancel.abort();
    };
    const timer = setInterval(() => void beat(), this.config.heartbeatS * 1000);
    this.logger.info('job started', { jobId: jobIdText, attempt: row.attempt });
    try {
      // Inside the failure handling: a stored request that no longer parses fails the job with the reason.
      const parsed = TrainingJobRequestSchema.safeParse(row.spec);
      if (!parsed.success) throw new TrainingJobInputError(`invalid job request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ')}`);
      // Before anything is opened: the dataset must be inside the roots once links are resolved.
      const roots = jobPathRoots(this.config);
      const spec = 'dataset' in parsed.data.base ? { ...parsed.data, base: { dataset: await resolveDataset(parsed.data.base.dataset, roots) } } : parsed.data;
      const outcome = await runTrainingJob(
        jobIdText,
        spec,
        row.created_by,
        {
          db: this.db,
          workerId,
          jobs: this.jobs,
          blobs: this.blobs,
          gate: {
            gateMaxOverallDrop: this.config.gateMaxOverallDrop,
            gateMaxCategoryDrop: this.config.gateMaxCategoryDrop,
            gateAlpha: this.config.gateAlpha,
            gateMinEvalRows: this.config.gateMinEvalRows,
            evalHoldoutPercent: this.config.evalHoldoutPercent,
          },
          embeddingCheck: { percent: this.config.embeddingCheckPercent, allBelow: this.config.embeddingCheckAllBelow, maxCosineDistance: this.config.embeddingMaxCosineDistance },
          workDir: join(resolve(this.config.dataDir), 'training'),
          defaultBackbone: this.config.trainingBackbone,
          roots,
          logger: this.logger,
        },
        {
          signal: cancel.signal,
          flush: beat,
          report: (ph, p) => {
            phase = ph;
            if (p) progress = { ...progress, ...p };
            dirty = true;
          },
        },
      );
      clearInterval(timer);
      // runTrainingJob completed the job in the registration's transaction.
      this.logger.info('job done', { jobId: jobIdText, version: outcome.registered.version });
    } catch (err) {
      clearInterval(timer);
      const e = err as Error;
      if (lost || e.name === 'TrainingJobLostError') {
        this.logger.warn('job was swept as interrupted while running; result dropped', { jobId: jobIdText });
      } else if (e.name === 'TrainingCancelledError') {
        await this.jobs.finish(id, workerId, { status: 'cancelled', error: this.abort.signal.aborted ? 'worker stopped' : 'cancelled' });
        this.logger.info('job cancelled', { jobId: jobIdText });
      } else {
        // The stored error is read back over the API: a fixed form, never text from a file the job opened.
        await this.jobs.finish(id, workerId, { status: 'failed', error: jobErrorMessage(e, phase) });
        this.logger.warn('job failed', { jobId: jobIdText, error: e.message });
      }
    } finally {
      this.abort.signal.removeEventListener('abort', onStop);
    }
  }
}

/** Ensure the worker's scratch folder exists (artifacts before registration). */
export async function prepareWorkDir(dataDir: string): Promise<void> {
  await mkdir(join(resolve(dataDir), 'training'), { recursive: true });
}
