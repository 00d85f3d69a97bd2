import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ZodPipe } from '../common/zod-query.pipe';
import { DetectionPageDto, DetectionsQuerySchema, type DetectionsQuery } from './detection.dto';
import { DetectionsService } from './detections.service';
import { RequireRole } from '../auth/roles';

@ApiTags('detections')
@RequireRole('viewer')
@Controller('detections')
export class DetectionsController {
  constructor(private readonly detections: DetectionsService) {}

  @Get()
  @ApiQuery({ name: 'site', required: false })
  @ApiQuery({ name: 'zone', required: false })
  @ApiQuery({ name: 'category', required: false })
  @ApiQuery({ name: 'location', required: false })
  @ApiQuery({ name: 'device', required: false })
  @ApiQuery({ name: 'from', required: false, description: 'capture time, ISO' })
  @ApiQuery({ name: 'to', required: false, description: 'capture time, ISO (exclusive)' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1-1000, default 100' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  @ApiOkResponse({ type: DetectionPageDto })
  list(@Query(new ZodPipe(DetectionsQuerySchema)) query: DetectionsQuery): Promise<DetectionPageDto> {
    return this.detections.list(query);
  }
}
