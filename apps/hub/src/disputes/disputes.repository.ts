import { Injectable } from '@nestjs/common';
import type { CommittedLocation } from '../ingest/committed-detections';
import { PrismaService } from '../prisma/prisma.service';

/** Detections per location the check compares (the newest by capture time). */
const RECENT = 16;

/** A frame request recorded for a disputed detection, to be sent once committed. */
export interface DisputeFrameRequest {
  request_id: string;
  device_id: string;
  frame_id: string;
  detection_id: bigint;
}

export interface DisputedDetectionRow {
  id: bigint;
  device_id: string;
  frame_id: string;
  category: string;
  confidence: number;
  captured_at: Date;
  disputed_at: Date;
}

@Injectable()
export class DisputesRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Among the newest confident detections of these locations, find pairs from different
   * devices with different categories captured within `windowS` of each other; of those
   * not yet disputed, mark at most `budget` (newest first) and record a frame request for
   * each (its id from `newRequestId`), in one transaction: a detection is never marked
   * without its request. The rest stay unmarked, eligible for a later pass; `deferred`
   * names their locations.
   */
  async markDisputes(
    locations: CommittedLocation[],
    minConfidence: number,
    windowS: number,
    budget: number,
    newRequestId: () => string,
  ): Promise<{ requests: DisputeFrameRequest[]; deferred: CommittedLocation[] }> {
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRawUnsafe<Array<{ id: bigint | null; device_id: string | null; frame_id: string | null; deferred: CommittedLocation[] }>>(
        `WITH k AS (
           SELECT DISTINCT site, location FROM jsonb_to_recordset($1::jsonb) AS x(site text, location text)
         ), cand AS (
           SELECT k.site, k.location, d.id, d.device_id, d.category, d.captured_at
           FROM k CROSS JOIN LATERAL (
             SELECT id, device_id, category, captured_at, confidence FROM detections d
             WHERE d.site = k.site AND d.location = k.location
             ORDER BY d.captured_at DESC LIMIT ${RECENT}) d
           WHERE d.confidence >= $2
         ), hit AS (
           SELECT DISTINCT a.id, a.site, a.location, a.captured_at FROM cand a JOIN cand b
             ON a.site = b.site AND a.location = b.location AND a.device_id <> b.device_id AND a.category <> b.category
            AND abs(extract(epoch FROM a.captured_at - b.captured_at)) <= $3
         ), eligible AS (
           SELECT h.id, h.site, h.location, row_number() OVER (ORDER BY h.captured_at DESC, h.id DESC) AS n
           FROM hit h JOIN detections d ON d.id = h.id WHERE d.disputed_at IS NULL
         ), marked AS (
           UPDATE detections d SET disputed_at = now() FROM eligible e
           WHERE d.id = e.id AND e.n <= $4::int AND d.disputed_at IS NULL
           RETURNING d.id, d.device_id, d.frame_id
         ), left_over AS (
           SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('site', site, 'location', location)), '[]') AS deferred FROM eligible WHERE n > $4::int
         )
         SELECT m.id, m.device_id, m.frame_id, l.deferred FROM left_over l LEFT JOIN marked m ON true`,
        JSON.stringify(locations.map((l) => ({ site: l.site, location: l.location }))),
        minConfidence,
        windowS,
        budget,
      );
      const requests: DisputeFrameRequest[] = rows
        .filter((r) => r.id !== null)
        .map((r) => ({ request_id: newRequestId(), device_id: r.device_id!, frame_id: r.frame_id!, detection_id: r.id! }));
      if (requests.length > 0) {
        await tx.$executeRawUnsafe(
          `INSERT INTO frame_requests (request_id, device_id, frame_id, purpose, detection_id)
           SELECT request_id, device_id, frame_id, 'disagreement', detection_id::bigint
           FROM jsonb_to_recordset($1::jsonb) AS x(request_id text, device_id text, frame_id text, detection_id text)`,
          JSON.stringify(requests.map((r) => ({ ...r, detection_id: r.detection_id.toString() }))),
        );
      }
      return { requests, deferred: rows[0]?.deferred ?? [] };
    });
  }

  /** Disputed detections of a location, newest first. */
  disputedAt(site: string, location: string, limit: number): Promise<DisputedDetectionRow[]> {
    return this.prisma.$queryRaw`
      SELECT id, device_id, frame_id, category, confidence, captured_at, disputed_at FROM detections
      WHERE site = ${site} AND location = ${location} AND disputed_at IS NOT NULL
      ORDER BY captured_at DESC LIMIT ${limit}`;
  }
}
