import { Injectable } from '@nestjs/common';
import type { Detection } from '@shelfsight/contracts';
import { PrismaService } from '../prisma/prisma.service';

/** Detections of one device's message, as the writer groups them. */
export interface IngestMessage {
  deviceId: string;
  epoch: string;
  detections: Detection[];
}

export interface IngestCommit {
  /** Detections newly stored. */
  stored: number;
  /** Location states moved. */
  stateChanges: number;
  /**
   * Detections refused because their (device, epoch, seq) is already stored with another
   * frame: the device reused a sequence number. The stored row stays as it was.
   */
  seqConflicts: number;
  /** Up to five of those, as `device epoch/seq (frame stored, frame sent)`, for the log. */
  conflictExamples: string[];
}

/**
 * Set-based ingest of one transaction's worth of detections:
 * 1. insert raw detections; the unique keys (device, epoch, seq) and (device, frame)
 *    make a redelivered or re-classified frame a no-op (exactly-once effect);
 * 2. of the rows not inserted (rare: redeliveries), count those whose (device, epoch, seq)
 *    is stored with another frame id: a reused sequence number, which would otherwise be
 *    dropped silently (the one-time filter skips this step when every row was inserted);
 * 3. per location, take the newest confident detection just stored and upsert it into
 *    location_state only if it is newer by capture time (ties broken by device and
 *    seq, so the outcome never depends on arrival order);
 * 4. create sites, zones and locations on first sight and note when each was observed;
 * 5. record each state change as hourly per-category deltas (the inventory history).
 * Rows are sorted by their keys so concurrent transactions lock in the same order. The
 * devices are noted as seen apart ({@link IngestRepository.markSeen}), not in this
 * transaction: a device row locked until the commit made every heartbeat and birth of
 * the device (they update the same row) wait for the writer.
 */
