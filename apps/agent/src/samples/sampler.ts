import sharp from 'sharp';
import {
  FrameReplySchema,
  SCHEMA_VERSION,
  SampleSchema,
  deviceTopic,
  encodeBottleneck,
  encodePayload,
  type FrameRequest,
  type Sample,
  type SampleReason,
} from '@shelfsight/contracts';
import { silentLogger, type Logger } from '@shelfsight/common';
import type { ClassifiedFrame } from '../pipeline/pipeline';
import type { FrameRing } from './frame-ring';

export interface SamplerOptions {
  /** Sample when the top confidence is below this. */
  minConfidence: number;
  /** Sample when top-1 minus top-2 confidence is below this. */
  minMargin: number;
  /** Fraction of the other frames sampled at random (audit). */
  auditRate: number;
  perMinute: number;
  perDay: number;
  /** Longest side of the JPEG thumbnail. */
  thumbnailPx?: number;
  /** Samples waiting to be built or sent (while offline); beyond it the oldest is dropped. */
  queueSize?: number;
  random?: () => number;
  now?: () => number;
}

export interface SamplerDeps {
  deviceId: string;
  backboneId: () => string;
  /** Publish QoS 1; false when not connected. */
  publish: (topic: string, payload: Buffer) => boolean;
  ring?: FrameRing;
  logger?: Logger;
}

export type SampleCounter = 'sent' | 'rate_limited' | 'dropped' | 'failed' | SampleReason;

/**
 * Picks frames worth labelling and sends them to the hub as samples: low confidence,
 * small top-2 margin, or a random audit; rate-limited per minute and per (rolling) day.
 * Work happens after the detection is durable, in its own small queue, so sampling
 * never delays detections; samples are best effort (kept in memory while offline,
 * bounded). Also answers the hub's frame requests from the ring buffer (not
 * rate-limited: an operator asked).
 */
