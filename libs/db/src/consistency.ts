import type { Client } from 'pg';

export interface ConsistencyReport {
  /** Locations whose stored state is not the newest confident detection by capture time (ties by device, seq). */
  stateMismatches: number;
  /** Categories whose hourly-history running sum differs from the current count of locations. */
  historyMismatches: number;
}

/**
 * Recompute inventory from the raw detections and compare it with what the ingest writer
 * maintained incrementally. Used by benchmarks, the chaos run and the ingest tests after
 * the fact; `site` limits the check to one site (tests share a database).
 */
export async function checkInventoryConsistency(sql: Client, minConfidence: number, { site }: { site?: string } = {}): Promise<ConsistencyReport> {
  const state = await sql.query<{ n: number }>(
    `WITH exp AS (SELECT DISTINCT ON (site, location) site, location, device_id, seq FROM detections
                  WHERE confidence >= $1 AND ($2::text IS NULL OR site = $2) ORDER BY site, location, captured_at DESC, device_id DESC, seq DESC)
     SELECT count(*)::int AS n FROM exp FULL JOIN (SELECT * FROM location_state WHERE $2::text IS NULL OR site = $2) s USING (site, location)
     WHERE s.seq IS DISTINCT FROM exp.seq OR s.device_id IS DISTINCT FROM exp.device_id`,
    [minConfidence, site ?? null],
  );
  // Per category: the running sum of the hourly history against the current count (a category
  // no location holds any more must sum to 0; one missing on either side counts as 0).
  const history = await sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT category, sum(delta) AS n FROM inventory_deltas WHERE $1::text IS NULL OR site = $1 GROUP BY category) h
     FULL JOIN (SELECT category, count(*) AS n FROM location_state WHERE $1::text IS NULL OR site = $1 GROUP BY category) s USING (category)
     WHERE coalesce(h.n, 0) <> coalesce(s.n, 0)`,
    [site ?? null],
  );
  return { stateMismatches: state.rows[0]?.n ?? 0, historyMismatches: history.rows[0]?.n ?? 0 };
}
