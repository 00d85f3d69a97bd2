import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '@shelfsight/common';
import type { ScoredCategory, ShadowStats } from '@shelfsight/contracts';
import type { FrameClassification, FrameClassifier } from '@shelfsight/vision';
import { LatencyWindow } from '../metrics/metrics';
import { ShadowTally } from './shadow-tally';

/**
 * A head that can also score an embedding another head on the same backbone computed
 * (`TfjsFrameClassifier.classifyFeatures`): what a candidate must be, so the backbone runs
 * once per frame while both heads score it.
 */
export interface ShadowableHead extends FrameClassifier {
  classifyFeatures(features: Float32Array): { topK: ScoredCategory[] };
}

/** A frame's classification by the active head, and the version of the head that made it. */
export interface HeldClassification {
  classification: FrameClassification;
  modelVersion: string;
}

export type CandidateHeadState = 'verified' | 'shadowing';

export interface CandidateView {
  modelVersion: string;
  state: CandidateHeadState;
  /** Frames shadowed so far and the frames the shadow runs for. */
  shadowFrames: number;
  shadowTarget: number;
  /** Set once the shadow ran its frames. */
  shadow?: ShadowStats;
  /** Set with `shadow`: the active head's p95 latency and mean confidence on the shadowed frames. */
  baseline?: HealthBaseline;
}

export interface HealthBaseline {
  p95LatencyMs: number;
  meanConfidence: number;
}

/** What the active head did on the frames of a health watch ({@link HeadHolder.watchHealth}). */
export interface HealthWatchResult {
  modelVersion: string;
  frames: number;
  p95LatencyMs: number;
  meanConfidence: number;
}

interface HealthWatch {
  head: FrameClassifier;
  target: number;
  latencies: LatencyWindow;
  frames: number;
  confidenceSum: number;
}

export class HeadSwapError extends Error {
  override name = 'HeadSwapError';
}

interface Candidate {
  head: ShadowableHead;
  target: number;
  tally: ShadowTally;
  done: boolean;
}

/**
 * The one place the agent's heads live; the pipeline, the sampler, the birth message,
 * the heartbeat and the stop path all go through it instead of holding a classifier.
 *
 * It holds the active head, an optional candidate and the previous head (kept for instant
 * rollback). Each frame is classified by the head that is active when the frame starts;
 * while a candidate shadows, it scores the same frame's embedding (no second backbone pass)
 * and the comparison is tallied. Swapping (activate, rollback) takes effect for the next
 * frame and drops none: a head that leaves the holder is disposed only once the frames it
 * is classifying are done.
 *
 * Events: `shadow-complete` ({@link CandidateView} with `shadow`), `candidate-failed`
 * ({ modelVersion, err }: the candidate threw while shadowing and was dropped),
 * `activated` ({ modelVersion, previous }), `rolled-back` ({ modelVersion, from }),
 * `health-complete` ({@link HealthWatchResult}: a health watch saw its frames).
 *
 * Latency here is the wall time of the head's `classify` (decode, backbone and head), the
 * same measure for the baseline (the active head during a shadow run) and a health watch.
 */
export class HeadHolder extends EventEmitter {
  private activeHead: FrameClassifier;
  private previousHead: FrameClassifier | undefined;
  private cand: Candidate | undefined;
  private watch: HealthWatch | undefined;
  /** Frames in progress per head, and heads waiting for theirs to finish before disposal. */
  private readonly inFlight = new Map<FrameClassifier, number>();
  private readonly retiring = new Set<FrameClassifier>();
  private readonly notOwned = new Set<FrameClassifier>();
  private readonly disposals: Promise<void>[] = [];
  /** Signals `settled()` each time a retired head is disposed. */
  private readonly retired = new EventEmitter();
  private readonly logger: Logger;
  private closed = false;

