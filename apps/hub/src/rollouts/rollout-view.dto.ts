import { ApiProperty } from '@nestjs/swagger';
import type { SchemaObjectMetadata } from '@nestjs/swagger/dist/interfaces/schema-object-metadata.interface';
import { HealthStatsSchema, ON_HALT, RolloutPolicySchema, ShadowStatsSchema, type HealthStats, type OnHalt, type RolloutPolicy, type ShadowStats } from '@shelfsight/contracts';
import type { z } from 'zod';
import { openApiSchemaOf } from '../common/zod-openapi';
import type { PredictedChange, PredictedPair } from './predicted-change';
import {
  DEVICE_ROLLOUT_STATES,
  ROLLOUT_STATES,
  RolloutTargetSchema,
  type DeviceRolloutState,
  type RolloutDeviceView,
  type RolloutStageView,
  type RolloutState,
  type RolloutTarget,
  type RolloutView,
  type StageCounts,
} from './rollout.dto';

/**
 * The documented shapes of the rollout views (what `GET /rollouts[/:id]` and the actions
 * answer), for the OpenAPI document and with it the console's typed client. Each class
 * `implements` its view interface, so a field added to a view and missing here fails to
 * compile; nested contract objects are documented from their zod schemas.
 */
function fromZod(schema: z.ZodType, nullable = false): SchemaObjectMetadata {
  return { ...(openApiSchemaOf(schema) as SchemaObjectMetadata), ...(nullable ? { nullable: true } : {}) };
}

export class RolloutCountsDto implements StageCounts {
  @ApiProperty({ description: 'stage not started: never offered' }) pending!: number;
  @ApiProperty() offered!: number;
  @ApiProperty() downloading!: number;
  @ApiProperty() verified!: number;
  @ApiProperty() shadowing!: number;
  @ApiProperty() active!: number;
  @ApiProperty() rejected!: number;
  @ApiProperty() rolled_back!: number;
}

export class RolloutAbortDto {
  @ApiProperty({ description: 'halt when more than this percentage of the devices that reported failed' }) maxFailurePercent!: number;
  @ApiProperty({ description: '... once at least this many devices reported' }) minDevices!: number;
}

export class PredictedPairDto implements PredictedPair {
  @ApiProperty({ description: 'the category the active head puts the frames under' }) from!: string;
  @ApiProperty({ description: 'the category the candidate would put them under' }) to!: string;
  @ApiProperty() frames!: number;
  @ApiProperty({ description: 'frames ÷ every pooled shadowed frame (what the gate\'s maxPairChange bounds)' }) share!: number;
  @ApiProperty({ description: 'frames ÷ the pooled frames the active head put under `from`' }) ofFrom!: number;
}

export class PredictedChangeDto implements PredictedChange {
  @ApiProperty({ description: 'devices whose shadow runs are pooled' }) devices!: number;
  @ApiProperty({ description: 'shadowed frames pooled' }) frames!: number;
  @ApiProperty({ description: 'frames whose category would change' }) changed!: number;
  @ApiProperty({ description: 'changed ÷ frames (what the gate\'s maxPredictedChange bounds)' }) share!: number;
  @ApiProperty({ type: [PredictedPairDto], description: 'per (active → candidate) category pair, most frames first' }) pairs!: PredictedPairDto[];
  @ApiProperty({ description: 'changed frames reported without per-pair counts (older agents)' }) unpaired!: number;
}

export class RolloutStageDto implements RolloutStageView {
  @ApiProperty() index!: number;
  @ApiProperty({ description: 'cumulative share of the target that has the version once this stage runs' }) percent!: number;
  @ApiProperty() minSoakSeconds!: number;
  @ApiProperty({ description: 'share of the stage\'s devices that must be active before the next stage starts' }) successThreshold!: number;
  @ApiProperty({ type: RolloutAbortDto }) abort!: RolloutAbortDto;
  @ApiProperty({ enum: ['pending', 'running', 'passed', 'halted'] }) state!: RolloutStageView['state'];
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) startedAt!: string | null;
  @ApiProperty({ description: 'devices assigned to this stage' }) devices!: number;
  @ApiProperty({ type: RolloutCountsDto }) counts!: RolloutCountsDto;
  @ApiProperty({ type: PredictedChangeDto, required: false, description: 'GET /rollouts/:id only: over this stage\'s devices\' shadow runs' }) predictedChange?: PredictedChangeDto;
}

export class RolloutDeviceDto implements RolloutDeviceView {
  @ApiProperty() deviceId!: string;
  @ApiProperty() stage!: number;
  @ApiProperty({ enum: DEVICE_ROLLOUT_STATES }) state!: DeviceRolloutState;
  @ApiProperty({ nullable: true, type: String, description: 'why it was rejected or rolled back' }) reason!: string | null;
  @ApiProperty({ nullable: true, type: String }) detail!: string | null;
  @ApiProperty({ nullable: true, type: String }) activeVersion!: string | null;
  @ApiProperty({ nullable: true, type: String }) previousVersion!: string | null;
  @ApiProperty(fromZod(ShadowStatsSchema, true)) shadow!: ShadowStats | null;
  @ApiProperty(fromZod(HealthStatsSchema, true)) health!: HealthStats | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) offeredAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) statusAt!: string | null;
}

export class RolloutDto implements RolloutView {
  @ApiProperty() id!: string;
  @ApiProperty() modelVersion!: string;
  @ApiProperty({ enum: ROLLOUT_STATES }) state!: RolloutState;
  @ApiProperty({ nullable: true, type: String }) haltReason!: string | null;
  @ApiProperty(fromZod(RolloutTargetSchema)) target!: RolloutTarget;
  @ApiProperty({ ...fromZod(RolloutPolicySchema), description: 'as applied: every default filled in; shadowGate/health false only when turned off (overrideReason)' }) policy!: RolloutPolicy;
  @ApiProperty({ enum: ON_HALT, nullable: true, type: String, description: 'what the stage engine\'s halt did to the devices active on the version' }) haltAction!: OnHalt | null;
  @ApiProperty({ description: 'index of the running (or last) stage' }) currentStage!: number;
  @ApiProperty({ type: [RolloutStageDto] }) stages!: RolloutStageDto[];
  @ApiProperty({ type: RolloutCountsDto, description: 'over every device of the rollout' }) counts!: RolloutCountsDto;
  @ApiProperty() createdBy!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finishedAt!: string | null;
  @ApiProperty({ type: PredictedChangeDto, required: false, description: 'GET /rollouts/:id only: over the shadow runs of every device offered so far (what gates the current stage)' })
  predictedChange?: PredictedChangeDto;
  @ApiProperty({ type: [RolloutDeviceDto], required: false, description: 'GET /rollouts/:id only' }) devices?: RolloutDeviceDto[];
}
