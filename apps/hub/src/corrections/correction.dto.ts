import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { CategorySchema } from '@shelfsight/contracts';

export const CorrectionBodySchema = z.object({ category: CategorySchema });
export type CorrectionBody = z.infer<typeof CorrectionBodySchema>;

export const DetectionIdSchema = z.string().regex(/^\d{1,18}$/, 'a detection id (digits)').transform((v) => BigInt(v));

export class CorrectionDto {
  @ApiProperty() id!: string;
  @ApiProperty() detectionId!: string;
  @ApiProperty() deviceId!: string;
  @ApiProperty() frameId!: string;
  @ApiProperty({ description: 'the category before this correction' }) previousCategory!: string;
  @ApiProperty() category!: string;
  @ApiProperty() correctedBy!: string;
  @ApiProperty({ type: String, format: 'date-time' }) correctedAt!: string;
  @ApiProperty({ description: 'the detection was its location\u2019s current state, which moved to the corrected category' }) movedState!: boolean;
  @ApiProperty({ enum: ['requested', 'received', 'not_held'], description: 'the frame: asked for, received as labelled sample sampleId, or no longer held by the device (label-only correction)' })
  frameStatus!: string;
  @ApiProperty({ nullable: true, type: String }) sampleId!: string | null;
}

export interface CorrectionRow {
  id: bigint;
  detection_id: bigint;
  device_id: string;
  frame_id: string;
  previous_category: string;
  category: string;
  corrected_by: string;
  corrected_at: Date;
  moved_state: boolean;
  request_id: string;
  frame_status: string;
  sample_id: bigint | null;
}

export function toCorrectionDto(r: CorrectionRow): CorrectionDto {
  return {
    id: r.id.toString(),
    detectionId: r.detection_id.toString(),
    deviceId: r.device_id,
    frameId: r.frame_id,
    previousCategory: r.previous_category,
    category: r.category,
    correctedBy: r.corrected_by,
    correctedAt: r.corrected_at.toISOString(),
    movedState: r.moved_state,
    frameStatus: r.frame_status,
    sampleId: r.sample_id?.toString() ?? null,
  };
}