export class Sampler {
  readonly counts: Record<SampleCounter, number> = {
    low_confidence: 0,
    small_margin: 0,
    audit: 0,
    requested: 0,
    sent: 0,
    rate_limited: 0,
    dropped: 0,
    failed: 0,
  };
  private readonly sentTimes: number[] = [];
  private readonly outgoing: Array<{ topic: string; payload: Buffer }> = [];
  private readonly work: Array<() => Promise<void>> = [];
  private working = false;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(
    private readonly options: SamplerOptions,
    private readonly deps: SamplerDeps,
  ) {
    this.logger = (deps.logger ?? silentLogger).child({ part: 'sampler' });
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  /** Why this frame should be sampled, if it should (before rate limits). */
  reasonFor(c: ClassifiedFrame): SampleReason | undefined {
    const { confidence, topK } = c.detection;
    if (confidence < this.options.minConfidence) return 'low_confidence';
    const second = topK[1]?.confidence ?? 0;
    if (topK.length > 1 && confidence - second < this.options.minMargin) return 'small_margin';
    if (this.options.auditRate > 0 && this.random() < this.options.auditRate) return 'audit';
    return undefined;
  }

  /** Called for every classified frame (after its detection is stored). */
  consider(c: ClassifiedFrame): void {
    this.deps.ring?.add(c);
    const reason = this.reasonFor(c);
    if (!reason) return;
    if (!this.takeBudget()) {
      this.counts.rate_limited++;
      return;
    }
    this.counts[reason]++;
    this.enqueue(async () => {
      const sample = await this.build(c, reason);
      this.send(deviceTopic(this.deps.deviceId, 'samples'), encodePayload(SampleSchema, sample));
    });
  }

  /** Answer a frame request: the frame as a sample, or `not_held`. */
  request(req: FrameRequest): void {
    this.enqueue(async () => {
      const held = this.deps.ring?.get(req.frameId);
      const base = { v: SCHEMA_VERSION, deviceId: this.deps.deviceId, requestId: req.requestId, frameId: req.frameId } as const;
      let reply;
      if (!held) {
        reply = { ...base, status: 'not_held' as const, message: 'frame no longer held on the device (ring buffer of recent frames)' };
      } else {
        this.counts.requested++;
        reply = { ...base, status: 'ok' as const, sample: await this.build(held, 'requested', req.requestId) };
      }
      this.send(deviceTopic(this.deps.deviceId, 'frame-reply'), encodePayload(FrameReplySchema, reply));
    }, true);
  }

  /** Send what waited while offline. */
  flush(): void {
    while (this.outgoing.length > 0) {
      const next = this.outgoing[0] as { topic: string; payload: Buffer };
      if (!this.deps.publish(next.topic, next.payload)) return;
      this.outgoing.shift();
      this.counts.sent++;
    }
  }

  /** Samples built and waiting for the connection. */
  get waiting(): number {
    return this.outgoing.length;
  }

  /** True while sample work is queued or running. */
  get busy(): boolean {
    return this.working || this.work.length > 0;
  }

  private takeBudget(): boolean {
    const { perMinute, perDay } = this.options;
    if (perMinute <= 0 || perDay <= 0) return false;
    const now = this.now();
    while (this.sentTimes.length > 0 && (this.sentTimes[0] as number) <= now - 86_400_000) this.sentTimes.shift();
    if (this.sentTimes.length >= perDay) return false;
    let lastMinute = 0;
    for (let i = this.sentTimes.length - 1; i >= 0 && (this.sentTimes[i] as number) > now - 60_000; i--) lastMinute++;
    if (lastMinute >= perMinute) return false;
    this.sentTimes.push(now);
    return true;
  }

  private enqueue(job: () => Promise<void>, priority = false): void {
    const limit = this.options.queueSize ?? 16;
    if (this.work.length >= limit) {
      this.work.shift();
      this.counts.dropped++;
    }
    if (priority) this.work.unshift(job);
    else this.work.push(job);
    if (!this.working) void this.drain();
  }

  private async drain(): Promise<void> {
    this.working = true;
    try {
      for (let job = this.work.shift(); job; job = this.work.shift()) {
        // Yield first: the classification loop goes before sample work.
        await new Promise((resolve) => setImmediate(resolve));
        try {
          await job();
        } catch (err) {
          this.counts.failed++;
          this.logger.warn('could not build a sample', { err });
        }
      }
    } finally {
      this.working = false;
    }
  }

  private send(topic: string, payload: Buffer): void {
    if (this.outgoing.length === 0 && this.deps.publish(topic, payload)) {
      this.counts.sent++;
      return;
    }
    const limit = this.options.queueSize ?? 16;
    if (this.outgoing.length >= limit) {
      this.outgoing.shift();
      this.counts.dropped++;
    }
    this.outgoing.push({ topic, payload });
  }

  private async build(c: ClassifiedFrame, reason: SampleReason, requestId?: string): Promise<Sample> {
    const { frame, detection } = c;
    const px = this.options.thumbnailPx ?? 224;
    const { data, info } = await sharp(frame.image)
      .rotate()
      .resize({ width: px, height: px, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 75 })
      .toBuffer({ resolveWithObject: true });
    // The bottleneck the classifier computed for this frame: no second backbone pass.
    const vector = c.classification.embedding;
    return {
      v: SCHEMA_VERSION,
      deviceId: this.deps.deviceId,
      sampleId: `${frame.frameId}:${reason}`,
      reason,
      requestId,
      frameId: frame.frameId,
      seq: detection.seq,
      site: detection.site,
      location: detection.location,
      capturedAt: detection.capturedAt,
      prediction: {
        category: detection.category,
        confidence: detection.confidence,
        topK: detection.topK,
        modelVersion: detection.modelVersion,
      },
      backboneId: this.deps.backboneId(),
      thumbnail: { mime: 'image/jpeg', width: info.width, height: info.height, data: data.toString('base64') },
      bottleneck: vector ? encodeBottleneck(vector) : undefined,
      sentAt: new Date(this.now()).toISOString(),
    };
  }
}
