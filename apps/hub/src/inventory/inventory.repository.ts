import { Injectable } from '@nestjs/common';
import { Prisma } from '@shelfsight/db';
import { PrismaService } from '../prisma/prisma.service';

export interface Scope {
  site?: string;
  zone?: string;
  category?: string;
}

export interface CountRow {
  category: string;
  locations: number;
  newest: Date;
  oldest: Date;
}

/** SQL of the inventory read side; set-based, on location_state / locations / inventory_deltas only. */
@Injectable()
export class InventoryRepository {
  constructor(private readonly prisma: PrismaService) {}

  async counts(scope: Scope, minConfidence: number | undefined, freshSince: Date | undefined): Promise<CountRow[]> {
    return this.prisma.$queryRaw<CountRow[]>`
      SELECT s.category, count(*)::int AS locations, max(s.captured_at) AS newest, min(s.captured_at) AS oldest
      FROM location_state s JOIN locations l ON l.site = s.site AND l.code = s.location
      WHERE ${this.scope(scope, 's')}
        ${minConfidence !== undefined ? Prisma.sql`AND s.confidence >= ${minConfidence}` : Prisma.empty}
        ${freshSince ? Prisma.sql`AND l.last_observed_at >= ${freshSince}` : Prisma.empty}
      GROUP BY s.category ORDER BY s.category`;
  }

  async staleCount(scope: Scope, freshSince: Date): Promise<number> {
    const rows = await this.prisma.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM location_state s JOIN locations l ON l.site = s.site AND l.code = s.location
      WHERE ${this.scope(scope, 's')} AND l.last_observed_at < ${freshSince}`;
    return rows[0]?.n ?? 0;
  }

  /** Running sums of hourly deltas, bucketed; one row per (bucket, category). */
  async history(scope: Scope, from: Date, to: Date, bucket: 'hour' | 'day'): Promise<Array<{ t: Date; category: string; locations: number }>> {
    const step = Prisma.raw(bucket === 'hour' ? `interval '1 hour'` : `interval '1 day'`);
    const unit = bucket === 'hour' ? 'hour' : 'day';
    const where = this.scope(scope, 'd');
    return this.prisma.$queryRaw`
      WITH bounds AS (SELECT date_trunc(${unit}, ${from}::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS f,
                             date_trunc(${unit}, ${to}::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t),
      cats AS (SELECT DISTINCT category FROM inventory_deltas d WHERE ${where}),
      base AS (SELECT d.category, sum(d.delta)::int AS n FROM inventory_deltas d, bounds WHERE ${where} AND d.hour < bounds.f GROUP BY d.category),
      buckets AS (SELECT generate_series(bounds.f, bounds.t, ${step}) AS t FROM bounds),
      changes AS (
        SELECT date_trunc(${unit}, d.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t, d.category, sum(d.delta)::int AS delta
        FROM inventory_deltas d, bounds WHERE ${where} AND d.hour >= bounds.f AND d.hour < bounds.t + ${step}
        GROUP BY 1, 2)
      SELECT b.t, c.category,
        (coalesce(base.n, 0) + sum(coalesce(ch.delta, 0)) OVER (PARTITION BY c.category ORDER BY b.t))::int AS locations
      FROM buckets b CROSS JOIN cats c
      LEFT JOIN changes ch ON ch.t = b.t AND ch.category = c.category
      LEFT JOIN base ON base.category = c.category
      ORDER BY b.t, c.category`;
  }

  private scope(scope: Scope, alias: string): Prisma.Sql {
    const a = Prisma.raw(alias);
    const parts: Prisma.Sql[] = [Prisma.sql`TRUE`];
    if (scope.site) parts.push(Prisma.sql`${a}.site = ${scope.site}`);
    if (scope.zone) parts.push(Prisma.sql`${a}.zone = ${scope.zone}`);
    if (scope.category) parts.push(Prisma.sql`${a}.category = ${scope.category}`);
    return Prisma.join(parts, ' AND ');
  }
}