const INGEST_SQL = `
WITH input AS (
  -- $1: [{"deviceId", "epoch", "detections": [Detection, ...]}, ...], the validated messages as they are; zone = aisle = first segment of the location.
  SELECT m."deviceId" AS device_id, m.epoch, x.seq, x."frameId" AS frame_id, x.site, split_part(x.location, '-', 1) AS zone, x.location,
    x."capturedAt" AS captured_at, x.category, x.confidence, x."topK" AS top_k, x."modelVersion" AS model_version, x."latencyMs" AS latency_ms
  FROM jsonb_to_recordset($1::jsonb) AS m("deviceId" text, epoch text, detections jsonb)
  CROSS JOIN LATERAL jsonb_to_recordset(m.detections) AS x(
    seq bigint, "frameId" text, site text, location text, "capturedAt" timestamptz, category text, confidence real, "topK" jsonb, "modelVersion" text, "latencyMs" real)
), ins AS (
  INSERT INTO detections (device_id, epoch, seq, frame_id, site, zone, location, captured_at, category, confidence, top_k, model_version, latency_ms)
  SELECT device_id, epoch, seq, frame_id, site, zone, location, captured_at, category, confidence, top_k, model_version, latency_ms
  FROM input ORDER BY device_id, epoch, seq
  ON CONFLICT DO NOTHING
  RETURNING id, device_id, epoch, seq, frame_id, site, zone, location, captured_at, category, confidence
), conflicts AS (
  -- Rows not inserted whose key holds another frame: stored before this statement (its
  -- snapshot) or by this very statement (another message of the same transaction).
  SELECT i.device_id, i.epoch, i.seq, i.frame_id, coalesce(d.frame_id, n.frame_id) AS stored_frame
  FROM input i
  LEFT JOIN ins n ON n.device_id = i.device_id AND n.epoch = i.epoch AND n.seq = i.seq
  LEFT JOIN detections d ON d.device_id = i.device_id AND d.epoch = i.epoch AND d.seq = i.seq
  WHERE (SELECT count(*) FROM ins) < $3::int
    AND n.frame_id IS DISTINCT FROM i.frame_id
), seq_conflicts AS (
  SELECT * FROM conflicts WHERE stored_frame IS NOT NULL AND stored_frame <> frame_id
), new_sites AS (
  INSERT INTO sites (id) SELECT DISTINCT site FROM ins ORDER BY 1 ON CONFLICT DO NOTHING RETURNING 1
), new_zones AS (
  INSERT INTO zones (site, code) SELECT DISTINCT site, zone FROM ins ORDER BY 1, 2 ON CONFLICT DO NOTHING RETURNING 1
), observed AS (
  INSERT INTO locations AS l (site, code, zone, last_observed_at)
  SELECT site, location, min(zone), max(captured_at) FROM ins GROUP BY site, location ORDER BY site, location
  ON CONFLICT (site, code) DO UPDATE SET last_observed_at = EXCLUDED.last_observed_at
  WHERE l.last_observed_at < EXCLUDED.last_observed_at
  RETURNING 1
), latest AS (
  SELECT DISTINCT ON (site, location) * FROM ins
  WHERE confidence >= $2
  ORDER BY site, location, captured_at DESC, device_id DESC, seq DESC
), old AS (
  -- Rows were locked by LOCK_STATES_SQL earlier in this transaction, so this snapshot holds their current values.
  SELECT s.site, s.location, s.zone, s.category FROM location_state s
  JOIN latest USING (site, location)
), up AS (
  INSERT INTO location_state AS s (site, location, zone, category, confidence, captured_at, device_id, seq, detection_id, updated_at)
  SELECT site, location, zone, category, confidence, captured_at, device_id, seq, id, now() FROM latest ORDER BY site, location
  ON CONFLICT (site, location) DO UPDATE SET
    zone = EXCLUDED.zone, category = EXCLUDED.category, confidence = EXCLUDED.confidence,
    captured_at = EXCLUDED.captured_at, device_id = EXCLUDED.device_id, seq = EXCLUDED.seq,
    detection_id = EXCLUDED.detection_id, updated_at = now()
  WHERE (s.captured_at, s.device_id, s.seq) < (EXCLUDED.captured_at, EXCLUDED.device_id, EXCLUDED.seq)
  RETURNING s.site, s.location, s.zone, s.category, s.captured_at
), deltas AS (
  SELECT site, zone, category, date_trunc('hour', captured_at) AS hour, 1 AS delta FROM up
  UNION ALL
  SELECT o.site, o.zone, o.category, date_trunc('hour', u.captured_at), -1 FROM old o JOIN up u USING (site, location)
), history AS (
  INSERT INTO inventory_deltas AS d (site, zone, category, hour, delta)
  SELECT site, zone, category, hour, sum(delta)::int FROM deltas GROUP BY 1, 2, 3, 4 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3, 4
  ON CONFLICT (site, zone, category, hour) DO UPDATE SET delta = d.delta + EXCLUDED.delta
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS stored, (SELECT count(*) FROM up)::int AS state_changes,
  (SELECT count(*) FROM seq_conflicts)::int AS seq_conflicts,
  (SELECT coalesce(array_agg(e), '{}') FROM (
     SELECT device_id || ' ' || epoch || '/' || seq || ' (stored frame ' || stored_frame || ', sent frame ' || frame_id || ')' AS e
     FROM seq_conflicts ORDER BY device_id, epoch, seq LIMIT 5) s) AS conflict_examples,
  (SELECT count(*) FROM new_sites) + (SELECT count(*) FROM new_zones) + (SELECT count(*) FROM observed)
  + (SELECT count(*) FROM history) AS touched`;

/**
 * First statement of each ingest transaction: lock the states of the batch's locations
 * (given as two arrays, site and location, of distinct pairs), so that the ingest
 * statement that follows (a new snapshot) reads their current categories for the
 * history deltas. Existing states get row locks (in key order, so concurrent writers do
 * not deadlock); locations without a state yet get a transaction advisory lock on their
 * key, so two writers seeing a location for the first time at once serialise and the
 * second one sees the first one's state.
 */
const LOCK_STATES_SQL = `
WITH k AS (
  SELECT DISTINCT site, location FROM unnest($1::text[], $2::text[]) AS x(site, location)
), locked AS (
  SELECT s.site, s.location FROM location_state s JOIN k USING (site, location)
  ORDER BY s.site, s.location
  FOR UPDATE OF s
), fresh AS (
  SELECT k.site, k.location FROM k
  WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.site = k.site AND l.location = k.location)
  ORDER BY 1, 2
)
SELECT (SELECT count(*) FROM locked)::int AS locked,
       (SELECT count(pg_advisory_xact_lock(hashtextextended(site || '/' || location, 7361))) FROM fresh)::int AS fresh`;

/**
 * The ingest writer's SQL. Runs on the hub's connection pool with the pg driver
 * directly: the messages go as one JSON parameter to the statement that needs them and
 * the lock statement gets only the distinct locations.
 */
