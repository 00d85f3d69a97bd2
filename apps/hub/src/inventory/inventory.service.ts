import { Injectable } from '@nestjs/common';
import { PrismaService } from '../prisma/prisma.service';
import type { InventoryDto, InventoryQuery } from './inventory.dto';

/** Inventory = for each location its latest confident detection; counts per category. */
@Injectable()
export class InventoryService {
  constructor(private readonly prisma: PrismaService) {}

  async counts(query: InventoryQuery): Promise<InventoryDto> {
    const rows = await this.prisma.locationState.groupBy({
      by: ['category'],
      where: query.site ? { site: query.site } : {},
      _count: { _all: true },
      _max: { capturedAt: true },
      orderBy: { category: 'asc' },
    });
    const categories = rows.map((r) => ({
      category: r.category,
      locations: r._count._all,
      newestObservation: (r._max.capturedAt ?? new Date(0)).toISOString(),
    }));
    const newest = categories.reduce<string | null>((acc, c) => (acc === null || c.newestObservation > acc ? c.newestObservation : acc), null);
    return {
      site: query.site ?? null,
      generatedAt: new Date().toISOString(),
      newestObservation: newest,
      totalLocations: categories.reduce((n, c) => n + c.locations, 0),
      categories,
    };
  }
}
