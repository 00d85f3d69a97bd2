import { lineChartSvg, type LineSeries } from '@shelfsight/common';

/**
 * The pure side of `shelf bench fleet`: per-window figures, their medians and worst, the
 * overload verdict (collapse, growth) and the chart. The run itself is in fleet-run.ts.
 */

/** One window of a fleet run (counts are detections; rates per second). */
export interface FleetWindow {
  /** Seconds from the start of the measured run to the window's start. */
  from_s: number;
  seconds: number;
  /** Detections the fleet's devices made (one per frame; frames a device had to drop are not offered). */
  offered: number;
  /** Detections the hub stored (committed, duplicates excluded) in the window: its shelfsight_detections_stored_total. */
  stored: number;
  /** Detections the fleet published again (ack timeout or reconnect). */
  retransmitted: number;
  /** Detections the fleet published, retransmissions included. */
  sent: number;
  /** Detections per MQTT message the fleet published (how well the link batches). */
  detections_per_message: number | null;
  offered_per_s: number;
  stored_per_s: number;
  /** Highest hub resident memory seen in the window, MB. */
  hub_rss_mb: number | null;
  /** Highest `shelfsight_ingest_pending` seen in the window. */
  pending: number | null;
  /** Highest `shelfsight_ingest_pending_bytes`, `shelfsight_mqtt_hub_queue_bytes`, `shelfsight_mqtt_broker_backlog` seen (0 where the hub has no such metric). */
  pending_bytes: number | null;
  hub_queue_bytes: number | null;
  broker_backlog: number | null;
  /** Detections the hub deferred (told to come back later) in the window: `shelfsight_detections_deferred_total`. */
  deferred: number | null;
  /** Detections in the fleet's outboxes not yet acknowledged, at the window's end. */
  fleet_unacked: number;
  /** p95 of the light prober's `GET /inventory` round trips that ended in the window. */
  inventory_p95_ms: number | null;
  inventory_requests: number;
  /** p95 of received_at − captured_at of the detections stored in the window, by received_at (the committing transaction's start; the state moves in the same transaction). */
  capture_to_state_p95_ms: number | null;
}

export interface WindowSummary {
  windows: number;
  median: {
    offered_per_s: number | null;
    stored_per_s: number | null;
    retransmitted_per_s: number | null;
    detections_per_message: number | null;
    hub_rss_mb: number | null;
    pending: number | null;
    inventory_p95_ms: number | null;
    capture_to_state_p95_ms: number | null;
  };
  /** The worst value of each figure over the windows (lowest goodput, highest of the rest). */
  worst: {
    stored_per_s: number | null;
    stored_to_offered: number | null;
    retransmitted_per_s: number | null;
    hub_rss_mb: number | null;
    pending: number | null;
    inventory_p95_ms: number | null;
    capture_to_state_p95_ms: number | null;
  };
  /** The window with the lowest goodput (stored per second). */
  worst_window: FleetWindow | null;
}