  /**
   * @param active the head to start with
   * @param options.ownsActive false when the caller keeps ownership of `active` (it is then never disposed here)
   */
  constructor(active: FrameClassifier, options: { ownsActive?: boolean; logger?: Logger } = {}) {
    super();
    this.activeHead = active;
    if (options.ownsActive === false) this.notOwned.add(active);
    this.logger = (options.logger ?? silentLogger).child({ part: 'heads' });
  }

  get active(): FrameClassifier {
    return this.activeHead;
  }

  get modelVersion(): string {
    return this.activeHead.modelVersion;
  }

  get backboneId(): string {
    return this.activeHead.backboneId;
  }

  /** Version of the head a rollback would return to, if one is kept. */
  get previousVersion(): string | undefined {
    return this.previousHead?.modelVersion;
  }

  get candidate(): CandidateView | undefined {
    const c = this.cand;
    if (!c) return undefined;
    return {
      modelVersion: c.head.modelVersion,
      state: c.done || c.target === 0 ? 'verified' : 'shadowing',
      shadowFrames: c.tally.count,
      shadowTarget: c.target,
      ...(c.done ? { shadow: c.tally.stats(), baseline: c.tally.baseline() } : {}),
    };
  }

  /** The health watch in progress: the version it watches and the frames seen so far. */
  get healthWatch(): { modelVersion: string; frames: number; target: number } | undefined {
    const w = this.watch;
    return w ? { modelVersion: w.head.modelVersion, frames: w.frames, target: w.target } : undefined;
  }

  /**
   * Watch the active head's next `frames` frames (latency, top-1 confidence) and emit
   * `health-complete` when they are done. A swap (activate, rollback) ends the watch unreported.
   */
  watchHealth(frames: number): void {
    this.watch = { head: this.activeHead, target: Math.max(1, Math.floor(frames)), latencies: new LatencyWindow(100_000), frames: 0, confidenceSum: 0 };
  }

  /** End a health watch without a report. */
  stopHealthWatch(): void {
    this.watch = undefined;
  }

  /** Classify a frame with the active head; a shadowing candidate scores the same embedding. */
  async classify(image: Buffer): Promise<HeldClassification> {
    if (this.closed) throw new HeadSwapError('head holder is closed');
    const head = this.activeHead;
    this.enter(head);
    try {
      const started = performance.now();
      const classification = await head.classify(image);
      const latencyMs = performance.now() - started;
      if (head === this.activeHead) this.shadow(classification, latencyMs);
      this.observe(head, classification, latencyMs);
      return { classification, modelVersion: head.modelVersion };
    } finally {
      this.leave(head);
    }
  }

  /**
   * Put a loaded head beside the active one; it shadows the next `shadowFrames` frames
   * (0: no shadow, it waits verified). A candidate already there is replaced and disposed.
   */
  setCandidate(head: ShadowableHead, shadowFrames: number): void {
    if (this.closed) throw new HeadSwapError('head holder is closed');
    if (head.backboneId !== this.activeHead.backboneId) {
      throw new HeadSwapError(`candidate ${head.modelVersion} is for backbone ${head.backboneId}, the device runs ${this.activeHead.backboneId}`);
    }
    if (head === this.activeHead || head === this.previousHead) throw new HeadSwapError(`head ${head.modelVersion} is already held`);
    this.dropCandidate();
    this.cand = { head, target: Math.max(0, Math.floor(shadowFrames)), tally: new ShadowTally(), done: false };
    this.logger.info('candidate head loaded', { modelVersion: head.modelVersion, shadowFrames: this.cand.target });
    if (this.cand.target === 0) this.cand.done = true;
  }

  /** Remove the candidate (refused, failed, superseded) and dispose it once idle. */
  dropCandidate(): void {
    const c = this.cand;
    if (!c) return;
    this.cand = undefined;
    this.retire(c.head);
  }

  /**
   * The candidate becomes the active head from the next frame on; the active one is kept
   * as the previous (for rollback) and the one kept before that is disposed.
   */
  activate(): { modelVersion: string; previous: string } {
    const c = this.cand;
    if (!c) throw new HeadSwapError('no candidate head to activate');
    this.cand = undefined;
    this.watch = undefined;
    const old = this.activeHead;
    if (this.previousHead) this.retire(this.previousHead);
    this.previousHead = old;
    this.activeHead = c.head;
    const result = { modelVersion: c.head.modelVersion, previous: old.modelVersion };
    this.logger.info('head activated', result);
    this.emit('activated', result);
    return result;
  }

