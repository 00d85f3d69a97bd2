import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { PrismaService } from '../prisma/prisma.service';

const CHUNK = 10_000;
const INTERVAL_MS = 3600_000;

/**
 * Deletes raw detections older than DETECTION_RETENTION_DAYS (by arrival), in chunks so
 * ingest is never blocked for long. Location state, locations and the hourly history
 * are separate tables and are kept.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(RetentionService.name);
  private timer?: NodeJS.Timeout;
  private first?: NodeJS.Timeout;
  private running?: Promise<number>;
  private closed = false;

  constructor(
    private readonly prisma: PrismaService,
    private readonly metrics: HubMetrics,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.retentionDays <= 0) return;
    this.timer = setInterval(() => void this.runOnce(), INTERVAL_MS);
    this.timer.unref();
    this.first = setTimeout(() => void this.runOnce(), 30_000);
    this.first.unref();
  }

  async onModuleDestroy(): Promise<void> {
    // Both timers: a hub stopped within 30 s of its start must not purge on a closed database.
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.first);
    await this.running?.catch(() => undefined);
  }

  /** Delete what is past retention; returns the number of detections deleted (0 once the hub is stopping). */
  runOnce(now = new Date()): Promise<number> {
    if (this.closed || this.config.retentionDays <= 0) return Promise.resolve(0);
    if (this.running) return this.running;
    this.running = this.purge(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async purge(now: Date): Promise<number> {
    const cutoff = new Date(now.getTime() - this.config.retentionDays * 86400_000);
    let total = 0;
    try {
      for (;;) {
        const n = await this.prisma.$executeRaw`
          DELETE FROM detections WHERE id IN (SELECT id FROM detections WHERE received_at < ${cutoff} LIMIT ${CHUNK})`;
        total += n;
        if (n < CHUNK) break;
      }
      this.metrics.retentionDeleted.inc({}, total);
      if (total > 0) this.log.log(`retention: deleted ${total} detections received before ${cutoff.toISOString()}`);
    } catch (err) {
      this.log.warn(`retention run failed: ${(err as Error).message}`);
    }
    return total;
  }
}
