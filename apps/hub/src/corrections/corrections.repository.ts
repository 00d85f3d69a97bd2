import { Injectable } from '@nestjs/common';
import { PrismaService } from '../prisma/prisma.service';
import type { CorrectionRow } from './correction.dto';

const DEADLOCK = '40P01';

/** The SQL of corrections: one transaction that records, marks and (when current) moves the state. */
@Injectable()
export class CorrectionsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Record a correction of detection `id` to `category`. In one transaction:
   * lock the location's state row (FOR UPDATE, as ingest does); mark the detection
   * misclassified; when the detection is still the location's current state and its
   * category differs, move the state and write the history delta (−1 old, +1 new) at
   * the hour of the state's capture, the bucket ingest used, so the hourly history's
   * running sum still equals the current counts; record the correction and its frame
   * request. Undefined when there is no such detection.
   */
  async correct(id: bigint, category: string, by: string, requestId: string): Promise<CorrectionRow | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.prisma.$transaction(async (tx) => {
          const det = await tx.$queryRaw<Array<{ device_id: string; frame_id: string; site: string; location: string; category: string }>>`
            SELECT device_id, frame_id, site, location, category FROM detections WHERE id = ${id}`;
          const d = det[0];
          if (!d) return undefined;
          const state = await tx.$queryRaw<Array<{ zone: string; category: string; captured_at: Date; detection_id: bigint | null }>>`
            SELECT zone, category, captured_at, detection_id FROM location_state WHERE site = ${d.site} AND location = ${d.location} FOR UPDATE`;
          const s = state[0];
          const current = s !== undefined && s.detection_id === id;
          const previous = current ? s.category : await this.latestCategory(tx, id, d.category);
          const moved = current && s.category !== category;
          if (moved) {
            await tx.$executeRaw`UPDATE location_state SET category = ${category}, updated_at = now() WHERE site = ${d.site} AND location = ${d.location}`;
            // Rows in key order (as ingest inserts them), so concurrent writers lock alike.
            const deltas = [
              { category: s.category, delta: -1 },
              { category, delta: 1 },
            ].sort((a, b) => (a.category < b.category ? -1 : 1));
            for (const x of deltas) {
              await tx.$executeRaw`
                INSERT INTO inventory_deltas AS d (site, zone, category, hour, delta)
                VALUES (${d.site}, ${s.zone}, ${x.category}, date_trunc('hour', ${s.captured_at}::timestamptz), ${x.delta})
                ON CONFLICT (site, zone, category, hour) DO UPDATE SET delta = d.delta + EXCLUDED.delta`;
            }
          }
          await tx.$executeRaw`UPDATE detections SET misclassified = true WHERE id = ${id}`;
          await tx.$executeRaw`
            INSERT INTO frame_requests (request_id, device_id, frame_id, purpose, detection_id)
            VALUES (${requestId}, ${d.device_id}, ${d.frame_id}, 'correction', ${id})`;
          const rows = await tx.$queryRaw<CorrectionRow[]>`
            INSERT INTO corrections (detection_id, device_id, frame_id, previous_category, category, corrected_by, moved_state, request_id)
            VALUES (${id}, ${d.device_id}, ${d.frame_id}, ${previous}, ${category}, ${by}, ${moved}, ${requestId})
            RETURNING *`;
          return rows[0];
        });
      } catch (err) {
        if (attempt < 3 && (err as { code?: string; message?: string }).message?.includes(DEADLOCK)) continue;
        throw err;
      }
    }
  }

  async forDetections(ids: bigint[]): Promise<CorrectionRow[]> {
    if (ids.length === 0) return [];
    return this.prisma.$queryRaw`SELECT * FROM corrections WHERE detection_id = ANY(${ids}::bigint[]) ORDER BY corrected_at, id`;
  }

  async get(id: bigint): Promise<CorrectionRow | undefined> {
    const rows = await this.prisma.$queryRaw<CorrectionRow[]>`SELECT * FROM corrections WHERE id = ${id}`;
    return rows[0];
  }

  /** The category a detection was last corrected to, else its own. */
  private async latestCategory(tx: Pick<PrismaService, '$queryRaw'>, id: bigint, own: string): Promise<string> {
    const rows = await tx.$queryRaw<Array<{ category: string }>>`
      SELECT category FROM corrections WHERE detection_id = ${id} ORDER BY corrected_at DESC, id DESC LIMIT 1`;
    return rows[0]?.category ?? own;
  }
}
