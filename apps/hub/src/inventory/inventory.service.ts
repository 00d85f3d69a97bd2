import { Inject, Injectable } from '@nestjs/common';
import { freshSince } from '../common/freshness';
import { HUB_CONFIG, type HubConfig } from '../config/hub-config';
import type { HistoryDto, HistoryQuery, InventoryDto, InventoryQuery } from './inventory.dto';
import { InventoryRepository } from './inventory.repository';

/**
 * Inventory = for each location its latest confident detection (by capture time);
 * counts per category = locations in that state. Stale locations (not observed for
 * STALE_AFTER_S) are counted apart unless asked for.
 */
@Injectable()
export class InventoryService {
  constructor(
    private readonly repo: InventoryRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  async counts(query: InventoryQuery, now = new Date()): Promise<InventoryDto> {
    const cutoff = freshSince(this.config.staleAfterS, now);
    const [rows, stale] = await Promise.all([
      this.repo.counts(query, query.minConfidence, query.includeStale ? undefined : cutoff),
      this.repo.staleCount(query, cutoff),
    ]);
    const categories = rows.map((r) => ({
      category: r.category,
      locations: r.locations,
      newestObservation: r.newest.toISOString(),
      oldestObservation: r.oldest.toISOString(),
    }));
    const newest = categories.reduce<string | null>((acc, c) => (acc === null || c.newestObservation > acc ? c.newestObservation : acc), null);
    return {
      site: query.site ?? null,
      zone: query.zone ?? null,
      generatedAt: now.toISOString(),
      newestObservation: newest,
      staleAfterS: this.config.staleAfterS,
      totalLocations: categories.reduce((n, c) => n + c.locations, 0),
      staleLocations: stale,
      categories,
    };
  }

  async history(query: HistoryQuery): Promise<HistoryDto> {
    const rows = await this.repo.history(query, query.from, query.to, query.bucket);
    const categories = [...new Set(rows.map((r) => r.category))].sort();
    const points = new Map<string, Record<string, number>>();
    for (const r of rows) {
      const key = r.t.toISOString();
      const counts = points.get(key) ?? {};
      counts[r.category] = r.locations;
      points.set(key, counts);
    }
    return {
      bucket: query.bucket,
      from: query.from.toISOString(),
      to: query.to.toISOString(),
      categories,
      points: [...points].map(([time, counts]) => ({ time, counts })),
    };
  }

  /** The same counts as CSV (header `category,locations,newest_observation,oldest_observation`). */
  async csv(query: InventoryQuery): Promise<string> {
    const inv = await this.counts(query);
    const lines = ['category,locations,newest_observation,oldest_observation'];
    for (const c of inv.categories) lines.push(`${csvField(c.category)},${c.locations},${c.newestObservation},${c.oldestObservation}`);
    return lines.join('\n') + '\n';
  }
}

function csvField(v: string): string {
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
