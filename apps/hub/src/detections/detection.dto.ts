import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import type { Detection } from '@shelfsight/db';
import { DeviceIdSchema } from '@shelfsight/contracts';
import { LocationCodeSchema, PageQuery, QueryTime, ScopeQuery } from '../common/query-schemas';

export const DetectionsQuerySchema = z
  .object({
    ...ScopeQuery,
    ...PageQuery,
    location: LocationCodeSchema.optional(),
    device: DeviceIdSchema.optional(),
    from: QueryTime.optional(),
    to: QueryTime.optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: 'from must be before to', path: ['from'] });
export type DetectionsQuery = z.infer<typeof DetectionsQuerySchema>;

export class DetectionDto {
  @ApiProperty() id!: string;
  @ApiProperty() deviceId!: string;
  @ApiProperty({ description: 'the device outbox\'s sequence epoch; seq is unique per (deviceId, epoch)' }) epoch!: string;
  @ApiProperty() seq!: number;
  @ApiProperty() frameId!: string;
  @ApiProperty() site!: string;
  @ApiProperty() zone!: string;
  @ApiProperty() location!: string;
  @ApiProperty({ type: String, format: 'date-time' }) capturedAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) receivedAt!: string;
  @ApiProperty() category!: string;
  @ApiProperty() confidence!: number;
  @ApiProperty({ type: 'array', items: { type: 'object' } }) topK!: Array<{ category: string; confidence: number }>;
  @ApiProperty() modelVersion!: string;
  @ApiProperty() latencyMs!: number;
  @ApiProperty({ description: 'an operator corrected this detection' }) misclassified!: boolean;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'set when devices disagreed on its location within DISAGREEMENT_WINDOW_S' })
  disputedAt!: string | null;
}

export class DetectionPageDto {
  @ApiProperty({ type: [DetectionDto] }) items!: DetectionDto[];
  @ApiProperty({ nullable: true, type: String, description: 'pass as `cursor` for the next (older) page; null at the end' })
  nextCursor!: string | null;
}

export function toDetectionDto(d: Detection): DetectionDto {
  return {
    id: d.id.toString(),
    deviceId: d.deviceId,
    epoch: d.epoch,
    seq: Number(d.seq),
    frameId: d.frameId,
    site: d.site,
    zone: d.zone,
    location: d.location,
    capturedAt: d.capturedAt.toISOString(),
    receivedAt: d.receivedAt.toISOString(),
    category: d.category,
    confidence: d.confidence,
    topK: d.topK as Array<{ category: string; confidence: number }>,
    modelVersion: d.modelVersion,
    latencyMs: d.latencyMs,
    misclassified: d.misclassified,
    disputedAt: d.disputedAt?.toISOString() ?? null,
  };
}
