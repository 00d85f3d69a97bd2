import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { unpackArtifact, verifyArtifact, type PlainHead } from '@shelfsight/contracts';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { scoreRows } from './evaluation';
import { ModelsRepository } from './models.repository';

export interface RescoreJob {
  version: string;
  backboneId: string;
  labels: string[];
  head: PlainHead;
}

/**
 * Re-scores the labelling backlog when a version is registered: every pending sample of
 * the version's backbone is scored again from its stored embedding with the new head
 * (plain TypeScript, no TensorFlow), in keyset batches of RESCORE_BATCH_ROWS (bounded
 * memory), in the background, one job at a time, progress logged. The queue's orders
 * (least margin, entropy) then follow the newest model. A job stops when a newer version
 * of the backbone arrives (that one re-scores everything again). A job cut off by a
 * restart is resumed at boot.
 */
@Injectable()
export class BacklogRescorer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger('Rescore');
  private chain: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    private readonly repo: ModelsRepository,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  schedule(job: RescoreJob): void {
    this.chain = this.chain.then(() => this.run(job)).catch((err: unknown) => {
      this.log.error(`re-scoring the backlog with ${job.version} failed: ${(err as Error).stack ?? String(err)}`);
      return this.repo.setRescore(job.version, 'failed', null).catch(() => undefined);
    });
  }

  /** Resolves when every scheduled job has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  onApplicationBootstrap(): void {
    void this.resumeInterrupted().catch((err: unknown) => this.log.warn(`could not resume interrupted re-scores: ${(err as Error).message}`));
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    await this.chain;
  }

  private async resumeInterrupted(): Promise<void> {
    for (const v of await this.repo.versionsToRescore()) {
      if ((await this.repo.newestVersionFor(v.backbone_id)) !== v.version) {
        await this.repo.setRescore(v.version, 'superseded', null);
        continue;
      }
      const tar = await this.blobs.get(v.artifact_sha256);
      if (!tar) continue;
      const { trainingRows: _t, ...files } = await unpackArtifact(tar);
      const a = verifyArtifact(files);
      this.log.log(`resuming the interrupted backlog re-score with ${v.version}`);
      this.schedule({ version: v.version, backboneId: v.backbone_id, labels: a.labels, head: a.head });
    }
  }

  private async run(job: RescoreJob): Promise<void> {
    if (this.stopping) return;
    const dim = job.head.spec.inputDim;
    const total = await this.repo.countPending(job.backboneId, dim);
    await this.repo.setRescore(job.version, 'running', 0);
    const started = Date.now();
    let done = 0;
    let after = 0n;
    let lastDecile = -1;
    for (;;) {
      if (this.stopping) return; // stays 'running': resumed at the next boot
      if ((await this.repo.newestVersionFor(job.backboneId)) !== job.version) {
        this.log.log(`re-score with ${job.version} stopped after ${done}/${total} samples: a newer version of ${job.backboneId} was registered`);
        await this.repo.setRescore(job.version, 'superseded', done);
        return;
      }
      const page = await this.repo.pendingEmbeddings(job.backboneId, dim, after, this.config.rescoreBatchRows);
      if (page.length === 0) break;
      const x = new Float32Array(page.length * dim);
      page.forEach((p, i) => {
        const bytes = Buffer.from(p.embedding);
        for (let j = 0; j < dim; j++) x[i * dim + j] = bytes.readFloatLE(4 * j);
      });
      const scores = scoreRows(job.head, job.labels, x, page.length);
      const updated = await this.repo.updateScores(job.version, page.map((p) => p.id), scores);
      done += updated;
      this.metrics.samplesRescored.inc({}, updated);
      after = (page[page.length - 1] as { id: bigint }).id;
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (decile !== lastDecile) {
        lastDecile = decile;
        this.log.log(`re-scoring the backlog with ${job.version}: ${done}/${total} samples (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      }
      await this.repo.setRescore(job.version, 'running', done);
    }
    await this.repo.setRescore(job.version, 'done', done);
    this.log.log(`re-scored ${done} pending samples with ${job.version} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}
