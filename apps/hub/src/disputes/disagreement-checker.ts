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
 * marked disputed and each device is asked for its frame (at most
 * DISAGREEMENT_FRAMES_PER_MINUTE; beyond it detections are still marked, and the skipped
 * requests counted); the replies are queued with reason `disagreement`, ahead of plain
 * low-confidence samples.
 */
@Injectable()
export class DisagreementChecker implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger(DisagreementChecker.name);
  private readonly pending = new Map<string, CommittedLocation>();
  private running?: Promise<void>;
  private closed = false;
  private readonly sentAt: number[] = [];

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

  /** Up to `want` frame requests within DISAGREEMENT_FRAMES_PER_MINUTE (a noisy fleet must not flood the sample queue). */
  private takeBudget(want: number): number {
    const now = Date.now();
    while (this.sentAt.length > 0 && this.sentAt[0]! <= now - 60_000) this.sentAt.shift();
    const n = Math.max(0, Math.min(want, this.config.disagreementFramesPerMinute - this.sentAt.length));
    for (let i = 0; i < n; i++) this.sentAt.push(now);
    return n;
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
        const disputed = await this.repo.markDisputes(chunk, this.config.minConfidence, this.config.disagreementWindowS);
        this.metrics.disputes.inc({}, disputed.length);
        const budget = this.takeBudget(disputed.length);
        if (budget < disputed.length) this.metrics.disagreementFramesSkipped.inc({}, disputed.length - budget);
        const requests = disputed.slice(0, budget).map((d) => ({ request_id: FrameRequester.newRequestId(), device_id: d.device_id, frame_id: d.frame_id, detection_id: d.id }));
        await this.repo.recordRequests(requests);
        for (const r of requests) await this.frames.send('disagreement', { requestId: r.request_id, deviceId: r.device_id, frameId: r.frame_id });
      } catch (err) {
        this.log.warn(`disagreement check of ${chunk.length} locations failed: ${(err as Error).message}`);
      }
    }
  }
}
