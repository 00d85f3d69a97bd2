import { MetricsRegistry, registerProcessMetrics, type Counter, type Histogram } from '@shelfsight/common';

/** Sliding window of recent latencies, for the heartbeat's p95. */
export class LatencyWindow {
  private readonly values: number[] = [];
  private next = 0;
  constructor(private readonly size = 1024) {}
  add(ms: number): void {
    if (this.values.length < this.size) this.values.push(ms);
    else this.values[this.next] = ms;
    this.next = (this.next + 1) % this.size;
  }
  percentile(p: number): number {
    if (this.values.length === 0) return 0;
    const sorted = [...this.values].sort((a, b) => a - b);
    const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
    return sorted[Math.max(0, idx)] ?? 0;
  }
}

/** The agent's counters; gauges are registered by the agent on {@link registry}. */
export class AgentMetrics {
  readonly registry = new MetricsRegistry();
  readonly frames: Counter = this.registry.counter('shelf_agent_frames_total', 'Frames by outcome: detected, rejected, dropped');
  readonly rejected: Counter = this.registry.counter(
    'shelf_agent_frames_rejected_total',
    'Frames refused, by reason (no_location, bad_sidecar, decode, invalid_result) and source',
  );
  readonly dropped: Counter = this.registry.counter(
    'shelf_agent_frames_dropped_total',
    'Frames dropped by the full classification queue, by reason (superseded = same location newer frame, queue_full = oldest)',
  );
  readonly latencyHistogram: Histogram = this.registry.histogram(
    'shelf_agent_classify_latency_ms',
    'Time to decode and classify one frame, ms',
    [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
  );
  readonly latency = new LatencyWindow();
  private readonly syncs: Array<() => void> = [];

  constructor() {
    registerProcessMetrics(this.registry);
  }

  /**
   * A counter whose value is kept elsewhere as a plain number (or one number per
   * label value); brought up to date at scrape time.
   */
  mirror(name: string, help: string, read: () => number | Record<string, number>, label = 'outcome'): void {
    const counter = this.registry.counter(name, help);
    this.syncs.push(() => {
      const v = read();
      if (typeof v === 'number') {
        counter.inc({}, v - counter.get());
        return;
      }
      for (const [key, n] of Object.entries(v)) counter.inc({ [label]: key }, n - counter.get({ [label]: key }));
    });
  }

  /** Prometheus text exposition of every agent metric. */
  render(): string {
    for (const sync of this.syncs) sync();
    return this.registry.render();
  }

  observeLatency(ms: number): void {
    this.latency.add(ms);
    this.latencyHistogram.observe(ms);
  }
}
