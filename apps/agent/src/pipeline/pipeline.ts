import { EventEmitter } from 'node:events';
import { DetectionSchema, type Detection } from '@shelfsight/contracts';
import { silentLogger, type Logger } from '@shelfsight/common';
import type { FrameClassification } from '@shelfsight/vision';
import type { HeadHolder } from '../models/head-holder';
import { OutboxFullError, type Outbox } from '../outbox/outbox';
import type { Frame, FrameSink, RejectReason } from '../sources/frame';
import { AgentMetrics } from '../metrics/metrics';
import { FrameQueue } from './frame-queue';

/** A detection before the outbox numbers it (built once: zod compiles each schema it makes). */
const UnnumberedDetectionSchema = DetectionSchema.omit({ seq: true });

export interface PipelineOptions {
  queueSize: number;
  /**
   * Frames classified at once (default 1). More than one lets fast classifiers (the
   * simulator's stand-in) share outbox fsyncs: concurrent appends are written together.
   */
  concurrency?: number;
  topK: number;
  logger?: Logger;
}

/** Where the pipeline gets a frame classified: the agent's {@link HeadHolder} (the head active when the frame starts). */
export type FrameHeads = Pick<HeadHolder, 'classify'>;

/** What a classified frame looked like, for listeners such as the sampler. */
export interface ClassifiedFrame {
  frame: Frame;
  detection: Detection;
  classification: FrameClassification;
}

/**
 * Source → bounded queue → classifier → outbox. One frame is classified at a time
 * (the device has few cores and the classifier is the heavy part).
 *
 * - The queue policy (see {@link FrameQueue}) applies to pushed frames; the directory
 *   source offers only while {@link hasRoom}.
 * - When the outbox is full the loop waits for space before taking the next frame,
 *   so the queue fills and sources back off (or push sources drop).
 * - A frame that cannot be decoded or classified is counted, logged and settled as
 *   `rejected`; the agent goes on.
 *
 * Events: `classified` ({@link ClassifiedFrame}), `settled`, `idle`.
 */
export class Pipeline extends EventEmitter implements FrameSink {
  readonly queue: FrameQueue;
  private running: Promise<void> | undefined;
  private busy = 0;
  private stopped = false;
  private readonly logger: Logger;

  constructor(
    private readonly heads: FrameHeads,
    private readonly outbox: Outbox,
    private readonly options: PipelineOptions,
    private readonly metrics: AgentMetrics = new AgentMetrics(),
  ) {
    super();
    this.queue = new FrameQueue(options.queueSize);
    this.logger = (options.logger ?? silentLogger).child({ part: 'pipeline' });
  }

  hasRoom(): boolean {
    return this.queue.hasRoom() && !this.outbox.full;
  }

  outboxFull(): boolean {
    return this.outbox.full;
  }

  offer(frame: Frame): void {
    const { dropped, reason } = this.queue.push(frame);
    if (dropped) {
      this.metrics.countFrame('dropped');
      this.metrics.dropped.inc({ reason: reason ?? 'queue_full' });
      this.logger.warn('queue full: dropped a frame', { reason, frameId: dropped.frameId, location: dropped.location, source: dropped.source });
      dropped.release?.();
    }
  }

  reject(source: string, reason: RejectReason, detail: Record<string, unknown>): void {
    this.metrics.countFrame('rejected');
    this.metrics.rejected.inc({ reason, source });
    this.logger.warn('frame rejected', { reason, source, ...detail });
  }

  /** True when nothing is queued or being classified. */
  idle(): boolean {
    return this.busy === 0 && this.queue.length === 0;
  }

  start(): void {
    this.running ??= Promise.all(Array.from({ length: Math.max(1, this.options.concurrency ?? 1) }, () => this.loop())).then(() => undefined);
  }

  /** Finish the frame being classified; frames still queued are released to their sources. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.outbox.emit('space');
    for (const f of this.queue.close()) f.release?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    for (;;) {
      const frame = await this.queue.take();
      if (!frame) return;
      this.busy += 1;
      try {
        await this.waitForOutboxSpace();
        await this.process(frame);
      } catch (err) {
        // Only a failing disk gets here (outbox or journal write); keep the frame
        // for a later attempt rather than losing it.
        this.logger.error('could not store a detection; frame left for retry', { err, frameId: frame.frameId });
        frame.release?.();
        await delay(1000);
      } finally {
        this.busy -= 1;
        this.emit('settled');
        if (this.idle()) this.emit('idle');
      }
    }
  }

  private async waitForOutboxSpace(): Promise<void> {
    while (this.outbox.full && !this.stopped) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.outbox.off('space', done);
          resolve();
        };
        const t = setTimeout(done, 1000);
        this.outbox.on('space', done);
      });
    }
  }

  private async process(frame: Frame): Promise<void> {
    const started = performance.now();
    let result: FrameClassification;
    let modelVersion: string;
    try {
      ({ classification: result, modelVersion } = await this.heads.classify(frame.image));
    } catch (err) {
      this.reject(frame.source, 'decode', { frameId: frame.frameId, location: frame.location, err });
      await frame.settle?.('rejected');
      return;
    }
    const latencyMs = performance.now() - started;
    const candidate = {
      frameId: frame.frameId,
      site: frame.site,
      location: frame.location,
      capturedAt: frame.capturedAt,
      category: result.category,
      confidence: result.confidence,
      topK: result.topK.slice(0, this.options.topK),
      modelVersion,
      latencyMs: Math.round(latencyMs * 1000) / 1000,
    };
    const check = UnnumberedDetectionSchema.safeParse(candidate);
    if (!check.success) {
      this.reject(frame.source, 'invalid_result', { frameId: frame.frameId, detail: check.error.issues[0]?.message });
      await frame.settle?.('rejected');
      return;
    }
    let detection: Detection;
    try {
      detection = await this.outbox.add(check.data);
    } catch (err) {
      if (err instanceof OutboxFullError) {
        // Raced with another writer; put the frame back at the front next time.
        frame.release?.();
        return;
      }
      throw err;
    }
    this.metrics.observeLatency(latencyMs);
    this.metrics.countFrame('detected');
    await frame.settle?.('ok');
    this.emit('classified', { frame, detection, classification: result } satisfies ClassifiedFrame);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