  /** Return to the previous head from the next frame on; the current one is disposed. */
  rollback(): { modelVersion: string; from: string } {
    const prev = this.previousHead;
    if (!prev) throw new HeadSwapError('no previous head to roll back to');
    const from = this.activeHead;
    this.watch = undefined;
    this.previousHead = undefined;
    this.activeHead = prev;
    this.retire(from);
    const result = { modelVersion: prev.modelVersion, from: from.modelVersion };
    this.logger.warn('head rolled back', result);
    this.emit('rolled-back', result);
    return result;
  }

  /** Dispose every head this holder owns, after the frames in progress. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of [this.cand?.head, this.previousHead, this.activeHead]) if (h) this.retire(h);
    this.cand = undefined;
    this.previousHead = undefined;
    await this.settled();
  }

  /** Resolves when every retired head has been disposed. */
  async settled(): Promise<void> {
    while (this.retiring.size > 0) await new Promise((r) => this.retired.once('disposed', r));
    await Promise.all(this.disposals);
  }

  private observe(head: FrameClassifier, classification: FrameClassification, latencyMs: number): void {
    const w = this.watch;
    if (!w || w.head !== head || w.frames >= w.target) return;
    w.frames += 1;
    w.latencies.add(latencyMs);
    w.confidenceSum += classification.confidence;
    if (w.frames < w.target) return;
    this.watch = undefined;
    const result: HealthWatchResult = {
      modelVersion: head.modelVersion,
      frames: w.frames,
      p95LatencyMs: w.latencies.percentile(95),
      meanConfidence: Math.min(1, Math.max(0, w.confidenceSum / w.frames)),
    };
    this.logger.info('health watch complete', { ...result });
    this.emit('health-complete', result);
  }

  private shadow(active: FrameClassification, latencyMs: number): void {
    const c = this.cand;
    if (!c || c.done || !active.embedding) return;
    let top: ScoredCategory | undefined;
    try {
      top = c.head.classifyFeatures(active.embedding).topK[0];
      if (!top) throw new Error('candidate returned no categories');
    } catch (err) {
      this.logger.warn('candidate head failed while shadowing; dropped', { modelVersion: c.head.modelVersion, err });
      this.dropCandidate();
      this.emit('candidate-failed', { modelVersion: c.head.modelVersion, err });
      return;
    }
    c.tally.add({ category: active.category, confidence: active.confidence }, top, latencyMs);
    if (c.tally.count >= c.target) {
      c.done = true;
      const view = this.candidate as CandidateView;
      this.logger.info('candidate shadow complete', { modelVersion: view.modelVersion, frames: view.shadowFrames, agreement: view.shadow?.agreement });
      this.emit('shadow-complete', view);
    }
  }

  private enter(head: FrameClassifier): void {
    this.inFlight.set(head, (this.inFlight.get(head) ?? 0) + 1);
  }

  private leave(head: FrameClassifier): void {
    const n = (this.inFlight.get(head) ?? 1) - 1;
    if (n > 0) {
      this.inFlight.set(head, n);
      return;
    }
    this.inFlight.delete(head);
    if (this.retiring.has(head)) this.disposeNow(head);
  }

  private retire(head: FrameClassifier): void {
    if (this.notOwned.has(head)) return;
    this.retiring.add(head);
    if (!this.inFlight.has(head)) this.disposeNow(head);
  }

  private disposeNow(head: FrameClassifier): void {
    this.retiring.delete(head);
    this.retired.emit('disposed');
    this.disposals.push(
      Promise.resolve()
        .then(() => head.dispose())
        .catch((err: unknown) => this.logger.warn('disposing a head failed', { modelVersion: head.modelVersion, err })),
    );
  }
}
