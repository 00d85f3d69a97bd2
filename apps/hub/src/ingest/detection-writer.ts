import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Detection } from '@shelfsight/contracts';
import { RateLimitedLog } from '../common/rate-limited-log';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { CommittedDetections } from './committed-detections';
import { IngestRepository } from './ingest.repository';

/** Totals of the transaction a batch was committed in (per-message outcomes are not separable in a set-based commit). */
export interface CommitOutcome {
  stored: number;
  duplicates: number;
  stateChanges: number;
  seqConflicts: number;
}

interface Pending {
  deviceId: string;
  epoch: string;
  detections: Detection[];
  resolve(outcome: CommitOutcome): void;
  reject(err: Error): void;
}

export class WriterClosedError extends Error {
  override name = 'WriterClosedError';
}

/**
 * Batching writer: detections from many MQTT messages are committed together, one
 * transaction at a time per flusher. A commit that fails (database down, deadlock) is
 * retried with backoff, keeping its rows; callers learn of success only after commit,
 * so nothing is acknowledged that is not stored. Memory is bounded: past
 * `ingestMaxPending` rows, `submit` refuses (the device keeps the data and resends).
 */
@Injectable()
export class DetectionWriter implements OnModuleDestroy {
  private readonly log = new Logger(DetectionWriter.name);
  private readonly conflictLog = new RateLimitedLog((line) => this.log.warn(line));
  private readonly queue: Pending[] = [];
  private pendingRows = 0;
  private activeFlushers = 0;
  private closed = false;
  private readonly maxFlushers = 2;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly repository: IngestRepository,
    private readonly metrics: HubMetrics,
    private readonly committed: CommittedDetections,
  ) {
    metrics.pending.readFrom(() => this.pendingRows);
  }

  /** Resolves after the detections are committed; undefined when the writer is full. */
  submit(deviceId: string, epoch: string, detections: Detection[]): Promise<CommitOutcome> | undefined {
    if (this.closed) return Promise.reject(new WriterClosedError('hub is shutting down'));
    if (this.pendingRows + detections.length > this.config.ingestMaxPending) return undefined;
    this.pendingRows += detections.length;
    const promise = new Promise<CommitOutcome>((resolve, reject) => this.queue.push({ deviceId, epoch, detections, resolve, reject }));
    this.kick();
    return promise;
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + 5000;
    while ((this.queue.length > 0 || this.activeFlushers > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const p of this.queue.splice(0)) p.reject(new WriterClosedError('hub stopped before commit'));
  }

  private kick(): void {
    while (this.activeFlushers < this.maxFlushers && this.queue.length > 0) {
      this.activeFlushers += 1;
      void this.flushLoop().finally(() => (this.activeFlushers -= 1));
    }
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.takeGroup();
      await this.commitWithRetry(group);
    }
  }

  private takeGroup(): Pending[] {
    const group: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0 && (group.length === 0 || rows + this.queue[0]!.detections.length <= this.config.ingestBatchRows)) {
      const next = this.queue.shift()!;
      group.push(next);
      rows += next.detections.length;
    }
    return group;
  }

  private async commitWithRetry(group: Pending[]): Promise<void> {
    let rows = 0;
    for (const p of group) rows += p.detections.length;
    let backoff = 100;
    for (;;) {
      const started = performance.now();
      try {
        const result = await this.repository.commit(group, this.config.minConfidence);
        this.metrics.commitMs.observe(performance.now() - started);
        this.metrics.batchRows.observe(rows);
        this.metrics.detectionsStored.inc({}, result.stored);
        this.metrics.detectionsDuplicate.inc({}, rows - result.stored);
        this.metrics.stateChanges.inc({}, result.stateChanges);
        if (result.seqConflicts > 0) {
          this.metrics.seqConflicts.inc({}, result.seqConflicts);
          this.conflictLog.warn(
            `${result.seqConflicts} detection(s) refused: sequence number reused with another frame (the stored one is kept): ${result.conflictExamples.join('; ')}`,
          );
        }
        this.pendingRows -= rows;
        const outcome: CommitOutcome = { stored: result.stored, duplicates: rows - result.stored, stateChanges: result.stateChanges, seqConflicts: result.seqConflicts };
        for (const p of group) p.resolve(outcome);
        if (result.stored > 0) this.committed.emit(group.flatMap((p) => p.detections.map((d) => ({ site: d.site, location: d.location }))));
        return;
      } catch (err) {
        this.metrics.commitErrors.inc();
        this.log.warn(`commit of ${rows} detections failed (${(err as Error).message}); retrying in ${backoff} ms`);
        if (this.closed) {
          this.pendingRows -= rows;
          for (const p of group) p.reject(new WriterClosedError('hub stopped before commit'));
          return;
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
}
