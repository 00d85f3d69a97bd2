import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { zoneOfLocation, type Detection } from '@shelfsight/contracts';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { HubMetrics } from '../metrics/hub-metrics';
import { PrismaService } from '../prisma/prisma.service';
import { CommittedDetections } from './committed-detections';

export interface CommitOutcome {
  stored: number;
  duplicates: number;
  stateChanges: number;
}

interface Pending {
  deviceId: string;
  epoch: string;
  detections: Detection[];
  resolve(outcome: CommitOutcome): void;
  reject(err: Error): void;
}

export class WriterClosedError extends Error {
  override name = 'WriterClosedError';
}

/**
 * Set-based ingest of one transaction's worth of detections:
 * 1. insert raw detections; the unique keys (device, epoch, seq) and (device, frame)
 *    make a redelivered or re-classified frame a no-op (exactly-once effect);
 * 2. per location, take the newest confident detection just stored and upsert it into
 *    location_state only if it is newer by capture time (ties broken by device and
 *    seq, so the outcome never depends on arrival order);
 * 3. create sites, zones and locations on first sight and note when each was observed;
 * 4. record each state change as hourly per-category deltas (the inventory history);
 * 5. note the devices as seen.
 * Rows are sorted by their keys so concurrent transactions lock in the same order.
 */
const INGEST_SQL = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
    device_id text, epoch text, seq bigint, frame_id text, site text, zone text, location text,
    captured_at timestamptz, category text, confidence real, top_k jsonb, model_version text, latency_ms real)
), ins AS (
  INSERT INTO detections (device_id, epoch, seq, frame_id, site, zone, location, captured_at, category, confidence, top_k, model_version, latency_ms)
  SELECT device_id, epoch, seq, frame_id, site, zone, location, captured_at, category, confidence, top_k, model_version, latency_ms
  FROM input ORDER BY device_id, epoch, seq
  ON CONFLICT DO NOTHING
  RETURNING id, device_id, seq, site, zone, location, captured_at, category, confidence
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
), seen AS (
  INSERT INTO devices (id, last_seen_at)
  SELECT DISTINCT device_id, now() FROM input ORDER BY device_id
  ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS stored, (SELECT count(*) FROM up)::int AS state_changes,
  (SELECT count(*) FROM new_sites) + (SELECT count(*) FROM new_zones) + (SELECT count(*) FROM observed)
  + (SELECT count(*) FROM history) + (SELECT count(*) FROM seen) AS touched`;

/**
 * First statement of each ingest transaction: lock the states of the locations in the
 * batch, so that the ingest statement that follows (a new snapshot) reads their current
 * categories for the history deltas. Existing states get row locks (in key order, so
 * concurrent writers do not deadlock); locations without a state yet get a transaction
 * advisory lock on their key, so two writers seeing a location for the first time at
 * once serialise and the second one sees the first one's state.
 */
const LOCK_STATES_SQL = `
WITH k AS (
  SELECT DISTINCT site, location FROM jsonb_to_recordset($1::jsonb) AS x(site text, location text)
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
 * Batching writer: detections from many MQTT messages are committed together, one
 * transaction at a time per flusher. A commit that fails (database down, deadlock) is
 * retried with backoff, keeping its rows; callers learn of success only after commit,
 * so nothing is acknowledged that is not stored. Memory is bounded: past
 * `ingestMaxPending` rows, `submit` refuses (the device keeps the data and resends).
 */
@Injectable()
export class DetectionWriter implements OnModuleDestroy {
  private readonly log = new Logger(DetectionWriter.name);
  private readonly queue: Pending[] = [];
  private pendingRows = 0;
  private activeFlushers = 0;
  private closed = false;
  private readonly maxFlushers = 2;

  constructor(
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly prisma: PrismaService,
    private readonly metrics: HubMetrics,
    private readonly committed: CommittedDetections,
  ) {
    metrics.pending.readFrom(() => this.pendingRows);
  }

  /** Resolves after the detections are committed; undefined when the writer is full. */
  submit(deviceId: string, epoch: string, detections: Detection[]): Promise<CommitOutcome> | undefined {
    if (this.closed) return Promise.reject(new WriterClosedError('hub is shutting down'));
    if (this.pendingRows + detections.length > this.config.ingestMaxPending) return undefined;
    this.pendingRows += detections.length;
    const promise = new Promise<CommitOutcome>((resolve, reject) => this.queue.push({ deviceId, epoch, detections, resolve, reject }));
    this.kick();
    return promise;
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + 5000;
    while ((this.queue.length > 0 || this.activeFlushers > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const p of this.queue.splice(0)) p.reject(new WriterClosedError('hub stopped before commit'));
  }

  private kick(): void {
    while (this.activeFlushers < this.maxFlushers && this.queue.length > 0) {
      this.activeFlushers += 1;
      void this.flushLoop().finally(() => (this.activeFlushers -= 1));
    }
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.takeGroup();
      await this.commitWithRetry(group);
    }
  }

  private takeGroup(): Pending[] {
    const group: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0 && (group.length === 0 || rows + this.queue[0]!.detections.length <= this.config.ingestBatchRows)) {
      const next = this.queue.shift()!;
      group.push(next);
      rows += next.detections.length;
    }
    return group;
  }

  private async commitWithRetry(group: Pending[]): Promise<void> {
    const rows = group.flatMap((p) => p.detections.map((d) => toRow(p.deviceId, p.epoch, d)));
    let backoff = 100;
    for (;;) {
      const started = performance.now();
      try {
        const json = JSON.stringify(rows);
        const [, result] = await this.prisma.$transaction([
          this.prisma.$queryRawUnsafe(LOCK_STATES_SQL, json),
          this.prisma.$queryRawUnsafe<Array<{ stored: number; state_changes: number }>>(INGEST_SQL, json, this.config.minConfidence),
        ]);
        const stored = result[0]?.stored ?? 0;
        const stateChanges = result[0]?.state_changes ?? 0;
        this.metrics.commitMs.observe(performance.now() - started);
        this.metrics.batchRows.observe(rows.length);
        this.metrics.detectionsStored.inc({}, stored);
        this.metrics.detectionsDuplicate.inc({}, rows.length - stored);
        this.metrics.stateChanges.inc({}, stateChanges);
        this.pendingRows -= rows.length;
        // Per-message outcomes are not separable in a set-based commit; the totals are.
        for (const p of group) p.resolve({ stored, duplicates: rows.length - stored, stateChanges });
        if (stored > 0) this.committed.emit(rows);
        return;
      } catch (err) {
        this.metrics.commitErrors.inc();
        this.log.warn(`commit of ${rows.length} detections failed (${(err as Error).message}); retrying in ${backoff} ms`);
        if (this.closed) {
          this.pendingRows -= rows.length;
          for (const p of group) p.reject(new WriterClosedError('hub stopped before commit'));
          return;
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
}

function toRow(deviceId: string, epoch: string, d: Detection) {
  return {
    device_id: deviceId,
    epoch,
    seq: d.seq,
    frame_id: d.frameId,
    site: d.site,
    zone: zoneOfLocation(d.location),
    location: d.location,
    captured_at: d.capturedAt,
    category: d.category,
    confidence: d.confidence,
    top_k: d.topK,
    model_version: d.modelVersion,
    latency_ms: d.latencyMs,
  };
}
