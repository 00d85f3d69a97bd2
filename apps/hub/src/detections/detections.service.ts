import { Injectable } from '@nestjs/common';
import type { Prisma } from '@shelfsight/db';
import { decodeCursor, encodeCursor } from '../common/query-schemas';
import { PrismaService } from '../prisma/prisma.service';
import { type DetectionPageDto, type DetectionsQuery, toDetectionDto } from './detection.dto';

/** Raw detections, newest first, paginated by an opaque cursor (stable under concurrent inserts). */
@Injectable()
export class DetectionsService {
  constructor(private readonly prisma: PrismaService) {}

  async list(q: DetectionsQuery): Promise<DetectionPageDto> {
    const before = decodeCursor(q.cursor);
    const where: Prisma.DetectionWhereInput = {
      ...(q.site && { site: q.site }),
      ...(q.zone && { zone: q.zone }),
      ...(q.category && { category: q.category }),
      ...(q.location && { location: q.location }),
      ...(q.device && { deviceId: q.device }),
      ...((q.from || q.to) && { capturedAt: { ...(q.from && { gte: q.from }), ...(q.to && { lt: q.to }) } }),
      ...(before !== undefined && { id: { lt: before } }),
    };
    const rows = await this.prisma.detection.findMany({ where, orderBy: { id: 'desc' }, take: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    return {
      items: page.map(toDetectionDto),
      nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!.id) : null,
    };
  }
}
