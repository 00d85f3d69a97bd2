import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TRAINING_JOB_PHASES, TRAINING_JOB_STATUSES, type TrainingJobPhase, type TrainingJobStatus } from '@shelfsight/contracts';

export class TrainingJobProgressDto {
  @ApiPropertyOptional({ description: 'training rows (base + samples)' }) rows?: number;
  @ApiPropertyOptional() baseRows?: number;
  @ApiPropertyOptional({ description: 'labelled samples trained from their stored embeddings' }) sampleRows?: number;
  @ApiPropertyOptional({ description: 'rows from distorted views of the training samples\u2019 thumbnails (augmentFromThumbnails)' }) augmentedRows?: number;
  @ApiPropertyOptional({ description: 'thumbnail views through the backbone so far (phase augmenting)' }) augmentDone?: number;
  @ApiPropertyOptional() augmentTotal?: number;
  @ApiPropertyOptional({ description: 'thumbnails skipped: missing or undecodable' }) skippedThumbnails?: number;
  @ApiPropertyOptional() step?: number;
  @ApiPropertyOptional() steps?: number;
  @ApiPropertyOptional() epoch?: number;
  @ApiPropertyOptional() epochs?: number;
  @ApiPropertyOptional({ description: 'validation accuracy at the last evaluation (0..1)' }) valAccuracy?: number;
}

export class TrainingJobDto {
  @ApiProperty() id!: number;
  @ApiProperty({ description: 'the first attempt of this job' }) rootId!: number;
  @ApiProperty() attempt!: number;
  @ApiProperty({ nullable: true, type: Number }) retryOf!: number | null;
  @ApiProperty({ enum: TRAINING_JOB_STATUSES }) status!: TrainingJobStatus;
  @ApiProperty({ enum: TRAINING_JOB_PHASES }) phase!: TrainingJobPhase;
  @ApiProperty({ type: TrainingJobProgressDto }) progress!: TrainingJobProgressDto;
  @ApiProperty({ nullable: true, type: String, description: '"interrupted" when the worker disappeared' }) error!: string | null;
  @ApiProperty({ description: 'the validated request' }) spec!: unknown;
  @ApiProperty({ nullable: true, type: String }) workerId!: string | null;
  @ApiProperty() createdBy!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) startedAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) heartbeatAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finishedAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) cancelRequestedAt!: string | null;
  @ApiProperty({ nullable: true, type: String }) cancelledBy!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'the version the job registered' }) resultVersion!: string | null;
  @ApiProperty({ nullable: true, type: Object }) result!: Record<string, unknown> | null;
}
