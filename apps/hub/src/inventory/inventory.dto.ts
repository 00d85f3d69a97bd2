import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { QueryBool, QueryTime, ScopeQuery } from '../common/query-schemas';

export const InventoryQuerySchema = z.object({
  ...ScopeQuery,
  minConfidence: z.coerce.number().min(0).max(1).describe('count only states at least this confident').optional(),
  includeStale: QueryBool.default(false).describe('also count locations not observed for STALE_AFTER_S'),
});
export type InventoryQuery = z.infer<typeof InventoryQuerySchema>;

export const HISTORY_BUCKETS = ['hour', 'day'] as const;
export const HistoryQuerySchema = z
  .object({
    ...ScopeQuery,
    from: QueryTime.describe('ISO time; default 24 h (hour) or 30 days (day) before `to`').optional(),
    to: QueryTime.describe('ISO time; default now').optional(),
    bucket: z.enum(HISTORY_BUCKETS).default('hour'),
  })
  .transform((q) => {
    const to = q.to ?? new Date();
    const from = q.from ?? new Date(to.getTime() - (q.bucket === 'hour' ? 24 : 30 * 24) * 3600_000);
    return { ...q, from, to };
  })
  .refine((q) => q.from < q.to, { message: 'from must be before to', path: ['from'] })
  .refine((q) => (q.to.getTime() - q.from.getTime()) / (q.bucket === 'hour' ? 3600_000 : 86400_000) <= 24 * 92, {
    message: 'too many buckets (at most 2208); use bucket=day or a shorter range',
    path: ['bucket'],
  });
export type HistoryQuery = z.infer<typeof HistoryQuerySchema>;

export class CategoryCountDto {
  @ApiProperty() category!: string;
  @ApiProperty({ description: 'locations whose latest confident detection is this category' }) locations!: number;
  @ApiProperty({ type: String, format: 'date-time', description: 'capture time of the newest observation behind this count' })
  newestObservation!: string;
  @ApiProperty({ type: String, format: 'date-time', description: 'capture time of the oldest observation behind this count' })
  oldestObservation!: string;
}

export class InventoryDto {
  @ApiProperty({ nullable: true, type: String }) site!: string | null;
  @ApiProperty({ nullable: true, type: String }) zone!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) generatedAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'newest capture time over all counts' })
  newestObservation!: string | null;
  @ApiProperty({ description: 'seconds without observation after which a location counts as stale' }) staleAfterS!: number;
  @ApiProperty({ description: 'locations in the counts' }) totalLocations!: number;
  @ApiProperty({ description: 'stale locations matching the filters (in the counts only with includeStale=true)' }) staleLocations!: number;
  @ApiProperty({ type: [CategoryCountDto] }) categories!: CategoryCountDto[];
}

export class HistoryPointDto {
  @ApiProperty({ type: String, format: 'date-time', description: 'start of the bucket; counts are as of its end' }) time!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' }, description: 'locations per category' })
  counts!: Record<string, number>;
}

export class HistoryDto {
  @ApiProperty({ enum: HISTORY_BUCKETS }) bucket!: string;
  @ApiProperty({ type: String, format: 'date-time' }) from!: string;
  @ApiProperty({ type: String, format: 'date-time' }) to!: string;
  @ApiProperty({ type: [String] }) categories!: string[];
  @ApiProperty({ type: [HistoryPointDto] }) points!: HistoryPointDto[];
}
