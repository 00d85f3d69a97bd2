/**
 * Overload test (`npm run test:overload`): `shelf bench fleet --overload 2` at a small scale.
 * The hub's capacity is measured first (a backlog drained with few enough detections in
 * flight that nothing is refused), then a fleet offers twice that. The database is slowed per
 * stored row (a pg_sleep trigger, no CPU: --db-row-delay-ms) so that the hub's capacity is
 * the database's and a small fleet can offer twice it on two cores without its own CPU
 * deciding the result. Exit code 1 on
 * - collapse: goodput (detections stored per second) under 90% of the capacity in any window
 *   after the first;
 * - unbounded growth: hub RSS rising faster than 240 MB/min over those windows, or above 768 MB;
 * - no overload: the fleet offered less than 1.5x the capacity (the test would prove nothing);
 * - loss or double counting once the fleet drained, or no drain within the timeout.
 * Prints the windows and, as its last line, one JSON object (the verdict and the figures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnShelf } from '@shelfsight/cli';

const DEVICES = Number(process.env.OVERLOAD_DEVICES ?? 40);
const DURATION_S = Number(process.env.OVERLOAD_SECONDS ?? 25);
const ROW_DELAY_MS = Number(process.env.OVERLOAD_ROW_DELAY_MS ?? 2);

interface Window {
  from_s: number;
  offered_per_s: number;
  stored_per_s: number;
  retransmitted: number;
  sent: number;
  hub_rss_mb: number | null;
  pending: number | null;
  inventory_p95_ms: number | null;
  capture_to_state_p95_ms: number | null;
}

interface FleetResult {
  capacity: { per_s: number };
  median: { offered_per_s: number | null };
  verdict: { ok: boolean; reasons: string[]; lowest_goodput_fraction: number | null; hub_rss_slope_mb_per_min: number | null };
  totals: { lost: number | null; double_counted: number; drained: boolean; unacked_at_end: number; retransmitted_share: number | null };
  windows: Window[];
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'shelfsight-overload-'));
  const started = Date.now();
  try {
    const args = [
      'bench', 'fleet', '--overload', '2', '--devices', String(DEVICES), '--processes', '1', '--duration-s', String(DURATION_S), '--window-s', '5',
      '--capacity-detections', '5000', '--db-row-delay-ms', String(ROW_DELAY_MS), '--drain-timeout-s', '60',
    ];
    const bench = spawnShelf(args, {}, (chunk) => process.stderr.write(chunk));
    const code = await bench.exited;
    const last = bench.stdout().trim().split('\n').pop() ?? '';
    if (code !== 0 || !last.startsWith('{')) throw new Error(`shelf bench fleet exited with ${code}`);
    const r = JSON.parse(last) as FleetResult;
    process.stderr.write(`\n  from_s  offered/s  stored/s  retransmitted  hub RSS MB  pending  inventory p95 ms  capture-to-state p95 ms\n`);
    for (const w of r.windows)
      process.stderr.write(
        `  ${pad(w.from_s, 6)}  ${pad(w.offered_per_s, 9)}  ${pad(w.stored_per_s, 8)}  ${pad(w.retransmitted, 13)}  ${pad(w.hub_rss_mb, 10)}  ${pad(w.pending, 7)}  ${pad(w.inventory_p95_ms, 16)}  ${pad(w.capture_to_state_p95_ms, 22)}\n`,
      );
    const failures = [...r.verdict.reasons];
    const offered = r.median.offered_per_s ?? 0;
    if (offered < 1.5 * r.capacity.per_s) failures.push(`no overload: the fleet offered ${offered}/s (median), under 1.5x the capacity ${r.capacity.per_s}/s`);
    if (!r.totals.drained) failures.push(`the fleet did not drain within 60 s after the overload (${r.totals.unacked_at_end} unacknowledged)`);
    if (r.totals.lost !== null && r.totals.lost !== 0) failures.push(`${r.totals.lost} detections lost`);
    if (r.totals.double_counted !== 0) failures.push(`${r.totals.double_counted} detections stored twice`);
    const summary = {
      ok: failures.length === 0,
      failures,
      capacity_per_s: r.capacity.per_s,
      offered_per_s_median: offered,
      lowest_goodput_fraction: r.verdict.lowest_goodput_fraction,
      hub_rss_slope_mb_per_min: r.verdict.hub_rss_slope_mb_per_min,
      retransmitted_share: r.totals.retransmitted_share,
      lost: r.totals.lost,
      double_counted: r.totals.double_counted,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    for (const f of failures) process.stderr.write(`overload: FAIL ${f}\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.exitCode = failures.length === 0 ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function pad(v: number | null, width: number): string {
  return String(v ?? '-').padStart(width);
}

main().catch((err: unknown) => {
  process.stderr.write(`overload: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