@Injectable()
export class IngestRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Store the detections of these messages in one transaction (throws if it did not commit). */
  async commit(messages: readonly IngestMessage[], minConfidence: number): Promise<IngestCommit> {
    const sites: string[] = [];
    const locations: string[] = [];
    const seenKeys = new Set<string>();
    let rows = 0;
    for (const m of messages) {
      rows += m.detections.length;
      for (const d of m.detections) {
        const key = `${d.site}\u0000${d.location}`;
        if (!seenKeys.has(key)) {
          seenKeys.add(key);
          sites.push(d.site);
          locations.push(d.location);
        }
      }
    }
    // The validated detections go as they are; the statement reads the fields it needs.
    const json = JSON.stringify(messages.map((m) => ({ deviceId: m.deviceId, epoch: m.epoch, detections: m.detections })));
    const client = await this.prisma.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        await client.query(LOCK_STATES_SQL, [sites, locations]);
        const result = await client.query<{ stored: number; state_changes: number; seq_conflicts: number; conflict_examples: string[] }>(INGEST_SQL, [
          json,
          minConfidence,
          rows,
        ]);
        await client.query('COMMIT');
        const r = result.rows[0];
        return { stored: r?.stored ?? 0, stateChanges: r?.state_changes ?? 0, seqConflicts: r?.seq_conflicts ?? 0, conflictExamples: r?.conflict_examples ?? [] };
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
        throw err;
      }
    } catch (err) {
      broken ??= isConnectionError(err) ? (err as Error) : undefined;
      throw err;
    } finally {
      // A connection that failed mid-transaction is discarded, not returned to the pool.
      client.release(broken);
    }
  }

  /**
   * Note devices as seen now (created on first sight), in one short statement of its own
   * that waits on no one: a device row another transaction holds (its heartbeat or birth,
   * which note it as seen themselves, or a rollout status) is skipped, not waited for, so
   * this cannot block or deadlock with them.
   */
  async markSeen(deviceIds: readonly string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.prisma.pool.query(
      `WITH ids AS (
         SELECT DISTINCT id FROM unnest($1::text[]) AS x(id)
       ), locked AS (
         SELECT d.id FROM devices d JOIN ids USING (id) ORDER BY d.id FOR UPDATE OF d SKIP LOCKED
       ), seen AS (
         UPDATE devices d SET last_seen_at = now() FROM locked l WHERE d.id = l.id RETURNING 1
       )
       INSERT INTO devices (id, last_seen_at)
       SELECT id, now() FROM ids WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = ids.id) ORDER BY id
       ON CONFLICT (id) DO NOTHING`,
      [deviceIds],
    );
  }

  /** Keep refused detections for an operator; a resend of one already kept adds nothing. */
  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    // JSON text, not jsonb: it stores whatever the device sent (JSON.stringify escapes NUL).
    const rows = letters.map((l) => ({ device_id: l.deviceId, epoch: l.epoch, seq: l.detection.seq, sqlstate: l.sqlstate, error: l.error.slice(0, 2000), payload: JSON.stringify(l.detection) }));
    await this.prisma.pool.query(
      `INSERT INTO detection_dead_letters (device_id, epoch, seq, sqlstate, error, payload)
       SELECT device_id, epoch, seq, sqlstate, error, payload
       FROM json_to_recordset($1::json) AS x(device_id text, epoch text, seq bigint, sqlstate text, error text, payload text)
       ON CONFLICT (device_id, epoch, seq) DO NOTHING`,
      [JSON.stringify(rows)],
    );
  }
}

/**
 * A refusal that repeating cannot change: SQLSTATE class 22 (data exception, e.g. a value
 * out of range) or 23 (integrity violation, e.g. a CHECK). Duplicates never get here (the
 * ingest statement inserts ON CONFLICT DO NOTHING). Everything else (connection 08,
 * serialization and deadlock 40, shutdown 57, no SQLSTATE at all) is worth retrying.
 */
export function permanentSqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code) ? code : undefined;
}

/** A detection PostgreSQL refused for good, as the dead-letter table keeps it. */
export interface DeadLetter {
  deviceId: string;
  epoch: string;
  detection: Detection;
  sqlstate: string;
  error: string;
}

function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  // SQLSTATE class 08 (connection exception), 57P (operator intervention: shutdown), or a socket error without a SQLSTATE.
  return e.code === undefined || e.code.startsWith('08') || e.code.startsWith('57P');
}
