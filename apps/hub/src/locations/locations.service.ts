import { Inject, Injectable } from '@nestjs/common';
import { Prisma } from '@shelfsight/db';
import { decodeCursor, encodeCursor } from '../common/query-schemas';
import { freshSince } from '../common/freshness';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import { toCorrectionDto } from '../corrections/correction.dto';
import { CorrectionsRepository } from '../corrections/corrections.repository';
import { toDetectionDto } from '../detections/detection.dto';
import { DisputesRepository } from '../disputes/disputes.repository';
import { PrismaService } from '../prisma/prisma.service';
import type { DisputeDto, LocationDetailDto, LocationDto, LocationPageDto, LocationQuery, LocationsQuery } from './location.dto';
import { AmbiguousLocationError, LocationNotFoundError } from './locations.error';

/** One row of the locations query (exported for the service's spec). */
export interface LocationRow {
  rn: bigint;
  site: string;
  code: string;
  zone: string;
  first_seen_at: Date;
  last_observed_at: Date;
  category: string | null;
  confidence: number | null;
  captured_at: Date | null;
  device_id: string | null;
}

@Injectable()
export class LocationsService {
  constructor(
    private readonly prisma: PrismaService,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly disputes: DisputesRepository,
    private readonly corrections: CorrectionsRepository,
  ) {}

  async list(q: LocationsQuery, now = new Date()): Promise<LocationPageDto> {
    const cutoff = freshSince(this.config.staleAfterS, now);
    const after = decodeCursor(q.cursor) ?? 0n;
    const filters: Prisma.Sql[] = [Prisma.sql`TRUE`];
    if (q.site) filters.push(Prisma.sql`l.site = ${q.site}`);
    if (q.zone) filters.push(Prisma.sql`l.zone = ${q.zone}`);
    if (q.category) filters.push(Prisma.sql`s.category = ${q.category}`);
    if (q.stale === true) filters.push(Prisma.sql`l.last_observed_at < ${cutoff}`);
    if (q.stale === false) filters.push(Prisma.sql`l.last_observed_at >= ${cutoff}`);
    // Keyset pagination over (site, code) through a row number of the ordered, filtered set.
    const rows = await this.prisma.$queryRaw<LocationRow[]>`
      SELECT * FROM (
        SELECT row_number() OVER (ORDER BY l.site, l.code) AS rn, l.site, l.code, l.zone, l.first_seen_at, l.last_observed_at,
               s.category, s.confidence, s.captured_at, s.device_id
        FROM locations l LEFT JOIN location_state s ON s.site = l.site AND s.location = l.code
        WHERE ${Prisma.join(filters, ' AND ')}
      ) x WHERE rn > ${after} ORDER BY rn LIMIT ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    return {
      items: page.map((r) => this.toDto(r, cutoff)),
      nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!.rn) : null,
    };
  }

  async get(code: string, q: LocationQuery, now = new Date()): Promise<LocationDetailDto> {
    const cutoff = freshSince(this.config.staleAfterS, now);
    const rows = await this.prisma.$queryRaw<LocationRow[]>`
      SELECT 0::bigint AS rn, l.site, l.code, l.zone, l.first_seen_at, l.last_observed_at, s.category, s.confidence, s.captured_at, s.device_id
      FROM locations l LEFT JOIN location_state s ON s.site = l.site AND s.location = l.code
      WHERE l.code = ${code} ${q.site ? Prisma.sql`AND l.site = ${q.site}` : Prisma.empty}
      ORDER BY l.site`;
    if (rows.length === 0) throw new LocationNotFoundError(code, q.site);
    if (rows.length > 1) throw new AmbiguousLocationError(code, rows.map((r) => r.site));
    const row = rows[0]!;
    const history = await this.prisma.detection.findMany({
      where: { site: row.site, location: code },
      orderBy: [{ capturedAt: 'desc' }, { id: 'desc' }],
      take: q.history,
    });
    const [disputed, corrections] = await Promise.all([
      this.disputes.disputedAt(row.site, code, 20),
      this.corrections.forDetections(history.map((h) => h.id)),
    ]);
    return { ...this.toDto(row, cutoff), history: history.map(toDetectionDto), dispute: toDispute(disputed), corrections: corrections.map(toCorrectionDto) };
  }

  private toDto(r: LocationRow, cutoff: Date): LocationDto {
    return {
      site: r.site,
      code: r.code,
      zone: r.zone,
      firstSeenAt: r.first_seen_at.toISOString(),
      lastObservedAt: r.last_observed_at.toISOString(),
      stale: r.last_observed_at < cutoff,
      state:
        r.category !== null
          ? { category: r.category, confidence: r.confidence!, capturedAt: r.captured_at!.toISOString(), deviceId: r.device_id! }
          : null,
    };
  }
}

/** The newest dispute: the disputed detections found with the newest disputed_at. */
function toDispute(rows: Awaited<ReturnType<DisputesRepository['disputedAt']>>): DisputeDto | null {
  if (rows.length === 0) return null;
  const newest = Math.max(...rows.map((r) => r.disputed_at.getTime()));
  const latest = rows.filter((r) => newest - r.disputed_at.getTime() < 60_000);
  return {
    disputedAt: new Date(newest).toISOString(),
    categories: [...new Set(latest.map((r) => r.category))].sort(),
    devices: [...new Set(latest.map((r) => r.device_id))].sort(),
    detectionIds: latest.map((r) => r.id.toString()),
  };
}
