import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { blobStoreEnv } from '../blobs/blob-config';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { relayChildLine } from '../logging/child-log';
import { TrainingJobsRepository } from './training-jobs.repository';

const SHELF_BIN = join(__dirname, '../../../../bin/shelf.js');

/**
 * With TRAINING_WORKER=child the hub runs one `shelf worker` process beside it, so one
 * command starts everything: restarted when it dies (its running job ends as failed:
 * interrupted at once), stopped with the hub. TensorFlow lives in that process only.
 */
@Injectable()
export class TrainingWorkerSupervisor implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('TrainingWorker');
  private child: ChildProcess | undefined;
  private workerId: string | undefined;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly jobs: TrainingJobsRepository,
    private readonly pino: PinoLogger,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.trainingWorker === 'child') this.spawnWorker();
  }

  /** The running worker child's pid (tests kill it to simulate a crash). */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  get currentWorkerId(): string | undefined {
    return this.workerId;
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }

  private spawnWorker(): void {
    const workerId = `${hostname()}-hub${process.pid}-child-${randomBytes(3).toString('hex')}`;
    this.workerId = workerId;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: this.config.databaseUrl,
      DATA_DIR: resolve(this.config.dataDir),
      WORKER_ID: workerId,
      // JSON records, whatever the hub prints: the hub relays them as records (relayChildLine).
      LOG_FORMAT: 'json',
      ...blobStoreEnv(this.config),
      TRAINING_HEARTBEAT_TIMEOUT_S: String(this.config.trainingHeartbeatTimeoutS),
      GATE_MAX_OVERALL_DROP: String(this.config.gateMaxOverallDrop),
      GATE_MAX_CATEGORY_DROP: String(this.config.gateMaxCategoryDrop),
      GATE_ALPHA: String(this.config.gateAlpha),
      GATE_MIN_EVAL_ROWS: String(this.config.gateMinEvalRows),
      EVAL_HOLDOUT_PERCENT: String(this.config.evalHoldoutPercent),
      EMBEDDING_CHECK_PERCENT: String(this.config.embeddingCheckPercent),
      EMBEDDING_CHECK_ALL_BELOW: String(this.config.embeddingCheckAllBelow),
      EMBEDDING_MAX_COSINE_DISTANCE: String(this.config.embeddingMaxCosineDistance),
      ...(this.config.trainingBackbone ? { TRAINING_BACKBONE: this.config.trainingBackbone } : {}),
      ...(this.config.trainingDatasetRoots ? { TRAINING_DATASET_ROOTS: this.config.trainingDatasetRoots } : {}),
      ...(this.config.trainingBackboneRoots ? { TRAINING_BACKBONE_ROOTS: this.config.trainingBackboneRoots } : {}),
    };
    const child = spawn(process.execPath, [SHELF_BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child = child;
    // The worker logs pino records: relayed as records (its level and fields), not as text.
    const relay = this.pino.logger.child({ context: 'TrainingWorker' });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => relayChildLine(line, relay));
    }
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.log.warn(`training worker ${workerId} exited (${signal ?? code}); restarting`);
      void this.jobs.failWorkerJobs(workerId).then(
        (ids) => ids.length > 0 && this.log.warn(`training jobs ${ids.join(', ')} failed: interrupted (worker exited)`),
        (err: Error) => this.log.warn(`could not mark the worker's jobs interrupted: ${err.message}`),
      );
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts++, 6));
      this.restartTimer = setTimeout(() => this.spawnWorker(), delay);
      this.restartTimer.unref();
    });
  }
}
