import { Injectable } from '@nestjs/common';
import type { CommittedLocation } from '../ingest/committed-detections';
import { PrismaService } from '../prisma/prisma.service';

/** Detections per location the check compares (the newest by capture time). */
const RECENT = 16;

export interface DisputeRequest {
  request_id: string;
  device_id: string;
  frame_id: string;
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
   * devices with different categories captured within `windowS` of each other, and mark
   * those not yet disputed. Returns the newly disputed detections. One statement for the
   * whole chunk of locations.
   */
  async markDisputes(locations: CommittedLocation[], minConfidence: number, windowS: number): Promise<Array<{ id: bigint; device_id: string; frame_id: string }>> {
    return this.prisma.$queryRawUnsafe(
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
         SELECT DISTINCT a.id FROM cand a JOIN cand b
           ON a.site = b.site AND a.location = b.location AND a.device_id <> b.device_id AND a.category <> b.category
          AND abs(extract(epoch FROM a.captured_at - b.captured_at)) <= $3
       )
       UPDATE detections d SET disputed_at = now() FROM hit
       WHERE d.id = hit.id AND d.disputed_at IS NULL
       RETURNING d.id, d.device_id, d.frame_id`,
      JSON.stringify(locations.map((l) => ({ site: l.site, location: l.location }))),
      minConfidence,
      windowS,
    );
  }

  /** Record the frame requests about to be sent for disputed detections. */
  async recordRequests(requests: Array<DisputeRequest & { detection_id: bigint }>): Promise<void> {
    if (requests.length === 0) return;
    await this.prisma.$executeRawUnsafe(
      `INSERT INTO frame_requests (request_id, device_id, frame_id, purpose, detection_id)
       SELECT request_id, device_id, frame_id, 'disagreement', detection_id::bigint
       FROM jsonb_to_recordset($1::jsonb) AS x(request_id text, device_id text, frame_id text, detection_id text)`,
      JSON.stringify(requests.map((r) => ({ ...r, detection_id: r.detection_id.toString() }))),
    );
  }

  /** Disputed detections of a location, newest first. */
  disputedAt(site: string, location: string, limit: number): Promise<DisputedDetectionRow[]> {
    return this.prisma.$queryRaw`
      SELECT id, device_id, frame_id, category, confidence, captured_at, disputed_at FROM detections
      WHERE site = ${site} AND location = ${location} AND disputed_at IS NOT NULL
      ORDER BY captured_at DESC LIMIT ${limit}`;
  }
}
