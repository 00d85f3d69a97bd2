import type { Client } from 'pg';

export interface ConsistencyReport {
  /** Locations whose stored state is not the newest confident detection by capture time (ties by device, seq). */
  stateMismatches: number;
  /** Categories whose hourly-history running sum differs from the current count of locations. */
  historyMismatches: number;
}

/**
 * Recompute inventory from the raw detections and compare it with what the ingest writer
 * maintained incrementally. Used by benchmarks and the chaos run after the fact.
 */
export async function checkInventoryConsistency(sql: Client, minConfidence: number): Promise<ConsistencyReport> {
  const state = await sql.query<{ n: number }>(
    `WITH exp AS (SELECT DISTINCT ON (site, location) site, location, device_id, seq FROM detections
                  WHERE confidence >= $1 ORDER BY site, location, captured_at DESC, device_id DESC, seq DESC)
     SELECT count(*)::int AS n FROM exp FULL JOIN location_state s USING (site, location)
     WHERE s.seq IS DISTINCT FROM exp.seq OR s.device_id IS DISTINCT FROM exp.device_id`,
    [minConfidence],
  );
  const history = await sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT category, sum(delta) AS n FROM inventory_deltas GROUP BY category HAVING sum(delta) <> 0) h
     FULL JOIN (SELECT category, count(*) AS n FROM location_state GROUP BY category) s USING (category)
     WHERE h.n IS DISTINCT FROM s.n`,
  );
  return { stateMismatches: state.rows[0]?.n ?? 0, historyMismatches: history.rows[0]?.n ?? 0 };
}
