import { Counter, Gauge, Histogram, Registry, renderMetrics } from '@shelfsight/common';

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

export type FrameOutcome = 'detected' | 'rejected' | 'dropped';

/**
 * The agent's metrics (prom-client, one registry per agent). Counters kept elsewhere as plain
 * numbers are mirrored at scrape time ({@link mirror}); gauges read their value at scrape time
 * ({@link gauge}). Frame outcomes are also kept as plain numbers, for the heartbeat and stats.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  private readonly frameCounts: Record<FrameOutcome, number> = { detected: 0, rejected: 0, dropped: 0 };
  readonly rejected = new Counter({
    name: 'shelf_agent_frames_rejected_total',
    help: 'Frames refused, by reason (no_location, bad_sidecar, decode, invalid_result) and source',
    labelNames: ['reason', 'source'] as const,
    registers: this.registers,
  });
  readonly dropped = new Counter({
    name: 'shelf_agent_frames_dropped_total',
    help: 'Frames dropped by the full classification queue, by reason (superseded = same location newer frame, queue_full = oldest)',
    labelNames: ['reason'] as const,
    registers: this.registers,
  });
  readonly latencyHistogram = new Histogram({
    name: 'shelf_agent_classify_latency_seconds',
    help: 'Time to decode and classify one frame, in seconds',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: this.registers,
  });
  readonly latency = new LatencyWindow();

  constructor() {
    this.mirror('shelf_agent_frames_total', 'Frames by outcome: detected, rejected, dropped', () => ({ ...this.frameCounts }));
  }

  countFrame(outcome: FrameOutcome): void {
    this.frameCounts[outcome] += 1;
  }

  frames(outcome: FrameOutcome): number {
    return this.frameCounts[outcome];
  }

  /**
   * A counter whose value is kept elsewhere as a plain number (or one number per
   * label value); brought up to date at scrape time.
   */
  mirror(name: string, help: string, read: () => number | Record<string, number>, label = 'outcome'): void {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: this.registers,
      collect(this: Counter<string>) {
        const v = read();
        this.reset();
        if (typeof v === 'number') this.inc(v);
        else for (const [key, n] of Object.entries(v)) this.inc({ [label]: key }, n);
      },
    });
  }

  /** A gauge computed when scraped. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: this.registers,
      collect(this: Gauge) {
        this.set(read());
      },
    });
  }

  /** Prometheus text exposition of every agent metric and the process's. */
  render(): Promise<string> {
    return renderMetrics(this.registry);
  }

  observeLatency(ms: number): void {
    this.latency.add(ms);
    this.latencyHistogram.observe(ms / 1000);
  }
}
