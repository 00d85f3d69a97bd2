import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store';
import { HubMetrics } from '../metrics/hub-metrics';
import { SamplesRepository } from './samples.repository';

const CHUNK = 2000;
const INTERVAL_MS = 3600_000;

/**
 * Deletes unlabelled samples past their expires_at (SAMPLE_RETENTION_DAYS after arrival),
 * in chunks, then the thumbnails no remaining sample refers to. Labelled samples have no
 * expiry and are kept.
 */
@Injectable()
export class SamplePurgeService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(SamplePurgeService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<{ samples: number; blobs: number }>;

  constructor(
    private readonly repo: SamplesRepository,
    private readonly metrics: HubMetrics,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.runOnce(), INTERVAL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Purge what expired by `now`; returns how many samples and blobs were deleted. */
  runOnce(now = new Date()): Promise<{ samples: number; blobs: number }> {
    if (this.running) return this.running;
    this.running = this.purge(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async purge(now: Date): Promise<{ samples: number; blobs: number }> {
    let samples = 0;
    let blobs = 0;
    try {
      for (;;) {
        const deleted = await this.repo.deleteExpired(now, CHUNK);
        samples += deleted.length;
        const orphans = await this.repo.unreferencedThumbnails([...new Set(deleted.map((d) => d.thumbnail_sha256))]);
        for (const sha of orphans) await this.blobs.delete(sha);
        blobs += orphans.length;
        if (deleted.length < CHUNK) break;
      }
      this.metrics.samplesPurged.inc({}, samples);
      if (samples > 0) this.log.log(`sample retention: deleted ${samples} unlabelled samples and ${blobs} thumbnails`);
    } catch (err) {
      this.log.warn(`sample purge failed: ${(err as Error).message}`);
    }
    return { samples, blobs };
  }
}
