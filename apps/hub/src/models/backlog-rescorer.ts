import { Inject, Injectable, Logger, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { unpackArtifact, verifyArtifact } from '@shelfsight/contracts';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { scoreRows } from './evaluation';
import { ModelsRepository, type RescoreClaim } from './models.repository';

/** What registration needs of the re-scorer: a nudge that work is queued (a no-op outside the hub). */
export interface RescoreTrigger {
  kick(): void;
}
export const RESCORE_TRIGGER = Symbol('RESCORE_TRIGGER');

/** How a re-score copes with errors and dead processes. */
export interface RescorePolicy {
  /** A run that has not beaten for this long belongs to a process that died: claimed again. */
  staleMs: number;
  /** How often the hub looks for queued work (versions registered by training workers, replicas; retries). */
  pollMs: number;
  /** Attempts before a run that keeps failing is marked failed for good. */
  maxAttempts: number;
  /** Backoff before retry n (from 1): retryBaseMs × 2^(n−1), at most retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_RESCORE_POLICY: RescorePolicy = { staleMs: 60_000, pollMs: 5_000, maxAttempts: 8, retryBaseMs: 5_000, retryMaxMs: 600_000 };
/** Injection token of the re-score policy (optional; tests shorten it). */
export const RESCORE_POLICY = Symbol('RESCORE_POLICY');

/** The wait before retry `attempt` (from 1) of a failed re-score. */
export function rescoreBackoffMs(policy: Pick<RescorePolicy, 'retryBaseMs' | 'retryMaxMs'>, attempt: number): number {
  return Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * Re-scores the labelling backlog after a registration: every pending sample of the
 * version's backbone is scored again from its stored embedding with the new head (plain
 * TypeScript, no TensorFlow), in keyset batches of RESCORE_BATCH_ROWS (bounded memory),
 * in the background, progress logged. The queue's orders (least margin, entropy) then
 * follow the newest model. Work is claimed from model_versions.rescore_state, so a
 * version registered by a worker process is picked up by a hub, several replicas share
 * the work, and a run cut off by a restart is claimed again. A run stops when a newer
 * version of its backbone arrives (that one re-scores everything again). A run that hits
 * an error (database, blob store) is queued again with exponential backoff and resumes
 * after the last sample it scored; only after `maxAttempts` failures is it failed for good.
 * Staleness and backoff are judged on the database's clock.
 */
@Injectable()
export class BacklogRescorer implements RescoreTrigger, OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('Rescore');
  private running: Promise<void> | undefined;
  private again = false;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: ModelsRepository,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(HUB_CONFIG) private readonly config: Pick<HubConfig, 'rescoreBatchRows'>,
    @Optional() @Inject(RESCORE_POLICY) private readonly policy: RescorePolicy = DEFAULT_RESCORE_POLICY,
  ) {}

  /** Look for queued work now (after a registration in this process). */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: unknown) => this.log.warn(`backlog re-score paused: ${(err as Error).message} (retried in ${this.policy.pollMs / 1000} s)`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Resolves when no re-score is running in this process. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.kick(), this.policy.pollMs);
    this.timer.unref();
    this.kick();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.idle();
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      const claim = await this.repo.claimRescore(this.policy.staleMs);
      if (!claim) return;
      try {
        await this.run(claim);
      } catch (err) {
        const message = (err as Error).message;
        const retryInMs = rescoreBackoffMs(this.policy, claim.rescore_attempts + 1);
        const r = await this.repo.rescoreAttemptFailed(claim.version, message, this.policy.maxAttempts, retryInMs / 1000);
        if (r?.state === 'failed') this.log.error(`re-scoring the backlog with ${claim.version} failed ${r.attempts} times, given up: ${message}`);
        else this.log.warn(`re-scoring the backlog with ${claim.version} failed (attempt ${r?.attempts ?? '?'}): ${message}; resumes in ${(retryInMs / 1000).toFixed(1)} s`);
      }
    }
  }

  private async run(claim: RescoreClaim): Promise<void> {
    const { version, backbone_id: backboneId, artifact_sha256: artifactSha256 } = claim;
    const tar = await this.blobs.get(artifactSha256);
    if (!tar) throw new Error(`artifact blob ${artifactSha256} is missing`);
    const { trainingRows: _rows, ...files } = await unpackArtifact(tar);
    const { head, labels } = verifyArtifact(files);
    const dim = head.spec.inputDim;
    const total = await this.repo.countPending(backboneId, dim);
    const started = Date.now();
    // Resumes where an earlier attempt stopped.
    let done = claim.rescored_samples ?? 0;
    let after = claim.rescore_after_id ?? 0n;
    let lastDecile = -1;
    for (;;) {
      if (this.stopping) return; // stays 'running' and goes stale: claimed again after a restart
      if ((await this.repo.newestVersionFor(backboneId)) !== version) {
        this.log.log(`re-score with ${version} stopped after ${done}/${total} samples: a newer version of ${backboneId} was registered`);
        await this.repo.setRescore(version, 'superseded', done);
        return;
      }
      const page = await this.repo.pendingEmbeddings(backboneId, dim, after, this.config.rescoreBatchRows);
      if (page.length === 0) break;
      const x = new Float32Array(page.length * dim);
      page.forEach((p, i) => {
        const bytes = Buffer.from(p.embedding.buffer, p.embedding.byteOffset, p.embedding.byteLength);
        for (let j = 0; j < dim; j++) x[i * dim + j] = bytes.readFloatLE(4 * j);
      });
      const updated = await this.repo.updateScores(version, page.map((p) => p.id), scoreRows(head, labels, x, page.length));
      done += updated;
      this.metrics.samplesRescored.inc(updated);
      after = (page[page.length - 1] as { id: bigint }).id;
      await this.repo.rescoreProgress(version, done, after);
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (decile !== lastDecile) {
        lastDecile = decile;
        this.log.log(`re-scoring the backlog with ${version}: ${done}/${total} samples (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      }
      // Let detection ingest and requests run between batches.
      await new Promise((r) => setImmediate(r));
    }
    await this.repo.setRescore(version, 'done', done);
    this.log.log(`re-scored ${done} pending samples with ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}
