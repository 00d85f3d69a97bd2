import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import type { ModelMetrics } from './evaluation';
import type { CategoryDeltaDto, EvaluationRowsDto, ModelComparisonDto, ModelLineage, ModelVersionDto, ModelVersionSummaryDto } from './models.dto';
import type { GateOverride } from './models.repository';

/**
 * The OpenAPI description of the registry's responses (the console's client is generated from
 * it). The shapes themselves live in models.dto.ts; each class here `implements` its
 * interface, so the document cannot fall behind the code without a compile error.
 */

class BackboneRefDoc {
  @ApiProperty() id!: string;
  @ApiProperty() checksum!: string;
}

export class CategoryAccuracyDoc {
  @ApiProperty({ description: 'share of its rows classified as it (recall)' }) accuracy!: number;
  @ApiProperty() rows!: number;
}

class BaselineDoc {
  @ApiProperty({ description: 'accuracy of always answering the most frequent category' }) majority!: number;
  @ApiProperty({ description: 'accuracy of a uniform guess' }) chance!: number;
}

export class ModelMetricsDoc implements ModelMetrics {
  @ApiProperty({ description: 'sha256 of the sorted category names' }) categorySet!: string;
  @ApiProperty({ description: 'who froze the base evaluation rows used (versions, operator:<actor>), comma-separated; none when only held-out samples' }) frozenBy!: string;
  @ApiProperty() rows!: number;
  @ApiProperty() accuracy!: number;
  @ApiProperty({ type: 'object', additionalProperties: { $ref: getSchemaPath(CategoryAccuracyDoc) } })
  perCategory!: Record<string, CategoryAccuracyDoc>;
  @ApiProperty({ type: [String], description: 'sorted category names: the order of the confusion matrix' }) labels!: string[];
  @ApiProperty({ type: 'array', items: { type: 'array', items: { type: 'number' } }, description: 'confusion[true][predicted], counts of rows' })
  confusion!: number[][];
  @ApiProperty({ type: BaselineDoc }) baseline!: BaselineDoc;
  @ApiPropertyOptional({ description: 'of the rows, operator-labelled samples held out for evaluation (never trained on)' }) heldOutSamples?: number;
  @ApiPropertyOptional({ description: 'evaluation rows the version’s own rows trained or validated on (then it is refused)' }) trainedOnRows?: number;
}

class GateOverrideDoc implements GateOverride {
  @ApiProperty() by!: string;
  @ApiProperty({ description: 'the written reason' }) reason!: string;
  @ApiProperty({ type: String, format: 'date-time' }) at!: string;
}

export class ModelVersionSummaryDoc implements ModelVersionSummaryDto {
  @ApiProperty() version!: string;
  @ApiProperty({ type: BackboneRefDoc }) backbone!: BackboneRefDoc;
  @ApiProperty({ type: [String] }) labels!: string[];
  @ApiProperty() categorySet!: string;
  @ApiProperty() headType!: string;
  @ApiProperty({ description: 'job, upload or demo' }) source!: string;
  @ApiProperty({ nullable: true, type: Number }) accuracy!: number | null;
  @ApiProperty({ nullable: true, type: Boolean, description: 'the gate verdict; null before evaluation' }) releasable!: boolean | null;
  @ApiProperty({ nullable: true, type: String }) gateReason!: string | null;
  @ApiProperty({ nullable: true, type: GateOverrideDoc, description: "an operator's release of a version the gate left unverified" }) override!: GateOverrideDoc | null;
  @ApiProperty({ type: String, format: 'date-time' }) registeredAt!: string;
}

class ArtifactRefDoc {
  @ApiProperty() sha256!: string;
  @ApiProperty() bytes!: number;
}

class TrainingSetRefDoc {
  @ApiProperty() sha256!: string;
  @ApiProperty() rows!: number;
}

class LineageDoc implements ModelLineage {
  @ApiProperty({ nullable: true, type: String }) parent!: string | null;
  @ApiProperty({ type: Object, description: 'the base data: dataset folder, image and row counts, split' }) base!: Record<string, unknown>;
  @ApiProperty({ type: [String], description: 'ids of the labelled samples trained on' }) sampleIds!: string[];
  @ApiPropertyOptional() jobId?: string;
}

export class ModelVersionDoc extends ModelVersionSummaryDoc implements ModelVersionDto {
  @ApiProperty({ type: ArtifactRefDoc }) artifact!: ArtifactRefDoc;
  @ApiProperty({ type: TrainingSetRefDoc, nullable: true }) trainingSet!: TrainingSetRefDoc | null;
  @ApiProperty({ type: LineageDoc }) lineage!: LineageDoc;
  @ApiProperty({ type: ModelMetricsDoc, nullable: true }) metrics!: ModelMetricsDoc | null;
  @ApiProperty({
    type: Object,
    nullable: true,
    description:
      'the gate: reference version, categories [{category, n, before, after, worse, better, p, status: passed|regressed|unverified|new}], overall, regressed, unverified, overridable, settings',
  })
  gate!: ModelVersionDto['gate'];
  @ApiProperty({ type: Object, nullable: true, description: "an upload's own metrics and splits: informational, never used by the gate" }) declared!: Record<string, unknown> | null;
  @ApiProperty({ nullable: true, type: String }) registeredBy!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: Object, description: 'the backlog re-score of pending samples with this version' }) rescore!: ModelVersionDto['rescore'];
}

class CategoryDeltaDoc implements CategoryDeltaDto {
  @ApiProperty() category!: string;
  @ApiProperty() rows!: number;
  @ApiProperty() a!: number;
  @ApiProperty() b!: number;
  @ApiProperty({ description: 'b minus a' }) delta!: number;
}

class OverallDeltaDoc {
  @ApiProperty() a!: number;
  @ApiProperty() b!: number;
  @ApiProperty() delta!: number;
}

export class ModelComparisonDoc implements ModelComparisonDto {
  @ApiProperty() a!: string;
  @ApiProperty() b!: string;
  @ApiProperty() categorySet!: string;
  @ApiProperty() evaluationRows!: number;
  @ApiProperty({ type: OverallDeltaDoc }) overall!: OverallDeltaDoc;
  @ApiProperty({ type: [CategoryDeltaDoc] }) perCategory!: CategoryDeltaDoc[];
}

export class EvaluationRowsDoc implements EvaluationRowsDto {
  @ApiProperty() id!: string;
  @ApiProperty() backbone!: string;
  @ApiProperty() dim!: number;
  @ApiProperty() rows!: number;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' } }) counts!: Record<string, number>;
  @ApiProperty() frozenBy!: string;
}
