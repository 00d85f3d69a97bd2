import { ApiProperty } from '@nestjs/swagger';
import type { SchemaObjectMetadata } from '@nestjs/swagger/dist/interfaces/schema-object-metadata.interface';
import { HealthStatsSchema, OfferPolicySchema, ShadowStatsSchema, type HealthStats, type OfferPolicy, type ShadowStats } from '@shelfsight/contracts';
import type { z } from 'zod';
import { openApiSchemaOf } from '../common/zod-openapi';
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
  @ApiProperty(fromZod(OfferPolicySchema, true)) policy!: OfferPolicy | null;
  @ApiProperty({ description: 'index of the running (or last) stage' }) currentStage!: number;
  @ApiProperty({ type: [RolloutStageDto] }) stages!: RolloutStageDto[];
  @ApiProperty({ type: RolloutCountsDto, description: 'over every device of the rollout' }) counts!: RolloutCountsDto;
  @ApiProperty() createdBy!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finishedAt!: string | null;
  @ApiProperty({ type: [RolloutDeviceDto], required: false, description: 'GET /rollouts/:id only' }) devices?: RolloutDeviceDto[];
}
