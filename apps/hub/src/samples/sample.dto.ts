import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { z } from 'zod';
import { CategorySchema, DeviceIdSchema, SiteSchema } from '@shelfsight/contracts';
import { QueryTime } from '../common/query-schemas';
import { SAMPLE_STATES, STORED_SAMPLE_REASONS } from './sample-scores';
import type { SampleRow } from './samples.repository';

export const SAMPLE_ORDERS = ['margin', 'entropy', 'newest', 'diverse'] as const;
export type SampleListOrder = (typeof SAMPLE_ORDERS)[number];

const Confidence = z.coerce.number().min(0).max(1);

export const SamplesQuerySchema = z
  .object({
    state: z.enum(SAMPLE_STATES).default('pending'),
    category: CategorySchema.optional(),
    predicted: CategorySchema.optional(),
    minConfidence: Confidence.optional(),
    maxConfidence: Confidence.optional(),
    device: DeviceIdSchema.optional(),
    site: SiteSchema.optional(),
    reason: z.enum(STORED_SAMPLE_REASONS).optional(),
    from: QueryTime.optional(),
    to: QueryTime.optional(),
    order: z.enum(SAMPLE_ORDERS).default('margin'),
    /** order=diverse: the backbone whose samples are spread (embeddings of different backbones are not comparable); default that of the most uncertain sample. */
    backbone: z.string().min(1).max(128).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,200}$/, 'cursor must be a value returned as nextCursor')
      .optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: 'from must be before to', path: ['from'] })
  .refine((q) => q.minConfidence === undefined || q.maxConfidence === undefined || q.minConfidence <= q.maxConfidence, {
    message: 'minConfidence must not exceed maxConfidence',
    path: ['minConfidence'],
  });
export type SamplesQuery = z.infer<typeof SamplesQuerySchema>;

export const SimilarQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) });
export type SimilarQuery = z.infer<typeof SimilarQuerySchema>;

export const SampleIdSchema = z.string().regex(/^\d{1,18}$/, 'a sample id (digits)').transform((v) => BigInt(v));

export const LabelBodySchema = z.object({ category: CategorySchema });
export type LabelBody = z.infer<typeof LabelBodySchema>;

export const BulkLabelBodySchema = z.object({
  ids: z.array(z.string().regex(/^\d{1,18}$/, 'sample ids are digits')).min(1).max(1000),
  category: CategorySchema,
});
export type BulkLabelBody = z.infer<typeof BulkLabelBodySchema>;

class ScoredDto {
  @ApiProperty() category!: string;
  @ApiProperty() confidence!: number;
}

class PredictedDto {
  @ApiProperty() category!: string;
  @ApiProperty() confidence!: number;
  @ApiProperty() modelVersion!: string;
}

class SampleScoreDto {
  @ApiProperty() category!: string;
  @ApiProperty() confidence!: number;
  @ApiProperty({ description: 'top-1 minus top-2 confidence' }) margin!: number;
  @ApiProperty() entropy!: number;
  @ApiProperty({ type: [ScoredDto] }) topK!: ScoredDto[];
  @ApiProperty() modelVersion!: string;
}

class ThumbnailRefDto {
  @ApiProperty({ description: 'GET it with the API key header' }) url!: string;
  @ApiProperty() sha256!: string;
  @ApiProperty() bytes!: number;
  @ApiProperty() width!: number;
  @ApiProperty() height!: number;
}

export class SampleDto {
  @ApiProperty() id!: string;
  @ApiProperty() deviceId!: string;
  @ApiProperty() sampleId!: string;
  @ApiProperty({ enum: STORED_SAMPLE_REASONS }) reason!: string;
  @ApiProperty() frameId!: string;
  @ApiProperty({ nullable: true, type: String }) detectionId!: string | null;
  @ApiProperty() site!: string;
  @ApiProperty() location!: string;
  @ApiProperty({ type: String, format: 'date-time' }) capturedAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) receivedAt!: string;
  @ApiProperty({ type: PredictedDto, description: 'what the device predicted' }) predicted!: PredictedDto;
  @ApiProperty({ type: SampleScoreDto, description: 'the newest model\u2019s view (queue orders use it)' }) scored!: SampleScoreDto;
  @ApiProperty() backboneId!: string;
  @ApiProperty({ nullable: true, type: Number }) embeddingDim!: number | null;
  @ApiProperty({ type: ThumbnailRefDto }) thumbnail!: ThumbnailRefDto;
  @ApiProperty() priority!: number;
  @ApiProperty({ enum: SAMPLE_STATES }) state!: string;
  @ApiProperty({ nullable: true, type: String }) label!: string | null;
  @ApiProperty({ nullable: true, type: String }) labelledBy!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) labelledAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'deleted after this unless labelled' }) expiresAt!: string | null;
}

export class SamplePageDto {
  @ApiProperty({ type: [SampleDto] }) items!: SampleDto[];
  @ApiProperty({ nullable: true, type: String, description: 'pass as `cursor` for the next page; null at the end' }) nextCursor!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'order=diverse: the backbone whose samples the page spreads over' }) backbone?: string | null;
}

export class SimilarSampleDto extends SampleDto {
  @ApiProperty({ description: 'cosine similarity to the query sample' }) similarity!: number;
}

export class SimilarPageDto {
  @ApiProperty({ type: [SimilarSampleDto] }) items!: SimilarSampleDto[];
}

export class LabelResultDto {
  @ApiProperty({ type: [String] }) labelled!: string[];
  @ApiProperty({ type: [String], description: 'ids that do not exist' }) missing!: string[];
}

export class SampleCountDto {
  @ApiProperty({ enum: SAMPLE_STATES }) state!: string;
  @ApiProperty({ description: 'label when labelled, else the scored category' }) category!: string;
  @ApiProperty() samples!: number;
}

export class SampleCountsDto {
  @ApiProperty({ description: 'samples per state' }) states!: Record<string, number>;
  @ApiProperty({ type: [SampleCountDto] }) byCategory!: SampleCountDto[];
}

export function toSampleDto(r: SampleRow): SampleDto {
  return {
    id: r.id.toString(),
    deviceId: r.device_id,
    sampleId: r.sample_id,
    reason: r.reason,
    frameId: r.frame_id,
    detectionId: r.detection_id?.toString() ?? null,
    site: r.site,
    location: r.location,
    capturedAt: r.captured_at.toISOString(),
    receivedAt: r.received_at.toISOString(),
    predicted: { category: r.predicted_category, confidence: r.predicted_confidence, modelVersion: r.model_version },
    scored: {
      category: r.scored_category,
      confidence: r.scored_confidence,
      margin: r.scored_margin,
      entropy: r.scored_entropy,
      topK: r.scored_top_k as ScoredDto[],
      modelVersion: r.scored_model_version,
    },
    backboneId: r.backbone_id,
    embeddingDim: r.embedding_dim,
    thumbnail: { url: `/samples/${r.id}/thumbnail`, sha256: r.thumbnail_sha256, bytes: r.thumbnail_bytes, width: r.thumbnail_width, height: r.thumbnail_height },
    priority: r.priority,
    state: r.state,
    label: r.label,
    labelledBy: r.labelled_by,
    labelledAt: r.labelled_at?.toISOString() ?? null,
    expiresAt: r.expires_at?.toISOString() ?? null,
  };
}
