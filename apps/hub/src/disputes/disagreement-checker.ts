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
 * marked disputed and each device is asked for its frame; the mark and the frame request
 * are recorded in one transaction, and only as many are marked as fit in
 * DISAGREEMENT_FRAMES_PER_MINUTE: the others stay unmarked (counted as deferred) and their
 * locations are checked again once the budget has room. The replies are queued with
 * reason `disagreement`, ahead of plain low-confidence samples.
 */
@Injectable()
export class DisagreementChecker implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger(DisagreementChecker.name);
  private readonly pending = new Map<string, CommittedLocation>();
  private running?: Promise<void>;
  private closed = false;
  private readonly sentAt: number[] = [];
  /** Locations with disputes left unmarked for want of budget, checked again when it has room. */
  private readonly deferred = new Map<string, CommittedLocation>();
  private retryTimer?: NodeJS.Timeout;
  /** Injected clock of the frame budget (tests move it). */
  now: () => number = Date.now;

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
    if (this.retryTimer) clearTimeout(this.retryTimer);
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

  /** Frame requests that fit in DISAGREEMENT_FRAMES_PER_MINUTE now (a noisy fleet must not flood the sample queue). */
  private budgetLeft(): number {
    const now = this.now();
    while (this.sentAt.length > 0 && this.sentAt[0]! <= now - 60_000) this.sentAt.shift();
    return Math.max(0, this.config.disagreementFramesPerMinute - this.sentAt.length);
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      const chunk: CommittedLocation[] = [];
      for (const [key, loc] of this.pending) {
        chunk.push(loc);
        this.pending.delete(key);
        this.deferred.delete(key);
        if (chunk.length >= CHUNK) break;
      }
      try {
        const { requests, deferred } = await this.repo.markDisputes(chunk, this.config.minConfidence, this.config.disagreementWindowS, this.budgetLeft(), () =>
          FrameRequester.newRequestId(),
        );
        const at = this.now();
        for (let i = 0; i < requests.length; i++) this.sentAt.push(at);
        this.metrics.disputes.inc({}, requests.length);
        if (deferred.length > 0) this.defer(deferred);
        for (const r of requests) await this.frames.send('disagreement', { requestId: r.request_id, deviceId: r.device_id, frameId: r.frame_id });
      } catch (err) {
        this.log.warn(`disagreement check of ${chunk.length} locations failed: ${(err as Error).message}`);
      }
    }
  }

  /** Check these locations again when the frame budget next has room. */
  private defer(locations: CommittedLocation[]): void {
    this.metrics.disagreementDeferred.inc({}, locations.length);
    // No budget ever (DISAGREEMENT_FRAMES_PER_MINUTE=0): nothing to come back for.
    if (this.config.disagreementFramesPerMinute === 0) return;
    for (const l of locations) {
      const key = `${l.site}\u0000${l.location}`;
      if (this.deferred.size >= MAX_PENDING && !this.deferred.has(key)) {
        this.metrics.disagreementDropped.inc();
        continue;
      }
      this.deferred.set(key, { site: l.site, location: l.location });
    }
    if (this.retryTimer) return;
    const wait = this.sentAt.length > 0 ? Math.max(0, this.sentAt[0]! + 60_000 - this.now()) : 60_000;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryDeferred();
    }, wait + 10);
    this.retryTimer.unref();
  }

  /** Queue the deferred locations for another pass (the timer does this; tests call it after moving the clock). */
  retryDeferred(): void {
    const again = [...this.deferred.values()];
    this.deferred.clear();
    this.enqueue(again);
  }
}
