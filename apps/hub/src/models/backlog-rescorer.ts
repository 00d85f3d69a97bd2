import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { unpackArtifact, verifyArtifact } from '@shelfsight/contracts';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { scoreRows } from './evaluation';
import { ModelsRepository } from './models.repository';

/** What registration needs of the re-scorer: a nudge that work is queued (a no-op outside the hub). */
export interface RescoreTrigger {
  kick(): void;
}
export const RESCORE_TRIGGER = Symbol('RESCORE_TRIGGER');

/** A run that has not beaten for this long belongs to a process that died: claimed again. */
const STALE_MS = 60_000;
/** How often the hub looks for versions registered by other processes (training workers, replicas). */
const POLL_MS = 5_000;

/**
 * Re-scores the labelling backlog after a registration: every pending sample of the
 * version's backbone is scored again from its stored embedding with the new head (plain
 * TypeScript, no TensorFlow), in keyset batches of RESCORE_BATCH_ROWS (bounded memory),
 * in the background, progress logged. The queue's orders (least margin, entropy) then
 * follow the newest model. Work is claimed from model_versions.rescore_state, so a
 * version registered by a worker process is picked up by a hub, several replicas share
 * the work, and a run cut off by a restart is claimed again. A run stops when a newer
 * version of its backbone arrives (that one re-scores everything again).
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
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  /** Look for queued work now (after a registration in this process). */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: unknown) => this.log.warn(`backlog re-score paused: ${(err as Error).message} (retried in ${POLL_MS / 1000} s)`))
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
    this.timer = setInterval(() => this.kick(), POLL_MS);
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
      const claim = await this.repo.claimRescore(STALE_MS);
      if (!claim) return;
      try {
        await this.run(claim.version, claim.backbone_id, claim.artifact_sha256);
      } catch (err) {
        this.log.error(`re-scoring the backlog with ${claim.version} failed: ${(err as Error).message}`);
        await this.repo.setRescore(claim.version, 'failed', null);
      }
    }
  }

  private async run(version: string, backboneId: string, artifactSha256: string): Promise<void> {
    const tar = await this.blobs.get(artifactSha256);
    if (!tar) throw new Error(`artifact blob ${artifactSha256} is missing`);
    const { trainingRows: _rows, ...files } = await unpackArtifact(tar);
    const { head, labels } = verifyArtifact(files);
    const dim = head.spec.inputDim;
    const total = await this.repo.countPending(backboneId, dim);
    const started = Date.now();
    let done = 0;
    let after = 0n;
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
      await this.repo.setRescore(version, 'running', done);
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
