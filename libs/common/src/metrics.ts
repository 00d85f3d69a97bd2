import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics through prom-client. Each app keeps its own {@link Registry} of
 * application metrics; the standard process metrics (prom-client's defaults:
 * `process_resident_memory_bytes`, `process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`,
 * `nodejs_external_memory_bytes`, event-loop lag, ...) live once per process in
 * {@link processRegistry} and are rendered with every app registry by {@link renderMetrics}.
 * (Once per process, not per app: several agents or hubs in one process, as in tests, would
 * otherwise each start their own event-loop and GC monitors and report the same process twice.)
 */
export { Counter, Gauge, Histogram, Registry };

/** A gauge whose value is read at scrape time; its owner says from where with {@link readFrom}. */
export class SourcedGauge extends Gauge {
  private read: () => number = () => 0;
  constructor(config: { name: string; help: string; registers: Registry[] }) {
    super({
      ...config,
      collect(this: Gauge) {
        this.set((this as SourcedGauge).read());
      },
    });
  }
  /** Read the value from `read` at every scrape (replaces the previous source). */
  readFrom(read: () => number): this {
    this.read = read;
    return this;
  }
}

let processMetrics: Registry | undefined;

/**
 * The process's own metrics: prom-client's defaults plus `process_max_resident_memory_bytes`
 * (peak resident memory, which the benchmarks report).
 */
export function processRegistry(): Registry {
  if (processMetrics) return processMetrics;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client's `nodejs_active_{handles,requests,resources}_total` are gauges named like
  // counters (promtool: "non-counter metrics should not have _total suffix"); the same counts
  // stay in `nodejs_active_handles`, `_requests`, `_resources` (by type: sum them).
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  new Gauge({
    name: 'process_max_resident_memory_bytes',
    help: 'Peak resident memory size in bytes.',
    registers: [registry],
    collect(this: Gauge) {
      this.set(process.resourceUsage().maxRSS * 1024);
    },
  });
  return (processMetrics = registry);
}

/** Prometheus text of `registry` followed by the process metrics. */
export async function renderMetrics(registry: Registry): Promise<string> {
  return Registry.merge([registry, processRegistry()]).metrics();
}

/** The content type of {@link renderMetrics}' text. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * Sum of every series of metric `name` in Prometheus text (all label values, or only the
 * series carrying every label in `labels`); 0 when absent. For benchmarks and tests that
 * read a /metrics page.
 */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? ([\\d.eE+-]+|NaN)$`, 'gm'))]
    .filter((m) => wanted.every((w) => (m[1] ?? '').split(',').includes(w)))
    .reduce((n, m) => n + Number(m[2]), 0);
}

/** Upper bound of the bucket holding quantile q of an unlabelled Prometheus histogram in `text`. */
export function histogramQuantile(text: string, name: string, q: number): number | undefined {
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm'))].map((m) => ({
    le: m[1] === '+Inf' ? Infinity : Number(m[1]),
    n: Number(m[2]),
  }));
  const total = buckets.find((b) => b.le === Infinity)?.n ?? 0;
  if (total === 0) return undefined;
  return buckets.find((b) => b.n >= q * total)?.le;
}
