import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { CommittedDetections, type CommittedLocation } from '../ingest/committed-detections';
import { HubMetrics } from '../metrics/hub-metrics';
import { FrameRequester } from '../samples/frame-requester';
import { DisputesRepository } from './disputes.repository';

/** Locations awaiting a check; beyond it new ones are dropped and counted. */
const MAX_PENDING = 20_000;
const CHUNK = 500;

/**
 * Disagreement as a hard-example signal: after each ingest commit, the locations it
 * touched are checked (off the hot path: a bounded set of keys, deduplicated, drained by
 * one async loop, one statement per 500 locations) for confident detections by
 * different devices with different categories within DISAGREEMENT_WINDOW_S. Those are
 * marked disputed and each device is asked for its frame; the replies are queued with
 * reason `disagreement`, ahead of plain low-confidence samples.
 */
@Injectable()
export class DisagreementChecker implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger(DisagreementChecker.name);
  private readonly pending = new Map<string, CommittedLocation>();
  private running?: Promise<void>;
  private closed = false;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly committed: CommittedDetections,
    private readonly repo: DisputesRepository,
    private readonly frames: FrameRequester,
    private readonly metrics: HubMetrics,
  ) {}

  onModuleInit(): void {
    if (this.config.disagreementWindowS > 0) this.committed.subscribe((locations) => this.enqueue(locations));
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => undefined);
  }

  enqueue(locations: CommittedLocation[]): void {
    if (this.closed) return;
    for (const l of locations) {
      const key = `${l.site}\u0000${l.location}`;
      if (this.pending.has(key)) continue;
      if (this.pending.size >= MAX_PENDING) {
        this.metrics.disagreementDropped.inc();
        continue;
      }
      this.pending.set(key, { site: l.site, location: l.location });
    }
    if (!this.running && this.pending.size > 0) this.running = this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves when every location queued so far is checked (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      const chunk: CommittedLocation[] = [];
      for (const [key, loc] of this.pending) {
        chunk.push(loc);
        this.pending.delete(key);
        if (chunk.length >= CHUNK) break;
      }
      try {
        const requests = await this.repo.markDisputes(chunk, this.config.minConfidence, this.config.disagreementWindowS);
        this.metrics.disputes.inc({}, requests.length);
        for (const r of requests) await this.frames.send('disagreement', { requestId: r.request_id, deviceId: r.device_id, frameId: r.frame_id });
      } catch (err) {
        this.log.warn(`disagreement check of ${chunk.length} locations failed: ${(err as Error).message}`);
      }
    }
  }
}
