import { ApiProperty } from '@nestjs/swagger';
import { z } from 'zod';
import { SiteSchema } from '@shelfsight/contracts';
import { PageQuery, QueryBool, ScopeQuery } from '../common/query-schemas';
import { CorrectionDto } from '../corrections/correction.dto';
import { DetectionDto } from '../detections/detection.dto';

export const LocationsQuerySchema = z.object({ ...ScopeQuery, ...PageQuery, stale: QueryBool.optional() });
export type LocationsQuery = z.infer<typeof LocationsQuerySchema>;

export const LocationQuerySchema = z.object({
  site: SiteSchema.optional(),
  history: z.coerce.number().int().min(0).max(500).default(20),
});
export type LocationQuery = z.infer<typeof LocationQuerySchema>;

export class LocationStateDto {
  @ApiProperty() category!: string;
  @ApiProperty() confidence!: number;
  @ApiProperty({ type: String, format: 'date-time' }) capturedAt!: string;
  @ApiProperty() deviceId!: string;
}

export class LocationDto {
  @ApiProperty() site!: string;
  @ApiProperty() code!: string;
  @ApiProperty() zone!: string;
  @ApiProperty({ type: String, format: 'date-time' }) firstSeenAt!: string;
  @ApiProperty({ type: String, format: 'date-time', description: 'capture time of the newest detection of any confidence' })
  lastObservedAt!: string;
  @ApiProperty({ description: 'not observed for STALE_AFTER_S' }) stale!: boolean;
  @ApiProperty({ type: LocationStateDto, nullable: true, description: 'latest confident detection; null if none yet' })
  state!: LocationStateDto | null;
}

export class LocationPageDto {
  @ApiProperty({ type: [LocationDto] }) items!: LocationDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class DisputeDto {
  @ApiProperty({ type: String, format: 'date-time', description: 'when the newest dispute was found' }) disputedAt!: string;
  @ApiProperty({ type: [String], description: 'the categories the devices disagreed on' }) categories!: string[];
  @ApiProperty({ type: [String] }) devices!: string[];
  @ApiProperty({ type: [String], description: 'the disputed detections (their frames were requested for labelling)' }) detectionIds!: string[];
}

export class LocationDetailDto extends LocationDto {
  @ApiProperty({ type: [DetectionDto], description: 'recent detections, newest capture first' }) history!: DetectionDto[];
  @ApiProperty({ type: DisputeDto, nullable: true, description: 'devices disagreed on this location recently; null if not' }) dispute!: DisputeDto | null;
  @ApiProperty({ type: [CorrectionDto], description: 'operators\u2019 corrections of the detections in history' }) corrections!: CorrectionDto[];
}
