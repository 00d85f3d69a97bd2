export interface FlowWindowOptions {
  /** The device's own ceiling (AGENT_MAX_IN_FLIGHT). */
  max: number;
  /** Floor of the congestion window (never stops sending altogether). */
  min: number;
  /** Window to start with (and to come back to after a reconnect). */
  initial: number;
  /** Additive increase: the window grows by this much per window's worth of acknowledged detections. */
  step: number;
  /** First back-off after a timeout, ms; doubles per timeout in a row, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
}

export interface FlowClock {
  now(): number;
}

/**
 * How many detections the link may have in flight, and when it may publish: AIMD.
 * - Additive increase on acks (one `step` per window's worth of acknowledged detections).
 * - Multiplicative decrease (halved) when detections time out, and a jittered hold before
 *   publishing again, doubling while timeouts follow each other.
 * - The hub's word is a ceiling: the `window` of its last ack, and `retryAfterMs` (with
 *   jitter, so devices told at once do not all come back at once).
 * Pure: the clock and the random source are given.
 */
export class FlowWindow {
  private cwnd: number;
  private hubWindow = Number.POSITIVE_INFINITY;
  private holdUntil = 0;
  private timeoutsInRow = 0;
  /** Window halvings so far (counted for the agent's metrics). */
  decreases = 0;

  constructor(
    private readonly options: FlowWindowOptions,
    private readonly clock: FlowClock = { now: Date.now },
    private readonly random: () => number = Math.random,
  ) {
    this.cwnd = clamp(options.initial, options.min, options.max);
  }

  /** Detections that may be in flight now. */
  get size(): number {
    return Math.max(0, Math.min(Math.floor(this.cwnd), this.hubWindow, this.options.max));
  }

  /** The congestion window alone (before the hub's ceiling). */
  get congestionWindow(): number {
    return Math.floor(this.cwnd);
  }

  /** Milliseconds before anything may be published (0: now). */
  holdMs(): number {
    return Math.max(0, this.holdUntil - this.clock.now());
  }

  /** `n` detections were acknowledged. */
  onAcked(n: number): void {
    if (n <= 0) return;
    this.timeoutsInRow = 0;
    this.cwnd = Math.min(this.options.max, this.cwnd + (this.options.step * n) / Math.max(1, this.cwnd));
  }

  /** The hub's ceiling from an ack (undefined: the hub says nothing, no ceiling). */
  onHubWindow(window: number | undefined): void {
    this.hubWindow = window === undefined ? Number.POSITIVE_INFINITY : Math.max(0, window);
  }

  /** The hub deferred detections: hold for `retryAfterMs` (0.75-1.25x, jittered) and take the hint as a loss. */
  onRetryAfter(retryAfterMs: number): void {
    const now = this.clock.now();
    // Several batches deferred by one overload are one signal: halve once per hold.
    if (this.holdUntil <= now) this.decrease();
    const jittered = retryAfterMs * (0.75 + this.random() * 0.5);
    this.holdUntil = Math.max(this.holdUntil, now + jittered);
  }

  /** Detections timed out (one call per expiry round): halve the window, hold for a jittered back-off. */
  onTimeout(): void {
    const backoff = Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** Math.min(this.timeoutsInRow, 20));
    this.timeoutsInRow++;
    this.holdUntil = Math.max(this.holdUntil, this.clock.now() + backoff / 2 + this.random() * (backoff / 2));
    this.decrease();
  }

  /** A new connection: what was learnt of the path no longer holds. */
  reset(): void {
    this.cwnd = clamp(this.options.initial, this.options.min, this.options.max);
    this.hubWindow = Number.POSITIVE_INFINITY;
    this.holdUntil = 0;
    this.timeoutsInRow = 0;
  }

  private decrease(): void {
    this.cwnd = Math.max(this.options.min, Math.floor(this.cwnd / 2));
    this.decreases++;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}