/** The q-quantile (0..1) of `values` by the nearest-rank method; null for none. */
export function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(values: readonly (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return null;
  const sorted = [...known].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function extreme(values: readonly (number | null)[], pick: 'min' | 'max'): number | null {
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return null;
  return pick === 'min' ? Math.min(...known) : Math.max(...known);
}

const round1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);

export function summarizeWindows(windows: readonly FleetWindow[]): WindowSummary {
  const col = <K extends keyof FleetWindow>(k: K) => windows.map((w) => w[k] as number | null);
  const retransmittedPerS = windows.map((w) => w.retransmitted / w.seconds);
  const ratio = windows.map((w) => (w.offered > 0 ? w.stored / w.offered : null));
  let worstWindow: FleetWindow | null = null;
  for (const w of windows) if (worstWindow === null || w.stored_per_s < worstWindow.stored_per_s) worstWindow = w;
  return {
    windows: windows.length,
    median: {
      offered_per_s: round1(median(col('offered_per_s'))),
      stored_per_s: round1(median(col('stored_per_s'))),
      retransmitted_per_s: round1(median(retransmittedPerS)),
      detections_per_message: round1(median(col('detections_per_message'))),
      hub_rss_mb: median(col('hub_rss_mb')),
      pending: median(col('pending')),
      inventory_p95_ms: round1(median(col('inventory_p95_ms'))),
      capture_to_state_p95_ms: round1(median(col('capture_to_state_p95_ms'))),
    },
    worst: {
      stored_per_s: extreme(col('stored_per_s'), 'min'),
      stored_to_offered: ratio.some((r) => r !== null) ? Math.round(extreme(ratio, 'min')! * 1000) / 1000 : null,
      retransmitted_per_s: round1(extreme(retransmittedPerS, 'max')),
      hub_rss_mb: extreme(col('hub_rss_mb'), 'max'),
      pending: extreme(col('pending'), 'max'),
      inventory_p95_ms: extreme(col('inventory_p95_ms'), 'max'),
      capture_to_state_p95_ms: extreme(col('capture_to_state_p95_ms'), 'max'),
    },
    worst_window: worstWindow,
  };
}

/** Least-squares slope of y over x; null with fewer than two points. */
export function slope(points: ReadonlyArray<[number, number]>): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

export interface OverloadLimits {
  /** Goodput in every judged window at least this fraction of the capacity (0.9). */
  minGoodputFraction: number;
  /** Windows at the start not judged (the hub and fleet warming up, the backlog forming). */
  warmupWindows: number;
  /** Hub RSS may not grow faster than this over the judged windows, MB per minute. */
  maxRssSlopeMbPerMin: number;
  /** Hub RSS never above this, MB. */
  maxRssMb: number;
}

/**
 * The bar for goodput; memory limits loose enough for a hub warming up in a short run
 * (its heap grows for a minute or so) and tight enough for the collapse that was measured
 * (hub RSS 239 → 1,843 MB in 160 s: 600 MB/min).
 */
export const DEFAULT_OVERLOAD_LIMITS: OverloadLimits = { minGoodputFraction: 0.9, warmupWindows: 1, maxRssSlopeMbPerMin: 240, maxRssMb: 768 };

export interface OverloadVerdict {
  ok: boolean;
  capacity_per_s: number;
  /** Judged windows whose goodput fell under minGoodputFraction × capacity (their from_s). */
  collapsed_windows: number[];
  lowest_goodput_fraction: number | null;
  hub_rss_slope_mb_per_min: number | null;
  pending_slope_per_min: number | null;
  hub_rss_max_mb: number | null;
  reasons: string[];
}

/**
 * Did the hub hold up when offered more than it can take? Collapse: a judged window's
 * goodput under `minGoodputFraction` of the capacity. Unbounded growth: the hub's RSS
 * rising faster than `maxRssSlopeMbPerMin` over the judged windows, or above `maxRssMb`.
 * (Pending is reported with its slope; the hub bounds it, so memory is the judge.)
 */
export function overloadVerdict(windows: readonly FleetWindow[], capacityPerS: number, limits: OverloadLimits = DEFAULT_OVERLOAD_LIMITS): OverloadVerdict {
  const judged = windows.slice(limits.warmupWindows).filter((w) => w.seconds >= 0.5 * (windows[0]?.seconds ?? 0));
  const reasons: string[] = [];
  const collapsed = judged.filter((w) => w.stored_per_s < limits.minGoodputFraction * capacityPerS);
  if (judged.length === 0) reasons.push('no window to judge (run too short for its warm-up)');
  if (collapsed.length > 0)
    reasons.push(
      `collapse: goodput under ${limits.minGoodputFraction * 100}% of the capacity (${Math.round(capacityPerS)}/s) in ${collapsed.length} of ${judged.length} windows (lowest ${Math.min(...collapsed.map((w) => w.stored_per_s))}/s)`,
    );
  const minutes = (w: FleetWindow) => (w.from_s + w.seconds / 2) / 60;
  const rss = judged.filter((w) => w.hub_rss_mb !== null).map((w) => [minutes(w), w.hub_rss_mb!] as [number, number]);
  const pending = judged.filter((w) => w.pending !== null).map((w) => [minutes(w), w.pending!] as [number, number]);
  const rssSlope = slope(rss);
  const rssMax = extreme(windows.map((w) => w.hub_rss_mb), 'max');
  if (rssSlope !== null && rssSlope > limits.maxRssSlopeMbPerMin) reasons.push(`growth: hub RSS rising ${Math.round(rssSlope)} MB/min (limit ${limits.maxRssSlopeMbPerMin})`);
  if (rssMax !== null && rssMax > limits.maxRssMb) reasons.push(`growth: hub RSS reached ${rssMax} MB (limit ${limits.maxRssMb})`);
  const fractions = judged.map((w) => w.stored_per_s / capacityPerS);
  return {
    ok: reasons.length === 0,
    capacity_per_s: Math.round(capacityPerS),
    collapsed_windows: collapsed.map((w) => w.from_s),
    lowest_goodput_fraction: fractions.length > 0 ? Math.round(Math.min(...fractions) * 1000) / 1000 : null,
    hub_rss_slope_mb_per_min: rssSlope === null ? null : Math.round(rssSlope * 10) / 10,
    pending_slope_per_min: (() => {
      const s = slope(pending);
      return s === null ? null : Math.round(s);
    })(),
    hub_rss_max_mb: rssMax,
    reasons,
  };
}

/** The windows drawn: offered, stored and retransmitted per second (left), hub RSS and pending (right, scaled). */
export function fleetWindowsSvg(title: string, windows: readonly FleetWindow[], capacityPerS?: number): string {
  const mid = (w: FleetWindow) => w.from_s + w.seconds / 2;
  const rateMax = Math.max(1, capacityPerS ?? 0, ...windows.flatMap((w) => [w.offered_per_s, w.stored_per_s, w.retransmitted / w.seconds]));
  const rssMax = Math.max(1, ...windows.map((w) => w.hub_rss_mb ?? 0));
  const xMax = Math.max(1, ...windows.map((w) => w.from_s + w.seconds));
  const nice = (max: number) => {
    const step = 10 ** Math.floor(Math.log10(max / 4));
    const unit = [1, 2, 5, 10].map((k) => k * step).find((u) => max / u <= 5) ?? step * 10;
    return Math.ceil(max / unit) * unit;
  };
  const left = nice(rateMax);
  const right = nice(rssMax);
  const series: LineSeries[] = [
    { name: 'offered /s', points: windows.map((w) => [mid(w), w.offered_per_s]) },
    { name: 'stored /s', points: windows.map((w) => [mid(w), w.stored_per_s]) },
    { name: 'retransmitted /s', points: windows.map((w) => [mid(w), w.retransmitted / w.seconds]) },
    { name: 'hub RSS MB (right)', axis: 'right', dash: '6,4', points: windows.filter((w) => w.hub_rss_mb !== null).map((w) => [mid(w), w.hub_rss_mb!]) },
  ];
  if (capacityPerS !== undefined)
    series.push({ name: `90% of capacity`, color: '#7f7f7f', dash: '2,4', points: [[0, 0.9 * capacityPerS], [xMax, 0.9 * capacityPerS]] });
  const xStep = nice(xMax) / 5;
  return lineChartSvg({
    title,
    width: 960,
    height: 440,
    margin: { top: 44, right: 80, bottom: 70, left: 70 },
    x: { min: 0, max: xMax, ticks: Array.from({ length: 6 }, (_, k) => k * xStep).filter((t) => t <= xMax).map((t) => ({ at: t, label: `${t}` })), label: 'seconds into the run' },
    left: { max: left, ticks: [0, 1, 2, 3, 4].map((k) => (left * k) / 4), format: (v) => String(Math.round(v)) },
    right: { max: right, ticks: [0, 1, 2, 3, 4].map((k) => (right * k) / 4), format: (v) => `${Math.round(v)} MB` },
    series,
    legend: 'bottom',
  });
}
